import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../lib/index.js';
import { Tensor, nn, optim, type DType } from '../lib/index.js';
import { noLeak } from './support/helpers.js';
import { addonPath, transpileLib } from './support/transpile-lib.js';
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tn-ckpt-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string): string => join(dir, name);

// ------------------------------------------------------------------ an independent safetensors reader and writer
// Written from the format description (github.com/huggingface/safetensors README, "Format"), sharing no code with
// lib/serialize.ts: u64 little-endian header size N, N bytes of JSON, then the byte buffer.

interface Parsed {
  headerSize: number;
  header: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
  metadata: Record<string, string> | undefined;
  bytes(name: string): Uint8Array;
}
function parseSafetensors(buf: Uint8Array): Parsed {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  const json = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + n)));
  const { __metadata__: metadata, ...header } = json;
  const data = buf.subarray(8 + n);
  // the buffer must be covered exactly, without holes or overlaps
  const ranges = Object.values(header as Parsed['header'])
    .map((e) => e.data_offsets)
    .sort((a, b) => a[0] - b[0]);
  let pos = 0;
  for (const [b, e] of ranges) {
    expect(b).toBe(pos);
    pos = e;
  }
  expect(pos).toBe(data.length);
  return {
    headerSize: n,
    header,
    metadata,
    bytes: (name) => data.subarray(header[name].data_offsets[0], header[name].data_offsets[1]),
  };
}
function buildSafetensors(
  tensors: [string, string, number[], Uint8Array][],
  metadata?: Record<string, string>,
  { pad = 0 } = {},
): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let off = 0;
  for (const [name, dtype, shape, bytes] of tensors) {
    header[name] = { dtype, shape, data_offsets: [off, off + bytes.length] };
    off += bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header) + ' '.repeat(pad));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([len, json, ...tensors.map((t) => t[3])]);
}
function le(kind: 'f32' | 'f64' | 'i32' | 'i64' | 'u16' | 'i16', values: (number | bigint)[]): Uint8Array {
  const size = { f32: 4, f64: 8, i32: 4, i64: 8, u16: 2, i16: 2 }[kind];
  const out = new Uint8Array(values.length * size);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => {
    const o = i * size;
    if (kind === 'f32') dv.setFloat32(o, v as number, true);
    else if (kind === 'f64') dv.setFloat64(o, v as number, true);
    else if (kind === 'i32') dv.setInt32(o, v as number, true);
    else if (kind === 'i64') dv.setBigInt64(o, v as bigint, true);
    else if (kind === 'u16') dv.setUint16(o, v as number, true);
    else dv.setInt16(o, v as number, true);
  });
  return out;
}

/** One tensor per dtype with values whose little-endian bytes are written out independently. */
const DTYPE_CASES: {
  name: string;
  dtype: DType;
  file: string;
  shape: number[];
  make: () => Tensor;
  bytes: Uint8Array;
}[] = [
  {
    name: 'f32',
    dtype: 'float32',
    file: 'F32',
    shape: [2, 2],
    make: () =>
      torch.tensor([
        [1.5, -2],
        [0.1, 3e38],
      ]),
    bytes: le('f32', [1.5, -2, 0.1, 3e38]),
  },
  {
    name: 'f64',
    dtype: 'float64',
    file: 'F64',
    shape: [2],
    make: () => torch.tensor([Math.PI, -1e300], { dtype: 'float64' }),
    bytes: le('f64', [Math.PI, -1e300]),
  },
  {
    name: 'i32',
    dtype: 'int32',
    file: 'I32',
    shape: [3],
    make: () => torch.tensor([-7, 2147483647, -2147483648], { dtype: 'int32' }),
    bytes: le('i32', [-7, 2147483647, -2147483648]),
  },
  {
    name: 'i64',
    dtype: 'int64',
    file: 'I64',
    shape: [2],
    make: () => torch.tensor(BigInt64Array.from([-(2n ** 62n), 123456789012345n])),
    bytes: le('i64', [-(2n ** 62n), 123456789012345n]),
  },
  {
    name: 'bool',
    dtype: 'bool',
    file: 'BOOL',
    shape: [4],
    make: () => torch.tensor([true, false, true, true]),
    bytes: Uint8Array.from([1, 0, 1, 1]),
  },
  // IEEE half: 1 = 0x3c00, -2 = 0xc000, 0.5 = 0x3800, 65504 (largest) = 0x7bff
  {
    name: 'f16',
    dtype: 'float16',
    file: 'F16',
    shape: [4],
    make: () => torch.tensor([1, -2, 0.5, 65504], { dtype: 'float16' }),
    bytes: le('u16', [0x3c00, 0xc000, 0x3800, 0x7bff]),
  },
  // bfloat16 is the top half of float32: 1 = 0x3f80, -2 = 0xc000, 0.5 = 0x3f00, 3 = 0x4040
  {
    name: 'bf16',
    dtype: 'bfloat16',
    file: 'BF16',
    shape: [2, 2],
    make: () =>
      torch.tensor(
        [
          [1, -2],
          [0.5, 3],
        ],
        { dtype: 'bfloat16' },
      ),
    bytes: le('u16', [0x3f80, 0xc000, 0x3f00, 0x4040]),
  },
  {
    name: 'u8',
    dtype: 'uint8',
    file: 'U8',
    shape: [3],
    make: () => torch.tensor(Uint8Array.from([0, 255, 7])),
    bytes: Uint8Array.from([0, 255, 7]),
  },
  {
    name: 'i8',
    dtype: 'int8',
    file: 'I8',
    shape: [3],
    make: () => torch.tensor(Int8Array.from([-128, 127, 0])),
    bytes: Uint8Array.from([128, 127, 0]),
  },
  {
    name: 'i16',
    dtype: 'int16',
    file: 'I16',
    shape: [3],
    make: () => torch.tensor(Int16Array.from([-32768, 32767, 5])),
    bytes: le('i16', [-32768, 32767, 5]),
  },
  {
    name: 'scalar',
    dtype: 'float32',
    file: 'F32',
    shape: [],
    make: () => torch.scalarTensor(2.5),
    bytes: le('f32', [2.5]),
  },
  {
    name: 'empty',
    dtype: 'float64',
    file: 'F64',
    shape: [0, 3],
    make: () => torch.zeros([0, 3], { dtype: 'float64' }),
    bytes: new Uint8Array(0),
  },
];

/** A stand-in for nn.Module: the tensors it is given, by name. */
function fakeModel(entries: [string, Tensor][]): torch.CheckpointModel & { loaded: Map<string, number[]> | null } {
  return {
    loaded: null,
    stateDict: () => new Map(entries),
    loadStateDict(sd) {
      this.loaded = new Map([...(sd as Map<string, Tensor>)].map(([k, t]) => [k, t.dataSync()]));
    },
  };
}
const bytesOf = (t: Tensor): Uint8Array => new Uint8Array(t.toTypedArray().buffer);

describe('save / load round trip', () => {
  it('stores every dtype under its stateDict name with the exact little-endian bytes', async () => {
    const path = file('dtypes.safetensors');
    await noLeak(() => {
      const tensors = DTYPE_CASES.map((c) => [c.name, c.make()] as [string, Tensor]);
      torch.save(path, { model: fakeModel(tensors) });
      // read back by the independent reader
      const p = parseSafetensors(readFileSync(path));
      expect((8 + p.headerSize) % 8).toBe(0); // the data starts 8-byte aligned
      for (const c of DTYPE_CASES) {
        expect(p.header[c.name]).toMatchObject({ dtype: c.file, shape: c.shape });
        expect([...p.bytes(c.name)]).toEqual([...c.bytes]);
      }
      expect(p.metadata!.format).toBe('pt');
      expect(JSON.parse(p.metadata!.tensornormal!).model).toEqual(DTYPE_CASES.map((c) => c.name));
      // and by load()
      const ckpt = torch.load(path);
      expect([...ckpt.modelStateDict.keys()]).toEqual(DTYPE_CASES.map((c) => c.name));
      for (const c of DTYPE_CASES) {
        const t = ckpt.modelStateDict.get(c.name)!;
        expect(t.dtype).toBe(c.dtype);
        expect(t.shape).toEqual(c.shape);
        expect([...bytesOf(t)]).toEqual([...c.bytes]);
      }
      expect(ckpt.optimizerStateDict).toBeNull();
      expect(ckpt.meta).toEqual({});
      ckpt.dispose();
      torch.dispose(tensors.map((e) => e[1]));
    });
  });
  it('stores an optimizer state dict as prefixed tensors plus JSON, and user values', async () => {
    const path = file('optim.safetensors');
    await noLeak(() => {
      const m0 = torch.tensor([1, 2, 3]),
        v0 = torch.tensor([[0.5]]),
        extra = torch.arange(4);
      const optimizer = {
        stateDict: () => ({
          state: { 0: { step: 3, expAvg: m0 }, 2: { step: 1, expAvgSq: v0 } },
          paramGroups: [
            { lr: 0.1, betas: [0.9, 0.999], maxNorm: Infinity, nesterov: false, name: null, params: [0, 1, 2] },
          ],
        }),
        loadStateDict: () => undefined,
      };
      const meta = {
        epoch: 7,
        run: 'fashion',
        nested: { a: [1, 2, { b: null }], flag: true },
        nan: NaN,
        negInf: -Infinity,
        big: 2n ** 70n,
        map: new Map<string | number, unknown>([
          [0, 'zero'],
          ['k', [1]],
        ]),
        extra,
        skipped: undefined,
      };
      torch.save(path, { optimizer, ...meta });
      const p = parseSafetensors(readFileSync(path));
      expect(Object.keys(p.header).sort()).toEqual([
        'meta.extra',
        'optimizer.state.0.expAvg',
        'optimizer.state.2.expAvgSq',
        'rng_state',
      ]);
      expect([...p.bytes('optimizer.state.0.expAvg')]).toEqual([...le('f32', [1, 2, 3])]);
      expect(p.header.rng_state!.dtype).toBe('U8');
      const ckpt = torch.load(path);
      const sd = ckpt.optimizerStateDict!;
      expect(sd.paramGroups).toEqual([
        { lr: 0.1, betas: [0.9, 0.999], maxNorm: Infinity, nesterov: false, name: null, params: [0, 1, 2] },
      ]);
      expect(Object.keys(sd.state)).toEqual(['0', '2']);
      expect(sd.state['0']!.step).toBe(3);
      expect((sd.state['0']!.expAvg as Tensor).dataSync()).toEqual([1, 2, 3]);
      expect((sd.state['2']!.expAvgSq as Tensor).toArray()).toEqual([[0.5]]);
      const { extra: loadedExtra, ...rest } = ckpt.meta;
      expect(rest).toEqual({
        epoch: 7,
        run: 'fashion',
        nested: { a: [1, 2, { b: null }], flag: true },
        nan: NaN,
        negInf: -Infinity,
        big: 2n ** 70n,
        map: new Map<unknown, unknown>([
          [0, 'zero'],
          ['k', [1]],
        ]),
      });
      expect((loadedExtra as Tensor).dataSync()).toEqual([0, 1, 2, 3]);
      expect(ckpt.modelStateDict.size).toBe(0);
      ckpt.dispose();
      torch.dispose([m0, v0, extra]);
    });
  });
  it('restores nn.Linear and optim.Adam so training continues exactly as it would have', async () => {
    const path = file('linear-adam.safetensors');
    const x = torch.tensor([
      [1, 2, 3, 4],
      [-1, 0.5, 2, 0],
      [0, 0, 1, -3],
    ]);
    const y = torch.tensor([
      [1, 0, -1],
      [0.5, 0.5, 0.5],
      [2, -2, 0],
    ]);
    const step = (model: nn.Linear, opt: optim.Adam): void => {
      torch.tidy(() => {
        nn.functional.mseLoss(model.call(x), y).backward();
      });
      opt.step();
      opt.zeroGrad();
    };
    const params = (m: nn.Linear): number[][] => m.parameters().map((p) => p.dataSync());
    await noLeak(() => {
      torch.manualSeed(0);
      const model = new nn.Linear(4, 3);
      const opt = new optim.Adam(model.parameters(), { lr: 0.01 });
      for (let i = 0; i < 3; i++) step(model, opt);
      torch.save(path, { model, optimizer: opt, epoch: 3 });
      const saved = params(model);
      const afterRng = torch.tidy(() => torch.rand([3]).dataSync());
      step(model, opt);
      const continued = params(model);

      torch.manualSeed(99);
      const model2 = new nn.Linear(4, 3);
      const opt2 = new optim.Adam(model2.parameters(), { lr: 0.5 });
      const meta = torch.restore(path, { model: model2, optimizer: opt2 });
      expect(meta).toEqual({ epoch: 3 });
      expect(params(model2)).toEqual(saved);
      expect(opt2.paramGroups[0]!.lr).toBe(0.01);
      // the RNG is back where it was at save time
      expect(torch.tidy(() => torch.rand([3]).dataSync())).toEqual(afterRng);
      step(model2, opt2);
      expect(params(model2)).toEqual(continued);

      const names = Object.keys(parseSafetensors(readFileSync(path)).header).sort();
      expect(names).toEqual([
        'bias',
        'optimizer.state.0.expAvg',
        'optimizer.state.0.expAvgSq',
        'optimizer.state.1.expAvg',
        'optimizer.state.1.expAvgSq',
        'rng_state',
        'weight',
      ]);
      for (const o of [opt, opt2, model, model2]) o.dispose();
    });
    torch.dispose([x, y]);
  });
  it('restores the RNG only when asked, and returns tensors among the user values to the caller', async () => {
    const path = file('rng.safetensors');
    await noLeak(() => {
      torch.manualSeed(123);
      const keepMe = torch.tensor([4, 5]);
      torch.save(path, { note: keepMe });
      keepMe.dispose();
      const a = torch.tidy(() => torch.randn([5]).dataSync());
      const b = torch.tidy(() => torch.randn([5]).dataSync());
      const meta = torch.restore(path, { restoreRng: false });
      expect(torch.tidy(() => torch.randn([5]).dataSync())).not.toEqual(a);
      expect((meta.note as Tensor).dataSync()).toEqual([4, 5]);
      (meta.note as Tensor).dispose();
      const meta2 = torch.restore(path);
      expect(torch.tidy(() => torch.randn([5]).dataSync())).toEqual(a);
      expect(torch.tidy(() => torch.randn([5]).dataSync())).toEqual(b);
      (meta2.note as Tensor).dispose();
    });
  });
  it('reads plain safetensors files (not written by tensornormal) as model weights', async () => {
    const path = file('plain.safetensors');
    writeFileSync(
      path,
      buildSafetensors(
        [
          ['layer.weight', 'F32', [2], le('f32', [0.25, -4])],
          ['layer.bias', 'F64', [], le('f64', [1e-3])],
        ],
        undefined,
        { pad: 3 },
      ),
    );
    await noLeak(() => {
      const ckpt = torch.load(path);
      expect([...ckpt.modelStateDict.keys()].sort()).toEqual(['layer.bias', 'layer.weight']);
      expect(ckpt.modelStateDict.get('layer.weight')!.dataSync()).toEqual([0.25, -4]);
      expect(ckpt.modelStateDict.get('layer.bias')!.item()).toBe(1e-3);
      expect(ckpt.rngState).toBeNull();
      expect(ckpt.meta).toEqual({});
      expect(ckpt.metadata).toEqual({});
      ckpt.dispose();
      const model = fakeModel([]);
      expect(torch.restore(path, { model })).toEqual({});
      expect(model.loaded!.get('layer.weight')).toEqual([0.25, -4]);
      expect(() =>
        torch.restore(path, {
          optimizer: { stateDict: () => ({ state: {}, paramGroups: [] }), loadStateDict: () => undefined },
        }),
      ).toThrow(`${path} holds no optimizer state`);
    });
  });
  it('keeps "__proto__" an ordinary name for tensors and user values', async () => {
    const path = file('proto.safetensors');
    await noLeak(() => {
      const t = torch.tensor([7]);
      torch.save(path, { model: fakeModel([['__proto__', t]]), ...JSON.parse('{"__proto__": {"polluted": 1}}') });
      t.dispose();
      const ckpt = torch.load(path);
      expect(ckpt.modelStateDict.get('__proto__')!.dataSync()).toEqual([7]);
      expect(Object.getPrototypeOf(ckpt.meta)).toBe(Object.prototype);
      expect(Object.getOwnPropertyDescriptor(ckpt.meta, '__proto__')!.value).toEqual({ polluted: 1 });
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      ckpt.dispose();
    });
  });
  it('replaces the file atomically and leaves no temporary file behind', () => {
    const sub = file('atomic');
    mkdirSync(sub);
    const path = join(sub, 'ckpt.safetensors');
    for (const v of [1, 2, 3]) torch.save(path, { v });
    expect(readdirSync(sub)).toEqual(['ckpt.safetensors']);
    const ckpt = torch.load(path);
    expect(ckpt.meta).toEqual({ v: 3 });
    ckpt.dispose();
  });
});

describe('corrupt and truncated files', () => {
  const good = (): Buffer =>
    buildSafetensors(
      [
        ['a', 'F32', [2], le('f32', [1, 2])],
        ['b', 'I64', [1], le('i64', [5n])],
      ],
      { format: 'pt' },
    );
  const header = (obj: unknown): Buffer => {
    const json = Buffer.from(typeof obj === 'string' ? obj : JSON.stringify(obj));
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([len, json]);
  };
  const cases: [string, () => Buffer, string][] = [
    ['too short', () => Buffer.from([1, 2, 3]), 'the file has 3 bytes, fewer than the 8 of the header length'],
    [
      'header beyond the file',
      () => {
        const b = Buffer.alloc(10);
        b.writeBigUInt64LE(100n);
        b.write('{}', 8);
        return b;
      },
      'the header length 100 goes beyond the end of the file (10 bytes): truncated or not safetensors',
    ],
    [
      'huge header length',
      () => {
        const b = Buffer.alloc(16);
        b.writeBigUInt64LE(2n ** 63n);
        return b;
      },
      'the header length 9223372036854775808 goes beyond the end of the file',
    ],
    ['bad JSON', () => header('{"a": {"dtype": "F32",'), 'the header is not valid JSON'],
    ['not an object', () => header('[1, 2]'), 'the header does not start with a JSON object'],
    [
      'not UTF-8',
      () => Buffer.concat([header('{"a":1}').subarray(0, 8), Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x20, 0x20, 0x20])]),
      'the header is not UTF-8',
    ],
    [
      'unknown dtype',
      () => header({ a: { dtype: 'F8_E4M3', shape: [0], data_offsets: [0, 0] } }),
      "tensor 'a' has dtype 'F8_E4M3', which tensornormal does not read (it reads F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL)",
    ],
    [
      'bad shape',
      () => header({ a: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }),
      "tensor 'a' has shape [-1], not an array of non-negative integers",
    ],
    [
      'bad offsets',
      () => header({ a: { dtype: 'F32', shape: [0], data_offsets: [0] } }),
      "tensor 'a' has data_offsets [0], not [begin, end]",
    ],
    [
      'offsets out of range',
      () => Buffer.concat([header({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }), Buffer.alloc(4)]),
      "tensor 'a' has data_offsets [0, 8] outside the 4 bytes of data",
    ],
    [
      'size mismatch',
      () => Buffer.concat([header({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }), Buffer.alloc(8)]),
      "tensor 'a' has 8 bytes of data but F32 [3] needs 12",
    ],
    [
      'overlap',
      () =>
        Buffer.concat([
          header({
            a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
            b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
          }),
          Buffer.alloc(12),
        ]),
      "tensor 'b' (bytes 4 to 12) overlaps the tensor before it (which ends at 8)",
    ],
    [
      'hole',
      () => Buffer.concat([header({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }), Buffer.alloc(8)]),
      "bytes 0 to 4 of the data belong to no tensor (a hole before 'a')",
    ],
    [
      'trailing bytes',
      () => Buffer.concat([good(), Buffer.alloc(3)]),
      'the tensors cover 16 bytes of data but the file holds 19 after the header (trailing bytes)',
    ],
    [
      'bad bool',
      () => buildSafetensors([['m', 'BOOL', [2], Uint8Array.from([1, 7])]]),
      "bool tensor 'm' holds the byte 7 (only 0 and 1 are booleans)",
    ],
    ['bad metadata', () => header({ __metadata__: { epoch: 3 } }), '__metadata__.epoch is not a string'],
    [
      'an inherited name as dtype',
      () => header({ a: { dtype: 'toString', shape: [0], data_offsets: [0, 0] } }),
      "tensor 'a' has dtype 'toString', which tensornormal does not read",
    ],
    [
      'an empty tensor whose other dimensions overflow',
      () => header({ a: { dtype: 'F32', shape: [2 ** 53 - 1, 2 ** 53 - 1, 0], data_offsets: [0, 0] } }),
      "tensor 'a' has shape [9007199254740991, 9007199254740991, 0], whose dimensions multiply past 2^53",
    ],
  ];
  for (const [what, make, message] of cases) {
    it(`rejects a file with ${what}`, async () => {
      const path = file(`bad-${what.replace(/\W/g, '-')}.safetensors`);
      writeFileSync(path, make());
      await noLeak(() => {
        expect(() => torch.load(path)).toThrow(`${path} is not a valid safetensors file: ${message}`);
      });
    });
  }
  it('rejects bad tensornormal metadata', async () => {
    const path = file('bad-meta.safetensors');
    const cases: [Record<string, string>, string][] = [
      [{ tensornormal: '{"version": 1, "model": [' }, 'its "tensornormal" metadata is not valid JSON'],
      [
        { tensornormal: '{"version": 2}' },
        'it has format version 2; this tensornormal reads version 1 (update tensornormal)',
      ],
      [{ tensornormal: '{"version": 1, "model": ["w"]}' }, 'the model tensor "w" is missing from the file'],
      [
        { tensornormal: '{"version": 1, "meta": {"x": {"$tn": "tensor", "name": "meta.x"}}}' },
        'the metadata refers to a tensor "meta.x" that the file does not hold',
      ],
      [
        { tensornormal: '{"version": 1, "meta": {"x": {"$tn": "eval", "code": "process.exit()"}}}' },
        'unknown marker "eval" in the metadata',
      ],
      [
        { tensornormal: '{"version": 1, "optimizer": {"state": {}}}' },
        'the optimizer state is not {state, paramGroups}',
      ],
      [{ tensornormal: '{"version": 1, "rng": "a"}' }, 'the RNG state is float32 [2], not a uint8 vector'],
      [
        { tensornormal: `{"version": 1, "meta": {"x": ${'['.repeat(100_000)}${']'.repeat(100_000)}}}` },
        'its metadata nests more than 200 levels deep',
      ],
    ];
    await noLeak(() => {
      for (const [metadata, message] of cases) {
        writeFileSync(path, buildSafetensors([['a', 'F32', [2], le('f32', [1, 2])]], metadata));
        expect(() => torch.load(path)).toThrow(`${path} is not a valid tensornormal checkpoint: ${message}`);
      }
    });
  });
  it('rejects every truncation of a real checkpoint with an Error', async () => {
    const path = file('full.safetensors');
    const w = torch.randn(64);
    torch.save(path, { model: fakeModel([['w', w]]), epoch: 1 });
    w.dispose();
    const full = readFileSync(path);
    const cut = file('cut.safetensors');
    await noLeak(() => {
      for (const len of [0, 1, 7, 8, 9, 20, 100, full.length - 300, full.length - 1]) {
        writeFileSync(cut, full.subarray(0, len));
        expect(() => torch.load(cut), `cut at ${len} of ${full.length}`).toThrow(
          `${cut} is not a valid safetensors file: `,
        );
      }
    });
    expect(() => torch.load(file('missing.safetensors'))).toThrow(
      `cannot read ${file('missing.safetensors')}: file not found`,
    );
  });
});

describe('save() argument checks', () => {
  it('names what it cannot store', async () => {
    const path = file('never.safetensors');
    await noLeak(() => {
      expect(() => torch.save(path, { callback: () => 1 })).toThrow(
        'save(): cannot store meta.callback (a function): checkpoints hold tensors, numbers, bigints, strings, booleans, null, arrays, Maps and plain objects',
      );
      expect(() => torch.save(path, { when: new Date(0) })).toThrow('save(): cannot store meta.when (a Date)');
      expect(() => torch.save(path, { x: { $tn: 'tensor' } })).toThrow(
        "save(): meta.x has the key '$tn', which checkpoints reserve",
      );
      const t = torch.zeros(1);
      expect(() => torch.save(path, { model: fakeModel([['rng_state', t]]) })).toThrow(
        "save(): the model has a tensor named 'rng_state', which the checkpoint needs for its own state",
      );
      expect(() =>
        torch.save(path, { model: { stateDict: () => new Map([['w', 3]]) } as unknown as torch.CheckpointModel }),
      ).toThrow("Expected a Tensor for model.stateDict()['w'] but received 3 of type number");
      t.dispose();
      expect(() => torch.save(path, { x: t })).toThrow('save(): meta.x is a disposed tensor');
      expect(() => torch.save(path, { optimizer: {} as torch.CheckpointOptimizer })).toThrow(
        'Expected an optimizer with stateDict() for optimizer but received [object Object] of type object',
      );
      expect(() => torch.save(42 as unknown as string, {})).toThrow(
        'Expected a string for path but received 42 of type number',
      );
      expect(() => torch.restore(path, { restoreRng: 1 as unknown as boolean })).toThrow(
        'Expected a boolean for restoreRng but received 1 of type number',
      );
    });
    expect(readdirSync(dir).filter((f) => f.includes('never'))).toEqual([]);
  });
});

// ------------------------------------------------------------------ a save killed mid-write
const CHILD = `
import { save } from './lib/checkpoint.js';
import { full } from './lib/creation.js';
const [path, n] = process.argv.slice(2);
const w = full([Number(n)], 0);
const model = { stateDict: () => new Map([['w', w]]), loadStateDict() {} };
for (let v = 1; v < 100000; v++) {
  w.fill_(v);
  process.stdout.write('begin ' + v + '\\n');
  save(path, { model, version: v });
  process.stdout.write('done ' + v + '\\n');
}
`;

describe('a process killed during save()', () => {
  it('leaves the previous complete checkpoint at the path', async () => {
    const work = file('kill');
    mkdirSync(work);
    transpileLib(work);
    writeFileSync(join(work, 'child.mjs'), CHILD);
    const target = join(work, 'ckpt.safetensors');
    const n = 16 * 1024 * 1024; // 64 MB of float32: a save takes long enough to be caught in the middle
    const child = spawn(process.execPath, [join(work, 'child.mjs'), target, String(n)], {
      env: { ...process.env, TENSORNORMAL_ADDON: addonPath, OMP_NUM_THREADS: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const done: number[] = [];
    let begun = 0,
      stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      for (const line of s.split('\n')) {
        const [what, v] = line.split(' ');
        if (what === 'done') done.push(Number(v));
        if (what === 'begin') begun = Number(v);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.on('exit', (_code, signal) => resolve(signal)),
    );
    const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
    let partial: string | null = null;
    const deadline = Date.now() + 90_000;
    try {
      // let two saves complete, then kill the child while a temporary file is partly written
      while (done.length < 2 && Date.now() < deadline && child.exitCode === null) await sleep(5);
      expect(done.length, `child: ${stderr}`).toBeGreaterThanOrEqual(2);
      const fullSize = statSync(target).size;
      while (partial === null && Date.now() < deadline && child.exitCode === null) {
        for (const f of readdirSync(work)) {
          if (!f.endsWith('.tmp')) continue;
          let size = -1;
          try {
            size = statSync(join(work, f)).size;
          } catch {
            continue; // renamed in the meantime
          }
          if (size > 0 && size < fullSize) {
            child.kill('SIGKILL');
            partial = f;
            break;
          }
        }
        if (partial === null) await sleep(1);
      }
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    expect(await exited).toBe('SIGKILL');
    expect(partial, 'a temporary file was seen partly written').not.toBeNull();
    await noLeak(() => {
      const ckpt = torch.load(target);
      const v = ckpt.meta.version as number;
      // the last completed save, or the one in progress if its rename landed just before the kill
      expect([...done, begun]).toContain(v);
      const w = ckpt.modelStateDict.get('w')!;
      expect(w.shape).toEqual([n]);
      torch.tidy(() => {
        expect(w.min().item()).toBe(v);
        expect(w.max().item()).toBe(v);
      });
      ckpt.dispose();
      // the next save of the path removes the killed process's temporary file, and only what is ours and stale:
      // a temporary of a live process (this one's parent), another name's, and a look-alike stay
      expect(readdirSync(work)).toContain(partial);
      const keep = [
        `.ckpt.safetensors.${process.ppid}.0123abcd.tmp`,
        '.other.safetensors.999999999.0123abcd.tmp',
        '.ckpt.safetensors.999999999.notours.tmp',
      ];
      for (const f of keep) writeFileSync(join(work, f), 'x');
      const m = { stateDict: () => new Map([['w', torch.zeros([1])]]), loadStateDict() {} };
      torch.tidy(() => torch.save(target, { model: m }));
      const left = readdirSync(work).filter((f) => f.endsWith('.tmp'));
      expect(left.sort()).toEqual([...keep].sort());
    });
  }, 120_000);
});

// ------------------------------------------------------------------ Python interoperability
const python = '/usr/bin/python3';
const has = (module: string): boolean => spawnSync(python, ['-c', `import ${module}`]).status === 0;
const hasTorch = has('torch');
const hasSafetensors = hasTorch && has('safetensors.torch');

/** Reads the file with PyTorch and only the format description (json + torch.frombuffer), printing the values. */
const PY_READER = `
import json, struct, sys, torch
DT = {'F64': torch.float64, 'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16, 'I64': torch.int64,
      'I32': torch.int32, 'I16': torch.int16, 'I8': torch.int8, 'U8': torch.uint8, 'BOOL': torch.bool}
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n])
out = {}
for k, v in h.items():
    if k == '__metadata__':
        continue
    s, e = v['data_offsets']
    raw = bytearray(b[8 + n + s:8 + n + e])
    t = torch.frombuffer(raw, dtype=DT[v['dtype']]) if raw else torch.empty(0, dtype=DT[v['dtype']])
    t = t.reshape(v['shape'])
    out[k] = {'shape': list(t.shape), 'values': [str(x) for x in t.flatten().tolist()]}
print(json.dumps(out))
`;
const PY_SAFETENSORS = `
import json, sys
from safetensors.torch import load_file
sd = load_file(sys.argv[1])
print(json.dumps({k: {'dtype': str(t.dtype), 'shape': list(t.shape), 'values': [str(x) for x in t.flatten().tolist()]} for k, t in sd.items()}))
`;
const PY_DTYPES: Record<string, string> = {
  float32: 'torch.float32',
  float64: 'torch.float64',
  int32: 'torch.int32',
  int64: 'torch.int64',
  bool: 'torch.bool',
  float16: 'torch.float16',
  bfloat16: 'torch.bfloat16',
  uint8: 'torch.uint8',
  int8: 'torch.int8',
  int16: 'torch.int16',
};
/** Python's str() of each value, as the scripts print them. */
const pyValues = (t: Tensor): string[] =>
  t.dtype === 'int64'
    ? Array.from(t.toTypedArray() as BigInt64Array, String)
    : t.dtype === 'bool'
      ? t.dataSync().map((v) => (v ? 'True' : 'False'))
      : t
          .dataSync()
          .map((v) =>
            Number.isInteger(v) && !['int32', 'uint8', 'int8', 'int16'].includes(t.dtype) ? v.toFixed(1) : String(v),
          );

describe('Python interoperability', () => {
  it.skipIf(!hasTorch)(
    'PyTorch reads the saved bytes as the same values (a json + torch.frombuffer reader)',
    async () => {
      const path = file('py.safetensors');
      await noLeak(() => {
        const tensors = DTYPE_CASES.map((c) => [c.name, c.make()] as [string, Tensor]);
        torch.save(path, { model: fakeModel(tensors) });
        const r = spawnSync(python, ['-c', PY_READER, path], { encoding: 'utf8' });
        expect(r.status, r.stderr).toBe(0);
        const got = JSON.parse(r.stdout);
        for (const [name, t] of tensors) {
          expect(got[name].shape, name).toEqual(t.shape);
          expect(got[name].values, name).toEqual(pyValues(t));
        }
        torch.dispose(tensors.map((e) => e[1]));
      });
    },
  );
  const reason = hasSafetensors
    ? ''
    : ` (skipped: ${python} has no safetensors module, and Debian bookworm has no python3-safetensors package)`;
  it.skipIf(!hasSafetensors)(`safetensors.torch.load_file reads the model weights${reason}`, async () => {
    const path = file('st.safetensors');
    await noLeak(() => {
      const tensors = DTYPE_CASES.map((c) => [c.name, c.make()] as [string, Tensor]);
      torch.save(path, { model: fakeModel(tensors) });
      const r = spawnSync(python, ['-c', PY_SAFETENSORS, path], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout);
      for (const [name, t] of tensors) {
        expect(got[name].dtype, name).toBe(PY_DTYPES[t.dtype]);
        expect(got[name].shape, name).toEqual(t.shape);
        expect(got[name].values, name).toEqual(pyValues(t));
      }
      torch.dispose(tensors.map((e) => e[1]));
    });
  });
});

// ------------------------------------------------------------------ weights with PyTorch's names
/** The same architecture in both languages: conv, batch norm (its buffers are where the names differ), linear. */
const PY_MODEL = `
import json, struct, sys, torch
torch.manual_seed(int(sys.argv[3]))
m = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                        torch.nn.Flatten(), torch.nn.Linear(64, 3))
DT = {'F64': torch.float64, 'F32': torch.float32, 'I64': torch.int64}
NAME = {torch.float32: 'F32', torch.float64: 'F64', torch.int64: 'I64'}
x = torch.tensor(json.loads(sys.stdin.read()), dtype=torch.float32).reshape(2, 1, 8, 8)
if sys.argv[1] == 'read':
    b = open(sys.argv[2], 'rb').read()
    n = struct.unpack('<Q', b[:8])[0]
    h = json.loads(b[8:8 + n])
    sd = {}
    for k, v in h.items():
        if k == '__metadata__':
            continue
        s, e = v['data_offsets']
        sd[k] = torch.frombuffer(bytearray(b[8 + n + s:8 + n + e]), dtype=DT[v['dtype']]).reshape(v['shape'])
    m.load_state_dict(sd, strict=True)
else:
    m.train()
    m(x)  # moves the running statistics, counts a batch
    sd = m.state_dict()
    header, blobs, off = {}, [], 0
    for k, t in sd.items():
        raw = t.contiguous().numpy().tobytes()
        header[k] = {'dtype': NAME[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    hj = json.dumps(header).encode()
    open(sys.argv[2], 'wb').write(struct.pack('<Q', len(hj)) + hj + b''.join(blobs))
m.eval()
with torch.no_grad():
    print(json.dumps({'out': m(x).flatten().tolist(), 'tracked': int(m[1].num_batches_tracked)}))
`;

describe('weights with PyTorch names (saveWeights / loadWeights)', () => {
  const net = (): nn.Sequential =>
    new nn.Sequential(
      new nn.Conv2d(1, 4, 3, { padding: 1 }),
      new nn.BatchNorm2d(4),
      new nn.ReLU(),
      new nn.MaxPool2d(2),
      new nn.Flatten(),
      new nn.Linear(64, 3),
    );
  const xs = Array.from({ length: 128 }, (_, i) => Math.sin(i * 0.37) + 0.1 * (i % 5));

  it('pytorchName spells camelCase segments in snake_case', () => {
    expect(torch.pytorchName('1.runningMean')).toBe('1.running_mean');
    expect(torch.pytorchName('layer1.0.bn1.numBatchesTracked')).toBe('layer1.0.bn1.num_batches_tracked');
    expect(torch.pytorchName('features.0.weight')).toBe('features.0.weight');
    expect(torch.pytorchName('already_snake')).toBe('already_snake');
  });

  it.skipIf(!hasTorch)(
    'PyTorch loads saveWeights() output into the same architecture (strict) and computes the same outputs',
    async () => {
      const path = file('weights-out.safetensors');
      await noLeak(() => {
        torch.manualSeed(3);
        const m = net();
        const x = torch.tensor(xs, { shape: [2, 1, 8, 8] });
        torch.tidy(() => void m.train().call(x)); // non-trivial running statistics, numBatchesTracked 1
        torch.saveWeights(path, m);
        const keys = Object.keys(parseSafetensors(readFileSync(path)).header).filter((k) => k !== '__metadata__');
        expect(keys).toContain('1.running_mean');
        expect(keys).toContain('1.num_batches_tracked');
        const r = spawnSync(python, ['-c', PY_MODEL, 'read', path, '0'], {
          input: JSON.stringify(xs),
          encoding: 'utf8',
        });
        expect(r.status, r.stderr).toBe(0);
        const got = JSON.parse(r.stdout) as { out: number[]; tracked: number };
        expect(got.tracked).toBe(1);
        const mine = torch.tidy(() => m.eval().call(x).dataSync());
        mine.forEach((v, i) => expect(Math.abs(v - got.out[i]!), `output ${i}`).toBeLessThan(1e-5));
        x.dispose();
        m.dispose();
      });
    },
  );

  it.skipIf(!hasTorch)(
    "loadWeights() reads a file Python wrote from model.state_dict() (PyTorch's names) and computes the same outputs",
    async () => {
      const path = file('weights-in.safetensors');
      const r = spawnSync(python, ['-c', PY_MODEL, 'write', path, '7'], {
        input: JSON.stringify(xs),
        encoding: 'utf8',
      });
      expect(r.status, r.stderr).toBe(0);
      const got = JSON.parse(r.stdout) as { out: number[] };
      await noLeak(() => {
        torch.manualSeed(11);
        const m = net();
        torch.loadWeights(path, m);
        const bn = m.at(1) as nn.BatchNorm2d;
        expect(Number((bn.numBatchesTracked!.toTypedArray() as BigInt64Array)[0])).toBe(1);
        const x = torch.tensor(xs, { shape: [2, 1, 8, 8] });
        const mine = torch.tidy(() => m.eval().call(x).dataSync());
        mine.forEach((v, i) => expect(Math.abs(v - got.out[i]!), `output ${i}`).toBeLessThan(1e-5));
        // the other way round the names round-trip too, and a mismatch names the model's keys
        const other = new nn.Sequential(new nn.Linear(2, 2));
        expect(() => torch.loadWeights(path, other)).toThrow(/Missing key\(s\) in state_dict|Unexpected key\(s\)/);
        expect(() => torch.loadWeights(path, null as never)).toThrow(TypeError);
        other.dispose();
        x.dispose();
        m.dispose();
      });
    },
  );

  it('round-trips through its own names and through save() checkpoints', async () => {
    const a = file('w-own.safetensors'),
      b = file('w-ckpt.safetensors');
    await noLeak(() => {
      torch.manualSeed(5);
      const m = net();
      torch.saveWeights(a, m, { names: 'tensornormal' });
      torch.save(b, { model: m, epoch: 3 });
      for (const p of [a, b]) {
        const m2 = net();
        torch.loadWeights(p, m2);
        const [s1, s2] = [m.stateDict(), m2.stateDict()];
        for (const [k, t] of s1) expect(s2.get(k)!.dataSync(), `${p} ${k}`).toEqual(t.dataSync());
        torch.dispose([s1, s2]);
        m2.dispose();
      }
      expect(() => torch.saveWeights(a, m, { names: 'python' as never })).toThrow(RangeError);
      m.dispose();
    });
  });
});
