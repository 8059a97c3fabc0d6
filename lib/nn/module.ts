/**
 * nn.Module and nn.Parameter, after torch/nn/modules/module.py.
 *
 * Registration (no Proxy). A module keeps three ordered registries: parameters, buffers and submodules. Entries get
 * there in two ways, and both end in the same place:
 *  - explicitly: `this.registerParameter('weight', t)`, `this.registerBuffer('runningMean', t)`,
 *    `this.registerModule('fc', m)` (what the built-in layers do in their constructors);
 *  - automatically: an own property whose value is a `Parameter` or a `Module` (a class field such as
 *    `fc1 = new nn.Linear(784, 100)`) is registered the first time the registries are read (parameters(),
 *    stateDict(), toString(), train(), to(), ...), in property order. Plain Tensors are never registered
 *    automatically (use registerBuffer), nor are arrays of modules (use ModuleList).
 * Registering turns the property into an accessor backed by the registry, so a later `this.fc = other` or
 * `this.bias = null` updates the registry, as PyTorch's __setattr__ does. In TypeScript declare such properties with
 * `declare weight: Parameter;` (or as class fields initialised with the value).
 *
 * Ownership. A module owns the tensors in its registries: they are exempt from tidy() scopes and `dispose()` frees
 * them (and their gradients). Giving a plain Tensor to `registerParameter` hands it over: its handle is disposed and a
 * Parameter sharing its storage takes its place. A tensor replaced through assignment is no longer the module's.
 *
 * Calling. `forward(...)` holds the computation; `call(...)` runs the forward pre-hooks, `forward`, and the forward
 * hooks, and is how a module should be invoked (`model.call(x)`, PyTorch's `model(x)`). Calling `forward` directly
 * skips the hooks. A forward returns tensors its caller owns (a new handle even when the values are the input's) and
 * never disposes its inputs.
 */
import { Tensor, checkDevice, type Device } from '../tensor.js';
import { native } from '../native.js';
import { noGrad, isGradEnabled } from '../autograd.js';
import { dispose } from '../scope.js';
import { TorchError, is, typeError, FREED } from '../errors.js';
import { dtypeCode, isFloating, DTYPES, type DType } from '../dtype.js';
import { addIndent } from './repr.js';
import { BackwardHookCall } from './backward_hook.js';

/**
 * A tensor that is a module parameter: a leaf with requiresGrad (by default).
 *
 * `new Parameter(data)` takes `data` over: the Parameter is a new handle to data's storage (no copy, as
 * torch.nn.Parameter) and the `data` handle is disposed, so `new Parameter(torch.randn([3]))` leaks nothing. To keep
 * using a tensor, pass `t.clone()` (independent values) or `t.alias()` (shared storage). A Parameter is long-lived
 * state: it is exempt from tidy() scopes from the start (as if kept) and is freed by its module's dispose() or by yours.
 */
export class Parameter extends Tensor {
  constructor(data: Tensor, requiresGrad = true) {
    if (!(data instanceof Tensor)) throw typeError('a Tensor', 'data', data);
    is.boolean(requiresGrad, 'requiresGrad');
    super(native.detach(data._h));
    this._kept = true;
    data._free(FREED.handedOver);
    if (requiresGrad) native.setRequiresGrad(this._h, true);
  }
  toString(): string {
    return this.isDisposed ? 'Parameter(<disposed>)' : `Parameter containing:\n${super.toString()}`;
  }
}

/** Any module, whatever its forward signature. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyModule = Module<any, any>;

/** Called before forward with the positional inputs; may return replacement inputs (an array, or one tensor). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ForwardPreHook<M = AnyModule, I extends unknown[] = any[]> = (module: M, input: I) => I | Tensor | void;
/** Called after forward; may return a replacement output. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type ForwardHook<M = AnyModule, I extends unknown[] = any[], O = any> = (
  module: M,
  input: I,
  output: O,
) => O | void;

/**
 * Called during backward once the gradients with respect to the module's inputs are computed, with them (null for
 * an input that is not a tensor requiring grad) and the gradients with respect to its outputs; may return
 * replacement input gradients. PyTorch's `register_full_backward_hook`.
 */
export type BackwardHook<M = AnyModule> = (
  module: M,
  gradInput: (Tensor | null)[],
  gradOutput: (Tensor | null)[],
) => (Tensor | null)[] | void;
/** Called during backward with the gradients with respect to the module's outputs; may return replacements. */
export type BackwardPreHook<M = AnyModule> = (module: M, gradOutput: (Tensor | null)[]) => (Tensor | null)[] | void;

let nextHookId = 0;

/** Returned by the register*Hook methods; `remove()` unregisters the hook (idempotent). */
export class RemovableHandle {
  readonly id: number;
  private readonly hooks: Map<number, unknown>;
  constructor(hooks: Map<number, unknown>) {
    this.hooks = hooks;
    this.id = nextHookId++;
  }
  remove(): void {
    this.hooks.delete(this.id);
  }
  [Symbol.dispose](): void {
    this.remove();
  }
}

type Kind = 'parameter' | 'buffer' | 'module';

/** `loadStateDict(sd, { strict: false })` reports the keys it did not find and those it did not use. */
export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** A module's state: its parameters and persistent buffers by dotted name (`fc1.weight`). */
export type StateDict = Map<string, Tensor>;

/** Module.to()'s target: a dtype (floating point only), a device, or both. */
export type ModuleTarget = DType | Device | { dtype?: DType; device?: Device };

const DEVICE_RE = /^(cpu|cuda)(:\d+)?$/;

function releaseIfOwned(t: unknown, keepIf: unknown[]): void {
  if (t instanceof Tensor && !t._kept && !keepIf.includes(t)) t.dispose();
}

/** Errors a module's call already explained (the innermost module's), so that the modules around it leave them be. */
const EXPLAINED = new WeakSet<object>();

function describeInput(v: unknown): string {
  if (v instanceof Tensor) return v.isDisposed ? 'a disposed tensor' : `[${v.shape.join(', ')}] ${v.dtype}`;
  if (Array.isArray(v)) return `an array (${v.length} elements)`;
  return v === null ? 'null' : typeof v;
}

/** The module's name as its repr's first line: `Linear(in_features=784, out_features=10, bias=True)`, `Net`. */
function layerName(m: AnyModule): string {
  const name = m.constructor?.name ?? 'Module';
  try {
    const extra = m.extraRepr();
    return extra !== '' && !extra.includes('\n') ? `${name}(${extra})` : name;
  } catch {
    return name;
  }
}

/**
 * An error thrown by a module's forward, with what a PyTorch user needs to fix it: the layer (the innermost module
 * whose call raised it, once), the shapes and dtypes it was called with, and the layer's own hint (`_inputHint`:
 * Linear's in_features, Conv2d's channels, image-shaped input into Linear). A float64 input to float32 parameters is
 * named as such. Only TorchErrors of shape and dtype and TypeErrors about the input itself are extended; the original
 * message comes first.
 */
function explainLayerError(m: AnyModule, inputs: unknown[], err: unknown): unknown {
  if (!(err instanceof Error) || EXPLAINED.has(err)) return err;
  EXPLAINED.add(err);
  const code = err instanceof TorchError ? err.code : null;
  const name = layerName(m);
  let extra: string | null = null;
  if (
    err instanceof TypeError &&
    /^Expected a Tensor for (input|x)\b/.test(err.message) &&
    !(inputs[0] instanceof Tensor)
  ) {
    const hint = Array.isArray(inputs[0])
      ? ' (make one from nested arrays with torch.tensor(data), float32 by default)'
      : inputs[0] === undefined
        ? ' (was an input left out, or is a call missing its return?)'
        : '';
    extra = `${m.constructor?.name ?? 'Module'}.call expects a Tensor as its input but received ${describeInput(inputs[0])}${hint}`;
  } else if (code === 'SHAPE_MISMATCH' || code === 'DTYPE_MISMATCH' || code === 'TORCH_ERROR') {
    const called = `${name} was called with ${inputs.map(describeInput).join(', ') || 'no inputs'}`;
    const hints: string[] = [];
    const floatInputs = inputs.filter((t): t is Tensor => t instanceof Tensor && !t.isDisposed && isFloating(t.dtype));
    let paramDtype: DType | null = null;
    for (const [, p] of m.namedParameters()) {
      if (!p.isDisposed) paramDtype = p.dtype;
      break;
    }
    const mixed = floatInputs.find((t) => paramDtype !== null && t.dtype !== paramDtype);
    if (mixed !== undefined && paramDtype !== null)
      hints.push(
        `the input is ${mixed.dtype} but the layer's parameters are ${paramDtype}: convert the input ` +
          `(x.to('${paramDtype}'); a Float64Array or { dtype: 'float64' } makes float64 tensors) or the model ` +
          `(model.to('${mixed.dtype}'))`,
      );
    const own = (m as { _inputHint?: (...a: unknown[]) => string | null })._inputHint;
    if (mixed === undefined && typeof own === 'function') {
      const h = own.apply(m, inputs);
      if (h) hints.push(h);
    }
    if (code === 'TORCH_ERROR' && hints.length === 0) return err;
    extra = hints.length > 0 ? `${called}: ${hints.join('; ')}` : called;
  }
  if (extra === null) return err;
  const before = err.message;
  err.message = `${before}\n  ${extra}`;
  if (typeof err.stack === 'string' && err.stack.includes(before)) err.stack = err.stack.replace(before, err.message);
  return err;
}

/**
 * Base class of every layer and model. Subclasses create their parameters in the constructor, initialise them in
 * `resetParameters()` and implement `forward`; type parameters give forward's inputs and output (one Tensor by default).
 *
 *   class Net extends nn.Module {
 *     fc1 = new nn.Linear(784, 100);
 *     fc2 = new nn.Linear(100, 10);
 *     forward(x: Tensor): Tensor {
 *       return tidy(() => this.fc2.call(this.fc1.call(x).relu()));
 *     }
 *   }
 *   const net = new Net();
 *   const y = net.call(x);           // runs hooks and forward
 *   net.namedParameters();           // [['fc1.weight', ...], ['fc1.bias', ...], ['fc2.weight', ...], ...]
 *   net.dispose();
 */
export abstract class Module<I extends unknown[] = [Tensor], O = Tensor> {
  /** Training mode (true) or evaluation mode (false); set it with train()/eval(). */
  training = true;
  /** @internal */ readonly _parameters = new Map<string, Parameter | null>();
  /** @internal */ readonly _buffers = new Map<string, Tensor | null>();
  /** @internal */ readonly _modules = new Map<string, AnyModule | null>();
  /** @internal buffers left out of stateDict() */ readonly _nonPersistent = new Set<string>();
  /** @internal */ readonly _forwardPreHooks = new Map<number, ForwardPreHook>();
  /** @internal */ readonly _forwardHooks = new Map<number, ForwardHook>();
  /** @internal */ readonly _backwardHooks = new Map<number, BackwardHook>();
  /** @internal */ readonly _backwardPreHooks = new Map<number, BackwardPreHook>();

  abstract forward(...inputs: I): O;

  /** Runs the forward pre-hooks, forward() and the forward hooks: PyTorch's `module(x)`. */
  call(...inputs: I): O {
    let input = inputs;
    if (this._forwardPreHooks.size > 0) {
      for (const hook of [...this._forwardPreHooks.values()]) {
        const r = hook(this, input);
        if (r !== undefined && r !== null) input = (Array.isArray(r) ? r : [r]) as I;
      }
    }
    // Backward hooks wrap the inputs and outputs in identity nodes (see BackwardHookCall); without any, nothing more.
    let bw: BackwardHookCall | null = null;
    if ((this._backwardHooks.size > 0 || this._backwardPreHooks.size > 0) && isGradEnabled()) {
      bw = new BackwardHookCall(this, [...this._backwardHooks.values()], [...this._backwardPreHooks.values()]);
      const wrapped = bw.setupInputs(input);
      if (wrapped !== input) input = wrapped as I;
    }
    let out: O;
    try {
      out = this.forward(...input);
      if (this._forwardHooks.size > 0) {
        for (const hook of [...this._forwardHooks.values()]) {
          const r = hook(this, input, out) as O | undefined;
          if (r !== undefined && r !== null && r !== out) {
            // The replaced output will not reach the caller: free our handle to it.
            releaseIfOwned(out, [r, ...inputs]);
            out = r;
          }
        }
      }
      if (bw !== null) out = bw.setupOutputs(out, inputs);
    } catch (err) {
      if (input !== inputs) for (const t of input) releaseIfOwned(t, inputs);
      throw explainLayerError(this, inputs, err);
    }
    // Inputs substituted by pre-hooks (or by backward-hook views) are ours to free (the caller's own never are).
    if (input !== inputs) for (const t of input) releaseIfOwned(t, [out, ...inputs]);
    return out;
  }

  // ------------------------------------------------------------ registration
  /**
   * Adds (or replaces, or with null clears) a parameter. A plain Tensor is handed over: it is disposed and a
   * Parameter sharing its storage is registered. Returns the registered Parameter.
   */
  registerParameter(name: string, param: Tensor | null): Parameter | null {
    this._checkName(name, 'parameter');
    if (param !== null && !(param instanceof Tensor)) throw typeError('a Tensor, a Parameter or null', 'param', param);
    const p = param === null || param instanceof Parameter ? param : new Parameter(param);
    this._install('parameter', name, p);
    return p;
  }

  /**
   * Adds (or replaces, or with null clears) a buffer: state that is not a parameter (BatchNorm's running statistics).
   * The module takes ownership. Non-persistent buffers are left out of stateDict().
   */
  registerBuffer(name: string, tensor: Tensor | null, options: { persistent?: boolean } = {}): Tensor | null {
    const { persistent = true } = is.options(options);
    this._checkName(name, 'buffer');
    if (tensor !== null && !(tensor instanceof Tensor)) throw typeError('a Tensor or null', 'tensor', tensor);
    if (is.boolean(persistent, 'persistent')) this._nonPersistent.delete(name);
    else this._nonPersistent.add(name);
    this._install('buffer', name, tensor);
    return tensor;
  }

  /** Adds (or replaces, or with null clears) a child module. */
  registerModule<M extends AnyModule | null>(name: string, module: M): M {
    this._checkName(name, 'module');
    if (module !== null && !(module instanceof Module)) throw typeError('a Module or null', 'module', module);
    this._install('module', name, module);
    return module;
  }

  private _registry(kind: Kind): Map<string, unknown> {
    return kind === 'parameter' ? this._parameters : kind === 'buffer' ? this._buffers : this._modules;
  }

  private _checkName(name: unknown, kind: Kind): void {
    this._sync();
    if (typeof name !== 'string') throw typeError('a string', `${kind} name`, name);
    if (name === '') throw new RangeError(`${kind} name can't be empty string ""`);
    if (name.includes('.')) throw new RangeError(`${kind} name can't contain ".", got: ${name}`);
    for (const k of ['parameter', 'buffer', 'module'] as const)
      if (k !== kind && this._registry(k).has(name))
        throw new RangeError(`attribute '${name}' already exists (as a ${k})`);
    if (this._registry(kind).has(name)) return;
    const own = Object.getOwnPropertyDescriptor(this, name);
    // An own data property may be claimed only when it is empty or holds this very value (a class field).
    if (
      own !== undefined &&
      !(
        'value' in own &&
        (own.value === undefined || own.value === null || own.value instanceof Module || own.value instanceof Parameter)
      )
    )
      throw new RangeError(`attribute '${name}' already exists`);
    if (own === undefined && name in this) throw new RangeError(`attribute '${name}' already exists`);
  }

  private _install(kind: Kind, name: string, value: Tensor | AnyModule | null): void {
    const reg = this._registry(kind);
    if (value instanceof Tensor) value._kept = true;
    reg.set(name, value);
    const desc = Object.getOwnPropertyDescriptor(this, name);
    if (desc !== undefined && desc.get !== undefined) return; // accessor already installed
    Object.defineProperty(this, name, {
      configurable: true,
      enumerable: true,
      get: () => reg.get(name),
      set: (v: unknown) => {
        if (kind === 'parameter' && v !== null && !(v instanceof Parameter))
          throw new TypeError(`cannot assign ${describeType(v)} as parameter '${name}' (Parameter or null expected)`);
        if (kind === 'buffer' && v !== null && !(v instanceof Tensor))
          throw new TypeError(`cannot assign ${describeType(v)} as buffer '${name}' (Tensor or null expected)`);
        if (kind === 'module' && v !== null && !(v instanceof Module))
          throw new TypeError(`cannot assign ${describeType(v)} as child module '${name}' (Module or null expected)`);
        if (v instanceof Tensor) v._kept = true;
        reg.set(name, v as never);
      },
    });
  }

  /** Registers own properties holding a Parameter or a Module that are not registered yet. */
  private _sync(): void {
    for (const key of Object.keys(this)) {
      const d = Object.getOwnPropertyDescriptor(this, key);
      if (d === undefined || !('value' in d)) continue;
      const v: unknown = d.value;
      if (v instanceof Parameter) {
        if (!this._buffers.has(key) && !this._modules.has(key)) this._install('parameter', key, v);
      } else if (v instanceof Module) {
        if (!this._parameters.has(key) && !this._buffers.has(key)) this._install('module', key, v);
      }
    }
  }

  // ------------------------------------------------------------ traversal
  /** This module and every descendant, depth first, each once, with dotted names ('' for this one). */
  namedModules(options: { prefix?: string; removeDuplicate?: boolean } = {}): [string, AnyModule][] {
    const { prefix = '', removeDuplicate = true } = is.options(options);
    const out: [string, AnyModule][] = [];
    const memo = new Set<AnyModule>();
    const visit = (m: AnyModule, p: string): void => {
      if (removeDuplicate) {
        if (memo.has(m)) return;
        memo.add(m);
      }
      out.push([p, m]);
      m._sync();
      for (const [n, c] of m._modules) if (c !== null) visit(c, p === '' ? n : `${p}.${n}`);
    };
    visit(this, prefix);
    return out;
  }
  modules(): AnyModule[] {
    return this.namedModules().map(([, m]) => m);
  }
  /** Immediate children with their names. */
  namedChildren(): [string, AnyModule][] {
    this._sync();
    const memo = new Set<AnyModule>();
    const out: [string, AnyModule][] = [];
    for (const [n, c] of this._modules) {
      if (c === null || memo.has(c)) continue;
      memo.add(c);
      out.push([n, c]);
    }
    return out;
  }
  children(): AnyModule[] {
    return this.namedChildren().map(([, m]) => m);
  }

  private _namedTensors<T extends Tensor>(
    pick: (m: AnyModule) => Map<string, T | null>,
    prefix: string,
    recurse: boolean,
  ): [string, T][] {
    const mods: [string, AnyModule][] = recurse ? this.namedModules({ prefix }) : [[prefix, this]];
    if (!recurse) this._sync();
    const memo = new Set<T>();
    const out: [string, T][] = [];
    for (const [mp, m] of mods) {
      for (const [n, t] of pick(m)) {
        if (t === null || memo.has(t)) continue;
        memo.add(t);
        out.push([mp === '' ? n : `${mp}.${n}`, t]);
      }
    }
    return out;
  }
  /** Parameters with dotted names as PyTorch (`0.weight`, `layer1.0.conv1.weight`), each shared one once. */
  namedParameters(options: { prefix?: string; recurse?: boolean } = {}): [string, Parameter][] {
    const { prefix = '', recurse = true } = is.options(options);
    return this._namedTensors((m) => m._parameters, prefix, recurse);
  }
  parameters(options: { recurse?: boolean } = {}): Parameter[] {
    const { recurse = true } = is.options(options);
    return this.namedParameters({ recurse }).map(([, p]) => p);
  }
  namedBuffers(options: { prefix?: string; recurse?: boolean } = {}): [string, Tensor][] {
    const { prefix = '', recurse = true } = is.options(options);
    return this._namedTensors((m) => m._buffers, prefix, recurse);
  }
  buffers(options: { recurse?: boolean } = {}): Tensor[] {
    const { recurse = true } = is.options(options);
    return this.namedBuffers({ recurse }).map(([, b]) => b);
  }

  /** Calls fn on every submodule (children first) and then on this module; returns this (torch's Module.apply). */
  apply(fn: (module: AnyModule) => void): this {
    is.function(fn, 'fn');
    for (const c of this.children()) c.apply(fn);
    fn(this);
    return this;
  }

  // ------------------------------------------------------------ modes and gradients
  /** Sets training mode on this module and every descendant (affects Dropout and BatchNorm). Returns this. */
  train(mode = true): this {
    is.boolean(mode, 'mode');
    for (const m of this.modules()) m.training = mode;
    return this;
  }
  /** Evaluation mode: train(false). */
  eval(): this {
    return this.train(false);
  }
  /** Turns gradient recording on or off for every parameter. Returns this. */
  requiresGrad_(requiresGrad = true): this {
    is.boolean(requiresGrad, 'requiresGrad');
    for (const p of this.parameters()) p.requiresGrad = requiresGrad;
    return this;
  }
  /** Clears every parameter's gradient: sets it to null (default), or zeroes it in place with {setToNone: false}. */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    const { setToNone = true } = is.options(options);
    is.boolean(setToNone, 'setToNone');
    for (const p of this.parameters()) {
      if (setToNone) p.grad = null;
      else p.grad?.zero_();
    }
  }

  // ------------------------------------------------------------ conversion
  /**
   * Converts parameters and buffers to a dtype (floating-point tensors only, as PyTorch: integer buffers such as
   * numBatchesTracked keep theirs) and/or a device. As in PyTorch, parameters keep their identity (their data is
   * replaced, gradients are converted along), so an optimizer built before still holds them; its state tensors
   * made before are not converted, so build optimizers after (as PyTorch advises). Buffers are replaced by
   * converted tensors (the old ones are disposed). Returns this.
   */
  to(target: ModuleTarget): this {
    let dtype: DType | undefined;
    let device: Device | undefined;
    if (typeof target === 'string') {
      if (DEVICE_RE.test(target)) device = checkDevice(target);
      else {
        dtypeCode(target, 'target');
        dtype = target as DType;
      }
    } else if (target !== null && typeof target === 'object') {
      if (target.dtype !== undefined) {
        dtypeCode(target.dtype, 'dtype');
        dtype = target.dtype;
      }
      if (target.device !== undefined) device = checkDevice(target.device);
    } else throw typeError('a dtype, a device or {dtype, device}', 'target', target);
    if (dtype !== undefined) {
      const canonical = DTYPES[dtypeCode(dtype)]!;
      if (!isFloating(canonical))
        throw new TypeError(`nn.Module.to only accepts floating point dtypes, but got desired dtype=${dtype}`);
      dtype = canonical;
    }
    const wants = (t: Tensor): boolean =>
      (dtype !== undefined && isFloating(t.dtype) && t.dtype !== dtype) ||
      (device !== undefined && t.device !== device && !(device === 'cuda' && t.device === 'cuda:0'));
    const convert = (t: Tensor): Tensor =>
      t.to({ dtype: dtype !== undefined && isFloating(t.dtype) ? dtype : undefined, device });
    const done = new Map<Tensor, Tensor>(); // keeps shared tensors shared
    for (const m of this.modules()) {
      for (const [, p] of m._parameters) {
        if (p === null || !wants(p)) continue;
        if (done.has(p)) continue; // shared with a module converted already
        const values = p.detach();
        const data = convert(values);
        native.setData(p._h, data._h);
        dispose([values, data]);
        const g = p.grad;
        if (g !== null) {
          const ng = convert(g);
          p.grad = ng;
          ng.dispose();
        }
        done.set(p, p);
      }
      for (const [n, b] of m._buffers) {
        if (b === null || !wants(b)) continue;
        let nb = done.get(b);
        if (nb === undefined) {
          nb = convert(b);
          nb._kept = true;
          done.set(b, nb);
          b._free(FREED.module);
        }
        m._buffers.set(n, nb);
      }
    }
    return this;
  }
  float(): this {
    return this.to('float32');
  }
  double(): this {
    return this.to('float64');
  }

  // ------------------------------------------------------------ state
  /**
   * Parameters and persistent buffers by dotted name, in PyTorch's OrderedDict order (each module's parameters,
   * then its buffers, then its children's entries). Values are new detached handles sharing the module's storage,
   * owned by the caller (`dispose(sd)` frees them); with {keepVars: true} they are the module's own tensors (not to
   * be disposed).
   */
  stateDict(options: { prefix?: string; keepVars?: boolean } = {}): StateDict {
    const { prefix = '', keepVars = false } = is.options(options);
    const out: StateDict = new Map();
    const save = (m: AnyModule, p: string): void => {
      m._sync();
      for (const [n, t] of m._parameters) if (t !== null) out.set(p + n, keepVars ? t : t.detach());
      for (const [n, t] of m._buffers)
        if (t !== null && !m._nonPersistent.has(n)) out.set(p + n, keepVars ? t : t.detach());
      for (const [n, c] of m._modules) if (c !== null) save(c, `${p}${n}.`);
    };
    save(this, prefix);
    return out;
  }

  /**
   * Copies values from a state dict (a Map or a record of name -> Tensor) into the parameters and buffers, converting
   * dtype and device. Nothing is copied when anything is wrong: with strict (the default) missing and unexpected keys
   * are errors; shape mismatches always are. The TorchError message follows PyTorch's:
   *
   *   Error(s) in loading state_dict for Sequential:
   *   	Missing key(s) in state_dict: "2.weight", "2.bias".
   *   	Unexpected key(s) in state_dict: "3.weight".
   *   	size mismatch for 0.weight: copying a param with shape [4, 3] from checkpoint, the shape in current model is [5, 3].
   */
  loadStateDict(
    stateDict: Map<string, Tensor> | Record<string, Tensor>,
    options: { strict?: boolean } = {},
  ): LoadStateDictResult {
    const { strict = true } = is.options(options);
    is.boolean(strict, 'strict');
    let given: Map<string, unknown>;
    if (stateDict instanceof Map) given = stateDict as Map<string, unknown>;
    else if (stateDict !== null && typeof stateDict === 'object') given = new Map(Object.entries(stateDict));
    else throw typeError('a Map or a record of name -> Tensor', 'stateDict', stateDict);
    for (const [k, v] of given) if (!(v instanceof Tensor)) throw typeError('a Tensor', `stateDict["${k}"]`, v);
    const own = this.stateDict({ keepVars: true });
    const missingKeys = [...own.keys()].filter((k) => !given.has(k));
    const unexpectedKeys = [...given.keys()].filter((k) => !own.has(k));
    const mismatch: string[] = [];
    for (const [k, t] of own) {
      const src = given.get(k) as Tensor | undefined;
      if (src === undefined) continue;
      const a = src.shape,
        b = t.shape;
      if (a.length !== b.length || a.some((d, i) => d !== b[i]))
        mismatch.push(
          `size mismatch for ${k}: copying a param with shape [${a.join(', ')}] from checkpoint, the shape in current model is [${b.join(', ')}].`,
        );
    }
    const errors: string[] = [];
    if (strict && missingKeys.length > 0)
      errors.push(`Missing key(s) in state_dict: ${missingKeys.map((k) => `"${k}"`).join(', ')}.`);
    if (strict && unexpectedKeys.length > 0)
      errors.push(`Unexpected key(s) in state_dict: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}.`);
    errors.push(...mismatch);
    if (errors.length > 0)
      throw new TorchError(
        `Error(s) in loading state_dict for ${this.constructor.name}:\n\t${errors.join('\n\t')}`,
        errors.length === mismatch.length ? 'SHAPE_MISMATCH' : 'TORCH_ERROR',
      );
    noGrad(() => {
      for (const [k, t] of own) {
        const src = given.get(k) as Tensor | undefined;
        if (src !== undefined && src !== t) t.copy_(src);
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  // ------------------------------------------------------------ hooks
  /** `hook(module, inputs)` runs before forward and may return replacement inputs. */
  registerForwardPreHook(hook: (module: this, input: I) => I | Tensor | void): RemovableHandle {
    is.function(hook, 'hook');
    const h = new RemovableHandle(this._forwardPreHooks);
    this._forwardPreHooks.set(h.id, hook as unknown as ForwardPreHook);
    return h;
  }
  /**
   * `hook(module, inputs, output)` runs after forward and may return a replacement output. The tensors it receives
   * are valid during the call only (a container frees intermediate outputs): take a handle (`alias()`, `detach()`,
   * `clone()`, then `keep()`) to hold one longer. See captureOutputs() for recording layer inputs and outputs.
   */
  registerForwardHook(hook: (module: this, input: I, output: O) => O | void): RemovableHandle {
    is.function(hook, 'hook');
    const h = new RemovableHandle(this._forwardHooks);
    this._forwardHooks.set(h.id, hook as unknown as ForwardHook);
    return h;
  }

  /**
   * `hook(module, gradInput, gradOutput)` runs during backward once the gradients with respect to this module's
   * inputs are computed (PyTorch's `register_full_backward_hook`): gradInput has one entry per positional input
   * (null where it is not a tensor requiring grad; zeros for one the module did not use), gradOutput one per output
   * (null for an output the loss does not use). It may return a replacement gradInput (an array of the same length;
   * null: no gradient). When no input requires grad (a first layer fed with data) it runs once gradOutput is known,
   * with gradInput all null, and may not replace it. It runs once per call of the module and per backward pass: a
   * layer used twice in a forward pass runs it twice, and a backward through a retained graph runs it again. The
   * hooks registered when the module is called are those that run. The tensors live during the hook only
   * (`clone()` and `keep()` what must outlive it); hooks run on the thread that called backward() (CPU graphs).
   * Calling a module with backward hooks (and grad mode on) passes its inputs and outputs through identity
   * autograd nodes, as PyTorch does (see backward_hook.ts); without them `call()` costs nothing more.
   *
   *   lin.registerFullBackwardHook((m, [gx], [gy]) => { record(gy); });   // dL/dy of the layer's output
   */
  registerFullBackwardHook(
    hook: (module: this, gradInput: (Tensor | null)[], gradOutput: (Tensor | null)[]) => (Tensor | null)[] | void,
  ): RemovableHandle {
    is.function(hook, 'hook');
    const h = new RemovableHandle(this._backwardHooks);
    this._backwardHooks.set(h.id, hook as unknown as BackwardHook);
    return h;
  }
  /**
   * `hook(module, gradOutput)` runs during backward when the gradients with respect to this module's outputs are
   * computed, before they flow into it (PyTorch's `register_full_backward_pre_hook`), once per call and backward
   * pass, with every output's gradient (null for an output the loss does not use). It may return replacements (an
   * array of the same length), which flow on and are the gradOutput the backward hooks see.
   */
  registerFullBackwardPreHook(
    hook: (module: this, gradOutput: (Tensor | null)[]) => (Tensor | null)[] | void,
  ): RemovableHandle {
    is.function(hook, 'hook');
    const h = new RemovableHandle(this._backwardPreHooks);
    this._backwardPreHooks.set(h.id, hook as unknown as BackwardPreHook);
    return h;
  }

  // ------------------------------------------------------------ lifecycle and printing
  /** Frees every parameter and buffer of this module and its descendants (with their gradients) and drops hooks. */
  dispose(): void {
    for (const m of this.modules()) {
      for (const p of m._parameters.values()) p?._free(FREED.module);
      for (const b of m._buffers.values()) b?._free(FREED.module);
      m._forwardPreHooks.clear();
      m._forwardHooks.clear();
      m._backwardHooks.clear();
      m._backwardPreHooks.clear();
    }
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** The text between the parentheses of this module's line in toString() (PyTorch's extra_repr). */
  extraRepr(): string {
    return '';
  }

  /** A tree as PyTorch's repr: `Sequential(\n  (0): Linear(in_features=784, out_features=10, bias=True)\n  (1): ReLU()\n)`. */
  toString(): string {
    this._sync();
    const extra = this.extraRepr();
    const extraLines = extra === '' ? [] : extra.split('\n');
    const childLines: string[] = [];
    for (const [n, c] of this._modules) childLines.push(`(${n}): ${addIndent(c === null ? 'None' : c.toString(), 2)}`);
    const lines = [...extraLines, ...childLines];
    let s = `${this.constructor.name}(`;
    if (lines.length > 0) {
      if (extraLines.length === 1 && childLines.length === 0) s += extraLines[0];
      else s += `\n  ${lines.join('\n  ')}\n`;
    }
    return s + ')';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

function describeType(v: unknown): string {
  if (v === null) return 'null';
  if (v instanceof Tensor) return 'a Tensor';
  if (typeof v === 'object') return `an object of class ${(v as object).constructor?.name ?? 'Object'}`;
  return `a value of type ${typeof v}`;
}
