/**
 * Stochastic gradient descent with optional momentum, Nesterov momentum and L2 weight decay (torch.optim.SGD,
 * PyTorch 1.13's update rule). The update of a whole group runs in one native call (native/optim/first_order.cc),
 * which updates the momentum buffers this class makes.
 */
import { native } from '../native.js';
import { Tensor } from '../tensor.js';
import { zerosLike } from '../creation.js';
import { keep } from '../scope.js';
import { is } from '../errors.js';
import { Optimizer, checkKnownOptions, type ParamGroup, type Params, type StateSchema } from './optimizer.js';

/** Options of optim.SGD: lr, momentum, dampening, weightDecay, nesterov, maximize (PyTorch's defaults). */
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
    const momentumBuffer: number[] = [],
      initialize: boolean[] = [];
    const made: [Tensor, Tensor][] = []; // buffers made for this step: state once it succeeds, freed if it throws
    try {
      for (const p of params) {
        const b = this.state.get(p)?.momentumBuffer;
        if (b instanceof Tensor) {
          momentumBuffer.push(b._h);
          initialize.push(false);
        } else if (group.momentum !== 0 && p.grad !== null) {
          // PyTorch makes the buffer on a parameter's first step with momentum as a clone of that step's
          // direction (the gradient after maximize and weight decay), not zeros: the native step copies it in.
          const nb = keep(zerosLike(p));
          made.push([p, nb]);
          momentumBuffer.push(nb._h);
          initialize.push(true);
        } else {
          momentumBuffer.push(-1);
          initialize.push(false);
        }
      }
      native.sgdStep(
        params.map((p) => p._h),
        { momentumBuffer, initialize },
        {
          lr: group.lr,
          momentum: group.momentum,
          dampening: group.dampening,
          weightDecay: group.weightDecay,
          nesterov: group.nesterov,
          maximize: group.maximize,
        },
      );
    } catch (err) {
      for (const [, b] of made) b.dispose();
      throw err;
    }
    for (const [p, b] of made) this.stateOf(p).momentumBuffer = b;
  }
}
