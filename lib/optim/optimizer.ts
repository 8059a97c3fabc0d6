/**
 * The optimizer base class, as torch/optim/optimizer.py: `defaults`, `paramGroups` (each group carries its own
 * copy of every option), per-parameter `state` created lazily on the first step, `zeroGrad`, `addParamGroup`,
 * `stateDict` / `loadStateDict` mapping parameters to their position (as PyTorch does, so a state dict can be
 * loaded into an optimizer over other, identically shaped parameters), and `dispose` for the state tensors.
 *
 * A subclass checks its options in `checkOptions` (called for the defaults and for every group) and updates one
 * group in `stepGroup`; the base class does the rest.
 */
import { Tensor } from '../tensor.js';
import { keep } from '../scope.js';
import { enableGrad } from '../autograd.js';
import { is, typeError, FREED } from '../errors.js';
import { isFloating, type DType } from '../dtype.js';
import type { SampleableLikelihood } from '../likelihoods.js';

/** Per-parameter optimizer state: tensors owned by the optimizer, and numbers (such as Adam's `step`). */
export type ParamState = Record<string, Tensor | number>;

/** Options every optimizer has. */
export interface BaseOptions {
  lr: number;
}

/**
 * A parameter group: its parameters and its own value of every option. As in PyTorch a group may carry other keys
 * too (a learning-rate scheduler adds `initialLr`).
 */
export type ParamGroup<O extends BaseOptions = BaseOptions> = O & { params: Tensor[]; initialLr?: number };

/** A group as given to a constructor or to `addParamGroup`: options it leaves out take the defaults. */
export type ParamGroupInput<O extends BaseOptions = BaseOptions> = Partial<O> & { params: Iterable<Tensor> | Tensor };

/** What an optimizer is built over: parameters, or parameter groups. */
export type Params<O extends BaseOptions = BaseOptions> = Iterable<Tensor> | ParamGroupInput<O>[];

/** The serializable state of an optimizer (PyTorch's layout, camelCase keys). */
export interface OptimizerStateDict {
  /** Per-parameter state keyed by the parameter's position over all groups, in order. */
  state: Record<number, ParamState>;
  /** Every group's options, with `params` holding the positions of its parameters. */
  paramGroups: (Record<string, unknown> & { params: number[] })[];
}

/**
 * Rejects options a constructor does not know (a misspelt `weight_decay` would otherwise be silently ignored,
 * where Python raises for an unexpected keyword argument).
 */
export function checkKnownOptions(options: unknown, known: readonly string[], owner: string): void {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options))
    throw typeError('an options object', 'options', options);
  for (const k of Object.keys(options))
    if (!known.includes(k))
      throw new TypeError(`${owner}: unknown option '${k}' (expected one of ${known.join(', ')})`);
}

function isTensorIterable(x: unknown): x is Iterable<unknown> {
  return x !== null && typeof x === 'object' && typeof (x as Iterable<unknown>)[Symbol.iterator] === 'function';
}

function shapeText(s: number[]): string {
  return `[${s.join(', ')}]`;
}

/**
 * The per-parameter state an optimizer keeps, so that `loadStateDict` can reject another optimizer's state (an
 * Adam state dict loaded into SGD) or a corrupt one: its tensor entries, its counters (non-negative integers such
 * as Adam's `step`), and which of them every parameter's state must have.
 */
export interface StateSchema {
  tensors: readonly string[];
  counts?: readonly string[];
  required?: readonly string[];
}

/** A state entry not shaped like its parameter (see Optimizer.stateEntries). */
export interface StateEntry {
  shape: number[];
  dtype: DType;
}

/** Base class of the optimizers: parameter groups with their options, lazy per-parameter state, `step()`, `zeroGrad()`, `stateDict()` / `loadStateDict()`, as torch.optim.Optimizer. */
export abstract class Optimizer<O extends BaseOptions = BaseOptions> {
  /** The options given to the constructor, with the optimizer's defaults filled in. */
  readonly defaults: Readonly<O>;
  /** Parameter groups; a scheduler or the user may change a group's options (such as `lr`) between steps. */
  readonly paramGroups: ParamGroup<O>[] = [];
  /** Per-parameter state, created on the parameter's first step. Its tensors belong to the optimizer. */
  readonly state = new Map<Tensor, ParamState>();

  constructor(params: Params<O>, defaults: O) {
    this.checkOptions(defaults, '');
    this.defaults = Object.freeze({ ...defaults });
    if (params instanceof Tensor || !isTensorIterable(params))
      throw typeError('an iterable of Tensors or of parameter groups ({params, ...options})', 'params', params);
    const list = [...params] as unknown[];
    if (list.length === 0) throw new RangeError('optimizer got an empty parameter list');
    const groups = list.every((p) => p instanceof Tensor)
      ? [{ params: list } as unknown as ParamGroupInput<O>]
      : (list as ParamGroupInput<O>[]);
    for (const g of groups) this.addParamGroup(g);
  }

  /** Checks every option of `o`; `prefix` names where they come from in messages (e.g. 'paramGroups[1].'). */
  protected abstract checkOptions(o: O, prefix: string): void;

  /** Updates the parameters of one group from their gradients (under no-grad, natively). */
  protected abstract stepGroup(group: ParamGroup<O>, index: number): void;

  /**
   * The per-parameter state entries `loadStateDict` accepts (see StateSchema). The built-in optimizers declare
   * theirs; by default any tensor or finite number is accepted.
   */
  protected stateSchema(): StateSchema | null {
    return null;
  }

  /**
   * Tensor entries of a parameter's state that are not shaped like the parameter (the curvature factors of TNT,
   * Shampoo and KFAC), as a state dict holds them: name -> shape and dtype. A state dict has all of them or none.
   */
  protected stateEntries(_p: Tensor): Record<string, StateEntry> {
    return {};
  }

  /** A parameter's state as `stateDict()` gives it (an optimizer that packs its state unpacks it here). */
  protected exportState(_p: Tensor, s: ParamState): ParamState {
    return { ...s };
  }

  /** A parameter's state from its validated copy of a loaded entry (the inverse of exportState; owns `s`). */
  protected importState(_p: Tensor, s: ParamState): ParamState {
    return s;
  }

  /** Adds a group of parameters; options it leaves out take the defaults (torch's `add_param_group`). */
  addParamGroup(group: ParamGroupInput<O>): void {
    const where = `paramGroups[${this.paramGroups.length}]`;
    if (group === null || typeof group !== 'object' || Array.isArray(group) || group instanceof Tensor)
      throw typeError('a parameter group ({params, ...options})', where, group);
    const raw = group.params;
    const params = raw instanceof Tensor ? [raw] : isTensorIterable(raw) ? [...raw] : null;
    if (params === null) throw typeError('a Tensor or an iterable of Tensors', `${where}.params`, raw);
    params.forEach((p, i) => {
      if (!(p instanceof Tensor)) throw typeError('a Tensor', `${where}.params[${i}]`, p);
      if (p.isDisposed) throw new TypeError(`${where}.params[${i}] was disposed: it cannot be optimized`);
      if (!p.isLeaf) throw new TypeError(`${where}.params[${i}]: can't optimize a non-leaf Tensor`);
    });
    if (new Set(params).size !== params.length) throw new RangeError(`${where} contains a parameter more than once`);
    for (const g of this.paramGroups)
      for (const p of g.params)
        if (params.includes(p)) throw new RangeError('some parameters appear in more than one parameter group');
    const merged = { ...structuredClone(this.defaults), ...group, params } as ParamGroup<O>;
    this.checkOptions(merged, `${where}.`);
    this.paramGroups.push(merged);
  }

  /**
   * Called by fit() (and the experiment runner) after the forward pass and before `loss.backward()`, with the model
   * output and the likelihood the loss comes from. First-order optimizers, and Shampoo (whose statistics come from
   * the real gradient), do nothing; TNT and KFAC run their sampled backward pass when statistics are due. Returns
   * whether statistics were gathered. A hand-written loop calls `sampledBackward` (or this) itself.
   */
  beforeBackward(_output: Tensor, _likelihood?: SampleableLikelihood): boolean {
    return false;
  }

  /** Whether `beforeBackward` needs a likelihood to sample from (TNT, KFAC): fit() then requires `likelihood`. */
  get needsLikelihood(): boolean {
    return false;
  }

  /**
   * Runs the update of every group. `closure`, when given, re-evaluates the model and returns the loss; it runs
   * with gradients enabled before the update, and `step` returns what it returned.
   */
  step<L = undefined>(closure?: () => L): L | undefined {
    let loss: L | undefined;
    if (closure !== undefined) loss = enableGrad(is.function(closure, 'closure') as () => L);
    this.paramGroups.forEach((g, i) => this.stepGroup(g, i));
    return loss;
  }

  /**
   * Clears the gradients of every parameter: by default sets them to null (frees them, and the next backward
   * allocates fresh ones), or with `setToNone: false` fills them with zeros in place.
   */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    const { setToNone = true } = is.options(options);
    is.boolean(setToNone, 'setToNone');
    for (const g of this.paramGroups)
      for (const p of g.params) {
        if (setToNone) {
          p.grad = null; // also frees the parameter's cached wrapper of the old gradient
        } else {
          const grad = p.grad;
          if (grad === null) continue;
          if (grad.gradFn !== null) grad.detach_();
          else if (grad.requiresGrad) grad.requiresGrad_(false);
          grad.zero_();
        }
      }
  }

  /** The state of the parameter, created empty on first use (subclasses fill it). */
  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (s === undefined) {
      s = {};
      this.state.set(p, s);
    }
    return s;
  }

  /**
   * The optimizer's state with parameters replaced by their positions. The tensors are the optimizer's own (no
   * copy, as in PyTorch): read or save them, but do not dispose them; `loadStateDict` copies.
   */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    const paramGroups = this.paramGroups.map((g) => {
      const { params, ...options } = g;
      return {
        ...structuredClone(options as Record<string, unknown>),
        params: params.map((p) => index.set(p, index.size).size - 1),
      };
    });
    const state: Record<number, ParamState> = {};
    for (const [p, s] of this.state) {
      const i = index.get(p);
      if (i !== undefined) state[i] = this.exportState(p, s);
    }
    return { state, paramGroups };
  }

  /**
   * Loads a state dict made by `stateDict()` of an optimizer of the same kind over parameters of the same shapes,
   * grouped the same way. Everything is validated before anything changes; tensors are copied in (cast to the
   * parameter's dtype), so the caller keeps ownership of `sd` (and `opt.loadStateDict(opt.stateDict())` is
   * safe). Group options are replaced by the saved ones; an option the saved group lacks keeps its current value,
   * and keys the optimizer does not know are kept, as in PyTorch. Per-parameter state must be what this kind of
   * optimizer keeps (`stateSchema`): another optimizer's state (Adam's moments loaded into SGD) is refused, and
   * so is a step count that is not a non-negative integer.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    if (
      sd === null ||
      typeof sd !== 'object' ||
      typeof sd.state !== 'object' ||
      sd.state === null ||
      !Array.isArray(sd.paramGroups)
    )
      throw typeError('an optimizer state dict ({state, paramGroups})', 'stateDict', sd);
    const saved = sd.paramGroups;
    if (saved.length !== this.paramGroups.length)
      throw new RangeError(
        `loaded state dict has ${saved.length} parameter groups, but the optimizer has ${this.paramGroups.length}`,
      );
    const byIndex: Tensor[] = [];
    const newGroups: ParamGroup<O>[] = [];
    saved.forEach((sg, gi) => {
      const mine = this.paramGroups[gi]!;
      if (sg === null || typeof sg !== 'object' || !Array.isArray(sg.params))
        throw typeError('a parameter group with params', `stateDict.paramGroups[${gi}]`, sg);
      if (sg.params.length !== mine.params.length)
        throw new RangeError(
          `loaded state dict's parameter group ${gi} has ${sg.params.length} parameters, but the optimizer's group has ${mine.params.length}`,
        );
      sg.params.forEach((idx, k) => {
        is.nonNegativeInteger(idx, `stateDict.paramGroups[${gi}].params[${k}]`);
        if (byIndex[idx] !== undefined) throw new RangeError(`loaded state dict lists parameter ${idx} more than once`);
        byIndex[idx] = mine.params[k]!;
      });
      const { params: _ignored, ...options } = sg;
      const merged = { ...mine, ...structuredClone(options), params: mine.params } as ParamGroup<O>;
      this.checkOptions(merged, `stateDict.paramGroups[${gi}].`);
      newGroups.push(merged);
    });
    const entries: [Tensor, ParamState][] = [];
    for (const [key, s] of Object.entries(sd.state)) {
      const idx = Number(key);
      const p = byIndex[idx];
      if (p === undefined)
        throw new RangeError(`loaded state dict has state for parameter ${key}, which no parameter group lists`);
      if (s === null || typeof s !== 'object') throw typeError('an object', `stateDict.state[${key}]`, s);
      const schema = this.stateSchema();
      for (const name of schema?.required ?? [])
        if (!(name in s))
          throw new RangeError(
            `loaded state dict: state[${key}] lacks '${name}', which every ${this.constructor.name} state has`,
          );
      const extra = this.stateEntries(p);
      for (const [name, v] of Object.entries(s)) {
        const spec = Object.hasOwn(extra, name) ? extra[name] : undefined;
        if (spec !== undefined) {
          if (!(v instanceof Tensor)) throw typeError('a Tensor', `stateDict.state[${key}].${name}`, v);
          if (v.isDisposed) throw new TypeError(`stateDict.state[${key}].${name} was disposed`);
          const vs = v.shape;
          if (vs.length !== spec.shape.length || vs.some((d, i) => d !== spec.shape[i]))
            throw new RangeError(
              `loaded state dict: state[${key}].${name} has shape ${shapeText(vs)} but ${this.constructor.name} keeps ${shapeText(spec.shape)} there`,
            );
          if (!isFloating(v.dtype))
            throw new TypeError(
              `loaded state dict: state[${key}].${name} has dtype ${v.dtype}; optimizer state is floating point`,
            );
          continue;
        }
        if (schema === null && typeof v === 'number') {
          if (!Number.isFinite(v))
            throw new RangeError(`loaded state dict: state[${key}].${name} must be finite but is ${v}`);
          continue;
        }
        if (schema?.counts?.includes(name)) {
          if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
            throw new RangeError(
              `loaded state dict: state[${key}].${name} must be a non-negative integer but is ${v instanceof Tensor ? 'a Tensor' : String(v)}`,
            );
          continue;
        }
        if (schema !== null && !schema.tensors.includes(name)) {
          const known = [...schema.tensors, ...(schema.counts ?? [])];
          throw new RangeError(
            `loaded state dict: state[${key}] has '${name}', which ${this.constructor.name} does not keep (it keeps ${known.join(', ') || 'no per-parameter state'})`,
          );
        }
        if (!(v instanceof Tensor)) throw typeError('a Tensor', `stateDict.state[${key}].${name}`, v);
        {
          if (v.isDisposed) throw new TypeError(`stateDict.state[${key}].${name} was disposed`);
          const vs = v.shape,
            ps = p.shape;
          if (vs.length !== ps.length || vs.some((d, i) => d !== ps[i]))
            throw new RangeError(
              `loaded state dict: state[${key}].${name} has shape ${shapeText(vs)} but parameter ${key} has shape ${shapeText(ps)}`,
            );
          if (!isFloating(v.dtype))
            throw new TypeError(
              `loaded state dict: state[${key}].${name} has dtype ${v.dtype}; optimizer state is floating point`,
            );
        }
      }
      const names = Object.keys(extra);
      const missing = names.filter((n) => !(n in s));
      if (missing.length > 0 && missing.length < names.length)
        throw new RangeError(
          `loaded state dict: state[${key}] has ${names.filter((n) => n in s).join(', ')} but lacks ${missing.join(', ')} (${this.constructor.name} keeps all of them or none)`,
        );
      entries.push([p, s]);
    }
    // Validated. Copy first, then free the old state: `sd` may hold this optimizer's own tensors
    // (`opt.loadStateDict(opt.stateDict())`, as in PyTorch, where load_state_dict deep-copies).
    const fresh = new Map<Tensor, ParamState>();
    for (const [p, s] of entries) {
      const copy: ParamState = {};
      const extra = this.stateEntries(p);
      for (const [name, v] of Object.entries(s)) {
        const dtype = Object.hasOwn(extra, name) ? extra[name]!.dtype : p.dtype;
        copy[name] = v instanceof Tensor ? keep(v.to({ dtype, device: p.device, copy: true })) : v;
      }
      fresh.set(p, this.importState(p, copy));
    }
    this.disposeState();
    for (const [p, s] of fresh) this.state.set(p, s);
    newGroups.forEach((g, i) => {
      this.paramGroups[i] = g;
    });
  }

  private disposeState(): void {
    for (const s of this.state.values())
      for (const v of Object.values(s)) if (v instanceof Tensor) v._free(FREED.optimizerState);
    this.state.clear();
  }

  /** Frees the state tensors (momentum buffers, moment estimates). The parameters are the caller's. */
  dispose(): void {
    this.disposeState();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}
