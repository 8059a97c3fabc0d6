/** Tensor creation: from JS data, factories, ranges, random, and *Like variants. */
import { native } from './native.js';
import { FACTORY, type FactoryKind } from './opcodes.js';
import { Tensor, wrap, checkDevice, type Device, type NestedArray } from './tensor.js';
import { dtypeCode, dtypeOfTypedArray, type DType } from './dtype.js';
import { is, typeError, rangeError } from './errors.js';

/** Options of the creation functions: dtype, device, requiresGrad. */
export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

type Data = NestedArray<number | boolean | bigint> | ArrayBufferView;

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) {
    if (opts.requiresGrad !== true) throw typeError('a boolean', 'requiresGrad', opts.requiresGrad);
    t.requiresGrad = true;
  }
  return t;
}

function optsOf<O extends TensorOptions>(opts: O | undefined, name = 'options'): O {
  const o = is.options(opts, name);
  if (o.device !== undefined) checkDevice(o.device);
  return o;
}

function flatten(data: unknown, shape: number[], out: unknown[], depth: number): void {
  if (Array.isArray(data)) {
    // a new dimension after scalars were already read at this depth ([1, [2]]) is ragged too
    if (shape.length === depth && out.length > 0)
      throw new RangeError(`tensor(): ragged nested array: an array at depth ${depth} where numbers were seen`);
    if (shape.length === depth) shape.push(data.length);
    else if (shape[depth] !== data.length)
      throw new RangeError(
        `tensor(): ragged nested array: expected ${shape[depth]} elements at depth ${depth} but found ${data.length}`,
      );
    for (const d of data) flatten(d, shape, out, depth + 1);
    return;
  }
  if (depth !== shape.length)
    throw new RangeError(
      `tensor(): ragged nested array: a scalar at depth ${depth} where arrays of depth ${shape.length} were seen`,
    );
  if (typeof data !== 'number' && typeof data !== 'boolean' && typeof data !== 'bigint')
    throw typeError('numbers, booleans or bigints', 'data', data);
  out.push(data);
}

/** Integer dtypes' ranges; as PyTorch, uint8 also takes -128..-1 (wrapping), and fractions are truncated. */
const INT_RANGE: Partial<Record<DType, [bigint, bigint]>> = {
  int8: [-128n, 127n],
  int16: [-32768n, 32767n],
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint8: [-128n, 255n],
};

/** The integer a value converts to, or a RangeError where PyTorch raises (overflow, NaN, Infinity). */
function checkedInt(v: unknown, dtype: DType): bigint {
  const [lo, hi] = INT_RANGE[dtype]!;
  let n: bigint | null = null;
  if (typeof v === 'bigint') n = v;
  else if (typeof v === 'boolean') n = v ? 1n : 0n;
  else if (typeof v === 'number' && Number.isFinite(v)) n = BigInt(Math.trunc(v));
  if (n === null || n < lo || n > hi)
    throw new RangeError(`tensor(): value ${String(v)} cannot be converted to type ${dtype} without overflow`);
  return n;
}

function typedFor(dtype: DType, values: unknown[]): ArrayBufferView {
  const nums = (): number[] => values.map((v) => (typeof v === 'bigint' ? Number(v) : Number(v)));
  const ints = (): number[] => values.map((v) => Number(checkedInt(v, dtype)));
  switch (dtype) {
    case 'float32':
      return Float32Array.from(nums());
    case 'float64':
      return Float64Array.from(nums());
    case 'int32':
      return Int32Array.from(ints());
    case 'int64':
      return BigInt64Array.from(values, (v) => checkedInt(v, dtype));
    case 'bool':
      return Uint8Array.from(values, (v) => (v ? 1 : 0));
    case 'uint8':
      return Uint8Array.from(ints());
    case 'int8':
      return Int8Array.from(ints());
    case 'int16':
      return Int16Array.from(ints());
    case 'float16':
    case 'bfloat16':
      return Float32Array.from(nums());
  }
}

/**
 * Makes a tensor from nested arrays, a TypedArray (with `shape` in options), or a scalar.
 * Numbers give float32 unless `dtype` says otherwise (JS has no integer literals: this is where tensornormal
 * differs from torch.tensor, which gives int64 for [1, 2]); booleans give bool; bigints give int64.
 */
export function tensor(data: Data, opts: TensorOptions & { shape?: number[] } = {}): Tensor {
  optsOf(opts);
  let shape: number[];
  let buf: ArrayBufferView;
  let dtype: DType;
  if (ArrayBuffer.isView(data)) {
    const own = dtypeOfTypedArray(data);
    if (own === undefined)
      throw typeError(
        'a Float32Array, Float64Array, Int32Array, BigInt64Array, Uint8Array, Int8Array or Int16Array',
        'data',
        data,
      );
    const n = (data as unknown as { length: number }).length;
    shape = opts.shape !== undefined ? is.shape(opts.shape, 'shape') : [n];
    const need = shape.reduce((a, b) => a * b, 1);
    if (need !== n)
      throw new RangeError(`tensor(): shape [${shape.join(', ')}] needs ${need} elements but data has ${n}`);
    dtype = opts.dtype ?? own;
    if (dtype !== own) {
      const t = wrap(native.fromBuffer(data, shape, dtypeCode(own)));
      const c = t.to({ dtype, device: opts.device });
      t.dispose();
      return finish(c, opts);
    }
    buf = data;
  } else {
    const flat: unknown[] = [];
    shape = [];
    flatten(data, shape, flat, 0);
    if (opts.shape !== undefined) {
      const s = is.shape(opts.shape, 'shape');
      if (s.reduce((a, b) => a * b, 1) !== flat.length)
        throw new RangeError(`tensor(): shape [${s.join(', ')}] does not hold ${flat.length} elements`);
      shape = s;
    }
    const inferred: DType =
      flat.length > 0 && flat.every((v) => typeof v === 'boolean')
        ? 'bool'
        : flat.some((v) => typeof v === 'bigint')
          ? 'int64'
          : 'float32';
    dtype = opts.dtype ?? inferred;
    dtypeCode(dtype);
    buf = typedFor(dtype, flat);
    if (dtype === 'float16' || dtype === 'bfloat16') {
      const t = wrap(native.fromBuffer(buf, shape, dtypeCode('float32')));
      const c = t.to({ dtype, device: opts.device });
      t.dispose();
      return finish(c, opts);
    }
  }
  return finish(wrap(native.fromBuffer(buf, shape, dtypeCode(dtype), opts.device)), opts);
}

/** A 0-d tensor. */
export function scalarTensor(value: number | boolean, opts: TensorOptions = {}): Tensor {
  return tensor(value as unknown as Data, opts);
}

function sizeArgs(args: unknown[]): { shape: number[]; opts: TensorOptions } {
  let opts: TensorOptions = {};
  let rest = args;
  const last = args[args.length - 1];
  if (last === null && args.length > 1) throw typeError('an options object', 'options', last);
  if (last !== null && typeof last === 'object' && !Array.isArray(last)) {
    opts = optsOf(last as TensorOptions);
    rest = args.slice(0, -1);
  }
  const shape = rest.length === 1 && Array.isArray(rest[0]) ? rest[0] : rest;
  return { shape: is.shape(shape, 'size'), opts };
}

function make(kind: FactoryKind, args: unknown[], defaultDtype: DType = 'float32', a?: number, b?: number): Tensor {
  const { shape, opts } = sizeArgs(args);
  return finish(
    wrap(native.factory(FACTORY[kind], shape, dtypeCode(opts.dtype ?? defaultDtype), opts.device, a, b)),
    opts,
  );
}

type SizeArgs = (number | number[] | TensorOptions)[];
/** Zeros of the given size (`torch.zeros`): `zeros(2, 3)`, `zeros([2, 3])` or `zeros([2, 3], { dtype: 'float64' })`. */
export const zeros = (...size: SizeArgs): Tensor => make('zeros', size);
/** Ones of the given size (`torch.ones`), with the same arguments as `zeros`. */
export const ones = (...size: SizeArgs): Tensor => make('ones', size);
/** An uninitialised tensor of the given size (`torch.empty`), with the same arguments as `zeros`. */
export const empty = (...size: SizeArgs): Tensor => make('empty', size);
/** Uniform on [0, 1). */
export const rand = (...size: SizeArgs): Tensor => make('rand', size);
/** Standard normal. */
export const randn = (...size: SizeArgs): Tensor => make('randn', size);

/** A tensor of `size` filled with `fillValue` (`torch.full`). */
export function full(size: number[], fillValue: number | boolean, opts: TensorOptions = {}): Tensor {
  opts = optsOf(opts);
  if (typeof fillValue !== 'number' && typeof fillValue !== 'boolean')
    throw typeError('a number or boolean', 'fillValue', fillValue);
  const dtype = opts.dtype ?? (typeof fillValue === 'boolean' ? 'bool' : 'float32');
  return make('full', [size, { ...opts, dtype }], dtype, +fillValue);
}

/** Integers uniform on [low, high). `randint(high, size)` or `randint(low, high, size)`; int64 by default. */
export function randint(
  low: number,
  high: number | number[],
  size?: number[] | TensorOptions,
  opts: TensorOptions = {},
): Tensor {
  let lo = low,
    hi: number,
    shape: number[];
  if (Array.isArray(high)) {
    lo = 0;
    hi = low;
    shape = high;
    if (size !== undefined) opts = size as TensorOptions;
  } else {
    hi = high;
    if (!Array.isArray(size)) throw typeError('an array of non-negative integers', 'size', size);
    shape = size;
  }
  opts = optsOf(opts);
  is.integer(lo, 'low');
  is.integer(hi, 'high');
  for (const [v, name] of [
    [lo, 'low'],
    [hi, 'high'],
  ] as const)
    if (v < -(2 ** 63) || v >= 2 ** 63)
      throw new RangeError(`randint: ${name} ${v} does not fit in int64 (PyTorch: Overflow when unpacking long)`);
  if (hi <= lo) throw rangeError(`an integer above low (${lo})`, 'high', hi);
  return make('randint', [shape, { ...opts }], 'int64', lo, hi);
}

/** A random permutation of 0..n-1, int64 (`torch.randperm`). */
export function randperm(n: number, opts: TensorOptions = {}): Tensor {
  is.nonNegativeInteger(n, 'n');
  opts = optsOf(opts);
  return finish(wrap(native.factory(FACTORY.randperm, [], dtypeCode(opts.dtype ?? 'int64'), opts.device, n)), opts);
}

/** The n x m identity matrix (`torch.eye`). */
export function eye(n: number, m?: number | TensorOptions, opts: TensorOptions = {}): Tensor {
  if (m !== null && typeof m === 'object') {
    opts = m;
    m = undefined;
  }
  is.nonNegativeInteger(n, 'n');
  const cols = m === undefined ? n : is.nonNegativeInteger(m, 'm');
  opts = optsOf(opts);
  return finish(wrap(native.factory(FACTORY.eye, [n, cols], dtypeCode(opts.dtype ?? 'float32'), opts.device)), opts);
}

/** [start, end) in steps: arange(end), arange(start, end), arange(start, end, step). int64 when every argument is an integer. */
export function arange(
  start: number,
  end?: number | TensorOptions,
  step?: number | TensorOptions,
  opts: TensorOptions = {},
): Tensor {
  const nums: number[] = [];
  const args: [unknown, string][] = [
    [start, 'start'],
    [end, 'end'],
    [step, 'step'],
  ];
  for (const [a, name] of args) {
    if (typeof a === 'number') nums.push(a);
    else if (a !== null && typeof a === 'object' && !Array.isArray(a)) opts = a as TensorOptions;
    // a string or a null where a number or the options go would otherwise be skipped: arange(0, '5') is not arange(0)
    else if (a !== undefined) throw typeError('a number or an options object', name, a);
  }
  const [s, e, st] =
    nums.length === 1 ? [0, nums[0]!, 1] : nums.length === 2 ? [nums[0]!, nums[1]!, 1] : [nums[0]!, nums[1]!, nums[2]!];
  is.finite(s, 'start');
  is.finite(e, 'end');
  is.finite(st, 'step');
  if (st === 0) throw rangeError('a non-zero number', 'step', st);
  if ((e - s) / st < 0)
    throw new RangeError(
      `arange(): upper bound and larger bound inconsistent with step sign (start ${s}, end ${e}, step ${st})`,
    );
  const allInt = [s, e, st].every(Number.isInteger);
  opts = optsOf(opts);
  return finish(
    wrap(native.arange(s, e, st, dtypeCode(opts.dtype ?? (allInt ? 'int64' : 'float32')), opts.device)),
    opts,
  );
}

/** `steps` values evenly spaced from start to end, both included (`torch.linspace`). */
export function linspace(start: number, end: number, steps: number, opts: TensorOptions = {}): Tensor {
  opts = optsOf(opts);
  return finish(
    wrap(
      native.linspace(
        is.finite(start, 'start'),
        is.finite(end, 'end'),
        is.nonNegativeInteger(steps, 'steps'),
        dtypeCode(opts.dtype ?? 'float32'),
        optsOf(opts).device,
      ),
    ),
    opts,
  );
}

function likeOpts(t: Tensor, opts: TensorOptions): TensorOptions {
  if (!(t instanceof Tensor)) throw typeError('a Tensor', 'input', t);
  opts = optsOf(opts);
  return { dtype: opts.dtype ?? t.dtype, device: opts.device ?? t.device, requiresGrad: opts.requiresGrad };
}
// likeOpts runs first: it checks that `t` is a Tensor before t.shape is read.
/** Zeros of `t`'s shape, dtype and device (unless `opts` says otherwise). */
export const zerosLike = (t: Tensor, opts: TensorOptions = {}): Tensor => {
  const o = likeOpts(t, opts);
  return zeros(t.shape, o);
};
/** Ones of `t`'s shape, dtype and device. */
export const onesLike = (t: Tensor, opts: TensorOptions = {}): Tensor => {
  const o = likeOpts(t, opts);
  return ones(t.shape, o);
};
/** An uninitialised tensor of `t`'s shape, dtype and device. */
export const emptyLike = (t: Tensor, opts: TensorOptions = {}): Tensor => {
  const o = likeOpts(t, opts);
  return empty(t.shape, o);
};
/** `v` everywhere, in `t`'s shape, dtype and device. */
export const fullLike = (t: Tensor, v: number | boolean, opts: TensorOptions = {}): Tensor => {
  const o = likeOpts(t, opts);
  return full(t.shape, v, o);
};
/** Uniform [0, 1) samples in `t`'s shape, dtype and device. */
export const randLike = (t: Tensor, opts: TensorOptions = {}): Tensor => {
  const o = likeOpts(t, opts);
  return rand(t.shape, o);
};
/** Standard normal samples in `t`'s shape, dtype and device. */
export const randnLike = (t: Tensor, opts: TensorOptions = {}): Tensor => {
  const o = likeOpts(t, opts);
  return randn(t.shape, o);
};
/** Random integers in [low, high) in `t`'s shape, dtype and device. */
export const randintLike = (t: Tensor, low: number, high: number, opts: TensorOptions = {}): Tensor => {
  const o = likeOpts(t, opts);
  return randint(low, high, t.shape, o);
};
