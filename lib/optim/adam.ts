/**
 * Adam (torch.optim.Adam, PyTorch 1.13's update rule), with optional AMSGrad, L2 weight decay and maximize.
 * AdamW (adamw.ts) is the same class with decoupled weight decay. The update of a whole group runs in one native
 * call (native/optim/first_order.cc).
 */
import { native } from '../native.js';
import { Tensor } from '../tensor.js';
import { keep } from '../scope.js';
import { zerosLike } from '../creation.js';
import { is, typeError } from '../errors.js';
import {
  Optimizer,
  checkKnownOptions,
  type ParamGroup,
  type ParamState,
  type Params,
  type StateSchema,
} from './optimizer.js';

/** Options of optim.Adam and optim.AdamW: lr, betas, eps, weightDecay, amsgrad, maximize. */
export interface AdamOptions {
  /** Learning rate γ (default 1e-3, ≥ 0). */
  lr: number;
  /** Decay rates (β1, β2) of the first and second moment estimates (default [0.9, 0.999], each in [0, 1)). */
  betas: [number, number];
  /** Added to the denominator for numerical stability (default 1e-8, ≥ 0). */
  eps: number;
  /** Weight decay λ (Adam: an L2 penalty added to the gradient, default 0; AdamW: decoupled, default 1e-2). */
  weightDecay: number;
  /** Use the maximum of past second moments (AMSGrad, default false). */
  amsgrad: boolean;
  /** Maximize the objective instead of minimizing it (default false). */
  maximize: boolean;
}

const KNOWN = ['lr', 'betas', 'eps', 'weightDecay', 'amsgrad', 'maximize'] as const;

/** Shared by Adam and AdamW: `decoupled` selects AdamW's weight decay. */
export abstract class AdamBase extends Optimizer<AdamOptions> {
  protected abstract readonly decoupled: boolean;

  constructor(
    params: Params<AdamOptions>,
    options: Partial<AdamOptions> | undefined,
    defaultWeightDecay: number,
    owner: string,
  ) {
    checkKnownOptions(options, KNOWN, owner);
    const o = options ?? {};
    super(params, {
      lr: o.lr ?? 1e-3,
      betas: o.betas ?? [0.9, 0.999],
      eps: o.eps ?? 1e-8,
      weightDecay: o.weightDecay ?? defaultWeightDecay,
      amsgrad: o.amsgrad ?? false,
      maximize: o.maximize ?? false,
    });
  }

  protected checkOptions(o: AdamOptions, prefix: string): void {
    is.nonNegative(o.lr, `${prefix}lr`);
    is.nonNegative(o.eps, `${prefix}eps`);
    if (!Array.isArray(o.betas) || o.betas.length !== 2)
      throw typeError('an array of two numbers', `${prefix}betas`, o.betas);
    is.inRange(o.betas[0], `${prefix}betas[0]`, 0, 1, { hiOpen: true });
    is.inRange(o.betas[1], `${prefix}betas[1]`, 0, 1, { hiOpen: true });
    is.nonNegative(o.weightDecay, `${prefix}weightDecay`);
    is.boolean(o.amsgrad, `${prefix}amsgrad`);
    is.boolean(o.maximize, `${prefix}maximize`);
  }

  protected override stateSchema(): StateSchema {
    return {
      tensors: ['expAvg', 'expAvgSq', 'maxExpAvgSq'],
      counts: ['step'],
      required: ['step', 'expAvg', 'expAvgSq'],
    };
  }

  protected stepGroup(group: ParamGroup<AdamOptions>): void {
    const params: number[] = [],
      m: number[] = [],
      v: number[] = [],
      vmax: number[] = [],
      steps: number[] = [];
    for (const p of group.params) {
      if (p.grad === null) continue;
      let s: ParamState | undefined = this.state.get(p);
      if (s === undefined) {
        s = { step: 0, expAvg: keep(zerosLike(p)), expAvgSq: keep(zerosLike(p)) };
        this.state.set(p, s);
      }
      if (group.amsgrad && !(s.maxExpAvgSq instanceof Tensor)) s.maxExpAvgSq = keep(zerosLike(p));
      s.step = (s.step as number) + 1;
      params.push(p._h);
      m.push((s.expAvg as Tensor)._h);
      v.push((s.expAvgSq as Tensor)._h);
      if (group.amsgrad) vmax.push((s.maxExpAvgSq as Tensor)._h);
      steps.push(s.step);
    }
    if (params.length === 0) return;
    const [beta1, beta2] = group.betas;
    native.adamStep(
      params,
      { expAvg: m, expAvgSq: v, maxExpAvgSq: group.amsgrad ? vmax : null, steps },
      {
        lr: group.lr,
        beta1,
        beta2,
        eps: group.eps,
        weightDecay: group.weightDecay,
        amsgrad: group.amsgrad,
        decoupled: this.decoupled,
        maximize: group.maximize,
      },
    );
  }
}

/**
 * Adam. For every parameter θ with gradient g, at step t (counted per parameter):
 *
 *     g ← -g if maximize;   g ← g + λθ if λ ≠ 0
 *     m ← β1·m + (1 - β1)·g;   v ← β2·v + (1 - β2)·g²
 *     v̂max ← max(v̂max, v) if amsgrad
 *     θ ← θ - γ/(1 - β1ᵗ) · m / (√(v or v̂max) / √(1 - β2ᵗ) + ε)
 *
 * State per parameter: `step` (a number), `expAvg` (m), `expAvgSq` (v), and `maxExpAvgSq` with amsgrad.
 * Parameters without a gradient are skipped.
 *
 *     const opt = new optim.Adam(model.parameters(), { lr: 1e-3 });
 */
export class Adam extends AdamBase {
  protected readonly decoupled = false;
  constructor(params: Params<AdamOptions>, options?: Partial<AdamOptions>) {
    super(params, options, 0, 'Adam');
  }
}
