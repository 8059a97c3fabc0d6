/**
 * Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay (torch.optim.SGD,
 * PyTorch 1.13's update rule). The update of a whole group runs in one native call (native/optim/first_order.cc).
 */
import { native } from '../native.js';
import { Tensor, wrap } from '../tensor.js';
import { keep } from '../scope.js';
import { is } from '../errors.js';
import { Optimizer, checkKnownOptions, type ParamGroup, type Params, type StateSchema } from './optimizer.js';

export interface SGDOptions {
  /** Learning rate γ (required, ≥ 0). */
  lr: number;
  /** Momentum factor μ (default 0, ≥ 0). */
  momentum: number;
  /** Dampening τ of the momentum (default 0). */
  dampening: number;
  /** L2 penalty λ added to the gradient (default 0, ≥ 0). */
  weightDecay: number;
  /** Nesterov momentum (default false; needs momentum > 0 and dampening 0). */
  nesterov: boolean;
  /** Maximize the objective instead of minimizing it (default false). */
  maximize: boolean;
}

const KNOWN = ['lr', 'momentum', 'dampening', 'weightDecay', 'nesterov', 'maximize'] as const;

/**
 * SGD. For every parameter θ with gradient g, at step t:
 *
 *     g ← -g if maximize;   g ← g + λθ if λ ≠ 0
 *     if μ ≠ 0:  b ← g at t = 1, else b ← μb + (1 - τ)g;   g ← g + μb if nesterov, else g ← b
 *     θ ← θ - γg
 *
 * State per parameter: `momentumBuffer` (when μ ≠ 0). Parameters without a gradient are skipped.
 *
 *     const opt = new optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 });
 *     tidy(() => lossFn(model.forward(x), y).backward());
 *     opt.step();
 *     opt.zeroGrad();
 */
export class SGD extends Optimizer<SGDOptions> {
  constructor(params: Params<SGDOptions>, options: Partial<SGDOptions> & { lr: number }) {
    checkKnownOptions(options, KNOWN, 'SGD');
    const o = options ?? ({} as Partial<SGDOptions>);
    super(params, {
      lr: o.lr as number,
      momentum: o.momentum ?? 0,
      dampening: o.dampening ?? 0,
      weightDecay: o.weightDecay ?? 0,
      nesterov: o.nesterov ?? false,
      maximize: o.maximize ?? false,
    });
  }

  protected checkOptions(o: SGDOptions, prefix: string): void {
    is.nonNegative(o.lr, `${prefix}lr`);
    is.nonNegative(o.momentum, `${prefix}momentum`);
    is.finite(o.dampening, `${prefix}dampening`);
    is.nonNegative(o.weightDecay, `${prefix}weightDecay`);
    is.boolean(o.nesterov, `${prefix}nesterov`);
    is.boolean(o.maximize, `${prefix}maximize`);
    if (o.nesterov && (o.momentum <= 0 || o.dampening !== 0))
      throw new RangeError(
        `Nesterov momentum requires a momentum and zero dampening (${prefix}momentum is ${o.momentum}, ${prefix}dampening is ${o.dampening})`,
      );
  }

  protected override stateSchema(): StateSchema {
    return { tensors: ['momentumBuffer'] };
  }

  protected stepGroup(group: ParamGroup<SGDOptions>): void {
    const params = group.params;
    if (params.length === 0) return;
    const bufs = params.map((p) => {
      const b = this.state.get(p)?.momentumBuffer;
      return b instanceof Tensor ? b._h : -1;
    });
    const out = native.sgdStep(
      params.map((p) => p._h),
      bufs,
      group.lr,
      group.momentum,
      group.dampening,
      group.weightDecay,
      group.nesterov,
      group.maximize,
    );
    // New buffers (first step with momentum: a clone of the gradient, as PyTorch) become optimizer state.
    out.forEach((h, i) => {
      if (h >= 0 && h !== bufs[i]) this.stateOf(params[i]!).momentumBuffer = keep(wrap(h));
    });
  }
}
