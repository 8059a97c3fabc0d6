/**
 * A minimal zip writer for crafting archives in tests and the fuzz corpus: entries stored or deflated, with any
 * declared sizes, and central-directory records that may alias one another's data (what hostile files do).
 */
import * as zlib from 'node:zlib';

const { deflateRawSync } = zlib;
/** zlib.crc32 where Node has it (20.15 and later), else a table-driven one. */
const nativeCrc = (zlib as { crc32?: (b: Uint8Array) => number }).crc32;

export interface ZipItem {
  name: string;
  data: Buffer;
  /** 0 stored (default), 8 deflated. */
  method?: 0 | 8;
  /** The uncompressed size to declare (default: the data's length). */
  declaredSize?: number;
  /** Point this central-directory record at the local entry of an earlier item (by index) instead of its own. */
  aliasOf?: number;
}

const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  if (nativeCrc) return nativeCrc(b);
  let c = -1;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}

/** A zip archive of the items, in order (central directory in the same order). */
export function makeZip(items: ZipItem[]): Buffer {
  const locals: Buffer[] = [];
  const records: { offset: number; csize: number; usize: number; crc: number; method: number }[] = [];
  let offset = 0;
  for (const it of items) {
    const name = Buffer.from(it.name, 'utf8');
    const method = it.method ?? 0;
    if (it.aliasOf !== undefined) {
      const r = records[it.aliasOf]!;
      records.push({ ...r, usize: it.declaredSize ?? r.usize });
      continue;
    }
    const body = method === 8 ? deflateRawSync(it.data) : it.data;
    const crc = crc32(it.data);
    const usize = it.declaredSize ?? it.data.length;
    const h = Buffer.alloc(30);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt16LE(method, 8);
    h.writeUInt32LE(crc, 14);
    h.writeUInt32LE(body.length, 18);
    h.writeUInt32LE(usize >>> 0, 22);
    h.writeUInt16LE(name.length, 26);
    locals.push(h, name, body);
    records.push({ offset, csize: body.length, usize, crc, method });
    offset += 30 + name.length + body.length;
  }
  const central: Buffer[] = [];
  let cdSize = 0;
  items.forEach((it, k) => {
    const r = records[k]!;
    const name = Buffer.from(it.name, 'utf8');
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE(20, 4);
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(r.method, 10);
    c.writeUInt32LE(r.crc, 16);
    c.writeUInt32LE(r.csize, 20);
    c.writeUInt32LE(r.usize >>> 0, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(r.offset, 42);
    central.push(c, name);
    cdSize += 46 + name.length;
  });
  const e = Buffer.alloc(22);
  e.writeUInt32LE(0x06054b50, 0);
  e.writeUInt16LE(items.length, 8);
  e.writeUInt16LE(items.length, 10);
  e.writeUInt32LE(cdSize, 12);
  e.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...central, e]);
}

// ------------------------------------------------------------------ pickles, protocol 2, as torch.save writes them

const op = (...b: number[]): Buffer => Buffer.from(b);
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v >>> 0);
  return b;
};
const str = (s: string): Buffer => {
  const b = Buffer.from(s, 'utf8');
  return Buffer.concat([op(0x58), u32(b.length), b]);
};
const int = (v: number): Buffer => {
  if (Number.isInteger(v) && v >= 0 && v < 256) return op(0x4b, v);
  if (Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31) {
    const b = Buffer.alloc(5);
    b[0] = 0x4a;
    b.writeInt32LE(v, 1);
    return b;
  }
  if (Number.isSafeInteger(v)) {
    const b = Buffer.alloc(10);
    b[0] = 0x8a;
    b[1] = 8;
    b.writeBigInt64LE(BigInt(v), 2);
    return b;
  }
  const b = Buffer.alloc(9);
  b[0] = 0x47;
  b.writeDoubleBE(v, 1);
  return b;
};
const tuple = (items: Buffer[]): Buffer => Buffer.concat([op(0x28), ...items, op(0x74)]);

export interface PickledTensor {
  key: string;
  storage?: string; // torch.<storage> global, default FloatStorage
  numel: number;
  offset: number;
  size: number[];
  stride: number[];
}

/** data.pkl of an OrderedDict name -> _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()). */
export function statePickle(tensors: [string, PickledTensor][]): Buffer {
  const parts: Buffer[] = [op(0x80, 2), Buffer.from('ccollections\nOrderedDict\n'), op(0x29, 0x52)];
  parts.push(op(0x28));
  for (const [name, t] of tensors) {
    parts.push(str(name));
    parts.push(Buffer.from('ctorch._utils\n_rebuild_tensor_v2\n'));
    const pid = tuple([
      str('storage'),
      Buffer.from(`ctorch\n${t.storage ?? 'FloatStorage'}\n`),
      str(t.key),
      str('cpu'),
      int(t.numel),
    ]);
    parts.push(
      tuple([
        Buffer.concat([pid, op(0x51)]),
        int(t.offset),
        tuple(t.size.map(int)),
        tuple(t.stride.map(int)),
        op(0x89),
        Buffer.concat([Buffer.from('ccollections\nOrderedDict\n'), op(0x29, 0x52)]),
      ]),
    );
    parts.push(op(0x52));
  }
  parts.push(op(0x75, 0x2e));
  return Buffer.concat(parts);
}

/** A torch.save archive: root/data.pkl, root/data/<key> for each storage, root/version. */
export function pthArchive(
  pickle: Buffer,
  storages: Record<string, Buffer>,
  { root = 'archive', method = 0 as 0 | 8 } = {},
): Buffer {
  return makeZip([
    { name: `${root}/data.pkl`, data: pickle, method },
    ...Object.entries(storages).map(([k, data]) => ({ name: `${root}/data/${k}`, data, method })),
    { name: `${root}/version`, data: Buffer.from('3\n') },
  ]);
}

/** The entries of a zip archive (central directory order), stored or deflated; for building mutants of real files. */
export function readZip(b: Buffer): { name: string; data: Buffer }[] {
  let e = b.length - 22;
  while (e >= 0 && b.readUInt32LE(e) !== 0x06054b50) e--;
  if (e < 0) throw new Error('not a zip');
  const count = b.readUInt16LE(e + 10);
  let p = b.readUInt32LE(e + 16);
  const out: { name: string; data: Buffer }[] = [];
  for (let k = 0; k < count; k++) {
    const method = b.readUInt16LE(p + 10),
      csize = b.readUInt32LE(p + 20),
      nameLen = b.readUInt16LE(p + 28),
      extraLen = b.readUInt16LE(p + 30),
      commentLen = b.readUInt16LE(p + 32),
      local = b.readUInt32LE(p + 42);
    const name = b.toString('utf8', p + 46, p + 46 + nameLen);
    const start = local + 30 + b.readUInt16LE(local + 26) + b.readUInt16LE(local + 28);
    const raw = b.subarray(start, start + csize);
    out.push({ name, data: method === 8 ? zlib.inflateRawSync(raw) : Buffer.from(raw) });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}
