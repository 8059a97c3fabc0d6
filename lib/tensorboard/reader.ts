/**
 * Reading event files back: the scalars of a run (any TensorBoard event file: this library's SummaryWriter,
 * PyTorch's, TensorFlow's), incrementally, for `tensornormal board` and for scripts. A record whose CRC does not
 * match is an error naming the file and offset; an incomplete record at the end (a writer mid-write) is left for
 * the next read.
 */
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { maskedCrc32c } from './crc32c.js';

/** One scalar event. */
export interface ScalarPoint {
  tag: string;
  step: number;
  wallTime: number;
  value: number;
}

const utf8 = new TextDecoder();

/** A minimal protobuf field walker: calls `on(field, wire, value)` for each field of `buf`. */
function fields(
  buf: Uint8Array,
  on: (
    field: number,
    wire: number,
    value: { varint?: number; fixed64?: DataView; fixed32?: DataView; bytes?: Uint8Array },
  ) => void,
): void {
  let i = 0;
  const varint = (): number => {
    let result = 0,
      mul = 1,
      b: number;
    do {
      if (i >= buf.length) throw new RangeError('truncated varint');
      b = buf[i++]!;
      result += (b & 0x7f) * mul;
      mul *= 128;
    } while (b & 0x80);
    return result;
  };
  while (i < buf.length) {
    const key = varint();
    const field = Math.floor(key / 8),
      wire = key % 8;
    if (wire === 0) on(field, wire, { varint: varint() });
    else if (wire === 1) {
      on(field, wire, { fixed64: new DataView(buf.buffer, buf.byteOffset + i, 8) });
      i += 8;
    } else if (wire === 5) {
      on(field, wire, { fixed32: new DataView(buf.buffer, buf.byteOffset + i, 4) });
      i += 4;
    } else if (wire === 2) {
      const n = varint();
      if (i + n > buf.length) throw new RangeError('truncated field');
      on(field, wire, { bytes: buf.subarray(i, i + n) });
      i += n;
    } else throw new RangeError(`unsupported wire type ${wire}`);
  }
}

/** The scalars of one Event: Summary values with simple_value, or a one-element float tensor (TensorFlow 2 style). */
export function scalarsOfEvent(event: Uint8Array): ScalarPoint[] {
  let wallTime = 0,
    step = 0;
  const out: ScalarPoint[] = [];
  const summaries: Uint8Array[] = [];
  fields(event, (f, _w, v) => {
    if (f === 1 && v.fixed64) wallTime = v.fixed64.getFloat64(0, true);
    else if (f === 2 && v.varint !== undefined) step = v.varint;
    else if (f === 5 && v.bytes) summaries.push(v.bytes);
  });
  for (const s of summaries)
    fields(s, (f, _w, v) => {
      if (f !== 1 || !v.bytes) return;
      let tag = '',
        value: number | null = null;
      fields(v.bytes, (vf, _vw, vv) => {
        if (vf === 1 && vv.bytes) tag = utf8.decode(vv.bytes);
        else if (vf === 2 && vv.fixed32) value = vv.fixed32.getFloat32(0, true);
        else if (vf === 8 && vv.bytes)
          fields(vv.bytes, (tf, tw, tv) => {
            // TensorProto: float_val = 5 (packed or not), double_val = 6
            if (tf === 5 && tv.fixed32) value = tv.fixed32.getFloat32(0, true);
            else if (tf === 5 && tv.bytes && tv.bytes.length === 4)
              value = new DataView(tv.bytes.buffer, tv.bytes.byteOffset, 4).getFloat32(0, true);
            else if (tf === 6 && tv.fixed64) value = tv.fixed64.getFloat64(0, true);
            else if (tf === 6 && tv.bytes && tv.bytes.length === 8)
              value = new DataView(tv.bytes.buffer, tv.bytes.byteOffset, 8).getFloat64(0, true);
            void tw;
          });
      });
      if (value !== null) out.push({ tag, step, wallTime, value });
    });
  return out;
}

/**
 * Follows one event file: each read() returns the scalars of the records completed since the last one. Keeps
 * the file closed between reads.
 */
export class EventFileFollower {
  private offset = 0;
  constructor(readonly path: string) {}

  /** The scalars of the records written since the previous call (all of them the first time). */
  read(): ScalarPoint[] {
    const fd = openSync(this.path, 'r');
    let buf: Buffer;
    try {
      const size = fstatSync(fd).size;
      if (size <= this.offset) return [];
      buf = Buffer.alloc(size - this.offset);
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, this.offset + got);
        if (n === 0) break;
        got += n;
      }
      buf = buf.subarray(0, got);
    } finally {
      closeSync(fd);
    }
    const out: ScalarPoint[] = [];
    let i = 0;
    while (i + 12 <= buf.length) {
      const len = Number(buf.readBigUInt64LE(i));
      if (buf.readUInt32LE(i + 8) !== maskedCrc32c(buf.subarray(i, i + 8)))
        throw new RangeError(`${this.path}: corrupt record length at byte ${this.offset + i} (CRC mismatch)`);
      if (i + 12 + len + 4 > buf.length) break; // not written completely yet
      const data = buf.subarray(i + 12, i + 12 + len);
      if (buf.readUInt32LE(i + 12 + len) !== maskedCrc32c(data))
        throw new RangeError(`${this.path}: corrupt record at byte ${this.offset + i} (data CRC mismatch)`);
      out.push(...scalarsOfEvent(data));
      i += 12 + len + 4;
    }
    this.offset += i;
    return out;
  }
}

/** Every scalar in an event file, in file order. */
export function readScalars(path: string): ScalarPoint[] {
  return new EventFileFollower(path).read();
}
