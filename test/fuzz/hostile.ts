/**
 * A generator of hostile model files for the fuzz tests (test/fuzz.test.ts; scripts/fuzz.sh runs it longer and can
 * keep the corpus): torch.save (.pth) archives, TorchScript archives and safetensors files, each made from an honest
 * file by a seeded mix of structural attacks (floods of opcodes, deep nesting, sizes that lie, zip records that point
 * anywhere, code nested past libtorch's stack) and blind mutations (flipped bytes, truncation, inserted bytes).
 * Every case is a [name, bytes] pair; the same seed gives the same corpus.
 */
import { makeZip, pthArchive, readZip, statePickle, type PickledTensor, type ZipItem } from './zip.js';

/** mulberry32: a small seeded generator, uniform in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Case = [name: string, bytes: Buffer];
type R = () => number;
const int = (r: R, n: number): number => Math.floor(r() * n);
const pick = <T>(r: R, xs: readonly T[]): T => xs[int(r, xs.length)]!;

/** Blind mutations: flipped bytes, a truncation, inserted or deleted runs, a duplicated slice. */
export function mutate(b: Buffer, r: R): Buffer {
  let out = Buffer.from(b);
  const rounds = 1 + int(r, 3);
  for (let k = 0; k < rounds; k++) {
    if (out.length === 0) break;
    const at = int(r, out.length);
    switch (int(r, 6)) {
      case 0:
        out[at] = int(r, 256);
        break;
      case 1:
        out = out.subarray(0, at);
        break;
      case 2:
        out = Buffer.concat([
          out.subarray(0, at),
          Buffer.from(Array.from({ length: 1 + int(r, 16) }, () => int(r, 256))),
          out.subarray(at),
        ]);
        break;
      case 3:
        out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + int(r, 32)))]);
        break;
      case 4: {
        // a little-endian u32 field set to an extreme
        if (at + 4 <= out.length)
          out.writeUInt32LE(pick(r, [0, 1, 0x7fffffff, 0xffffffff, out.length, out.length + 1]), at);
        break;
      }
      default: {
        const len = 1 + int(r, 64);
        out = Buffer.concat([out.subarray(0, at), out.subarray(at, at + len), out.subarray(at)]);
      }
    }
  }
  return out;
}

/** Pickle snippets that attack an unpickler: floods, deep nesting, lying lengths, forbidden globals, bad stacks. */
function pickleAttack(r: R): Buffer {
  const n = pick(r, [10, 1000, 100_000, 1_000_000]);
  const rep = (s: string | number[], k: number): Buffer =>
    Buffer.alloc(k * (typeof s === 'string' ? s.length : s.length), Buffer.from(s as string));
  switch (int(r, 14)) {
    case 0:
      return rep('N', n); // NONE flood
    case 1:
      return Buffer.concat([rep('(', n), rep('t', n)]); // nested tuples
    case 2:
      return Buffer.concat([Buffer.from(']'), rep('(]', n), rep('e', n)]); // nested lists
    case 3:
      return Buffer.concat([Buffer.from([0x8a, 0xff]), Buffer.alloc(255, 0xff)]); // LONG1 of 255 bytes
    case 4:
      return Buffer.from([0x58, 0xff, 0xff, 0xff, 0xff, 0x41]); // BINUNICODE past the end
    case 5:
      return Buffer.from([0x68, 0xfe]); // BINGET of nothing
    case 6:
      return Buffer.from('cposix\nsystem\n(X\x04\x00\x00\x00truetR', 'latin1');
    case 7:
      return Buffer.from('cbuiltins\neval\n', 'latin1');
    case 8:
      return Buffer.from([0x52, 0x52, 0x52]); // REDUCE on an empty stack
    case 9:
      return Buffer.from([0x81]); // NEWOBJ
    case 10:
      return Buffer.concat([rep('}', Math.min(n, 10_000)), rep('s', Math.min(n, 10_000))]); // SETITEM misuse
    case 11:
      return Buffer.concat([Buffer.from([0x47]), Buffer.from([0x7f, 0xf8, 0, 0, 0, 0, 0, 0])]); // NaN float
    case 12:
      return Buffer.from([0x95, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]); // FRAME of 2^63
    default:
      return Buffer.from([int(r, 256)]);
  }
}

const honestTensors = (): [string, PickledTensor][] => [
  ['w', { key: '0', numel: 6, offset: 0, size: [2, 3], stride: [3, 1] }],
  ['b', { key: '1', numel: 2, offset: 0, size: [2], stride: [1] }],
  ['tied', { key: '0', numel: 6, offset: 3, size: [3], stride: [1] }],
];
const honestStorages = (): Record<string, Buffer> => ({
  '0': Buffer.from(new Float32Array([1, 2, 3, 4, 5, 6]).buffer),
  '1': Buffer.from(new Float32Array([7, 8]).buffer),
});

/** A tensor description with one field made hostile. */
function hostileTensor(r: R): PickledTensor {
  const t: PickledTensor = { key: '0', numel: 6, offset: 0, size: [2, 3], stride: [3, 1] };
  const bad = pick(r, [-1, 0.5, 2 ** 31, 2 ** 53, -(2 ** 40), 1e300, 7, 100]);
  switch (int(r, 5)) {
    case 0:
      t.offset = bad;
      break;
    case 1:
      t.size = [bad, 3];
      break;
    case 2:
      t.stride = [bad, 1];
      break;
    case 3:
      t.numel = bad;
      break;
    default:
      t.size = Array.from({ length: int(r, 100) }, () => 1);
      t.stride = t.size.slice();
  }
  return t;
}

/** Hostile torch.save archives. */
export function pthCases(seed: number, n: number): Case[] {
  const r = rng(seed);
  const honest = pthArchive(statePickle(honestTensors()), honestStorages());
  const out: Case[] = [];
  for (let k = 0; k < n; k++) {
    const kind = int(r, 5);
    let b: Buffer;
    if (kind === 0) b = mutate(honest, r);
    else if (kind === 1) {
      // an attack spliced into an honest pickle
      const p = statePickle(honestTensors());
      const at = 2 + int(r, p.length - 2);
      const pkl = Buffer.concat([p.subarray(0, at), pickleAttack(r), p.subarray(at)]);
      b = pthArchive(pkl, honestStorages(), { method: r() < 0.5 ? 0 : 8 });
    } else if (kind === 2) {
      b = pthArchive(statePickle([['x', hostileTensor(r)]]), honestStorages(), { method: r() < 0.5 ? 0 : 8 });
    } else if (kind === 3) {
      // zip records that lie: sizes, aliases, names
      const items: ZipItem[] = [
        { name: 'a/data.pkl', data: statePickle(honestTensors()), method: 8 },
        { name: 'a/data/0', data: honestStorages()['0']!, method: r() < 0.5 ? 0 : 8 },
        { name: 'a/data/1', data: honestStorages()['1']!, method: 8 },
        { name: 'a/version', data: Buffer.from('3\n') },
      ];
      const it = pick(r, items);
      switch (int(r, 4)) {
        case 0:
          it.declaredSize = pick(r, [0, 1, 2 ** 31, 2 ** 32 - 1, it.data.length + 1]);
          break;
        case 1:
          items.push({
            name: pick(r, ['a/data/0', 'a/data.pkl', 'b/data.pkl', 'a/DATA.PKL']),
            data: Buffer.alloc(0),
            aliasOf: int(r, 3),
          });
          break;
        case 2:
          it.name = pick(r, ['data.pkl', 'a/../data.pkl', '', 'a/data/0/x', 'a\u0000b']);
          break;
        default:
          it.data = Buffer.alloc(int(r, 64), int(r, 256));
      }
      b = makeZip(items);
    } else b = mutate(mutate(honest, r), r);
    out.push([`pth-${seed}-${k}.pt`, b]);
  }
  return out;
}

/** Hostile safetensors files. */
export function safetensorsCases(seed: number, n: number): Case[] {
  const r = rng(seed);
  const make = (header: unknown, data: Buffer, lenDelta = 0): Buffer => {
    const h = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Math.max(0, h.length + lenDelta)));
    return Buffer.concat([len, h, data]);
  };
  const data = Buffer.from(new Float32Array([1, 2, 3, 4]).buffer);
  const honest = make({ w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } }, data);
  const hostile = (): unknown => {
    const d = pick(r, [10, 1000, 100_000]);
    return pick(r, [
      null,
      -1,
      2 ** 64,
      1e308,
      'F32',
      {},
      [],
      JSON.parse('['.repeat(Math.min(d, 1000)) + ']'.repeat(Math.min(d, 1000))) as unknown,
      Array.from({ length: 70 }, () => 1),
      [2 ** 53, 2 ** 53],
      [16, 0],
      'x'.repeat(d),
    ]);
  };
  const out: Case[] = [];
  for (let k = 0; k < n; k++) {
    let b: Buffer;
    switch (int(r, 5)) {
      case 0:
        b = mutate(honest, r);
        break;
      case 1: {
        const e: Record<string, unknown> = { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] };
        e[pick(r, ['dtype', 'shape', 'data_offsets'])] = hostile();
        b = make({ w: e }, data);
        break;
      }
      case 2: {
        // a deep shape written as text (JSON.stringify of it would overflow here too)
        const d = pick(r, [1000, 100_000]);
        b = make(`{"w":{"dtype":"F32","shape":${'['.repeat(d)}${']'.repeat(d)},"data_offsets":[0,16]}}`, data);
        break;
      }
      case 3:
        b = make(
          { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] }, __metadata__: hostile() },
          data,
          pick(r, [0, 1, -1, 1000]),
        );
        break;
      default:
        b = make(Buffer.from(Array.from({ length: 1 + int(r, 64) }, () => int(r, 256))).toString('latin1'), data);
    }
    out.push([`st-${seed}-${k}.safetensors`, b]);
  }
  return out;
}

/** Hostile TorchScript archives, from an honest one (test/fixtures/jit/honest.pt). */
export function jitCases(seed: number, n: number, honest: Buffer): Case[] {
  const r = rng(seed);
  const entries = readZip(honest);
  const out: Case[] = [];
  for (let k = 0; k < n; k++) {
    let b: Buffer;
    const kind = int(r, 4);
    if (kind === 0) b = mutate(honest, r);
    else {
      const items: ZipItem[] = entries.map((e) => ({ name: e.name, data: Buffer.from(e.data) }));
      if (kind === 1) {
        // an attack in one of the pickles
        const pk = pick(
          r,
          items.filter((i) => i.name.endsWith('.pkl') || i.name.endsWith('.debug_pkl')),
        );
        const at = 2 + int(r, Math.max(1, pk.data.length - 2));
        pk.data =
          r() < 0.5
            ? Buffer.concat([pk.data.subarray(0, at), pickleAttack(r), pk.data.subarray(at)])
            : mutate(pk.data, r);
      } else if (kind === 2) {
        // code nested or chained past what libtorch's parser survives
        const c = pick(
          r,
          items.filter((i) => i.name.endsWith('.py')),
        );
        const d = pick(r, [100, 1000, 6000, 20_000]);
        const expr = pick(r, [
          '('.repeat(d) + 'x' + ')'.repeat(d),
          '-'.repeat(d) + 'x',
          'x' + ' + x'.repeat(d),
          'not '.repeat(d) + 'x',
          '['.repeat(d) + ']'.repeat(d),
        ]);
        const text = c.data.toString('utf8');
        const m = /\n(\s+)return (.*)\n/.exec(text);
        c.data = Buffer.from(m ? text.replace(m[0], `\n${m[1]}return ${expr}\n`) : text + expr);
        if (r() < 0.3) c.data = mutate(c.data, r);
      } else {
        // a storage record cut short, or sizes that lie
        const it = pick(r, items);
        if (r() < 0.5) it.data = it.data.subarray(0, int(r, it.data.length + 1));
        else it.declaredSize = pick(r, [0, 2 ** 31, it.data.length + 1]);
      }
      b = makeZip(items);
    }
    out.push([`jit-${seed}-${k}.pt`, b]);
  }
  return out;
}
