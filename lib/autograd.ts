/** torch.autograd: grad(), noGrad(), enableGrad(), and a float64 finite-difference gradcheck. */
import { native } from './native.js';
import { Tensor, wrap, backwardPass } from './tensor.js';
import { is, typeError } from './errors.js';

/** Options of `grad()`: gradOutputs, retainGraph, createGraph, allowUnused (PyTorch's `torch.autograd.grad` keywords). */
export interface GradOptions {
  gradOutputs?: (Tensor | null)[] | Tensor | null;
  retainGraph?: boolean;
  createGraph?: boolean;
  /** Return null for inputs the outputs do not depend on (otherwise that is an error, as in PyTorch). */
  allowUnused?: boolean;
}

function list(x: Tensor | Tensor[], name: string): Tensor[] {
  const arr = Array.isArray(x) ? x : [x];
  if (arr.length === 0 || arr.some((t) => !(t instanceof Tensor)))
    throw typeError('a Tensor or a non-empty array of Tensors', name, x);
  return arr;
}

/** Gradients of `outputs` with respect to `inputs`, without touching `.grad` (torch.autograd.grad). */
export function grad(
  outputs: Tensor | Tensor[],
  inputs: Tensor | Tensor[],
  options: GradOptions = {},
): (Tensor | null)[] {
  options = is.options(options);
  const outs = list(outputs, 'outputs');
  const ins = list(inputs, 'inputs');
  let gos: number[] | null = null;
  if (options.gradOutputs !== undefined && options.gradOutputs !== null) {
    const g = Array.isArray(options.gradOutputs) ? options.gradOutputs : [options.gradOutputs];
    if (g.length !== outs.length)
      throw new RangeError(`grad(): gradOutputs has ${g.length} entries for ${outs.length} outputs`);
    gos = g.map((t, i) => {
      if (t === null) return -1;
      if (!(t instanceof Tensor)) throw typeError('a Tensor or null', `gradOutputs[${i}]`, t);
      return t._h;
    });
  }
  const retain = options.retainGraph === undefined ? -1 : options.retainGraph ? 1 : 0;
  const res = backwardPass(() =>
    native.autogradGrad(
      outs.map((t) => t._h),
      ins.map((t) => t._h),
      gos,
      retain,
      options.createGraph === true,
      options.allowUnused === true,
    ),
  );
  return res.map((h) => (h === null ? null : wrap(h)));
}

function runWithGrad<T>(enabled: boolean, fn: () => T): T {
  if (typeof fn !== 'function') throw typeError('a function', 'fn', fn);
  const prev = native.setGradEnabled(enabled);
  try {
    const r = fn();
    if (r !== null && typeof r === 'object' && typeof (r as { then?: unknown }).then === 'function')
      throw new TypeError('noGrad()/enableGrad() are synchronous: fn returned a Promise');
    return r;
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Runs fn with gradient recording off (torch.no_grad). Synchronous. */
export const noGrad = <T>(fn: () => T): T => runWithGrad(false, fn);
/** Runs fn with gradient recording on (torch.enable_grad). Synchronous. */
export const enableGrad = <T>(fn: () => T): T => runWithGrad(true, fn);
/** Whether operations record an autograd graph here (false inside `noGrad`): PyTorch's `is_grad_enabled`. */
export const isGradEnabled = (): boolean => native.isGradEnabled();
/** Turns gradient recording on or off for what follows: PyTorch's `set_grad_enabled`. Prefer `noGrad(fn)`. */
export const setGradEnabled = (on: boolean): void => {
  native.setGradEnabled(on === true);
};

/** Options of `gradcheck()`: the finite-difference step `eps` and the tolerances `atol`, `rtol`. */
export interface GradcheckOptions {
  eps?: number;
  atol?: number;
  rtol?: number;
}

/**
 * Compares autograd's gradient with central finite differences, in float64. `fn` maps the inputs to one tensor;
 * both sides differentiate f(x) = sum(fn(x) * v) for a fixed random v, which checks the vector-Jacobian product
 * (what backward computes) at every input element. Inputs must be float64 tensors with requiresGrad.
 * Returns the largest absolute error; throws with details when a difference exceeds atol + rtol * |numeric|.
 */
export function gradcheck(
  fn: (...inputs: Tensor[]) => Tensor,
  inputs: Tensor[],
  options: GradcheckOptions = {},
): number {
  const { eps = 1e-6, atol = 1e-6, rtol = 1e-4 } = is.options(options);
  if (!Array.isArray(inputs)) throw typeError('an array of Tensors', 'inputs', inputs);
  for (const [i, x] of inputs.entries()) {
    if (!(x instanceof Tensor)) throw typeError('a Tensor', `inputs[${i}]`, x);
    if (x.dtype !== 'float64') throw new TypeError(`gradcheck(): inputs[${i}] must be float64 (got ${x.dtype})`);
    if (!x.requiresGrad) throw new TypeError(`gradcheck(): inputs[${i}] must have requiresGrad`);
  }
  const first = fn(...inputs);
  const shape = first.shape;
  const v = new Float64Array(first.numel()).map((_, k) => Math.sin(1.3 * k + 0.7) + 0.1 * (k % 3));
  first.dispose();
  const vT = wrap(native.fromBuffer(v, shape, 1));
  const project = (): Tensor => {
    const out = fn(...inputs);
    const prod = out.mul(vT);
    const s = prod.sum();
    out.dispose();
    prod.dispose();
    return s;
  };
  let worst = 0;
  try {
    const f = project();
    const analytic = grad(f, inputs, { allowUnused: true });
    f.dispose();
    for (const [i, x] of inputs.entries()) {
      const a = analytic[i] ? (analytic[i]!.toTypedArray() as Float64Array) : new Float64Array(x.numel());
      analytic[i]?.dispose();
      const n = x.numel();
      const base = x.detach();
      const flat = base.reshape([-1]);
      for (let k = 0; k < n; k++) {
        const orig = (flat.toTypedArray() as Float64Array)[k]!;
        const setK = (val: number): void => {
          const e = flat.select(0, k);
          e.fill_(val);
          e.dispose();
        };
        setK(orig + eps);
        const fp = noGrad(() => {
          const t = project();
          const r = t.item();
          t.dispose();
          return r;
        });
        setK(orig - eps);
        const fm = noGrad(() => {
          const t = project();
          const r = t.item();
          t.dispose();
          return r;
        });
        setK(orig);
        const numeric = (fp - fm) / (2 * eps);
        const err = Math.abs(numeric - a[k]!);
        worst = Math.max(worst, err);
        if (err > atol + rtol * Math.abs(numeric)) {
          flat.dispose();
          base.dispose();
          throw new Error(
            `gradcheck(): input ${i} element ${k}: analytic ${a[k]} vs numeric ${numeric} (error ${err})`,
          );
        }
      }
      flat.dispose();
      base.dispose();
    }
  } finally {
    vT.dispose();
  }
  return worst;
}
