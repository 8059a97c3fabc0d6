/**
 * The benchmark models, losses and training step on the Node side (mirrors bench/python/models.py).
 *
 * The models are the library's `models.autoencoder` and `models.smallCnn` with the shared fixture's weights copied
 * into their parameters. Where the library does not have them (yet), the same computations are written with
 * nn.functional over the fixture's tensors, so a row measures the same thing whatever state lib/nn is in; the
 * `impl` string each worker reports says which was used.
 */
import * as torch from '../../dist/index.js';
import { readFixture } from '../fixtures.mjs';
import { makeOptimizer } from './optimizers.mjs';

const F = torch.nn.functional;

function fromFixture(path) {
  return new Map(readFixture(path).map((t) => [t.name, torch.tensor(t.data, { shape: t.shape }).keep()]));
}

/** Copies fixture weights, in order, into a module's parameters (shapes must match). */
function loadInto(params, weights) {
  if (params.length !== weights.length)
    throw new Error(`model has ${params.length} parameters, the fixture ${weights.length}`);
  torch.noGrad(() => {
    params.forEach((p, i) => {
      const w = weights[i];
      if (p.shape.join() !== w.shape.join())
        throw new Error(`parameter ${i}: fixture shape [${w.shape}] but the model has [${p.shape}]`);
      p.copy_(w);
    });
  });
}

/** Wraps a library Module after loading the fixture's weights into it. */
function fromModule(model, weights, impl) {
  const params = model.parameters();
  loadInto(params, [...weights.values()]);
  for (const w of weights.values()) w.dispose();
  model.train();
  return { impl, parameters: params, forward: (x) => model.call(x), dispose: () => model.dispose() };
}

/** The paper's autoencoder: Linear layers, ReLU after each except the narrowest (the code) and the last (logits). */
function autoencoder(weights, widths) {
  if (typeof torch.models?.autoencoder === 'function')
    return fromModule(torch.models.autoencoder(widths), weights, 'models.autoencoder');
  const layers = [];
  for (let l = 0; l + 1 < widths.length; l++) {
    const w = weights.get(`layers.${l}.weight`).requiresGrad_(true);
    const b = weights.get(`layers.${l}.bias`).requiresGrad_(true);
    layers.push({ w, b, relu: widths[l + 1] !== Math.min(...widths) && l + 2 < widths.length });
  }
  return {
    impl: 'nn.functional',
    parameters: layers.flatMap((l) => [l.w, l.b]),
    forward(x) {
      let h = x;
      for (const l of layers) {
        h = F.linear(h, l.w, l.b);
        if (l.relu) h = h.relu();
      }
      return h;
    },
    dispose: () => layers.forEach((l) => (l.w.dispose(), l.b.dispose())),
  };
}

/**
 * models.smallCnn: conv(32, no bias)-BN-ReLU-pool, conv(64, no bias)-BN-ReLU-pool, Linear(3136, 128), ReLU,
 * Linear(128, 10); BatchNorm in training mode (batch statistics, running statistics updated).
 */
function smallCnn(weights) {
  if (typeof torch.models?.smallCnn === 'function')
    return fromModule(torch.models.smallCnn(), weights, 'models.smallCnn');
  const p = (name) => weights.get(name).requiresGrad_(true);
  const params = [
    '0.weight',
    '1.weight',
    '1.bias',
    '4.weight',
    '5.weight',
    '5.bias',
    '9.weight',
    '9.bias',
    '11.weight',
    '11.bias',
  ].map(p);
  const [c1, bn1w, bn1b, c2, bn2w, bn2b, f1w, f1b, f2w, f2b] = params;
  const running = [torch.zeros([32]), torch.ones([32]), torch.zeros([64]), torch.ones([64])].map((t) => t.keep());
  const bn = (x, i, weight, bias) =>
    F.batchNorm(x, running[2 * i], running[2 * i + 1], { weight, bias, training: true, momentum: 0.1, eps: 1e-5 });
  return {
    impl: 'nn.functional',
    parameters: params,
    forward(x) {
      const h1 = F.maxPool2d(bn(F.conv2d(x, c1, null, { padding: 1 }), 0, bn1w, bn1b).relu(), 2);
      const h2 = F.maxPool2d(bn(F.conv2d(h1, c2, null, { padding: 1 }), 1, bn2w, bn2b).relu(), 2);
      return F.linear(F.linear(h2.flatten(1), f1w, f1b).relu(), f2w, f2b);
    },
    dispose: () => [...params, ...running].forEach((t) => t.dispose()),
  };
}

/** A model with its batch, loss, likelihood (for TNT's sampled backward pass) and optimizer; `await init()` before use. */
export class Problem {
  constructor(c, fixtures) {
    this.case = c;
    const data = fromFixture(fixtures.data);
    const weights = fromFixture(fixtures.weights);
    if (c.model === 'autoencoder') {
      this.model = autoencoder(weights, c.widths ?? [784, 1000, 500, 250, 30, 250, 500, 1000, 784]);
      this.x = data.get('x');
      this.target = this.x;
      // BCE-with-logits summed over pixels, averaged over the batch.
      this.loss = (z, y) => F.binaryCrossEntropyWithLogits(z, y, { reduction: 'sum' }).div(z.shape[0]);
      this.likelihood = 'Bernoulli';
    } else if (c.model === 'cnn') {
      this.model = smallCnn(weights);
      this.x = data.get('x');
      const y = data.get('y');
      this.target = y.long().keep();
      y.dispose();
      this.loss = (z, t) => F.crossEntropy(z, t);
      this.likelihood = 'Categorical';
    } else throw new Error(`unknown model ${c.model}`);
  }

  /** Builds the optimizer (and runs TNT's warm start on the batch). */
  async init() {
    try {
      this.opt = makeOptimizer(this.case.optim, this.model.parameters, this.case.hyper, this.likelihood);
      if (this.case.optim === 'tnt') await this.opt.warmStart(this.x, this.model.forward);
    } catch (err) {
      this.dispose();
      throw err;
    }
    return this;
  }

  get impl() {
    return `${this.model.impl} + ${this.opt.impl}`;
  }

  /** One training step; returns the loss before the update. */
  step() {
    return torch.tidy(() => {
      const z = this.opt.forward ? this.opt.forward(this.model.forward, this.x) : this.model.forward(this.x);
      this.opt.sampledBackward?.(z); // TNT: statistics from y ~ p(y | z) when due
      const loss = this.loss(z, this.target);
      loss.backward();
      this.opt.step();
      this.opt.zeroGrad();
      return loss.item();
    });
  }

  stateBytes() {
    return this.opt.stateBytes();
  }

  dispose() {
    this.opt?.dispose();
    this.opt = null;
    this.model?.dispose();
    this.model = null;
    this.x?.dispose();
    if (this.target !== this.x) this.target?.dispose();
  }
}
