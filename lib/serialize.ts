/**
 * The safetensors file format (https://github.com/huggingface/safetensors, "Format"): an unsigned little-endian
 * 64-bit header length N, N bytes of UTF-8 JSON mapping each tensor name to {dtype, shape, data_offsets: [begin,
 * end]} (offsets into the data that follows the header) plus an optional "__metadata__" map of strings to strings,
 * then the tensors' raw little-endian bytes. Nothing in a file is executed: the header is JSON and the rest bytes.
 *
 * The reader checks everything a conformant reader must (header inside the file, valid JSON, known dtypes, sizes
 * that match the shapes, offsets in range, neither overlapping nor leaving holes) and reports a bad file as an
 * Error naming it. The writer replaces the file atomically: it writes a temporary file in the same folder, flushes
 * it to disk, renames it over the target and flushes the folder, so a crash mid-save leaves the old file intact.
 */
import {
  closeSync,
  fsyncSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { endianness } from 'node:os';
import { randomBytes } from 'node:crypto';
import { native } from './native.js';
import { openRegular, saveTarget } from './fsutil.js';
import { Tensor, wrap } from './tensor.js';
import { dtypeCode, type DType } from './dtype.js';
import { TorchError, is, typeError } from './errors.js';

/** safetensors dtype names of the dtypes tensornormal has. */
const TO_FILE: Record<DType, string> = {
  float64: 'F64',
  float32: 'F32',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  int16: 'I16',
  int8: 'I8',
  uint8: 'U8',
  bool: 'BOOL',
};
const FROM_FILE: Record<string, DType> = Object.fromEntries(Object.entries(TO_FILE).map(([d, s]) => [s, d as DType]));
const ITEMSIZE: Record<DType, number> = {
  float64: 8,
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** The reference implementation refuses headers above 100 MB (safetensors/src/tensor.rs MAX_HEADER_SIZE). */
const MAX_HEADER = 100_000_000;
/**
 * The most tensors a file may hold: 100,000. A checkpoint of a 1,000-layer model with its optimizer state holds a
 * few thousand; each tensor costs a native allocation, so a header listing a million empty ones is refused before
 * any is made (it parses in well under a second within the 100 MB header limit).
 */
export const MAX_TENSORS = 100_000;

function checkHost(): void {
  // Tensors are copied byte for byte; a big-endian host would need a byte swap per element.
  if (endianness() !== 'LE') throw new Error('safetensors: big-endian hosts are not supported');
}

/**
 * Writes tensors (in the given order) and string metadata to `path` as a safetensors file, atomically.
 * CUDA tensors are copied to the host; non-contiguous ones are made contiguous.
 */
export function writeSafetensors(
  path: string,
  entries: Iterable<[string, Tensor]>,
  metadata: Record<string, string> = {},
): void {
  checkHost();
  is.string(path, 'path');
  const list = [...entries];
  // No prototype: a tensor named "__proto__" must become a key like any other.
  const header: Record<string, unknown> = Object.create(null) as Record<string, unknown>;
  if (metadata === null || typeof metadata !== 'object') throw typeError('an object of strings', 'metadata', metadata);
  for (const [k, v] of Object.entries(metadata))
    if (typeof v !== 'string') throw typeError('a string', `metadata.${k}`, v);
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const seen = new Set<string>();
  for (const [name, t] of list) {
    if (typeof name !== 'string' || name.length === 0 || name === '__metadata__')
      throw typeError('a non-empty tensor name other than __metadata__', 'name', name);
    if (seen.has(name)) throw new RangeError(`safetensors: two tensors are named '${name}'`);
    seen.add(name);
    if (!(t instanceof Tensor)) throw typeError('a Tensor', name, t);
    if (t.isDisposed) throw new TypeError(`safetensors: tensor '${name}' was disposed`);
    const dtype = t.dtype;
    const bytes = t.numel() * ITEMSIZE[dtype];
    header[name] = { dtype: TO_FILE[dtype], shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does (JSON allows trailing spaces).
  const jsonBytes = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - ((8 + jsonBytes) % 8)) % 8);
  const head = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(head.length));

  // Through a symbolic link to its target (the link stays); never over a device, FIFO, directory or socket.
  const target = saveTarget(path, 'safetensors');
  const dir = dirname(target);
  removeStrayTemporaries(dir, basename(target));
  const tmp = join(dir, `.${basename(target)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fd = openSync(tmp, 'wx', 0o644);
  let done = false;
  try {
    writeAll(fd, prefix);
    writeAll(fd, head);
    for (const [, t] of list) writeAll(fd, new Uint8Array(native.toBuffer(t._h)));
    fsyncSync(fd);
    closeSync(fd);
    done = true;
    renameSync(tmp, target);
  } catch (err) {
    if (!done) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // already gone
    }
    throw err;
  }
  syncDir(dir);
}

/**
 * Removes what an interrupted save of `name` left in `dir`: files named as this writer names its temporaries
 * (`.<name>.<pid>.<8 hex digits>.tmp`) whose process is gone. A temporary of a live process (another process, or a
 * worker thread of this one, saving the same path right now) is left alone, as is anything that is not a regular
 * file or does not match the pattern exactly. (A folder shared between machines could hold a live temporary of a
 * process on another machine whose pid is free here; saving one path from two machines at once is not supported.)
 */
function removeStrayTemporaries(dir: string, name: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  const prefix = `.${name}.`;
  for (const f of names) {
    if (!f.startsWith(prefix) || !f.endsWith('.tmp')) continue;
    const m = /^(\d{1,10})\.[0-9a-f]{8}\.tmp$/.exec(f.slice(prefix.length));
    if (m === null) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || isAlive(pid)) continue;
    try {
      if (lstatSync(join(dir, f)).isFile()) unlinkSync(join(dir, f));
    } catch {
      // gone already, or not ours to remove: the save goes on
    }
  }
}

function isAlive(pid: number): boolean {
  if (pid <= 0) return true; // never signal a process group
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function writeAll(fd: number, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += writeSync(fd, b, off, b.length - off);
}

/** Flushes the folder entry of a rename to disk (POSIX); folders cannot be opened for that on Windows. */
function syncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fsyncSync(fd);
  } catch {
    // some file systems refuse fsync on a folder; the rename itself is still atomic
  } finally {
    closeSync(fd);
  }
}

export interface SafetensorsFile {
  /** The tensors in file order (of their data offsets), owned by the caller. */
  tensors: Map<string, Tensor>;
  /** The "__metadata__" map ({} when absent). */
  metadata: Record<string, string>;
}

interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

/** Reads and validates a safetensors file. A bad file is an Error that names it and says what is wrong. */
export function readSafetensors(path: string): SafetensorsFile {
  checkHost();
  is.string(path, 'path');
  const bad = (what: string): Error => new TorchError(`${path} is not a valid safetensors file: ${what}`, 'BAD_FILE');
  // a regular file only (a FIFO would hang the open, /dev/zero never ends); fstat's size bounds every read
  const { fd, size } = openRegular(path, 'safetensors');
  const tensors = new Map<string, Tensor>();
  try {
    if (size < 8) throw bad(`the file has ${size} bytes, fewer than the 8 of the header length`);
    const prefix = Buffer.alloc(8);
    readExactly(fd, prefix, 0, bad);
    const n = prefix.readBigUInt64LE(0);
    if (n > BigInt(size - 8))
      throw bad(`the header length ${n} goes beyond the end of the file (${size} bytes): truncated or not safetensors`);
    if (n > BigInt(MAX_HEADER)) throw bad(`the header length ${n} exceeds the ${MAX_HEADER}-byte limit`);
    const headLen = Number(n);
    const head = Buffer.alloc(headLen);
    readExactly(fd, head, 8, bad);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(head);
    } catch {
      throw bad('the header is not UTF-8');
    }
    if (!text.startsWith('{')) throw bad('the header does not start with a JSON object');
    // Count the entries before JSON.parse: a 59 MB header of a million empty tensors took 4.5 s and 370 MB to parse,
    // the scan 0.4 s and nothing. (__metadata__ is the one entry that is not a tensor.)
    if (topLevelEntries(text, MAX_TENSORS + 2) > MAX_TENSORS + 1)
      throw bad(`the header lists more than ${MAX_TENSORS} tensors (the limit of this reader)`);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw bad(`the header is not valid JSON (${(err as Error).message})`);
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
      throw bad('the header is not a JSON object');
    const dataStart = 8 + headLen;
    const dataLen = size - dataStart;
    const metadata: Record<string, string> = {};
    const entries: Entry[] = [];
    for (const [name, info] of Object.entries(parsed as Record<string, unknown>)) {
      if (name === '__metadata__') {
        if (info === null || typeof info !== 'object' || Array.isArray(info))
          throw bad('__metadata__ is not an object of strings');
        for (const [k, v] of Object.entries(info)) {
          if (typeof v !== 'string') throw bad(`__metadata__.${k} is not a string`);
          Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
        }
        continue;
      }
      if (entries.length >= MAX_TENSORS)
        throw bad(`the header lists more than ${MAX_TENSORS} tensors (the limit of this reader)`);
      entries.push(entry(name, info, dataLen, bad));
    }
    // The data must be covered exactly: no overlaps, no holes, nothing after the last tensor.
    const sorted = entries.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
    let pos = 0;
    for (const e of sorted) {
      if (e.begin < pos)
        throw bad(
          `tensor '${e.name}' (bytes ${e.begin} to ${e.end}) overlaps the tensor before it (which ends at ${pos})`,
        );
      if (e.begin > pos)
        throw bad(`bytes ${pos} to ${e.begin} of the data belong to no tensor (a hole before '${e.name}')`);
      pos = e.end;
    }
    if (pos !== dataLen)
      throw bad(
        `the tensors cover ${pos} bytes of data but the file holds ${dataLen} after the header${pos > dataLen ? '' : ' (trailing bytes)'}`,
      );
    for (const e of sorted) {
      const bytes = Buffer.alloc(e.end - e.begin);
      readExactly(fd, bytes, dataStart + e.begin, bad);
      if (e.dtype === 'bool') {
        const i = bytes.findIndex((v) => v > 1);
        if (i >= 0) throw bad(`bool tensor '${e.name}' holds the byte ${bytes[i]} (only 0 and 1 are booleans)`);
      }
      tensors.set(e.name, wrap(native.fromBuffer(bytes, e.shape, dtypeCode(e.dtype))));
    }
    return { tensors, metadata };
  } catch (err) {
    for (const t of tensors.values()) t.dispose();
    throw err;
  } finally {
    closeSync(fd);
  }
}

function entry(name: string, info: unknown, dataLen: number, bad: (what: string) => Error): Entry {
  if (info === null || typeof info !== 'object' || Array.isArray(info))
    throw bad(`the entry of tensor '${name}' is not an object`);
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== 'string') throw bad(`tensor '${name}' has no dtype`);
  const dt = Object.hasOwn(FROM_FILE, dtype) ? FROM_FILE[dtype] : undefined;
  if (dt === undefined)
    throw bad(
      `tensor '${name}' has dtype '${dtype}', which tensornormal does not read (it reads ${Object.keys(FROM_FILE).join(', ')})`,
    );
  const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
  if (!Array.isArray(shape) || !shape.every(isCount))
    throw bad(`tensor '${name}' has shape ${brief(shape)}, not an array of non-negative integers`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount))
    throw bad(`tensor '${name}' has data_offsets ${brief(offsets)}, not [begin, end]`);
  const [begin, end] = offsets as [number, number];
  if (begin > end || end > dataLen)
    throw bad(`tensor '${name}' has data_offsets [${begin}, ${end}] outside the ${dataLen} bytes of data`);
  // An empty tensor needs no bytes whatever its other dimensions, but libtorch still multiplies them out.
  const spread = (shape as number[]).reduce((a, b) => a * Math.max(b, 1), 1);
  if (!Number.isSafeInteger(spread))
    throw bad(`tensor '${name}' has shape [${shape.join(', ')}], whose dimensions multiply past 2^53`);
  const numel = (shape as number[]).reduce((a, b) => a * b, 1);
  const need = numel * ITEMSIZE[dt];
  if (!Number.isSafeInteger(need) || need !== end - begin)
    throw bad(`tensor '${name}' has ${end - begin} bytes of data but ${dtype} [${shape.join(', ')}] needs ${need}`);
  return { name, dtype: dt, shape: shape as number[], begin, end };
}

/**
 * A short description of a JSON value for a message, one level deep: a header's value may nest 100,000 levels
 * (JSON.stringify of it overflows the stack) or hold a string of megabytes.
 */
export function brief(v: unknown): string {
  const one = (x: unknown): string => {
    if (Array.isArray(x)) return x.length === 0 ? '[]' : '[...]';
    if (x !== null && typeof x === 'object') return '{...}';
    const s = typeof x === 'string' ? JSON.stringify(x.length > 40 ? `${x.slice(0, 40)}...` : x) : String(x);
    return s;
  };
  if (Array.isArray(v))
    return `[${v.slice(0, 8).map(one).join(', ')}${v.length > 8 ? `, ... (${v.length} items)` : ''}]`;
  return one(v);
}

/** How many members the JSON object `text` has at its top level (commas at depth 1, plus one), counting up to `stop`. */
function topLevelEntries(text: string, stop: number): number {
  let depth = 0;
  let inString = false;
  let n = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    else if (c === 0x2c && depth === 1 && ++n >= stop) return n;
  }
  return n;
}

function readExactly(fd: number, buf: Uint8Array, position: number, bad: (what: string) => Error): void {
  let off = 0;
  while (off < buf.length) {
    const n = readSync(fd, buf, off, buf.length - off, position + off);
    if (n === 0) throw bad('the file ended while it was read (truncated while reading?)');
    off += n;
  }
}
