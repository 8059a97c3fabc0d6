/**
 * The optimizers of the Node side: the library's torch.optim classes when they exist, otherwise thin stand-ins over
 * the same native fused steps (native.sgdStep / native.adamStep) that those classes call. TNT has no stand-in: until
 * `optim.TNT` is exported its rows are skipped with "TNT not available yet".
 */
import * as torch from '../../dist/index.js';
import { native } from '../../dist/native.js';

/** Thrown when a case needs something the library does not have yet; the runner prints it as a skip. */
export class Unavailable extends Error {}

const ELEMENT_SIZE = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

/** Sum of numel * element size over every tensor reachable from `value` (state objects, arrays, Maps). */
export function tensorBytes(value, seen = new Set()) {
  if (value === null || typeof value !== 'object' || seen.has(value)) return 0;
  seen.add(value);
  if (value instanceof torch.Tensor) return value.isDisposed ? 0 : value.numel() * (ELEMENT_SIZE[value.dtype] ?? 4);
  let total = 0;
  const values =
    value instanceof Map ? value.values() : Array.isArray(value) || value instanceof Set ? value : Object.values(value);
  for (const v of values) total += tensorBytes(v, seen);
  return total;
}

/** SGD with momentum over native.sgdStep (PyTorch 1.13's update: buf = momentum * buf + g; p -= lr * buf). */
class FusedSGD {
  constructor(params, { lr, momentum = 0, weightDecay = 0 }) {
    this.impl = 'native.sgdStep';
    this.params = params;
    this.hyper = { lr, momentum, weightDecay };
    this.buffers = params.map(() => null);
  }
  step() {
    const { lr, momentum, weightDecay } = this.hyper;
    const out = native.sgdStep(
      this.params.map((p) => p._h),
      this.buffers.map((b) => (b === null ? -1 : b._h)),
      lr,
      momentum,
      0,
      weightDecay,
      false,
      false,
    );
    out.forEach((h, i) => {
      if (h >= 0 && (this.buffers[i] === null || this.buffers[i]._h !== h))
        this.buffers[i] = new torch.Tensor(h).keep();
    });
  }
  zeroGrad() {
    for (const p of this.params) p.grad = null;
  }
  stateBytes() {
    return tensorBytes(this.buffers);
  }
  dispose() {
    for (const b of this.buffers) b?.dispose();
  }
}

/** Adam over native.adamStep (PyTorch 1.13's single-tensor Adam, bias-corrected, no weight decay). */
class FusedAdam {
  constructor(params, { lr, eps = 1e-8, betas = [0.9, 0.999], weightDecay = 0 }) {
    this.impl = 'native.adamStep';
    this.params = params;
    this.hyper = { lr, eps, betas, weightDecay };
    this.expAvg = params.map((p) => torch.zerosLike(p).keep());
    this.expAvgSq = params.map((p) => torch.zerosLike(p).keep());
    this.steps = params.map(() => 0);
  }
  step() {
    const { lr, eps, betas, weightDecay } = this.hyper;
    this.steps = this.steps.map((s) => s + 1);
    native.adamStep(
      this.params.map((p) => p._h),
      this.expAvg.map((t) => t._h),
      this.expAvgSq.map((t) => t._h),
      null,
      this.steps,
      lr,
      betas[0],
      betas[1],
      eps,
      weightDecay,
      false,
      false,
      false,
    );
  }
  zeroGrad() {
    for (const p of this.params) p.grad = null;
  }
  stateBytes() {
    return tensorBytes([this.expAvg, this.expAvgSq]);
  }
  dispose() {
    for (const t of [...this.expAvg, ...this.expAvgSq]) t.dispose();
  }
}

/** Wraps a torch.optim instance so that the bench calls are the same whatever the class. */
class LibraryOptimizer {
  constructor(opt, impl) {
    this.opt = opt;
    this.impl = impl;
  }
  step() {
    this.opt.step();
  }
  zeroGrad() {
    this.opt.zeroGrad(); // gradients become null, as zero_grad(set_to_none=True) on the Python side
  }
  stateBytes() {
    return tensorBytes(this.opt.state);
  }
  dispose() {
    this.opt.dispose();
  }
}

/** optim.TNT with its likelihood: the sampled backward pass and the warm start go through the library's own calls. */
class LibraryTNT extends LibraryOptimizer {
  constructor(opt, likelihood) {
    super(opt, 'optim.TNT');
    for (const m of ['sampledBackward', 'warmStart', 'stateBytes'])
      if (typeof opt[m] !== 'function') throw new Unavailable(`TNT not available yet (optim.TNT has no ${m}())`);
    this.likelihood = likelihood;
  }
  /** TNT's warm start: statistics at the initial weights over the training set (here: the one batch). */
  async warmStart(x, forward) {
    await this.opt.warmStart([x], forward, this.likelihood);
  }
  sampledBackward(z) {
    this.opt.sampledBackward(z, this.likelihood);
  }
  /** The forward pass, split for a sub-batch's statistics (`statsBatch`) when they are due. */
  forward(forward, x) {
    return typeof this.opt.splitForward === 'function' ? this.opt.splitForward(forward, x) : forward(x);
  }
  stateBytes() {
    return this.opt.stateBytes();
  }
}

export const optimizerSource = () => ({
  sgd: typeof torch.optim?.SGD === 'function' ? 'optim.SGD' : 'native.sgdStep',
  adam: typeof torch.optim?.Adam === 'function' ? 'optim.Adam' : 'native.adamStep',
  tnt: typeof torch.optim?.TNT === 'function' ? 'optim.TNT' : null,
});

/**
 * The optimizer for a case: { impl, step, zeroGrad, stateBytes, dispose }, plus warmStart and sampledBackward for
 * TNT. `likelihood` names the library's likelihood class TNT samples from ('Bernoulli' or 'Categorical').
 */
export function makeOptimizer(name, params, h, likelihood) {
  const o = torch.optim;
  if (name === 'sgd') {
    const hyper = { lr: h.lr, momentum: h.momentum, weightDecay: h.weightDecay ?? 0 };
    return typeof o?.SGD === 'function'
      ? new LibraryOptimizer(new o.SGD(params, hyper), 'optim.SGD')
      : new FusedSGD(params, hyper);
  }
  if (name === 'adam') {
    const hyper = { lr: h.lr, eps: h.eps, weightDecay: h.weightDecay ?? 0 };
    return typeof o?.Adam === 'function'
      ? new LibraryOptimizer(new o.Adam(params, hyper), 'optim.Adam')
      : new FusedAdam(params, hyper);
  }
  if (name === 'tnt') {
    if (typeof o?.TNT !== 'function')
      throw new Unavailable('TNT not available yet (torch.optim.TNT is not exported by the library)');
    const Lik = torch[likelihood];
    if (typeof Lik !== 'function')
      throw new Unavailable(`TNT not available yet (the library has no ${likelihood} likelihood)`);
    const opt = new o.TNT(params, {
      lr: h.lr,
      damping: h.eps,
      momentum: h.momentum,
      weightDecay: h.weightDecay ?? 0,
      statsEvery: h.T1,
      inverseEvery: h.T2,
      ...(h.statsBatch !== undefined ? { statsBatch: h.statsBatch } : {}),
      ...(h.klClip !== undefined ? { klClip: h.klClip } : {}),
      ...(h.statDecayPerStep !== undefined ? { statDecayPerStep: h.statDecayPerStep } : {}),
    });
    try {
      return new LibraryTNT(opt, new Lik());
    } catch (err) {
      opt.dispose();
      throw err;
    }
  }
  throw new Error(`unknown optimizer ${name}`);
}
