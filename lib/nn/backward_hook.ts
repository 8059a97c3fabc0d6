/**
 * How one call of a module with backward hooks is wired into the autograd graph: PyTorch's BackwardHook
 * (torch/utils/hooks.py), which Module.call uses only when the module has backward hooks and grad mode is on.
 *
 * The tensor inputs that require grad go through one identity autograd node (native `hookIdentity`), and so do the
 * tensor outputs. In the backward pass the output node runs first, with the gradients with respect to all outputs
 * (gradOutput, null for an output the loss does not use): it runs the backward pre-hooks, which may replace them,
 * and holds gradOutput. The input node runs once the gradients with respect to all hooked inputs are known
 * (gradInput, zeros for an input the module did not use): it runs the backward hooks with (gradInput, gradOutput),
 * which may replace gradInput, and lets gradOutput go. A module none of whose inputs requires grad (a first layer
 * fed with data) has no input node: its backward hooks run from the output node, with gradInput all null.
 *
 * Each call has its own nodes and state, so a module called twice in one forward pass (shared weights) runs its hooks
 * once per call, and a graph kept with retainGraph runs them again at every backward through it. What a pass leaves
 * held (its gradient never reached the module's inputs: autograd.grad with respect to an intermediate tensor, an
 * exception in a hook) is freed when the outermost backward() or autograd.grad() returns.
 */
import { Tensor, wrap, onBackwardPassEnd } from '../tensor.js';
import { native, type Handle } from '../native.js';
import { tidy, keep, dispose } from '../scope.js';
import type { AnyModule, BackwardHook, BackwardPreHook } from './module.js';

/** Positions in `values` of the tensors that require grad. */
function requiringGrad(values: readonly unknown[]): number[] {
  const idx: number[] = [];
  values.forEach((v, i) => {
    if (v instanceof Tensor && v.requiresGrad) idx.push(i);
  });
  return idx;
}

/** Spreads gradients of the tensors at `index` over `n` positions (null elsewhere). */
function pack(index: number[], grads: (Tensor | null)[], n: number): (Tensor | null)[] {
  const out: (Tensor | null)[] = new Array<Tensor | null>(n).fill(null);
  index.forEach((i, k) => (out[i] = grads[k] ?? null));
  return out;
}

/** The replacements for the tensors at `index`, as handles the addon takes over; -1 when nothing was replaced. */
function unpack(index: number[], grads: (Tensor | null)[], original: (Tensor | null)[]): Handle[] | -1 {
  if (index.every((i) => grads[i] === original[i])) return -1;
  return index.map((i) => {
    const g = grads[i];
    return g === null || g === undefined ? -1 : native.alias(g._h);
  });
}

export class BackwardHookCall {
  private nInputs = 0;
  private inputIndex: number[] = [];
  private nOutputs = 0;
  private outputIndex: number[] = [];
  /** gradOutput between the output node and the input node (our handles, freed by release()). */
  private gradOutput: (Tensor | null)[] | null = null;
  private readonly releaseFn = (): void => this.release();

  constructor(
    private readonly module: AnyModule,
    // the hooks registered when the module was called, as PyTorch (removing one later does not affect this call)
    private readonly hooks: BackwardHook[],
    private readonly preHooks: BackwardPreHook[],
  ) {}

  /** Identity views in place of the tensor inputs that require grad (the others are returned as they are). */
  setupInputs(input: unknown[]): unknown[] {
    this.nInputs = input.length;
    this.inputIndex = requiringGrad(input);
    if (this.inputIndex.length === 0) return input;
    const views = native.hookIdentity(
      this.inputIndex.map((i) => (input[i] as Tensor)._h),
      (gs) => this.onInputGrads(gs),
      true, // an input the module did not use gets zeros, as PyTorch's BackwardHookFunction (materialize_grads)
    );
    const out = input.slice();
    this.inputIndex.forEach((i, k) => (out[i] = wrap(views[k]!)));
    return out;
  }

  /**
   * Identity views in place of the output tensors that require grad. Raw outputs that were replaced are freed unless
   * kept or among `keepIf` (the caller's inputs).
   */
  setupOutputs<O>(out: O, keepIf: unknown[]): O {
    const isArray = Array.isArray(out);
    if (!(out instanceof Tensor) && !isArray)
      throw new TypeError(
        `${this.name()}: backward hooks need forward to return a Tensor or an array (of Tensors and other values)`,
      );
    const list: unknown[] = isArray ? (out as unknown[]) : [out];
    this.nOutputs = list.length;
    this.outputIndex = requiringGrad(list);
    if (this.outputIndex.length === 0) return out; // no gradient will flow back through this call: the hooks never run
    const raw = this.outputIndex.map((j) => list[j] as Tensor);
    const views = native.hookIdentity(
      raw.map((t) => t._h),
      (gs) => this.onOutputGrads(gs),
      false,
    );
    const replaced = list.slice();
    this.outputIndex.forEach((j, k) => (replaced[j] = wrap(views[k]!)));
    for (const t of raw) if (!t._kept && !keepIf.includes(t)) t.dispose(); // the views carry them on
    return (isArray ? replaced : replaced[0]) as O;
  }

  /** The output node's backward: pre-hooks, then (no input requires grad) the hooks, else hold gradOutput. */
  private onOutputGrads(handles: Handle[]): Handle[] | -1 {
    return tidy(() => {
      // the gradients are ours for this call (freed when it returns); the hooks clone() what they keep
      const grads = handles.map((h) => (h < 0 ? null : new Tensor(h)));
      const original = pack(this.outputIndex, grads, this.nOutputs);
      let gradOutput = original;
      for (const hook of this.preHooks) {
        const r = hook(this.module, gradOutput);
        if (r !== undefined && r !== null) gradOutput = this.check(r, this.nOutputs, 'gradOutput', 'backward pre-hook');
      }
      if (this.inputIndex.length === 0) {
        const gradInput = new Array<Tensor | null>(this.nInputs).fill(null);
        for (const hook of this.hooks) {
          const r = hook(this.module, gradInput, gradOutput);
          if (r !== undefined && r !== null && !(Array.isArray(r) && r.every((g) => g === null || g === undefined)))
            throw new TypeError(
              `${this.name()}: no input of this call requires grad, so a backward hook must return nothing (or nulls)`,
            );
        }
      } else {
        this.release();
        this.gradOutput = gradOutput.map((g) => (g === null ? null : keep(g.alias())));
        onBackwardPassEnd(this.releaseFn);
      }
      return unpack(this.outputIndex, gradOutput, original);
    });
  }

  /** The input node's backward: the hooks see gradInput and gradOutput, and may replace gradInput. */
  private onInputGrads(handles: Handle[]): Handle[] | -1 {
    return tidy(() => {
      const grads = handles.map((h) => (h < 0 ? null : new Tensor(h)));
      // PyTorch: the gradient reached the inputs without passing through the outputs (a double backward)
      const gradOutput = this.gradOutput;
      if (gradOutput === null) return -1;
      const original = pack(this.inputIndex, grads, this.nInputs);
      let gradInput = original;
      for (const hook of this.hooks) {
        const r = hook(this.module, gradInput, gradOutput);
        if (r !== undefined && r !== null) gradInput = this.check(r, this.nInputs, 'gradInput', 'backward hook');
      }
      const result = unpack(this.inputIndex, gradInput, original); // before release(): a hook may return gradOutput
      this.release();
      return result;
    });
  }

  private release(): void {
    if (this.gradOutput === null) return;
    dispose(this.gradOutput);
    this.gradOutput = null;
  }

  private check(r: unknown, n: number, what: string, who: string): (Tensor | null)[] {
    if (!Array.isArray(r) || r.length !== n || r.some((t) => t !== null && !(t instanceof Tensor)))
      throw new TypeError(
        `${this.name()}: a ${who} must return nothing or an array of ${n} Tensors or nulls (its new ${what})`,
      );
    if (r.some((t) => t !== null && (t as Tensor).isDisposed))
      throw new TypeError(`${this.name()}: a ${who} returned a disposed tensor`);
    return r as (Tensor | null)[];
  }

  private name(): string {
    return this.module.constructor.name;
  }
}
