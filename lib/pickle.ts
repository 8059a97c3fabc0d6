/**
 * Reads a state dict that Python wrote with `torch.save(model.state_dict(), path)` (.pt / .pth, the zip format of
 * PyTorch 1.6 and later) without running anything from the file.
 *
 * A pickle is a program for a stack machine whose GLOBAL opcode imports any Python callable and REDUCE calls it:
 * loading an untrusted pickle in Python can run arbitrary code. This reader implements the opcodes a state dict
 * uses and resolves GLOBAL against a fixed list only (collections.OrderedDict, torch._utils._rebuild_tensor_v2 and
 * _rebuild_parameter, the torch.*Storage types); anything else is an error naming the file and the global.
 * Tensors are rebuilt from the archive's `data/<key>` entries (stored, little-endian) as contiguous tensors.
 */
import { inflateRawSync } from 'node:zlib';
import { native } from './native.js';
import { Tensor, wrap } from './tensor.js';
import { dtypeCode, type DType } from './dtype.js';
import { MAX_INFLATED, readRegular } from './fsutil.js';
import { is } from './errors.js';

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

/** The entries of a zip archive (central directory), stored or deflated. */
function unzip(buf: Buffer, bad: (w: string) => Error): Map<string, Buffer> {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--)
    if (buf.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  if (eocd < 0) throw bad('no zip end-of-central-directory record (not a torch.save zip archive)');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  const out = new Map<string, Buffer>();
  for (let k = 0; k < count; k++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) throw bad('a broken zip central directory');
    const method = buf.readUInt16LE(p + 10);
    const csize = buf.readUInt32LE(p + 20);
    const usize = buf.readUInt32LE(p + 24);
    const nameLen = buf.readUInt16LE(p + 28),
      extraLen = buf.readUInt16LE(p + 30),
      commentLen = buf.readUInt16LE(p + 32);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;
    if (local + 30 > buf.length || buf.readUInt32LE(local) !== 0x04034b50) throw bad(`a broken zip entry '${name}'`);
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28);
    if (start + csize > buf.length) throw bad(`zip entry '${name}' goes past the end of the file (truncated)`);
    const raw = buf.subarray(start, start + csize);
    if (method === 0) out.set(name, raw);
    else if (method === 8)
      out.set(name, inflateRawSync(raw, { maxOutputLength: Math.min(Math.max(1, usize), MAX_INFLATED) }));
    else throw bad(`zip entry '${name}' uses compression method ${method}`);
  }
  return out;
}

class Global {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
}
class StorageRef {
  constructor(
    readonly dtype: DType,
    readonly itemsize: number,
    readonly key: string,
    readonly numel: number,
  ) {}
}
class Rebuilt {
  constructor(readonly value: unknown) {}
}
const MARK = Symbol('mark');

/**
 * The state dict in a torch.save file, name -> Tensor (new tensors, the caller's), under PyTorch's names; `loadWeights`
 * maps them onto a model. Errors name the file.
 */
export function loadPickledStateDict(path: string): Map<string, Tensor> {
  is.string(path, 'path');
  const bad = (what: string): Error => new Error(`${path} is not a torch.save state dict tensornormal reads: ${what}`);
  const file = readRegular(path, 'loadPickledStateDict');
  const entries = unzip(file, bad);
  const pklName = [...entries.keys()].find((n) => n.endsWith('/data.pkl') || n === 'data.pkl');
  if (pklName === undefined) throw bad('no data.pkl in the archive');
  const prefix = pklName.slice(0, pklName.length - 'data.pkl'.length);
  const made: Tensor[] = [];
  try {
    const result = unpickle(entries.get(pklName)!, bad, (ref, offset, size, stride) => {
      const bytes = entries.get(`${prefix}data/${ref.key}`);
      if (bytes === undefined) throw bad(`storage '${ref.key}' is missing from the archive`);
      if (bytes.length !== ref.numel * ref.itemsize)
        throw bad(`storage '${ref.key}' has ${bytes.length} bytes, not ${ref.numel} x ${ref.itemsize}`);
      const n = size.reduce((a, b) => a * b, 1);
      // contiguous (the layout of every tensor a state dict of an nn.Module holds, unless two share a storage)
      let expect = 1;
      const contiguous = size.every((_, i) => {
        const j = size.length - 1 - i;
        const ok = size[j] === 1 || stride[j] === expect;
        expect *= size[j]!;
        return ok;
      });
      if (!contiguous)
        throw bad(
          `a tensor of size [${size.join(', ')}] with strides [${stride.join(', ')}] (only contiguous tensors are read)`,
        );
      if (offset + n > ref.numel)
        throw bad(`a tensor of ${n} elements at offset ${offset} goes past its storage of ${ref.numel}`);
      const view = bytes.subarray(offset * ref.itemsize, (offset + n) * ref.itemsize);
      const t = wrap(native.fromBuffer(new Uint8Array(view), size, dtypeCode(ref.dtype)));
      made.push(t);
      return t;
    });
    if (!(result instanceof Map)) throw bad('the pickle holds no dict');
    const out = new Map<string, Tensor>();
    for (const [k, v] of result) {
      if (typeof k !== 'string' || !(v instanceof Tensor)) throw bad('the dict is not name -> tensor');
      out.set(k, v);
    }
    for (const t of made) if (![...out.values()].includes(t)) t.dispose();
    return out;
  } catch (err) {
    for (const t of made) t.dispose();
    throw err;
  }
}

function unpickle(
  data: Buffer,
  bad: (w: string) => Error,
  tensor: (ref: StorageRef, offset: number, size: number[], stride: number[]) => Tensor,
): unknown {
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let i = 0;
  const u8 = (): number => data[i++]!;
  const u32 = (): number => {
    const v = data.readUInt32LE(i);
    i += 4;
    return v;
  };
  const str = (n: number): string => {
    const s = data.toString('utf8', i, i + n);
    i += n;
    return s;
  };
  const line = (): string => {
    const end = data.indexOf(0x0a, i);
    if (end < 0) throw bad('a GLOBAL without a newline');
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
  const call = (f: unknown, args: unknown): unknown => {
    if (!(f instanceof Global)) throw bad('REDUCE of something that is not an allowed global');
    const a = args as unknown[];
    const key = `${f.module}.${f.name}`;
    if (key === 'collections.OrderedDict') return new Map();
    if (key === 'torch._utils._rebuild_tensor_v2') {
      const [storage, offset, size, stride] = a as [StorageRef, number, number[], number[]];
      if (!(storage instanceof StorageRef)) throw bad('_rebuild_tensor_v2 without a storage');
      return tensor(storage, offset, size, stride);
    }
    if (key === 'torch._utils._rebuild_parameter') return a[0];
    throw bad(`the global ${key} is not allowed (nothing in the file is executed)`);
  };
  while (i < data.length) {
    const op = u8();
    switch (op) {
      case 0x80:
        i++;
        break; // PROTO
      case 0x95:
        i += 8;
        break; // FRAME
      case 0x2e: {
        // STOP
        const v = stack.pop();
        return v instanceof Rebuilt ? v.value : v;
      }
      case 0x63: {
        // GLOBAL
        const module = line(),
          name = line();
        const key = `${module}.${name}`;
        const storage = module === 'torch' ? STORAGE_DTYPES[name] : undefined;
        if (storage) stack.push({ storage });
        else if (
          ['collections.OrderedDict', 'torch._utils._rebuild_tensor_v2', 'torch._utils._rebuild_parameter'].includes(
            key,
          )
        )
          stack.push(new Global(module, name));
        else throw bad(`the global ${key} is not allowed (nothing in the file is executed)`);
        break;
      }
      case 0x51: {
        // BINPERSID: ('storage', storage_type, key, location, numel)
        const pid = stack.pop() as unknown[];
        if (
          !Array.isArray(pid) ||
          pid[0] !== 'storage' ||
          typeof pid[1] !== 'object' ||
          pid[1] === null ||
          !('storage' in (pid[1] as object))
        )
          throw bad('a persistent id that is not a tensor storage');
        const [dtype, itemsize] = (pid[1] as { storage: [DType, number] }).storage;
        stack.push(new StorageRef(dtype, itemsize, String(pid[2]), Number(pid[4])));
        break;
      }
      case 0x28:
        stack.push(MARK);
        break; // MARK
      case 0x29:
        stack.push([]);
        break; // EMPTY_TUPLE
      case 0x5d:
        stack.push([]);
        break; // EMPTY_LIST
      case 0x7d:
        stack.push(new Map());
        break; // EMPTY_DICT
      case 0x4e:
        stack.push(null);
        break; // NONE
      case 0x88:
        stack.push(true);
        break; // NEWTRUE
      case 0x89:
        stack.push(false);
        break; // NEWFALSE
      case 0x4a:
        stack.push(data.readInt32LE(i));
        i += 4;
        break; // BININT
      case 0x4b:
        stack.push(u8());
        break; // BININT1
      case 0x4d:
        stack.push(data.readUInt16LE(i));
        i += 2;
        break; // BININT2
      case 0x8a: {
        // LONG1
        const n = u8();
        let v = 0n;
        for (let k = n - 1; k >= 0; k--) v = (v << 8n) | BigInt(data[i + k]!);
        if (n > 0 && data[i + n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
        i += n;
        stack.push(Number(v));
        break;
      }
      case 0x47:
        stack.push(data.readDoubleBE(i));
        i += 8;
        break; // BINFLOAT
      case 0x58:
        stack.push(str(u32()));
        break; // BINUNICODE
      case 0x8c:
        stack.push(str(u8()));
        break; // SHORT_BINUNICODE
      case 0x55:
        stack.push(str(u8()));
        break; // SHORT_BINSTRING
      case 0x74:
        stack.push(popMark());
        break; // TUPLE
      case 0x85:
        stack.push([stack.pop()]);
        break; // TUPLE1
      case 0x86: {
        const b = stack.pop(),
          a = stack.pop();
        stack.push([a, b]);
        break;
      } // TUPLE2
      case 0x87: {
        const c = stack.pop(),
          b = stack.pop(),
          a = stack.pop();
        stack.push([a, b, c]);
        break;
      } // TUPLE3
      case 0x71:
        memo.set(u8(), stack[stack.length - 1]);
        break; // BINPUT
      case 0x72:
        memo.set(u32(), stack[stack.length - 1]);
        break; // LONG_BINPUT
      case 0x94:
        memo.set(memo.size, stack[stack.length - 1]);
        break; // MEMOIZE
      case 0x68:
        stack.push(memo.get(u8()));
        break; // BINGET
      case 0x6a:
        stack.push(memo.get(u32()));
        break; // LONG_BINGET
      case 0x52: {
        const args = stack.pop(),
          f = stack.pop();
        stack.push(call(f, args));
        break;
      } // REDUCE
      case 0x75: {
        // SETITEMS
        const items = popMark();
        const d = stack[stack.length - 1];
        if (!(d instanceof Map)) throw bad('SETITEMS on something that is not a dict');
        for (let k = 0; k + 1 < items.length; k += 2) d.set(items[k], items[k + 1]);
        break;
      }
      case 0x73: {
        const v = stack.pop(),
          k = stack.pop();
        (stack[stack.length - 1] as Map<unknown, unknown>).set(k, v);
        break;
      } // SETITEM
      case 0x65: {
        const items = popMark();
        (stack[stack.length - 1] as unknown[]).push(...items);
        break;
      } // APPENDS
      case 0x61: {
        const v = stack.pop();
        (stack[stack.length - 1] as unknown[]).push(v);
        break;
      } // APPEND
      case 0x62:
        stack.pop();
        break; // BUILD: the state (an OrderedDict's _metadata) is not needed
      default:
        throw bad(`pickle opcode 0x${op.toString(16)} at byte ${i - 1} is not one a state dict uses`);
    }
  }
  throw bad('the pickle ends without STOP');
}
