/** dtype names, their native codes (shared with native/addon.cc Dtype()) and their TypedArrays. */
import { rangeError, typeError } from './errors.js';

/** A tensor's element type, by PyTorch's name ('float32', 'float64', 'int64', 'bool', ...). */
export type DType =
  'float32' | 'float64' | 'int32' | 'int64' | 'bool' | 'float16' | 'bfloat16' | 'uint8' | 'int8' | 'int16';

/** Every DType this library supports. */
export const DTYPES: readonly DType[] = [
  'float32',
  'float64',
  'int32',
  'int64',
  'bool',
  'float16',
  'bfloat16',
  'uint8',
  'int8',
  'int16',
];

/** PyTorch spellings accepted as aliases. */
const ALIASES: Record<string, DType> = {
  float: 'float32',
  double: 'float64',
  int: 'int32',
  long: 'int64',
  half: 'float16',
  short: 'int16',
};

export function dtypeCode(dtype: unknown, name = 'dtype'): number {
  if (typeof dtype !== 'string') throw typeError(`a dtype (${DTYPES.join(', ')})`, name, dtype);
  const d = ALIASES[dtype] ?? dtype;
  const code = DTYPES.indexOf(d as DType);
  if (code < 0) throw rangeError(`a dtype (${DTYPES.join(', ')})`, name, dtype);
  return code;
}

export function dtypeName(code: number): DType {
  const d = DTYPES[code];
  if (!d) throw new RangeError(`tensor has a dtype tensornormal does not expose (code ${code})`);
  return d;
}

export const isFloating = (d: DType): boolean =>
  d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';

export type TypedArrayFor =
  Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Int16Array | Uint16Array;

/** Reads a tensor's raw bytes as the TypedArray of its dtype (float16/bfloat16 come as raw Uint16 bits). */
export function viewBytes(buf: ArrayBuffer, dtype: DType): TypedArrayFor {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buf);
    case 'float64':
      return new Float64Array(buf);
    case 'int32':
      return new Int32Array(buf);
    case 'int64':
      return new BigInt64Array(buf);
    case 'bool':
    case 'uint8':
      return new Uint8Array(buf);
    case 'int8':
      return new Int8Array(buf);
    case 'int16':
      return new Int16Array(buf);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(buf);
  }
}

/** The dtype a TypedArray's contents have. */
export function dtypeOfTypedArray(a: ArrayBufferView): DType | undefined {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Int16Array) return 'int16';
  return undefined;
}
