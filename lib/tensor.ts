/**
 * The Tensor class: a thin JS object holding a native handle. Methods follow PyTorch's names in camelCase;
 * in-place methods end in `_` and return `this`.
 */
import { native, type Handle } from './native.js';
import {
  UNARY as U,
  UNARY_INPLACE as UI,
  BINARY as B,
  REDUCE as R,
  type BinaryCode,
  type ReduceCode,
  type UnaryCode,
} from './opcodes.js';
import { track, scoped, type Owned } from './scope.js';
import { is, typeError, rangeError, FREED, type FreedReason } from './errors.js';
import { dtypeCode, dtypeName, viewBytes, type DType, type TypedArrayFor } from './dtype.js';
import { formatTensor } from './format.js';

/** Where a tensor lives: 'cpu', 'cuda' (the current GPU) or 'cuda:N'. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;
/** A plain value an op accepts in place of a tensor (a Python scalar). */
export type Scalar = number | boolean;
/** Nested arrays of T, as `tensor()` takes and `toArray()` returns them. */
export type NestedArray<T> = T | NestedArray<T>[];

const DEVICE_RE = /^(cpu|cuda)(:\d+)?$/;
export function checkDevice(device: unknown, name = 'device'): Device {
  if (typeof device !== 'string') throw typeError(`a device ('cpu', 'cuda' or 'cuda:N')`, name, device);
  if (!DEVICE_RE.test(device)) throw rangeError(`a device ('cpu', 'cuda' or 'cuda:N')`, name, device);
  // a CUDA device this build or machine lacks: TorchError('DEVICE_UNAVAILABLE') before anything is allocated
  if (device !== 'cpu' && !device.startsWith('cpu:')) native.checkDevice(device);
  return device as Device;
}

/** Wraps a fresh native handle. */
export function wrap(h: Handle): Tensor {
  return new Tensor(h);
}

function optNumber(x: unknown, name: string): number | null | undefined {
  if (x === undefined || x === null) return x;
  return is.number(x, name);
}
function normDim(dim: number | undefined | null, name = 'dim'): number | undefined {
  if (dim === undefined || dim === null) return undefined;
  return is.integer(dim, name);
}
function dimsArg(dim: number | number[] | undefined | null, name = 'dim'): number[] | null {
  if (dim === undefined || dim === null) return null;
  if (typeof dim === 'number') return [is.integer(dim, name)];
  return is.intArray(dim, name);
}
function shapeArgs(args: (number | number[])[], name = 'shape'): number[] {
  const s = args.length === 1 && Array.isArray(args[0]) ? args[0] : args;
  if (!Array.isArray(s) || s.some((d) => typeof d !== 'number' || !Number.isInteger(d) || d < -1))
    throw typeError('a shape (integers, -1 for one inferred size)', name, s);
  return s as number[];
}
/** Dimensions as rest arguments or one array (permute(1, 0), flip([0, -1])): integers, negative ones from the end. */
function dimList(args: unknown[], name: string): number[] {
  const d = args.length === 1 && Array.isArray(args[0]) ? args[0] : args;
  return is.intArray(d, name);
}
/** An integer or an array of integers, as an array. */
function intOrInts(x: unknown, name: string): number[] {
  if (typeof x === 'number') return [is.integer(x, name)];
  if (!Array.isArray(x)) throw typeError('an integer or an array of integers', name, x);
  return is.intArray(x, name);
}
function optInt(x: unknown, name: string): number | null {
  return x === undefined || x === null ? null : is.integer(x, name);
}
function tensorArg(t: unknown, name: string): Tensor {
  if (!(t instanceof Tensor)) throw typeError('a Tensor', name, t);
  return t;
}
function operand(other: unknown, name = 'other'): void {
  if (!(other instanceof Tensor) && typeof other !== 'number' && typeof other !== 'boolean')
    throw typeError('a Tensor or a number', name, other);
}

/** Options of `backward()` (PyTorch's `retain_graph`, `create_graph`). */
export interface BackwardOptions {
  retainGraph?: boolean;
  createGraph?: boolean;
}

/** Slice spec for `index()`: a number selects, null takes all, [start, end, step?] slices, a Tensor indexes. */
export type IndexSpec = number | null | [number | null, number | null, number?] | Tensor | '...';

/** A gradient hook: sees the gradient, and may return a replacement of the same shape, dtype and device. */
export type TensorHook = (grad: Tensor) => Tensor | void | undefined | null;

/** Returned by `registerHook`; `remove()` unregisters the hook (idempotent, and safe after the tensor is gone). */
export class TensorHookHandle {
  /** @internal */ active = true;
  /** @internal */ constructor(
    private readonly owner: Tensor,
    private readonly position: number,
  ) {}
  remove(): void {
    if (!this.active) return;
    this.active = false;
    if (!this.owner.isDisposed) native.removeHook(this.owner._h, this.position);
  }
}

// Backward passes in progress (a hook may start another inside one) and what to release when the outermost ends:
// module backward hooks hold gradOutput between two nodes of the graph, and a pass may stop before the second.
let passDepth = 0;
const passEnd = new Set<() => void>();

/** @internal Runs a backward pass (backward(), autograd.grad()); when the outermost one ends, runs onBackwardPassEnd's callbacks. */
export function backwardPass<T>(fn: () => T): T {
  passDepth++;
  try {
    return fn();
  } finally {
    if (--passDepth === 0 && passEnd.size > 0) {
      const callbacks = [...passEnd];
      passEnd.clear();
      for (const cb of callbacks) cb();
    }
  }
}

/** @internal Calls `cb` (once, however often it is added) when the outermost backward pass in progress ends. */
export function onBackwardPassEnd(cb: () => void): void {
  passEnd.add(cb);
}

/** A libtorch tensor: a handle to native storage, with PyTorch's methods in camelCase (`add`, `matmul`, `sum`, `backward`, ...). Free it with `dispose()`, a `tidy()` scope or `using`; see the guide docs/tensors.md. */
export class Tensor implements Owned {
  /** @internal native handle; once disposed, -2 - the reason (errors.ts FREED), which the DISPOSED error states */
  _h: Handle;
  /** @internal excluded from tidy scopes */
  _kept = false;
  /** @internal cached `.grad` wrapper, owned by this tensor */
  private _grad: Tensor | null = null;

  /** @internal use the creation functions (tensor, zeros, ...) */
  constructor(h: Handle) {
    this._h = h;
    track(this);
  }

  // ------------------------------------------------------------ lifecycle
  /** Frees the native tensor now. Idempotent. */
  dispose(): void {
    this._free(FREED.dispose);
  }
  /** @internal dispose(), recording why: the DISPOSED error of a later use says it. */
  _free(reason: FreedReason): void {
    if (this._h < 0) return;
    if (this._grad !== null) {
      this._grad._free(FREED.grad);
      this._grad = null;
    }
    native.dispose(this._h);
    // -2 and below, never -1: native code reads -1 in an optional slot as "no tensor", and a disposed tensor passed
    // there must be an error (DISPOSED), not silently absent
    this._h = -2 - reason;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
  get isDisposed(): boolean {
    return this._h < 0;
  }
  /** Exempts this tensor from enclosing tidy() scopes. */
  keep(): this {
    this._kept = true;
    return this;
  }

  // ------------------------------------------------------------ properties
  get shape(): number[] {
    return native.shape(this._h);
  }
  size(dim?: number): number | number[] {
    const s = native.shape(this._h);
    if (dim === undefined) return s;
    is.integer(dim, 'dim');
    const d = dim < 0 ? dim + s.length : dim;
    if (d < 0 || d >= s.length)
      throw new RangeError(
        `Dimension out of range (expected to be in range of [${-s.length}, ${s.length - 1}], but got ${dim})`,
      );
    return s[d]!;
  }
  get dtype(): DType {
    return dtypeName(native.dtype(this._h));
  }
  get device(): Device {
    return native.device(this._h) as Device;
  }
  get ndim(): number {
    return native.ndim(this._h);
  }
  dim(): number {
    return native.ndim(this._h);
  }
  numel(): number {
    return native.numel(this._h);
  }
  stride(): number[] {
    return native.stride(this._h);
  }
  isContiguous(): boolean {
    return native.isContiguous(this._h);
  }
  get isCuda(): boolean {
    return this.device.startsWith('cuda');
  }
  get requiresGrad(): boolean {
    return native.requiresGrad(this._h);
  }
  set requiresGrad(on: boolean) {
    native.setRequiresGrad(this._h, is.boolean(on, 'requiresGrad'));
  }
  requiresGrad_(on = true): this {
    native.setRequiresGrad(this._h, is.boolean(on, 'requiresGrad'));
    return this;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this._h);
  }
  /** Name of the autograd node that made this tensor (e.g. 'AddBackward0'), or null for leaves. */
  get gradFn(): string | null {
    return native.gradFn(this._h);
  }
  /** The accumulated gradient. The same wrapper is returned while libtorch keeps the same gradient tensor; it is owned by this tensor. */
  get grad(): Tensor | null {
    const cached = this._grad;
    const h = native.grad(this._h, cached === null ? -1 : cached._h);
    if (h === null) {
      if (cached !== null) {
        cached._free(FREED.grad);
        this._grad = null;
      }
      return null;
    }
    if (cached !== null && h === cached._h) return cached;
    if (cached !== null) cached._free(FREED.grad);
    const g = new Tensor(h);
    g._kept = true;
    this._grad = g;
    return g;
  }
  set grad(g: Tensor | null) {
    if (g !== null && !(g instanceof Tensor)) throw typeError('a Tensor or null', 'grad', g);
    if (g !== null && !g.isDisposed && !this.isDisposed) {
      // PyTorch's checks of `param.grad = g` (an optimizer would otherwise fail later, inside libtorch)
      const [gs, s] = [g.shape, this.shape];
      if (gs.length !== s.length || gs.some((d, i) => d !== s[i]))
        throw new RangeError(
          `assigned grad has data of a different size: [${gs.join(', ')}] for a tensor of [${s.join(', ')}]`,
        );
      if (g.dtype !== this.dtype)
        throw new TypeError(`assigned grad has data of a different type: ${g.dtype} for a ${this.dtype} tensor`);
      if (g.device !== this.device)
        throw new TypeError(`assigned grad has data on a different device: ${g.device} for a tensor on ${this.device}`);
    }
    native.setGrad(this._h, g === null ? -1 : g._h);
    // the cached wrapper of the replaced gradient is this tensor's to free
    if (this._grad !== null && this._grad !== g) {
      this._grad._free(FREED.grad);
      this._grad = null;
    }
  }

  // ------------------------------------------------------------ data
  /** The single value of a one-element tensor. */
  item(): number {
    return native.item(this._h) as number;
  }
  /** A copy of the data as the TypedArray of the dtype (int64 -> BigInt64Array, bool -> Uint8Array). */
  toTypedArray(): TypedArrayFor {
    const d = this.dtype;
    return viewBytes(native.toBuffer(this._h), d);
  }
  /** @internal Writes the values, contiguous in this dtype, into `span` (exactly numel * element size bytes): weight snapshots. */
  _copyTo(span: Uint8Array): void {
    native.copyToBuffer(this._h, span);
  }
  /** @internal Reads the values from `span` into this tensor, in place and outside autograd. */
  _copyFrom(span: Uint8Array): void {
    native.copyFromBuffer_(this._h, span);
  }
  /** A copy of the data as a flat array of numbers (booleans for bool tensors). */
  dataSync(): number[] {
    const d = this.dtype;
    if (d === 'float16' || d === 'bfloat16') {
      const f = this.to('float32');
      try {
        return Array.from(f.toTypedArray() as Float32Array);
      } finally {
        f.dispose();
      }
    }
    const ta = this.toTypedArray();
    if (d === 'int64') return Array.from(ta as BigInt64Array, Number);
    if (d === 'bool') return Array.from(ta as Uint8Array, (v) => v !== 0) as unknown as number[];
    return Array.from(ta as Float32Array);
  }
  /** Nested arrays in the tensor's shape (a number for a 0-d tensor). */
  toArray(): NestedArray<number> {
    const flat = this.dataSync();
    const shape = this.shape;
    if (shape.length === 0) return flat[0]!;
    let i = 0;
    const build = (d: number): NestedArray<number> => {
      const out: NestedArray<number>[] = [];
      const n = shape[d]!;
      if (d === shape.length - 1) for (let k = 0; k < n; k++) out.push(flat[i++]!);
      else for (let k = 0; k < n; k++) out.push(build(d + 1));
      return out;
    };
    return build(0);
  }
  toString(): string {
    if (this._h < 0) return 'tensor(<disposed>)';
    return formatTensor(this);
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  // ------------------------------------------------------------ conversion
  /** `to('float64')`, `to('cuda')`, or `to({dtype, device, copy})`. Returns a new tensor (a new handle even when nothing changes). */
  to(target: DType | Device | { dtype?: DType; device?: Device; copy?: boolean }): Tensor {
    let dtype = -1;
    let device: string | undefined;
    let copy = false;
    if (typeof target === 'string') {
      if (DEVICE_RE.test(target)) device = target;
      else dtype = dtypeCode(target, 'target');
    } else if (target !== null && typeof target === 'object') {
      if (target.dtype !== undefined) dtype = dtypeCode(target.dtype);
      if (target.device !== undefined) device = checkDevice(target.device);
      copy = target.copy === true;
    } else throw typeError('a dtype, a device or {dtype, device}', 'target', target);
    return wrap(native.to(this._h, dtype, device, copy));
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  long(): Tensor {
    return this.to('int64');
  }
  int(): Tensor {
    return this.to('int32');
  }
  bool(): Tensor {
    return this.to('bool');
  }
  half(): Tensor {
    return this.to('float16');
  }
  cpu(): Tensor {
    return this.to('cpu');
  }
  cuda(index = 0): Tensor {
    return this.to(`cuda:${is.nonNegativeInteger(index, 'index')}`);
  }
  clone(): Tensor {
    return wrap(native.clone(this._h));
  }
  contiguous(): Tensor {
    return wrap(native.contiguous(this._h));
  }
  detach(): Tensor {
    return wrap(native.detach(this._h));
  }
  detach_(): this {
    native.detach_(this._h);
    return this;
  }

  // ------------------------------------------------------------ autograd
  /**
   * Accumulates gradients of this tensor into the leaves' `.grad`. A non-scalar tensor needs `gradient`. The options
   * may come first when there is no gradient: `loss.backward({ retainGraph: true })`.
   */
  backward(gradient?: Tensor | null | BackwardOptions, options: BackwardOptions = {}): void {
    if (gradient !== null && typeof gradient === 'object' && !(gradient instanceof Tensor) && arguments.length === 1) {
      options = gradient;
      gradient = undefined;
    }
    options = is.options(options);
    if (gradient !== undefined && gradient !== null && !(gradient instanceof Tensor))
      throw typeError('a Tensor', 'gradient', gradient);
    backwardPass(() =>
      native.backward(this._h, gradient ? gradient._h : -1, options.retainGraph === true, options.createGraph === true),
    );
  }
  retainGrad(): this {
    native.retainGrad(this._h);
    return this;
  }
  /**
   * Registers `hook(grad)`, run each time the gradient with respect to this tensor is computed (by `backward()`
   * or `autograd.grad()`), before it flows on (or, for a leaf, before it is accumulated into `.grad`): PyTorch's
   * `tensor.register_hook`. A returned tensor replaces the gradient (same shape, dtype and device, else a
   * TorchError); returning nothing leaves it. `grad` lives only during the call: tensors the hook creates are freed
   * after it (except a returned one, which takes the gradient's place), so clone() and keep() what must outlive it.
   * An exception thrown by the hook stops the backward pass and reaches its caller unchanged. Under
   * `autograd.grad`, a hook on one of `inputs` changes the returned gradient from libtorch 2.0 on; libtorch 1.13
   * returns it as computed (PyTorch changed this in 2.0).
   *
   * Hooks run JavaScript inside the backward pass, which libtorch runs on the calling thread for CPU tensors;
   * the backward of CUDA tensors runs on device threads, where a hook raises a TorchError.
   *
   *   const h = y.registerHook((g) => g.clamp(-1, 1));   // clip the gradient flowing through y
   *   loss.backward();
   *   h.remove();
   */
  registerHook(hook: TensorHook): TensorHookHandle {
    if (typeof hook !== 'function') throw typeError('a function', 'hook', hook);
    let handle: TensorHookHandle | null = null;
    const position = native.registerHook(this._h, (gh: Handle): Handle =>
      scoped(() => {
        const grad = new Tensor(gh);
        if (handle !== null && !handle.active) return -1;
        const r = hook(grad);
        if (r === undefined || r === null || r === grad) return -1;
        if (!(r instanceof Tensor)) throw typeError('a Tensor or nothing', 'the value returned by the hook', r);
        if (r.isDisposed) throw new TypeError('the tensor returned by the hook was disposed');
        return native.alias(r._h); // a handle the addon takes over
      }, FREED.hook),
    );
    handle = new TensorHookHandle(this, position);
    return handle;
  }

  // ------------------------------------------------------------ element-wise arithmetic
  private bin(code: BinaryCode, other: Tensor | Scalar, alpha?: number): Tensor {
    if (alpha !== undefined) is.number(alpha, 'alpha');
    if (other instanceof Tensor) return wrap(native.binary(code, this._h, other._h, alpha));
    operand(other);
    return wrap(native.binaryScalar(code, this._h, other, alpha));
  }
  private bin_(code: BinaryCode, other: Tensor | Scalar, alpha?: number): this {
    if (alpha !== undefined) is.number(alpha, 'alpha');
    if (other instanceof Tensor) native.binary_(code, this._h, other._h, alpha);
    else {
      operand(other);
      native.binaryScalar_(code, this._h, +other, alpha);
    }
    return this;
  }
  add(other: Tensor | Scalar, alpha?: number): Tensor {
    return this.bin(B.add, other, alpha);
  }
  sub(other: Tensor | Scalar, alpha?: number): Tensor {
    return this.bin(B.sub, other, alpha);
  }
  mul(other: Tensor | Scalar): Tensor {
    return this.bin(B.mul, other);
  }
  div(other: Tensor | Scalar): Tensor {
    return this.bin(B.div, other);
  }
  pow(exponent: Tensor | Scalar): Tensor {
    return this.bin(B.pow, exponent);
  }
  remainder(other: Tensor | Scalar): Tensor {
    return this.bin(B.remainder, other);
  }
  fmod(other: Tensor | Scalar): Tensor {
    return this.bin(B.fmod, other);
  }
  floorDivide(other: Tensor | Scalar): Tensor {
    return this.bin(B.floorDivide, other);
  }
  maximum(other: Tensor): Tensor {
    return this.bin(B.maximum, other);
  }
  minimum(other: Tensor): Tensor {
    return this.bin(B.minimum, other);
  }
  atan2(other: Tensor): Tensor {
    return this.bin(B.atan2, other);
  }
  xlogy(other: Tensor | Scalar): Tensor {
    return this.bin(B.xlogy, other);
  }
  /** other - this */
  rsub(other: Tensor | Scalar, alpha?: number): Tensor {
    return this.bin(B.rsub, other, alpha);
  }

  eq(other: Tensor | Scalar): Tensor {
    return this.bin(B.eq, other);
  }
  ne(other: Tensor | Scalar): Tensor {
    return this.bin(B.ne, other);
  }
  lt(other: Tensor | Scalar): Tensor {
    return this.bin(B.lt, other);
  }
  le(other: Tensor | Scalar): Tensor {
    return this.bin(B.le, other);
  }
  gt(other: Tensor | Scalar): Tensor {
    return this.bin(B.gt, other);
  }
  ge(other: Tensor | Scalar): Tensor {
    return this.bin(B.ge, other);
  }
  logicalAnd(other: Tensor): Tensor {
    return this.bin(B.logicalAnd, other);
  }
  logicalOr(other: Tensor): Tensor {
    return this.bin(B.logicalOr, other);
  }
  logicalXor(other: Tensor): Tensor {
    return this.bin(B.logicalXor, other);
  }
  /** True when both have the same shape and values within the tolerances (as torch.allclose). */
  allclose(other: Tensor, options: { rtol?: number; atol?: number; equalNan?: boolean } = {}): boolean {
    const { rtol = 1e-5, atol = 1e-8, equalNan = false } = is.options(options);
    if (!(other instanceof Tensor)) throw typeError('a Tensor', 'other', other);
    return native.allclose(this._h, other._h, rtol, atol, equalNan);
  }

  private un(code: UnaryCode): Tensor {
    return wrap(native.unary(code, this._h));
  }
  neg(): Tensor {
    return this.un(U.neg);
  }
  abs(): Tensor {
    return this.un(U.abs);
  }
  exp(): Tensor {
    return this.un(U.exp);
  }
  log(): Tensor {
    return this.un(U.log);
  }
  log2(): Tensor {
    return this.un(U.log2);
  }
  log10(): Tensor {
    return this.un(U.log10);
  }
  log1p(): Tensor {
    return this.un(U.log1p);
  }
  expm1(): Tensor {
    return this.un(U.expm1);
  }
  sqrt(): Tensor {
    return this.un(U.sqrt);
  }
  rsqrt(): Tensor {
    return this.un(U.rsqrt);
  }
  sign(): Tensor {
    return this.un(U.sign);
  }
  square(): Tensor {
    return this.un(U.square);
  }
  reciprocal(): Tensor {
    return this.un(U.reciprocal);
  }
  floor(): Tensor {
    return this.un(U.floor);
  }
  ceil(): Tensor {
    return this.un(U.ceil);
  }
  round(): Tensor {
    return this.un(U.round);
  }
  trunc(): Tensor {
    return this.un(U.trunc);
  }
  frac(): Tensor {
    return this.un(U.frac);
  }
  sin(): Tensor {
    return this.un(U.sin);
  }
  cos(): Tensor {
    return this.un(U.cos);
  }
  tan(): Tensor {
    return this.un(U.tan);
  }
  erf(): Tensor {
    return this.un(U.erf);
  }
  logicalNot(): Tensor {
    return this.un(U.logicalNot);
  }
  isnan(): Tensor {
    return this.un(U.isnan);
  }
  isfinite(): Tensor {
    return this.un(U.isfinite);
  }
  isinf(): Tensor {
    return this.un(U.isinf);
  }
  relu(): Tensor {
    return this.un(U.relu);
  }
  sigmoid(): Tensor {
    return this.un(U.sigmoid);
  }
  tanh(): Tensor {
    return this.un(U.tanh);
  }
  silu(): Tensor {
    return this.un(U.silu);
  }
  softplus(): Tensor {
    return this.un(U.softplus);
  }
  logSigmoid(): Tensor {
    return this.un(U.logSigmoid);
  }
  gelu(options: { approximate?: 'none' | 'tanh' } = {}): Tensor {
    const { approximate = 'none' } = is.options(options);
    return wrap(native.gelu(this._h, is.oneOf(approximate, 'approximate', ['none', 'tanh']) === 'tanh'));
  }
  leakyRelu(negativeSlope = 0.01): Tensor {
    return wrap(native.leakyRelu(this._h, is.finite(negativeSlope, 'negativeSlope')));
  }
  softmax(dim: number): Tensor {
    return wrap(native.softmax(this._h, is.integer(dim, 'dim')));
  }
  logSoftmax(dim: number): Tensor {
    return wrap(native.logSoftmax(this._h, is.integer(dim, 'dim')));
  }
  clamp(min?: number | null, max?: number | null): Tensor {
    if (min != null) is.number(min, 'min');
    if (max != null) is.number(max, 'max');
    if (min == null && max == null) throw new TypeError('clamp needs at least one of min and max');
    return wrap(native.clamp(this._h, min, max));
  }
  clampMin(min: number): Tensor {
    return this.clamp(min, null);
  }
  clampMax(max: number): Tensor {
    return this.clamp(null, max);
  }

  // ------------------------------------------------------------ in-place (optimizers use these)
  add_(other: Tensor | Scalar, alpha?: number): this {
    return this.bin_(B.add, other, alpha);
  }
  sub_(other: Tensor | Scalar, alpha?: number): this {
    return this.bin_(B.sub, other, alpha);
  }
  mul_(other: Tensor | Scalar): this {
    return this.bin_(B.mul, other);
  }
  div_(other: Tensor | Scalar): this {
    return this.bin_(B.div, other);
  }
  pow_(exponent: Tensor | Scalar): this {
    return this.bin_(B.pow, exponent);
  }
  clamp_(min?: number | null, max?: number | null): this {
    native.clamp_(this._h, optNumber(min, 'min'), optNumber(max, 'max'));
    return this;
  }
  copy_(src: Tensor): this {
    if (!(src instanceof Tensor)) throw typeError('a Tensor', 'src', src);
    native.copy_(this._h, src._h);
    return this;
  }
  fill_(value: Scalar): this {
    operand(value, 'value');
    native.fill_(this._h, value);
    return this;
  }
  zero_(): this {
    native.unary_(UI.zero_, this._h);
    return this;
  }
  neg_(): this {
    native.unary_(UI.neg_, this._h);
    return this;
  }
  abs_(): this {
    native.unary_(UI.abs_, this._h);
    return this;
  }
  exp_(): this {
    native.unary_(UI.exp_, this._h);
    return this;
  }
  log_(): this {
    native.unary_(UI.log_, this._h);
    return this;
  }
  sqrt_(): this {
    native.unary_(UI.sqrt_, this._h);
    return this;
  }
  relu_(): this {
    native.unary_(UI.relu_, this._h);
    return this;
  }
  sigmoid_(): this {
    native.unary_(UI.sigmoid_, this._h);
    return this;
  }
  tanh_(): this {
    native.unary_(UI.tanh_, this._h);
    return this;
  }
  reciprocal_(): this {
    native.unary_(UI.reciprocal_, this._h);
    return this;
  }
  /** this += value * t1 * t2 */
  addcmul_(t1: Tensor, t2: Tensor, value = 1): this {
    native.addcmul_(this._h, tensorArg(t1, 'tensor1')._h, tensorArg(t2, 'tensor2')._h, is.number(value, 'value'));
    return this;
  }
  /** this += value * t1 / t2 */
  addcdiv_(t1: Tensor, t2: Tensor, value = 1): this {
    native.addcdiv_(this._h, tensorArg(t1, 'tensor1')._h, tensorArg(t2, 'tensor2')._h, is.number(value, 'value'));
    return this;
  }
  /** this += weight * (end - this) */
  lerp_(end: Tensor, weight: number | Tensor): this {
    tensorArg(end, 'end');
    if (weight instanceof Tensor) {
      // native.lerp_ cannot tell a handle (a number) from a number weight, so a tensor weight is composed here
      const d = end.sub(this);
      try {
        d.mul_(weight);
        native.binary_(B.add, this._h, d._h);
      } finally {
        d.dispose();
      }
      return this;
    }
    native.lerp_(this._h, end._h, is.number(weight, 'weight'));
    return this;
  }
  uniform_(from = 0, to = 1): this {
    native.uniform_(this._h, is.finite(from, 'from'), is.finite(to, 'to'));
    return this;
  }
  normal_(mean = 0, std = 1): this {
    native.normal_(this._h, mean, is.nonNegative(std, 'std'));
    return this;
  }

  // ------------------------------------------------------------ reductions
  private red(code: ReduceCode, dim: number | number[] | undefined | null, keepdim: boolean): Tensor {
    return wrap(native.reduce(code, this._h, dimsArg(dim), is.boolean(keepdim, 'keepdim')));
  }
  sum(dim?: number | number[] | null, keepdim = false): Tensor {
    return this.red(R.sum, dim, keepdim);
  }
  mean(dim?: number | number[] | null, keepdim = false): Tensor {
    return this.red(R.mean, dim, keepdim);
  }
  amax(dim?: number | number[] | null, keepdim = false): Tensor {
    return this.red(R.amax, dim, keepdim);
  }
  amin(dim?: number | number[] | null, keepdim = false): Tensor {
    return this.red(R.amin, dim, keepdim);
  }
  prod(dim?: number | null, keepdim = false): Tensor {
    return this.red(R.prod, dim, keepdim);
  }
  all(dim?: number | null, keepdim = false): Tensor {
    return this.red(R.all, dim, keepdim);
  }
  any(dim?: number | null, keepdim = false): Tensor {
    return this.red(R.any, dim, keepdim);
  }
  logsumexp(dim?: number | number[] | null, keepdim = false): Tensor {
    return this.red(R.logsumexp, dim, keepdim);
  }
  /** Without dim: the largest value (0-d). With dim: [values, indices]. */
  max(): Tensor;
  max(dim: number, keepdim?: boolean): [Tensor, Tensor];
  max(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    if (dim === undefined) return wrap(native.max(this._h));
    const [v, i] = native.maxDim(this._h, is.integer(dim, 'dim'), is.boolean(keepdim, 'keepdim'));
    return [wrap(v), wrap(i)];
  }
  min(): Tensor;
  min(dim: number, keepdim?: boolean): [Tensor, Tensor];
  min(dim?: number, keepdim = false): Tensor | [Tensor, Tensor] {
    if (dim === undefined) return wrap(native.min(this._h));
    const [v, i] = native.minDim(this._h, is.integer(dim, 'dim'), is.boolean(keepdim, 'keepdim'));
    return [wrap(v), wrap(i)];
  }
  argmax(dim?: number | null, keepdim = false): Tensor {
    return wrap(native.argmax(this._h, normDim(dim), is.boolean(keepdim, 'keepdim')));
  }
  argmin(dim?: number | null, keepdim = false): Tensor {
    return wrap(native.argmin(this._h, normDim(dim), is.boolean(keepdim, 'keepdim')));
  }
  /**
   * Variance over `dim` (all elements by default): the sum of squared deviations over N - `correction`; 1
   * (default) is Bessel's correction, 0 the population variance (PyTorch's `correction`, any non-negative integer).
   */
  var(dim?: number | number[] | null, options: { correction?: number; keepdim?: boolean } = {}): Tensor {
    const { correction = 1, keepdim = false } = is.options(options);
    return wrap(
      native.var(
        this._h,
        dimsArg(dim),
        is.nonNegativeInteger(correction, 'correction'),
        is.boolean(keepdim, 'keepdim'),
      ),
    );
  }
  /** Standard deviation: the square root of `var` with the same options. */
  std(dim?: number | number[] | null, options: { correction?: number; keepdim?: boolean } = {}): Tensor {
    const { correction = 1, keepdim = false } = is.options(options);
    return wrap(
      native.std(
        this._h,
        dimsArg(dim),
        is.nonNegativeInteger(correction, 'correction'),
        is.boolean(keepdim, 'keepdim'),
      ),
    );
  }
  /** p-norm over all elements or over `dim` (p = 2 by default; Infinity for the max norm). */
  norm(p = 2, dim?: number | number[] | null, keepdim = false): Tensor {
    return wrap(native.norm(this._h, is.number(p, 'p'), dimsArg(dim), is.boolean(keepdim, 'keepdim')));
  }
  cumsum(dim: number): Tensor {
    return wrap(native.cumsum(this._h, is.integer(dim, 'dim')));
  }
  cumprod(dim: number): Tensor {
    return wrap(native.cumprod(this._h, is.integer(dim, 'dim')));
  }
  sort(dim = -1, descending = false): [Tensor, Tensor] {
    const [v, i] = native.sort(this._h, is.integer(dim, 'dim'), is.boolean(descending, 'descending'));
    return [wrap(v), wrap(i)];
  }
  topk(k: number, dim = -1, largest = true, sorted = true): [Tensor, Tensor] {
    const [v, i] = native.topk(
      this._h,
      is.nonNegativeInteger(k, 'k'),
      is.integer(dim, 'dim'),
      is.boolean(largest, 'largest'),
      is.boolean(sorted, 'sorted'),
    );
    return [wrap(v), wrap(i)];
  }

  // ------------------------------------------------------------ matrix products
  matmul(other: Tensor): Tensor {
    return this.bin(B.matmul, tensorArg(other, 'other'));
  }
  mm(other: Tensor): Tensor {
    return this.bin(B.mm, tensorArg(other, 'other'));
  }
  bmm(other: Tensor): Tensor {
    return this.bin(B.bmm, tensorArg(other, 'other'));
  }
  mv(vec: Tensor): Tensor {
    return this.bin(B.mv, tensorArg(vec, 'vec'));
  }
  dot(other: Tensor): Tensor {
    return this.bin(B.dot, tensorArg(other, 'other'));
  }
  outer(other: Tensor): Tensor {
    return this.bin(B.outer, tensorArg(other, 'other'));
  }
  /** Transpose of a matrix (0-d and 1-d tensors come back as they are). */
  /** Transpose of a matrix (a 0-d or 1-d tensor is returned as is); PyTorch's t(), which refuses more than 2 dims. */
  t(): Tensor {
    if (this.ndim > 2)
      throw new RangeError(
        `t() expects a tensor with <= 2 dimensions, but self is ${this.ndim}D (use transpose(dim0, dim1) or mT)`,
      );
    return this.ndim < 2 ? this.alias() : this.transpose(0, 1);
  }
  /** Transpose of the last two dimensions. */
  get mT(): Tensor {
    return this.transpose(-2, -1);
  }
  /** A second handle to this very tensor (shares storage and autograd identity). */
  alias(): Tensor {
    return wrap(native.alias(this._h));
  }

  // ------------------------------------------------------------ shapes
  reshape(...shape: (number | number[])[]): Tensor {
    return wrap(native.reshape(this._h, shapeArgs(shape)));
  }
  view(...shape: (number | number[])[]): Tensor {
    return wrap(native.view(this._h, shapeArgs(shape)));
  }
  viewAs(other: Tensor): Tensor {
    return wrap(native.view(this._h, other.shape));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return wrap(native.transpose(this._h, is.integer(dim0, 'dim0'), is.integer(dim1, 'dim1')));
  }
  permute(...dims: (number | number[])[]): Tensor {
    return wrap(native.permute(this._h, dimList(dims, 'dims')));
  }
  squeeze(dim?: number): Tensor {
    return wrap(native.squeeze(this._h, normDim(dim)));
  }
  unsqueeze(dim: number): Tensor {
    return wrap(native.unsqueeze(this._h, is.integer(dim, 'dim')));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return wrap(native.flatten(this._h, is.integer(startDim, 'startDim'), is.integer(endDim, 'endDim')));
  }
  expand(...shape: (number | number[])[]): Tensor {
    return wrap(native.expand(this._h, shapeArgs(shape)));
  }
  expandAs(other: Tensor): Tensor {
    return wrap(native.expand(this._h, other.shape));
  }
  repeat(...reps: (number | number[])[]): Tensor {
    return wrap(native.repeat(this._h, shapeArgs(reps, 'repeats')));
  }
  split(splitSize: number | number[], dim = 0): Tensor[] {
    if (typeof splitSize === 'number') is.positiveInteger(splitSize, 'splitSize');
    else is.shape(splitSize, 'splitSize');
    return native.split(this._h, splitSize, is.integer(dim, 'dim')).map(wrap);
  }
  chunk(chunks: number, dim = 0): Tensor[] {
    return native.chunk(this._h, is.positiveInteger(chunks, 'chunks'), is.integer(dim, 'dim')).map(wrap);
  }
  unbind(dim = 0): Tensor[] {
    return native.unbind(this._h, is.integer(dim, 'dim')).map(wrap);
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return wrap(
      native.narrow(
        this._h,
        is.integer(dim, 'dim'),
        is.integer(start, 'start'),
        is.nonNegativeInteger(length, 'length'),
      ),
    );
  }
  select(dim: number, index: number): Tensor {
    return wrap(native.select(this._h, is.integer(dim, 'dim'), is.integer(index, 'index')));
  }
  /** Python's t[start:end:step] along `dim`. */
  slice(dim: number, start?: number | null, end?: number | null, step = 1): Tensor {
    return wrap(
      native.slice(
        this._h,
        is.integer(dim, 'dim'),
        optInt(start, 'start'),
        optInt(end, 'end'),
        is.positiveInteger(step, 'step'),
      ),
    );
  }
  /**
   * Basic indexing, one spec per leading dimension: `t.index(0)` is t[0], `t.index(null, [1, 3])` is t[:, 1:3],
   * `t.index([null, null, 2])` is t[::2], `t.index('...', 0)` is t[..., 0], and a Tensor of indices or a bool mask
   * indexes like PyTorch's advanced indexing (one tensor index).
   */
  index(...specs: IndexSpec[]): Tensor {
    const ell = specs.indexOf('...');
    if (ell >= 0 && specs.lastIndexOf('...') !== ell) throw new RangeError('index() takes at most one "..."');
    // As PyTorch's applySlicing: numbers select and slices narrow right away; tensor indices are gathered, one
    // entry per indexed dimension (-1 for a dimension left whole), and applied together by one advanced index, so
    // several index tensors pair up elementwise and the result's indexed dimensions land where PyTorch puts them.
    const consumes = (s: IndexSpec): number =>
      s instanceof Tensor && s.dtype === 'bool' ? Math.max(s.ndim, 1) : s === '...' ? 0 : 1;
    let cur: Tensor = this.alias();
    const picks: Handle[] = [];
    let advanced = false;
    let dim = 0;
    try {
      for (let k = 0; k < specs.length; k++) {
        const s = specs[k];
        if (s === '...') {
          // the dimensions the specs after '...' do not take (a number takes one, as it selects)
          const to = cur.ndim - specs.slice(k + 1).reduce<number>((n, x) => n + consumes(x), 0);
          for (; dim < to; dim++) picks.push(-1);
          continue;
        }
        if (typeof s === 'number') {
          const next = cur.select(dim, s);
          cur.dispose();
          cur = next;
        } else if (s === null || s === undefined) {
          picks.push(-1);
          dim++;
        } else if (Array.isArray(s)) {
          const next = cur.slice(dim, s[0] ?? null, s[1] ?? null, s[2] ?? 1);
          cur.dispose();
          cur = next;
          picks.push(-1);
          dim++;
        } else if (s instanceof Tensor) {
          if (s.isDisposed) throw new TypeError(`specs[${k}] was disposed: it cannot be used any more`);
          picks.push(s._h);
          advanced = true;
          dim += consumes(s);
        } else throw typeError('a number, null, [start, end, step], a Tensor or "..."', `specs[${k}]`, s);
      }
      if (advanced) {
        while (picks[picks.length - 1] === -1) picks.pop();
        const next = wrap(native.indexTensors(cur._h, picks));
        cur.dispose();
        cur = next;
      }
    } catch (err) {
      cur.dispose();
      throw err;
    }
    return cur;
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return wrap(native.indexSelect(this._h, is.integer(dim, 'dim'), tensorArg(index, 'index')._h));
  }
  gather(dim: number, index: Tensor): Tensor {
    return wrap(native.gather(this._h, is.integer(dim, 'dim'), tensorArg(index, 'index')._h));
  }
  scatter(dim: number, index: Tensor, src: Tensor): Tensor {
    return wrap(
      native.scatter(this._h, is.integer(dim, 'dim'), tensorArg(index, 'index')._h, tensorArg(src, 'src')._h),
    );
  }
  scatterAdd(dim: number, index: Tensor, src: Tensor): Tensor {
    return wrap(
      native.scatterAdd(this._h, is.integer(dim, 'dim'), tensorArg(index, 'index')._h, tensorArg(src, 'src')._h),
    );
  }
  maskedFill(mask: Tensor, value: Scalar): Tensor {
    operand(value, 'value');
    return wrap(native.maskedFill(this._h, tensorArg(mask, 'mask')._h, value));
  }
  maskedSelect(mask: Tensor): Tensor {
    return wrap(native.maskedSelect(this._h, tensorArg(mask, 'mask')._h));
  }
  nonzero(): Tensor {
    return wrap(native.nonzero(this._h));
  }
  tril(diagonal = 0): Tensor {
    return wrap(native.tril(this._h, is.integer(diagonal, 'diagonal')));
  }
  triu(diagonal = 0): Tensor {
    return wrap(native.triu(this._h, is.integer(diagonal, 'diagonal')));
  }
  diag(diagonal = 0): Tensor {
    return wrap(native.diag(this._h, is.integer(diagonal, 'diagonal')));
  }
  diagonal(offset = 0, dim1 = 0, dim2 = 1): Tensor {
    return wrap(
      native.diagonal(this._h, is.integer(offset, 'offset'), is.integer(dim1, 'dim1'), is.integer(dim2, 'dim2')),
    );
  }
  trace(): Tensor {
    return wrap(native.trace(this._h));
  }
  flip(...dims: (number | number[])[]): Tensor {
    return wrap(native.flip(this._h, dimList(dims, 'dims')));
  }
  /** Rolls along `dims` by `shifts` (as many of each); without dims, the flattened tensor rolls and keeps its shape (torch.roll). */
  roll(shifts: number | number[], dims?: number | number[] | null): Tensor {
    const s = intOrInts(shifts, 'shifts');
    const d = dims === undefined || dims === null ? [] : intOrInts(dims, 'dims');
    if (d.length === 0 ? s.length !== 1 : s.length !== d.length)
      throw new RangeError(
        `roll: shifts (${s.length}) and dims (${d.length}) must have the same number of entries (one shift without dims)`,
      );
    return wrap(native.roll(this._h, s, d));
  }
}
