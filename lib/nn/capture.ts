/**
 * captureOutputs(): what second-order optimizers (KFAC) need from the layers of a model, for all watched layers at
 * once: each layer's input (activations a) and output s, recorded during the forward pass, and, from any loss, the
 * gradients dL/ds of the outputs in one autograd.grad call (the graph is kept, so the real backward can follow).
 * Module backward hooks (registerFullBackwardHook) give the same dL/ds one layer at a time during a backward pass.
 *
 *   const cap = nn.captureOutputs(model);                 // Linear and Conv2d layers by default
 *   tidy(() => {
 *     const logits = model.call(x);                       // records (input, output) of every watched layer
 *     const sampled = lik.loss(logits, lik.sample(logits));
 *     const g = cap.outputGrads(sampled);                 // Map name -> dL_sampled/ds, graph retained
 *     for (const r of cap.records()) use(r.module, r.input, g.get(r.name)!);
 *     lik.loss(logits, y).backward();                     // the real gradients, same forward pass
 *   });
 *   cap.clear();                                          // or cap.remove() to stop recording for good
 *
 * The gradient is that of the loss as reduced: with a mean over the batch each row of dL/ds is 1/N of the
 * per-example gradient (KFAC's G factor multiplies by N). For a Linear layer input is (N, in) and the gradient
 * (N, out); for a Conv2d layer input is (N, C, H, W) (unfold it with the layer's kernelSize, stride, padding and
 * dilation for KFAC's patches) and the gradient (N, C_out, H_out, W_out).
 */
import { Tensor } from '../tensor.js';
import { grad } from '../autograd.js';
import { zerosLike } from '../creation.js';
import { is, typeError } from '../errors.js';
import { Module, type AnyModule, type RemovableHandle } from './module.js';
import { Linear } from './linear.js';
import { Conv2d } from './conv2d.js';

/** One layer's captured inputs and output gradients (`nn.captureOutputs`). */
export interface CapturedLayer {
  /** The layer's dotted name in the model ('' for the model itself). */
  readonly name: string;
  readonly module: AnyModule;
  /** The layer's (first) input in the last recorded forward pass, detached: values only. Owned by the capture. */
  readonly input: Tensor;
  /** The layer's output in that pass, attached to the autograd graph. Owned by the capture. */
  readonly output: Tensor;
}

/** Options of `nn.captureOutputs`: a `filter` choosing the layers to capture. */
export interface CaptureOptions {
  /** Which modules to watch. Default: Linear and Conv2d layers. */
  filter?: (module: AnyModule, name: string) => boolean;
}

/** Records watched layers' inputs and outputs during forward passes (see captureOutputs). */
export class LayerCapture {
  /** The watched layers, in the model's module order. */
  readonly layers: ReadonlyArray<readonly [string, AnyModule]>;
  /** While false, forward passes are not recorded (say, for evaluation). */
  enabled = true;
  private readonly recs = new Map<AnyModule, CapturedLayer>();
  private handles: RemovableHandle[];

  constructor(model: AnyModule, options: CaptureOptions = {}) {
    const { filter = (m: AnyModule) => m instanceof Linear || m instanceof Conv2d } = is.options(options);
    if (!(model instanceof Module)) throw typeError('a Module', 'model', model);
    is.function(filter, 'filter');
    this.layers = model.namedModules().filter(([n, m]) => filter(m, n));
    this.handles = this.layers.map(([name, m]) =>
      m.registerForwardHook((module: AnyModule, input: unknown[], output: unknown) => {
        if (!this.enabled) return;
        const x = input[0];
        if (!(x instanceof Tensor) || !(output instanceof Tensor))
          throw new TypeError(`captureOutputs: layer '${name}' must take and return a Tensor`);
        this.recs.get(module)?.input.dispose();
        this.recs.get(module)?.output.dispose();
        // keep(): the records outlive the tidy scope of the forward pass until clear().
        this.recs.set(module, { name, module, input: x.detach().keep(), output: output.alias().keep() });
      }),
    );
  }

  /** Records of the last forward pass, in layer order (a layer called twice keeps its last call; one not called is absent). */
  records(): CapturedLayer[] {
    const out: CapturedLayer[] = [];
    for (const [, m] of this.layers) {
      const r = this.recs.get(m);
      if (r !== undefined) out.push(r);
    }
    return out;
  }

  /** The record of one layer, by name or module. */
  get(layer: string | AnyModule): CapturedLayer | undefined {
    if (typeof layer === 'string') return this.records().find((r) => r.name === layer);
    return this.recs.get(layer);
  }

  /**
   * dL/d(output) for every recorded layer, by layer name, through torch.autograd.grad: parameters' `.grad` are not
   * touched. The graph is retained by default so that the real loss can be backpropagated afterwards through the same
   * forward pass. A layer the loss does not depend on gets zeros. The returned tensors are the caller's.
   */
  outputGrads(loss: Tensor, options: { retainGraph?: boolean; createGraph?: boolean } = {}): Map<string, Tensor> {
    const { retainGraph = true, createGraph = false } = is.options(options);
    if (!(loss instanceof Tensor)) throw typeError('a Tensor', 'loss', loss);
    const recs = this.records();
    if (recs.length === 0) throw new Error('captureOutputs: no forward pass has been recorded');
    const gs = grad(
      loss,
      recs.map((r) => r.output),
      { retainGraph: is.boolean(retainGraph, 'retainGraph'), createGraph, allowUnused: true },
    );
    const out = new Map<string, Tensor>();
    recs.forEach((r, i) => out.set(r.name, gs[i] ?? zerosLike(r.output)));
    return out;
  }

  /** Frees the recorded tensors (recording goes on). */
  clear(): void {
    for (const r of this.recs.values()) {
      r.input.dispose();
      r.output.dispose();
    }
    this.recs.clear();
  }

  /** Frees the records and stops recording (removes the hooks). */
  remove(): void {
    this.clear();
    for (const h of this.handles) h.remove();
    this.handles = [];
  }
  [Symbol.dispose](): void {
    this.remove();
  }
}

/** Starts recording the inputs and outputs of a model's Linear and Conv2d layers (or those `filter` picks). */
export function captureOutputs(model: AnyModule, options: CaptureOptions = {}): LayerCapture {
  options = is.options(options);
  return new LayerCapture(model, options);
}
