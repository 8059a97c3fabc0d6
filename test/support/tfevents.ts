// An independent reader of TensorBoard event files for the tests, written from the published formats and NOT from
// lib/tensorboard: TFRecord framing (tensorflow/core/lib/io/record_writer.cc: uint64 length, uint32 masked crc32c of
// the length, the data, uint32 masked crc32c of the data; mask = rotate right 15 + 0xa282ead8), CRC-32C computed
// bit by bit (RFC 3720's definition, no table), and a generic protocol-buffer decoder (BigInt varints) with the
// field numbers of tensorboard/compat/proto/{event,summary,tensor,tensor_shape}.proto and the hparams plugin's
// plugin_data.proto / api.proto, checked against the descriptors of TensorBoard 2.21's generated modules.
import { readFileSync } from 'node:fs';

export function crc32cBitwise(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

export function mask(crc: number): number {
  const rotated = ((crc >>> 15) | ((crc << 17) >>> 0)) >>> 0;
  return (rotated + 0xa282ead8) % 0x100000000;
}

export interface RawRecord {
  data: Uint8Array;
  lengthCrcOk: boolean;
  dataCrcOk: boolean;
}

/** Every record of a file; throws on trailing bytes that are not a whole record. */
export function records(path: string): RawRecord[] {
  const buf = readFileSync(path);
  const out: RawRecord[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 12 > buf.length) throw new Error(`${path}: ${buf.length - pos} trailing bytes`);
    const lenBytes = buf.subarray(pos, pos + 8);
    let len = 0n;
    for (let k = 7; k >= 0; k--) len = (len << 8n) | BigInt(lenBytes[k]!);
    const lengthCrc = buf.readUInt32LE(pos + 8);
    const n = Number(len);
    if (pos + 12 + n + 4 > buf.length) throw new Error(`${path}: truncated record at ${pos}`);
    const data = new Uint8Array(buf.subarray(pos + 12, pos + 12 + n));
    const dataCrc = buf.readUInt32LE(pos + 12 + n);
    out.push({
      data,
      lengthCrcOk: lengthCrc === mask(crc32cBitwise(lenBytes)),
      dataCrcOk: dataCrc === mask(crc32cBitwise(data)),
    });
    pos += 12 + n + 4;
  }
  return out;
}

/** A decoded message: field number -> the values in order (bigint for varints, Uint8Array for fixed and delimited). */
export type Fields = Map<number, (bigint | Uint8Array)[]>;

export function decode(bytes: Uint8Array): Fields {
  const m: Fields = new Map();
  let p = 0;
  const readVarint = (): bigint => {
    let v = 0n;
    let shift = 0n;
    for (;;) {
      if (p >= bytes.length) throw new Error('varint runs past the end');
      const b = bytes[p++]!;
      v |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return v;
      shift += 7n;
    }
  };
  while (p < bytes.length) {
    const key = readVarint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    let value: bigint | Uint8Array;
    if (wire === 0) value = readVarint();
    else if (wire === 1) value = bytes.slice(p, (p += 8));
    else if (wire === 5) value = bytes.slice(p, (p += 4));
    else if (wire === 2) {
      const n = Number(readVarint());
      value = bytes.slice(p, (p += n));
    } else throw new Error(`wire type ${wire}`);
    if (p > bytes.length) throw new Error('field runs past the end');
    if (!m.has(field)) m.set(field, []);
    m.get(field)!.push(value);
  }
  return m;
}

const text = new TextDecoder('utf-8', { fatal: true });
const f64 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, 8).getFloat64(0, true);
const f32 = (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
const one = (m: Fields, f: number): bigint | Uint8Array | undefined => m.get(f)?.at(-1);
const str = (m: Fields, f: number): string | undefined => {
  const v = one(m, f);
  return v instanceof Uint8Array ? text.decode(v) : undefined;
};
const msg = (m: Fields, f: number): Fields | undefined => {
  const v = one(m, f);
  return v instanceof Uint8Array ? decode(v) : undefined;
};
const packedDoubles = (m: Fields, f: number): number[] => {
  const out: number[] = [];
  for (const v of m.get(f) ?? []) {
    if (!(v instanceof Uint8Array)) throw new Error('expected packed doubles');
    for (let k = 0; k < v.length; k += 8) out.push(f64(v.subarray(k, k + 8)));
  }
  return out;
};

export interface DecodedValue {
  tag: string;
  simpleValue?: number;
  pluginName?: string;
  pluginContent?: Uint8Array;
  histo?: {
    min: number;
    max: number;
    num: number;
    sum: number;
    sumSquares: number;
    bucketLimit: number[];
    bucket: number[];
  };
  tensor?: { dtype: number; shape: number[]; stringVal: string[] };
}

export interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values: DecodedValue[];
}

/** Event: wall_time 1 (double), step 2 (int64), file_version 3, summary 5 { value 1 repeated }. */
export function decodeEvent(data: Uint8Array): DecodedEvent {
  const e = decode(data);
  const wt = one(e, 1);
  const step = one(e, 2);
  const ev: DecodedEvent = {
    wallTime: wt instanceof Uint8Array ? f64(wt) : 0,
    step: typeof step === 'bigint' ? Number(BigInt.asIntN(64, step)) : 0,
    values: [],
  };
  const fv = str(e, 3);
  if (fv !== undefined) ev.fileVersion = fv;
  const summary = msg(e, 5);
  for (const raw of summary?.get(1) ?? []) {
    const v = decode(raw as Uint8Array);
    // Value: tag 1, simple_value 2 (float), histo 5, tensor 8, metadata 9 { plugin_data 1 { plugin_name 1, content 2 } }
    const out: DecodedValue = { tag: str(v, 1) ?? '' };
    const sv = one(v, 2);
    if (sv instanceof Uint8Array) out.simpleValue = f32(sv);
    const meta = msg(v, 9);
    const plugin = meta ? msg(meta, 1) : undefined;
    if (plugin) {
      out.pluginName = str(plugin, 1) ?? '';
      const c = one(plugin, 2);
      out.pluginContent = c instanceof Uint8Array ? c : new Uint8Array(0);
    }
    const h = msg(v, 5);
    if (h) {
      const d = (f: number): number => {
        const x = one(h, f);
        return x instanceof Uint8Array ? f64(x) : 0;
      };
      out.histo = {
        min: d(1),
        max: d(2),
        num: d(3),
        sum: d(4),
        sumSquares: d(5),
        bucketLimit: packedDoubles(h, 6),
        bucket: packedDoubles(h, 7),
      };
    }
    const t = msg(v, 8);
    if (t) {
      // TensorProto: dtype 1, tensor_shape 2 { dim 2 { size 1 } }, string_val 8
      const shape = msg(t, 2);
      out.tensor = {
        dtype: Number(one(t, 1) ?? 0n),
        shape: (shape?.get(2) ?? []).map((d) => Number(one(decode(d as Uint8Array), 1) ?? 0n)),
        stringVal: (t.get(8) ?? []).map((b) => text.decode(b as Uint8Array)),
      };
    }
    ev.values.push(out);
  }
  return ev;
}

/** Every event of a file, after checking that every record's two CRCs match. */
export function readEventFile(path: string): DecodedEvent[] {
  return records(path).map((r, i) => {
    if (!r.lengthCrcOk || !r.dataCrcOk) throw new Error(`${path}: record ${i} has a bad CRC`);
    return decodeEvent(r.data);
  });
}

/** HParamsPluginData { version 1, experiment 2, session_start_info 3, session_end_info 4 }, decoded as far as the tests need. */
export function decodeHparams(content: Uint8Array): {
  experiment?: { hparams: { name: string; type: number }[]; metrics: string[] };
  start?: { hparams: Record<string, number | string | boolean> };
  end?: { status: number };
} {
  const d = decode(content);
  const out: ReturnType<typeof decodeHparams> = {};
  const exp = msg(d, 2);
  if (exp)
    out.experiment = {
      // Experiment: hparam_infos 4 { name 1, type 4 }, metric_infos 5 { name 1 { group 1, tag 2 } }
      hparams: (exp.get(4) ?? []).map((b) => {
        const h = decode(b as Uint8Array);
        return { name: str(h, 1) ?? '', type: Number(one(h, 4) ?? 0n) };
      }),
      metrics: (exp.get(5) ?? []).map((b) => str(msg(decode(b as Uint8Array), 1)!, 2) ?? ''),
    };
  const start = msg(d, 3);
  if (start) {
    // SessionStartInfo: hparams 1 (map entry { key 1, value 2: google.protobuf.Value { number 2, string 3, bool 4 } })
    const hp: Record<string, number | string | boolean> = {};
    for (const b of start.get(1) ?? []) {
      const entry = decode(b as Uint8Array);
      const val = msg(entry, 2)!;
      const num = one(val, 2);
      hp[str(entry, 1)!] =
        num instanceof Uint8Array ? f64(num) : val.has(3) ? str(val, 3)! : one(val, 4) === 1n ? true : false;
    }
    out.start = { hparams: hp };
  }
  const end = msg(d, 4);
  if (end) out.end = { status: Number(one(end, 1) ?? 0n) };
  return out;
}
