/**
 * Reads a state dict that Python wrote with `torch.save(model.state_dict(), path)` (.pt / .pth, the zip format of
 * PyTorch 1.6 and later) without running anything from the file, and with every allocation bounded, so that a file
 * from a stranger is either read exactly as PyTorch reads it or refused with a TorchError (code 'BAD_FILE') that
 * names it.
 *
 * A pickle is a program for a stack machine whose GLOBAL opcode imports any Python callable and REDUCE calls it:
 * loading an untrusted pickle in Python can run arbitrary code. This reader implements the opcodes a state dict
 * uses and resolves GLOBAL against a fixed list only (collections.OrderedDict, torch._utils._rebuild_tensor_v2 and
 * _rebuild_parameter, the torch.*Storage types); anything else is an error naming the file and the global.
 *
 * Bounds (see PickleReadOptions): the zip's central directory is read from the end of the file, and an entry is read
 * (inflated, if deflated) only when it is needed, to exactly the size its directory record declares; the pickle is
 * at most `maxPickleBytes`, runs at most one opcode per byte and makes at most MAX_PICKLE_VALUES values; the storages the tensors use are summed before any is read, each is read once however many tensors use it
 * (the tensors are views of it, as in PyTorch), and together they may take at most `maxBytes`.
 *
 * What PyTorch's reader (caffe2/serialize/inline_container.cc over miniz, torch/serialization.py) decides, this one
 * decides the same way: the first entry of the central directory names the archive's folder and every entry must be
 * in it (two roots are refused); a `version` record from 1 to 10 is required; records are looked up as miniz does (a
 * case-insensitive binary search of the names, heap-sorted), so of two entries with one name the same one is read;
 * a tensor's storage offset must be a non-negative integer, its sizes non-negative integers and its extent inside its
 * storage (PyTorch's set_ refuses to grow a loaded storage). Stricter than PyTorch: a storage record smaller than
 * numel x itemsize is refused (PyTorch trusts numel and reads past the record), a bool storage must hold 0s and 1s,
 * and tensors must be contiguous (the layout of every tensor of an nn.Module's state dict).
 */
import { closeSync, readSync } from 'node:fs';
import { totalmem } from 'node:os';
import { inflateRawSync } from 'node:zlib';
import { native } from './native.js';
import { Tensor, wrap } from './tensor.js';
import { dtypeCode, type DType } from './dtype.js';
import { openRegular } from './fsutil.js';
import { TorchError, is } from './errors.js';
import { brief } from './serialize.js';

/** Storage types tensornormal reads tensors of: dtype and bytes per element. */
const STORAGE_DTYPES: Record<string, [DType, number]> = {
  FloatStorage: ['float32', 4],
  DoubleStorage: ['float64', 8],
  HalfStorage: ['float16', 2],
  BFloat16Storage: ['bfloat16', 2],
  LongStorage: ['int64', 8],
  IntStorage: ['int32', 4],
  ShortStorage: ['int16', 2],
  CharStorage: ['int8', 1],
  ByteStorage: ['uint8', 1],
  BoolStorage: ['bool', 1],
};

/** Other storage types a TorchScript archive may hold (checked for extents, not read): bytes per element. */
const OTHER_STORAGES: Record<string, number> = {
  ComplexFloatStorage: 8,
  ComplexDoubleStorage: 16,
  QInt8Storage: 1,
  QUInt8Storage: 1,
  QInt32Storage: 4,
  QUInt4x2Storage: 1,
  QUInt2x4Storage: 1,
};
/** How deep a pickle's values may nest: 1,000 levels (a module tree's state nests a few levels per submodule). */
export const MAX_PICKLE_DEPTH = 1000;

/**
 * The most values a pickle may make (every push onto its stack and every memo entry counts; a value a container
 * holds was pushed first): 16M. A state dict of 100,000 tensors makes about 2.5M; 16M bound the reader's memory to a
 * few hundred MB whatever the pickle does (180M NONE opcodes, 175 KB deflated, used to kill the process).
 */
export const MAX_PICKLE_VALUES = 16_000_000;
/** The most entries a zip's central directory may list: 1M (an archive of 100,000 tensors has ~100,000). */
export const MAX_ZIP_ENTRIES = 1_000_000;
/** The default bound on data.pkl: 256 MiB (the pickle of a state dict of 100,000 tensors is ~10 MB). */
export const DEFAULT_MAX_PICKLE_BYTES = 256 * 2 ** 20;
/** The default bound on the storages read from one file: a quarter of the machine's memory. */
export function defaultMaxBytes(): number {
  return Math.floor(totalmem() / 4);
}

/** Bounds on reading a pickled PyTorch file (`loadPickledStateDict`, `.pt`/`.pth`); see its members. */
export interface PickleReadOptions {
  /**
   * The most bytes the tensors' storages may take together (each storage counted once); a file that needs more is
   * refused before any is read. Default: a quarter of the machine's memory (os.totalmem() / 4).
   */
  maxBytes?: number;
  /** The most bytes the pickle (data.pkl, inflated) may have. Default 256 MiB. */
  maxPickleBytes?: number;
}

/** The most the file's own reads may take: the zip's central directory (46 bytes an entry plus the names). */
const MAX_CENTRAL_DIRECTORY = MAX_ZIP_ENTRIES * 128;

export type Bad = (what: string) => TorchError;

export interface ZipEntry {
  name: string;
  nameBytes: Buffer;
  method: number;
  csize: number;
  usize: number;
  local: number;
}

/** A zip archive read through its file descriptor: the central directory up front, entries when asked for. */
export class Zip {
  readonly entries: ZipEntry[] = [];
  private sorted: number[] = [];

  constructor(
    private readonly fd: number,
    private readonly size: number,
    private readonly bad: Bad,
  ) {
    this.readDirectory();
    this.sortLikeMiniz();
  }

  private read(pos: number, n: number): Buffer {
    if (!(pos >= 0 && n >= 0 && pos + n <= this.size)) throw this.bad('a zip record points past the end of the file');
    const buf = Buffer.allocUnsafe(n);
    let off = 0;
    while (off < n) {
      const k = readSync(this.fd, buf, off, n - off, pos + off);
      if (k === 0) throw this.bad('the file ended while it was read (truncated while reading?)');
      off += k;
    }
    return buf;
  }

  private readDirectory(): void {
    const { size, bad } = this;
    if (size < 22)
      throw bad('no zip end-of-central-directory record (not a zip archive, as torch.save and torch.jit.save write)');
    const tailLen = Math.min(size, 22 + 65535 + 20);
    const tail = this.read(size - tailLen, tailLen);
    let e = -1;
    for (let i = tail.length - 22; i >= 0; i--)
      if (tail.readUInt32LE(i) === 0x06054b50) {
        e = i;
        break;
      }
    if (e < 0)
      throw bad('no zip end-of-central-directory record (not a zip archive, as torch.save and torch.jit.save write)');
    let count = tail.readUInt16LE(e + 10);
    let cdSize = tail.readUInt32LE(e + 12);
    let cdOffset = tail.readUInt32LE(e + 16);
    if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
      // zip64: a locator just before the record points at the zip64 end-of-central-directory record
      if (e < 20 || tail.readUInt32LE(e - 20) !== 0x07064b50) throw bad('a zip64 archive without its locator');
      const at = Number(tail.readBigUInt64LE(e - 20 + 8));
      const z = this.read(at, 56);
      if (z.readUInt32LE(0) !== 0x06064b50) throw bad('a broken zip64 end-of-central-directory record');
      count = safe(z.readBigUInt64LE(32), bad);
      cdSize = safe(z.readBigUInt64LE(40), bad);
      cdOffset = safe(z.readBigUInt64LE(48), bad);
    }
    if (count === 0) throw bad('the zip archive holds no files');
    if (count > MAX_ZIP_ENTRIES) throw bad(`the zip archive lists ${count} entries (at most ${MAX_ZIP_ENTRIES})`);
    if (cdSize > MAX_CENTRAL_DIRECTORY || cdSize < count * 46)
      throw bad(`a zip central directory of ${cdSize} bytes for ${count} entries`);
    const cd = this.read(cdOffset, cdSize);
    let p = 0;
    for (let k = 0; k < count; k++) {
      if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw bad('a broken zip central directory');
      const method = cd.readUInt16LE(p + 10);
      let csize = cd.readUInt32LE(p + 20);
      let usize = cd.readUInt32LE(p + 24);
      const nameLen = cd.readUInt16LE(p + 28),
        extraLen = cd.readUInt16LE(p + 30),
        commentLen = cd.readUInt16LE(p + 32);
      let local = cd.readUInt32LE(p + 42);
      if (p + 46 + nameLen + extraLen + commentLen > cd.length) throw bad('a broken zip central directory');
      const nameBytes = cd.subarray(p + 46, p + 46 + nameLen);
      const name = nameBytes.toString('utf8');
      // zip64 extended information: the 64-bit values of the fields that hold 0xffffffff, in this order
      let x = p + 46 + nameLen;
      const xEnd = x + extraLen;
      while (x + 4 <= xEnd) {
        const id = cd.readUInt16LE(x),
          len = cd.readUInt16LE(x + 2);
        if (x + 4 + len > xEnd) break;
        if (id === 0x0001) {
          let q = x + 4;
          const next = (): number => {
            if (q + 8 > x + 4 + len) throw bad(`a broken zip64 field in entry '${name}'`);
            const v = safe(cd.readBigUInt64LE(q), bad);
            q += 8;
            return v;
          };
          if (usize === 0xffffffff) usize = next();
          if (csize === 0xffffffff) csize = next();
          if (local === 0xffffffff) local = next();
        }
        x += 4 + len;
      }
      if (local + 30 + csize > this.size) throw bad(`zip entry '${name}' goes past the end of the file (truncated)`);
      this.entries.push({ name, nameBytes, method, csize, usize, local });
      p += 46 + nameLen + extraLen + commentLen;
    }
  }

  /** miniz's order of the names: a heap sort, ASCII case-insensitive, so that lookups pick the entry PyTorch picks. */
  private sortLikeMiniz(): void {
    const idx = this.entries.map((_, i) => i);
    const names = this.entries.map((e) => lower(e.nameBytes));
    const less = (a: number, b: number): boolean => compare(names[a]!, names[b]!) < 0;
    const n = idx.length;
    const sift = (root: number, end: number): void => {
      for (;;) {
        let child = 2 * root + 1;
        if (child >= end) break;
        if (child + 1 < end && less(idx[child]!, idx[child + 1]!)) child++;
        if (!less(idx[root]!, idx[child]!)) break;
        [idx[root], idx[child]] = [idx[child]!, idx[root]!];
        root = child;
      }
    };
    for (let start = (n - 2) >> 1; start >= 0; start--) sift(start, n);
    for (let end = n - 1; end > 0; end--) {
      [idx[end], idx[0]] = [idx[0]!, idx[end]!];
      sift(0, end);
    }
    this.sorted = idx;
    this.lowered = names;
  }
  private lowered: Buffer[] = [];

  /** The entry miniz's mz_zip_reader_locate_file finds for a name (a binary search over the sorted names). */
  find(name: string): ZipEntry | undefined {
    const want = lower(Buffer.from(name, 'utf8'));
    let l = 0,
      h = this.sorted.length - 1;
    while (l <= h) {
      const m = l + ((h - l) >> 1);
      const k = this.sorted[m]!;
      const c = compare(this.lowered[k]!, want);
      if (c === 0) return this.entries[k];
      if (c < 0) l = m + 1;
      else h = m - 1;
    }
    return undefined;
  }

  /** An entry's bytes, exactly the size its directory record declares (inflated to no more than that). */
  data(e: ZipEntry): Buffer {
    const head = this.read(e.local, 30);
    if (head.readUInt32LE(0) !== 0x04034b50) throw this.bad(`a broken zip entry '${e.name}'`);
    const start = e.local + 30 + head.readUInt16LE(26) + head.readUInt16LE(28);
    if (start + e.csize > this.size) throw this.bad(`zip entry '${e.name}' goes past the end of the file (truncated)`);
    if (e.method === 0) {
      if (e.csize !== e.usize)
        throw this.bad(`stored zip entry '${e.name}' has ${e.csize} bytes but declares ${e.usize}`);
      return this.read(start, e.csize);
    }
    if (e.method !== 8) throw this.bad(`zip entry '${e.name}' uses compression method ${e.method}`);
    const raw = this.read(start, e.csize);
    let out: Buffer;
    try {
      out = inflateRawSync(raw, { maxOutputLength: Math.max(1, e.usize) });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw this.bad(
        code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError
          ? `zip entry '${e.name}' inflates to more than the ${e.usize} bytes it declares`
          : `zip entry '${e.name}' is corrupt deflate data (${(err as Error).message})`,
      );
    }
    if (out.length !== e.usize)
      throw this.bad(`zip entry '${e.name}' inflates to ${out.length} bytes, not the ${e.usize} it declares`);
    return out;
  }
}

function safe(v: bigint, bad: Bad): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad('a zip64 size or offset past 2^53');
  return Number(v);
}
function lower(b: Buffer): Buffer {
  const out = Buffer.from(b);
  for (let i = 0; i < out.length; i++) if (out[i]! >= 0x41 && out[i]! <= 0x5a) out[i]! += 0x20;
  return out;
}
/** miniz's comparison: bytewise over the common length, then the shorter first. */
function compare(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}
export class StorageRef {
  constructor(
    /** null for a storage type tensornormal does not read (complex, quantized): its extents are still checked */
    readonly dtype: DType | null,
    readonly itemsize: number,
    readonly key: string,
    readonly numel: number,
  ) {}
}
/** A tensor the pickle describes, made once every storage is known to fit. */
export class TensorSpec {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly size: number[],
    readonly stride: number[],
  ) {}
}
/** In a TorchScript pickle: an object of a TorchScript class (NEWOBJ), its state set by BUILD. Never run. */
export class ScriptObject {
  state: unknown = undefined;
  constructor(readonly cls: string) {}
}
/** In a TorchScript pickle: the call of a global, recorded, not made (REDUCE). */
export class Call {
  constructor(
    readonly fn: string,
    readonly args: unknown[],
  ) {}
}
const MARK = Symbol('mark');

/**
 * The state dict in a torch.save file, name -> Tensor (new tensors, the caller's), under PyTorch's names; `loadWeights`
 * maps them onto a model. Tensors that share a storage in the file share it here (views, as in PyTorch). A file
 * this reader refuses is a TorchError with code 'BAD_FILE' whose message starts with the path.
 */
export function loadPickledStateDict(path: string, options: PickleReadOptions = {}): Map<string, Tensor> {
  is.string(path, 'path');
  const { maxBytes = defaultMaxBytes(), maxPickleBytes = DEFAULT_MAX_PICKLE_BYTES } = is.options(options);
  is.nonNegativeInteger(maxBytes, 'maxBytes');
  is.nonNegativeInteger(maxPickleBytes, 'maxPickleBytes');
  const bad: Bad = (what) =>
    new TorchError(`${path} is not a torch.save state dict tensornormal reads: ${what}`, 'BAD_FILE');
  const { fd, size } = openRegular(path, 'loadPickledStateDict');
  try {
    return read(new Zip(fd, size, bad), bad, maxBytes, maxPickleBytes);
  } catch (err) {
    if (err instanceof TorchError && err.code === 'BAD_FILE') throw err;
    // anything else a hostile file provokes (an allocation refused, say) is still an error about the file
    const e = err as Error;
    throw Object.assign(bad(`${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`), { cause: err });
  } finally {
    closeSync(fd);
  }
}

/**
 * The archive's folder ('name/'), checked as PyTorch's PyTorchStreamReader checks it (inline_container.cc): the
 * first entry's folder is the archive's and every entry must be in it; a version record from 1 to 10 is required.
 */
export function archiveRoot(zip: Zip, bad: Bad): string {
  const first = zip.entries[0]!.name;
  const slash = first.indexOf('/');
  if (slash < 0) throw bad(`file in archive is not in a subdirectory: ${first}`);
  const root = first.slice(0, slash + 1);
  for (const e of zip.entries)
    if (!e.name.startsWith(root)) throw bad(`file in archive is not in a subdirectory ${root}: ${e.name}`);
  const version = zip.find(root + '.data/version') ?? zip.find(root + 'version');
  if (version === undefined) throw bad('the archive has no version record');
  if (version.usize > 64) throw bad('the version record is not a number');
  const vText = zip.data(version).toString('latin1').trim();
  if (!/^\d+$/.test(vText)) throw bad(`the version record '${vText.slice(0, 20)}' is not a number`);
  const v = Number(vText);
  if (v < 1 || v > 10) throw bad(`file format version ${v} (PyTorch reads versions 1 to 10)`);
  return root;
}

function read(zip: Zip, bad: Bad, maxBytes: number, maxPickleBytes: number): Map<string, Tensor> {
  const root = archiveRoot(zip, bad);
  const record = (name: string): ZipEntry | undefined => zip.find(root + name);
  if (record('constants.pkl') !== undefined)
    throw bad('it is a TorchScript archive (torch.jit.save); load it with jit.load or jit.loadWeights');
  const byteorder = record('byteorder');
  if (byteorder !== undefined && byteorder.usize <= 16 && zip.data(byteorder).toString('latin1') !== 'little')
    throw bad('its tensors are stored big-endian');
  const pkl = record('data.pkl');
  if (pkl === undefined) throw bad('no data.pkl in the archive');
  if (pkl.usize > maxPickleBytes)
    throw bad(`data.pkl has ${pkl.usize} bytes, more than maxPickleBytes (${maxPickleBytes})`);
  const result = unpickle(zip.data(pkl), bad);
  if (!(result instanceof Map)) throw bad('the pickle holds no dict');
  const specs = new Map<string, TensorSpec>();
  for (const [k, v] of result) {
    if (typeof k !== 'string' || !(v instanceof TensorSpec)) throw bad('the dict is not name -> tensor');
    specs.set(k, v);
  }
  return materialize(zip, root, specs, bad, maxBytes);
}

/**
 * Tensors for the specs, name -> Tensor: every storage once (the tensors are views of it), all of them within
 * maxBytes, summed before any is read. Only contiguous tensors of dtypes tensornormal has are read.
 */
export function materialize(
  zip: Zip,
  root: string,
  specs: Map<string, TensorSpec>,
  bad: Bad,
  maxBytes: number,
): Map<string, Tensor> {
  const record = (name: string): ZipEntry | undefined => zip.find(root + name);
  for (const t of specs.values()) {
    if (t.storage.dtype === null) throw bad(`storage '${t.storage.key}' is of a type tensornormal does not read`);
    if (!contiguous(t))
      throw bad(
        `a tensor of size [${t.size.join(', ')}] with strides [${t.stride.join(', ')}] (only contiguous tensors are read)`,
      );
  }
  // every storage once, all of them within the bound, before any is read
  const storages = new Map<string, { ref: StorageRef; entry: ZipEntry }>();
  let total = 0;
  for (const { storage: ref } of specs.values()) {
    const had = storages.get(ref.key);
    if (had !== undefined) {
      if (had.ref.dtype !== ref.dtype || had.ref.numel !== ref.numel)
        throw bad(`storage '${ref.key}' is described twice, differently`);
      continue;
    }
    const entry = record(`data/${ref.key}`);
    if (entry === undefined) throw bad(`storage '${ref.key}' is missing from the archive`);
    // PyTorch takes the first numel x itemsize bytes of the record (and reads past a shorter one)
    const nbytes = ref.numel * ref.itemsize;
    if (entry.usize < nbytes)
      throw bad(`storage '${ref.key}' has ${entry.usize} bytes, fewer than ${ref.numel} x ${ref.itemsize}`);
    total += entry.usize;
    if (total > maxBytes)
      throw bad(`its tensors need more than ${maxBytes} bytes (maxBytes; raise it to read this file)`);
    storages.set(ref.key, { ref, entry });
  }
  const made = new Map<string, Tensor>();
  const out = new Map<string, Tensor>();
  try {
    for (const [name, spec] of specs) {
      let s = made.get(spec.storage.key);
      if (s === undefined) {
        const { ref, entry } = storages.get(spec.storage.key)!;
        const bytes = zip.data(entry).subarray(0, ref.numel * ref.itemsize);
        if (ref.dtype === 'bool') {
          const i = bytes.findIndex((b) => b > 1);
          if (i >= 0) throw bad(`bool storage '${ref.key}' holds the byte ${bytes[i]} (only 0 and 1 are booleans)`);
        }
        s = wrap(native.fromBuffer(bytes, [ref.numel], dtypeCode(ref.dtype!)));
        made.set(ref.key, s);
      }
      const n = spec.size.reduce((a, b) => a * b, 1);
      const piece = wrap(native.narrow(s._h, 0, n === 0 ? 0 : spec.offset, n));
      try {
        out.set(name, wrap(native.view(piece._h, spec.size)));
      } finally {
        piece.dispose();
      }
    }
    return out;
  } catch (err) {
    for (const t of out.values()) t.dispose();
    throw err;
  } finally {
    for (const t of made.values()) t.dispose(); // the views keep their storage
  }
}

const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * _rebuild_tensor_v2's checks, as PyTorch's set_ makes them on a storage that cannot grow: a non-negative integer
 * offset, non-negative integer sizes and strides, the extent inside the storage. (libtorch's TorchScript reader makes
 * none of them: a size past the storage reads and writes out of bounds.)
 */
function rebuild(a: unknown[], bad: Bad): TensorSpec {
  const [storage, offset, size, stride] = a;
  if (!(storage instanceof StorageRef)) throw bad('_rebuild_tensor_v2 without a storage');
  if (typeof offset !== 'number' || !Number.isInteger(offset))
    throw bad(`a tensor's storage offset ${brief(offset)} is not an integer`);
  if (offset < 0) throw bad(`a tensor's storage offset ${offset} is negative`);
  if (!Array.isArray(size) || !Array.isArray(stride) || size.length !== stride.length)
    throw bad("a tensor's size and stride are not two tuples of one length");
  if (size.length > 64) throw bad(`a tensor of ${size.length} dimensions (at most 64)`);
  if (!size.every(isCount)) throw bad(`a tensor's size ${brief(size)} is not non-negative integers`);
  if (!stride.every(isCount)) throw bad(`a tensor's stride ${brief(stride)} is not non-negative integers`);
  const dims = size as number[],
    strides = stride as number[];
  let n = 1;
  for (const d of dims) n *= d;
  if (n > 0) {
    let last = offset;
    for (let i = 0; i < dims.length; i++) last += (dims[i]! - 1) * strides[i]!;
    if (!Number.isSafeInteger(last) || last + 1 > storage.numel)
      throw bad(
        `a tensor of size [${dims.join(', ')}] at offset ${offset} goes past its storage of ${storage.numel} elements`,
      );
  }
  return new TensorSpec(storage, offset, dims, strides);
}

/** Whether a tensor's elements are its storage's, in order, from its offset. */
function contiguous(t: TensorSpec): boolean {
  let expect = 1;
  for (let j = t.size.length - 1; j >= 0; j--) {
    if (t.size[j] === 0) return true;
    if (t.size[j] !== 1 && t.stride[j] !== expect) return false;
    expect *= t.size[j]!;
  }
  return true;
}

/**
 * Runs a pickle as a data structure, executing nothing. 'state-dict' (torch.save of a state dict): GLOBAL resolves
 * against a fixed list and REDUCE calls only OrderedDict and the tensor rebuilders. 'torchscript' (the pickles of a
 * TorchScript archive): any GLOBAL is a name, NEWOBJ makes a ScriptObject whose state BUILD sets, REDUCE of
 * _rebuild_tensor_v2 (and _rebuild_qtensor) checks and records a tensor, any other REDUCE is recorded as a Call. Both
 * count the values made (MAX_PICKLE_VALUES) and how deep they nest (MAX_PICKLE_DEPTH).
 */
export function unpickle(
  data: Buffer,
  bad: Bad,
  mode: 'state-dict' | 'torchscript' = 'state-dict',
  /** every tensor the pickle describes is added here */
  tensors: TensorSpec[] = [],
): unknown {
  const script = mode === 'torchscript';
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  const depths = new WeakMap<object, number>();
  const depthOf = (v: unknown): number =>
    v !== null && (typeof v === 'object' || typeof v === 'function') ? (depths.get(v as object) ?? 0) : 0;
  /** `into` now holds `child`: its depth grows to one more than the child's. */
  const holds = (into: object, child: unknown): void => {
    if (child === into) throw bad('a container that holds itself');
    const d = depthOf(child) + 1;
    if (d > MAX_PICKLE_DEPTH) throw bad(`the pickle nests values more than ${MAX_PICKLE_DEPTH} levels deep`);
    if (d > (depths.get(into) ?? 0)) depths.set(into, d);
  };
  const made = <T extends object>(into: T, items: unknown[]): T => {
    for (const v of items) holds(into, v);
    return into;
  };
  let i = 0;
  let values = 0;
  const room = (): void => {
    if (++values > MAX_PICKLE_VALUES) throw bad(`the pickle makes more than ${MAX_PICKLE_VALUES} values`);
  };
  const push = (v: unknown): void => {
    stack.push(v);
    room();
  };
  const pop = (): unknown => {
    if (stack.length === 0 || stack[stack.length - 1] === MARK) throw bad('the pickle pops from an empty stack');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) throw bad('the pickle reads an empty stack');
    return stack[stack.length - 1];
  };
  const need = (n: number): void => {
    if (!(i + n <= data.length)) throw bad('the pickle ends in the middle of an opcode (truncated)');
  };
  const u8 = (): number => {
    need(1);
    return data[i++]!;
  };
  const u32 = (): number => {
    need(4);
    const v = data.readUInt32LE(i);
    i += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = data.readBigUInt64LE(i);
    i += 8;
    return v > BigInt(data.length) ? data.length + 1 : Number(v);
  };
  const str = (n: number, enc: 'utf8' | 'latin1' = 'utf8'): string => {
    need(n);
    const s = data.toString(enc, i, i + n);
    i += n;
    return s;
  };
  const line = (): string => {
    const end = data.indexOf(0x0a, i);
    if (end < 0 || end - i > 1024) throw bad('a GLOBAL without a newline');
    const s = data.toString('latin1', i, end);
    i = end + 1;
    return s;
  };
  const popMark = (): unknown[] => {
    const k = stack.lastIndexOf(MARK);
    if (k < 0) throw bad('a pickle without its MARK');
    const items = stack.splice(k + 1);
    stack.pop();
    return items;
  };
  const memoPut = (k: number): void => {
    memo.set(k, top());
    room();
  };
  const memoGet = (k: number): unknown => {
    if (!memo.has(k)) throw bad(`the pickle reads memo entry ${k}, which it never wrote`);
    return memo.get(k);
  };
  const call = (f: unknown, args: unknown): unknown => {
    if (!(f instanceof Global)) throw bad('REDUCE of something that is not a global');
    if (!Array.isArray(args)) throw bad('REDUCE with arguments that are not a tuple');
    const key = `${f.module}.${f.name}`;
    if (key === 'torch._utils._rebuild_tensor_v2' || (script && key === 'torch._utils._rebuild_qtensor')) {
      const t = rebuild(args, bad);
      tensors.push(t);
      return t;
    }
    if (script) return made(new Call(key, args), args);
    if (key === 'collections.OrderedDict') return new Map();
    if (key === 'torch._utils._rebuild_parameter') {
      if (!(args[0] instanceof TensorSpec)) throw bad('_rebuild_parameter of something that is not a tensor');
      return args[0];
    }
    throw bad(`the global ${key} is not allowed (nothing in the file is executed)`);
  };
  const storageType = (v: unknown): [DType | null, number] | undefined => {
    if (!(v instanceof Global) || v.module !== 'torch') return undefined;
    if (Object.hasOwn(STORAGE_DTYPES, v.name)) return STORAGE_DTYPES[v.name];
    if (script && Object.hasOwn(OTHER_STORAGES, v.name)) return [null, OTHER_STORAGES[v.name]!];
    return undefined;
  };
  // every opcode takes at least one byte, so the pickle's size bounds the opcodes run
  while (i < data.length) {
    const op = data[i++]!;
    switch (op) {
      case 0x80: // PROTO
        u8();
        break;
      case 0x95: // FRAME
        need(8);
        i += 8;
        break;
      case 0x2e: // STOP
        return pop();
      case 0x63: {
        // GLOBAL
        const module = line(),
          name = line();
        const key = `${module}.${name}`;
        if (
          script ||
          (module === 'torch' && Object.hasOwn(STORAGE_DTYPES, name)) ||
          ['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter'].includes(
            key,
          )
        )
          push(new Global(module, name));
        else throw bad(`the global ${key} is not allowed (nothing in the file is executed)`);
        break;
      }
      case 0x51: {
        // BINPERSID: ('storage', storage_type, key, location, numel)
        const pid = pop() as unknown[];
        const type = Array.isArray(pid) ? storageType(pid[1]) : undefined;
        if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage' || type === undefined)
          throw bad('a persistent id that is not a tensor storage');
        if (typeof pid[2] !== 'string') throw bad('a storage whose key is not a string');
        if (!isCount(pid[4])) throw bad(`storage '${pid[2]}' has ${brief(pid[4])} elements`);
        const [dtype, itemsize] = type;
        if (!Number.isSafeInteger(pid[4] * itemsize)) throw bad(`storage '${pid[2]}' has ${pid[4]} elements`);
        push(new StorageRef(dtype, itemsize, pid[2], pid[4]));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args), of a TorchScript class (nothing runs: an object waiting for its state)
        const args = pop(),
          cls = pop();
        if (!script || !(cls instanceof Global)) throw bad('NEWOBJ is not used by a state dict');
        push(made(new ScriptObject(`${cls.module}.${cls.name}`), [args]));
        break;
      }
      case 0x28: // MARK
        push(MARK);
        break;
      case 0x29: // EMPTY_TUPLE
      case 0x5d: // EMPTY_LIST
        push([]);
        break;
      case 0x7d: // EMPTY_DICT
        push(new Map());
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88: // NEWTRUE
        push(true);
        break;
      case 0x89: // NEWFALSE
        push(false);
        break;
      case 0x4a: // BININT
        need(4);
        push(data.readInt32LE(i));
        i += 4;
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        need(2);
        push(data.readUInt16LE(i));
        i += 2;
        break;
      case 0x8a: {
        // LONG1
        const n = u8();
        need(n);
        if (n > 8) {
          push(Infinity); // larger than any size or offset: refused where it is used
          i += n;
          break;
        }
        let v = 0n;
        for (let k = n - 1; k >= 0; k--) v = (v << 8n) | BigInt(data[i + k]!);
        if (n > 0 && data[i + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        i += n;
        push(Number.isSafeInteger(Number(v)) ? Number(v) : Infinity);
        break;
      }
      case 0x47: // BINFLOAT
        need(8);
        push(data.readDoubleBE(i));
        i += 8;
        break;
      case 0x58: // BINUNICODE
        push(str(u32()));
        break;
      case 0x8d: // BINUNICODE8
        push(str(u64()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(str(u8()));
        break;
      case 0x55: // SHORT_BINSTRING
        push(str(u8(), 'latin1'));
        break;
      case 0x42: // BINBYTES
        push(str(u32(), 'latin1'));
        break;
      case 0x43: // SHORT_BINBYTES
        push(str(u8(), 'latin1'));
        break;
      case 0x74: {
        // TUPLE
        const items = popMark();
        push(made(items, items));
        break;
      }
      case 0x6c: {
        // LIST
        const items = popMark();
        push(made(items, items));
        break;
      }
      case 0x85: {
        // TUPLE1
        const a = pop();
        push(made([a], [a]));
        break;
      }
      case 0x86: {
        // TUPLE2
        const b = pop(),
          a = pop();
        push(made([a, b], [a, b]));
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop(),
          b = pop(),
          a = pop();
        push(made([a, b, c], [a, b, c]));
        break;
      }
      case 0x71: // BINPUT
        memoPut(u8());
        break;
      case 0x72: // LONG_BINPUT
        memoPut(u32());
        break;
      case 0x94: // MEMOIZE
        memoPut(memo.size);
        break;
      case 0x68: // BINGET
        push(memoGet(u8()));
        break;
      case 0x6a: // LONG_BINGET
        push(memoGet(u32()));
        break;
      case 0x52: {
        // REDUCE
        const args = pop(),
          f = pop();
        push(call(f, args));
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        const d = top();
        if (!(d instanceof Map)) throw bad('SETITEMS on something that is not a dict');
        if (items.length % 2) throw bad('SETITEMS with an odd number of items');
        for (let k = 0; k + 1 < items.length; k += 2) {
          holds(d, items[k]);
          holds(d, items[k + 1]);
          d.set(items[k], items[k + 1]);
        }
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop(),
          k = pop();
        const d = top();
        if (!(d instanceof Map)) throw bad('SETITEM on something that is not a dict');
        holds(d, k);
        holds(d, v);
        d.set(k, v);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        const l = top();
        if (!Array.isArray(l)) throw bad('APPENDS on something that is not a list');
        for (const v of items) {
          holds(l, v);
          l.push(v);
        }
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        const l = top();
        if (!Array.isArray(l)) throw bad('APPEND on something that is not a list');
        holds(l, v);
        l.push(v);
        break;
      }
      case 0x62: {
        // BUILD: a TorchScript object's state; a state dict's (an OrderedDict's _metadata) is not needed
        const state = pop();
        const o = top();
        if (o instanceof ScriptObject) {
          holds(o, state);
          o.state = state;
        }
        break;
      }
      default:
        throw bad(
          `pickle opcode 0x${op.toString(16)} at byte ${i - 1} is not one ${script ? 'TorchScript' : 'a state dict'} uses`,
        );
    }
  }
  throw bad('the pickle ends without STOP');
}
