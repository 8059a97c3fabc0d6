/**
 * K-FAC (Martens & Grosse, ICML 2015), with Grosse & Martens' KFC factors for convolutions (ICML 2016), as the TNT
 * paper ran it as a baseline. Each Linear and Conv2d layer's weight and bias form one matrix [W | b] (a conv weight
 * flattened to (out, in * kh * kw)); its Fisher block is approximated by A (x) G with
 *
 *     A = E[ā ā^T],  ā = [a; 1]     a: the layer input (a conv: each unfolded patch, every spatial location a row)
 *     G = E[g g^T]                  g: the gradient w.r.t. the layer output under the SAMPLED loss (y drawn from the
 *                                   model's own predictive distribution), of each example (N x the batch-mean gradient)
 *
 * both as moving averages, weight max(1/(t+1), 1 - statDecay) (plain 1 - statDecay after `warmStart`), as TNT
 * (`statistics: 'authors'`: the same after a warm start, as the authors' kfac_update, which also folds step 0's
 * statistics; without one t is the step, not the count of statistics updates). For a convolution with L output
 * locations (`convScaling: 'kfc'`, the default), A averages over examples and locations, G averages over examples
 * and SUMS over locations, so A (x) G is exactly KFC's Omega (x) Gamma (which sums in Omega and averages in Gamma):
 * the factor L sits in G so that A's homogeneous entry stays 1, as for a Linear layer. `convScaling: 'authors'`
 * puts it in A as the authors' code (utils.py get_A_A_T_kfac_v2: A sums over locations and averages over examples,
 * homogeneous entry L; utils_kfac.py get_g_g_T: G averages over examples and locations): the same A (x) G, but
 * the damped factors, and so the direction, differ (A + sqrt(lambda) I with A L times larger).
 *
 * Damping lambda is split over the two factors, as the paper's notes: the direction of the layer is
 *
 *     D = (G + sqrt(lambda) I)^-1 M (A + sqrt(lambda) I)^-1,     M = [m_W | m_b] the layer's momentum
 *
 * which is (A + sqrt(lambda) I)^-1 (x) (G + sqrt(lambda) I)^-1 applied to vec(M): a Kronecker product of damped
 * factors, not (A (x) G + lambda I)^-1. With `piCorrection` the split is Martens & Grosse's pi-corrected one,
 * sqrt(lambda) pi on A and sqrt(lambda) / pi on G, pi^2 = (tr A / dim A) / (tr G / dim G).
 * Every other parameter (BatchNorm's scale and shift; in a transformer the packed q/k/v projection of
 * MultiheadAttention, embeddings and LayerNorms) takes the plain momentum direction m. A Linear fed (B, T, d) (a
 * sequence model) counts every position as a row of A and G (KFAC-expand): with a loss averaged over the tokens
 * A (x) G is the token-level Fisher block, A's homogeneous entry being T. A Linear whose weight is shared (an LM head
 * tied to the embedding) preconditions that parameter's whole gradient with its factors. For all:
 *
 *     m <- momentum m + grad;   p <- p (1 - lr weightDecay) - lr direction
 *
 * Inverses are batched Cholesky factorisations of every same-size factor (one native call); a failure is retried in
 * float64 and then with 10x-1000x damping, and a factor that still fails keeps its last good inverse
 * (`lastInverseReport`). A non-finite gradient skips the whole step (or throws with `onNonFinite: 'throw'`), a layer
 * whose captured input or output gradient is not finite is left out of the statistics.
 *
 * Layer inputs and outputs are recorded by forward hooks (nn.captureOutputs), so the model and its layers must be
 * invoked with `.call(x)`; they are recorded only in steps whose statistics are due. The likelihood's loss must be a
 * mean over the batch (every lib likelihood's default). Grouped convolutions are not supported.
 *
 * Options (defaults): lr (required), damping 0.03 (the paper's CNN value, from KFAC-Pytorch; it tuned 0.3 for the MNIST
 * autoencoder), momentum 0.9, weightDecay 0, statDecay 0.9; statsEvery 1, inverseEvery 20, earlyRefresh true (the
 * first-T2 rule, as the authors' KFAC), statistics 'convex', convScaling 'kfc', factorDtype 'float32',
 * piCorrection false, onNonFinite 'skip'.
 *
 * @example
 *   const opt = new optim.KFAC(model, { lr: 3e-3, damping: 0.3 });
 *   const lik = new Bernoulli();
 *   await opt.warmStart(loader, (x) => model.call(x), lik);
 *   for (const [x] of loader) tidy(() => {
 *     const out = model.call(x);
 *     opt.sampledBackward(out, lik);        // sampled output gradients -> A, G (when due)
 *     lik.loss(out, x).backward();          // the real loss
 *     opt.step();
 *     opt.zeroGrad();
 *   });
 */
import { native, type InverseReport, type StepReport } from '../native.js';
import { Tensor } from '../tensor.js';
import { tidy } from '../scope.js';
import { eye, zeros } from '../creation.js';
import { cat } from '../ops.js';
import { TorchError, is, typeError } from '../errors.js';
import { Module, type AnyModule } from '../nn/module.js';
import { Linear } from '../nn/linear.js';
import { Conv2d } from '../nn/conv2d.js';
import { captureOutputs, type LayerCapture } from '../nn/capture.js';
import * as F from '../nn/functional.js';
import type { OptimizerStateDict, ParamGroup, StateEntry } from './optimizer.js';
import { KroneckerOptimizer, splitOptions, type StatisticsRule } from './kronecker/optimizer.js';
import type { SampleableLikelihood } from './tnt.js';

/** Per-group options of optim.KFAC: lr, damping, momentum, weightDecay, statDecay. */
export interface KFACOptions {
  /** Learning rate. */
  lr: number;
  /** lambda: sqrt(lambda) is added to each of the two factors before inversion. Default 0.03. */
  damping: number;
  /** Momentum on the raw gradient (no dampening). Default 0.9. */
  momentum: number;
  /** Decoupled weight decay: W <- W (1 - lr weightDecay). Default 0. */
  weightDecay: number;
  /** Decay of the statistics' moving average. Default 0.9. */
  statDecay: number;
}

/** Configuration of optim.KFAC: the statistics and inverse schedule (statsEvery, inverseEvery, earlyRefresh, statistics), factor dtype, pi correction, conv scaling, onNonFinite. */
export interface KFACConfig {
  /** Gather statistics every this many steps. Default 1. */
  statsEvery?: number;
  /** Refresh the inverses every this many steps. Default 20. */
  inverseEvery?: number;
  /** dtype of the factors and of their factorisation. Default 'float32'. */
  factorDtype?: 'float32' | 'float64';
  /** Split the damping by Martens & Grosse's pi (true) or evenly (false, default). */
  piCorrection?: boolean;
  /** What a non-finite gradient does: skip the step and count it (default), or throw. */
  onNonFinite?: 'skip' | 'throw';
  /** Moving-average rule: 'convex' (default) or 'authors' (see the file comment and lib/optim/curvature.ts). */
  statistics?: StatisticsRule;
  /** The first-T2 rule: inverses every `statsEvery` steps while fewer than `inverseEvery` have run. Default true. */
  earlyRefresh?: boolean;
  /** Where a conv layer's L locations go: 'kfc' (default; G sums over them) or 'authors' (A sums over them). */
  convScaling?: 'kfc' | 'authors';
}

/** One layer's recorded forward pass: its input (values) and the gradient of the sampled loss w.r.t. its output. */
export interface KFACLayerRecord {
  module: AnyModule;
  input: Tensor;
  outputGrad: Tensor;
}

const OPTIONS = ['lr', 'damping', 'momentum', 'weightDecay', 'statDecay'] as const;
const CONFIG = [
  'statsEvery',
  'inverseEvery',
  'factorDtype',
  'piCorrection',
  'onNonFinite',
  'statistics',
  'earlyRefresh',
  'convScaling',
] as const;

/**
 * A preconditioned layer. Its factors and inverses are entries of its weight's `state` (`factorA`, `factorG`,
 * `inverseA`, `inverseG`, as in a state dict); A, G, invA and invG read them (made on first use).
 */
interface Layer {
  name: string;
  module: Linear | Conv2d;
  weight: Tensor;
  bias: Tensor | null;
  /** Sides of A (the input dimension, plus 1 with a bias) and of G (the outputs). */
  din: number;
  out: number;
  readonly A: Tensor;
  readonly G: Tensor;
  readonly invA: Tensor;
  readonly invG: Tensor;
}

type LayerEntry = 'factorA' | 'factorG' | 'inverseA' | 'inverseG';

/** Unfolded patches of a conv layer's input, (N, C kh kw, L), padded exactly as the layer's forward pads. */
function convPatches(m: Conv2d, x: Tensor): Tensor {
  return tidy(() => {
    let pad: number[];
    let src = x.ndim === 3 ? x.unsqueeze(0) : x;
    if (m.padding === 'valid') pad = [0, 0];
    else if (m.padding === 'same') {
      const total = m.kernelSize.map((k, i) => m.dilation[i]! * (k - 1));
      pad = total.map((t) => Math.floor(t / 2));
      // An odd total puts the extra row / column at the bottom / right, as nn.Conv2d does.
      if (total.some((t) => t % 2 === 1)) src = F.pad(src, [0, total[1]! % 2, 0, total[0]! % 2]);
    } else pad = m.padding;
    return F.unfold(src, m.kernelSize, { dilation: m.dilation, padding: pad, stride: m.stride });
  });
}

/** KFAC (Martens and Grosse 2015): Kronecker-factored approximate curvature of Linear and Conv2d layers, from sampled gradients. See docs/shampoo-kfac.md. */
export class KFAC extends KroneckerOptimizer<KFACOptions, 'kfac'> {
  readonly model: AnyModule;
  readonly piCorrection: boolean;
  /** Where a conv layer's locations go: 'kfc' (G sums over them) or 'authors' (A sums over them). */
  readonly convScaling: 'kfc' | 'authors';
  /** The forward-hook recorder of the model's Linear and Conv2d layers. */
  readonly capture: LayerCapture;
  private readonly layerList: Layer[];
  private readonly byModule = new Map<AnyModule, Layer>();
  private readonly byWeight = new Map<Tensor, Layer>();
  /** What the last inverse refresh did (retries, failures). */
  lastInverseReport: InverseReport | null = null;

  constructor(model: AnyModule, options: Partial<KFACOptions> & { lr: number } & KFACConfig) {
    if (!(model instanceof Module)) throw typeError('a Module', 'model', model);
    const {
      statsEvery = 1,
      inverseEvery = 20,
      factorDtype,
      piCorrection = false,
      onNonFinite,
      statistics,
      earlyRefresh,
      convScaling = 'kfc',
      ...rest
    } = splitOptions(options, [...OPTIONS, ...CONFIG], 'KFAC');
    super(
      model.parameters(),
      { damping: 0.03, momentum: 0.9, weightDecay: 0, statDecay: 0.9, ...rest } as KFACOptions,
      { statsEvery, inverseEvery, statistics, earlyRefresh, factorDtype, onNonFinite },
    );
    this.model = model;
    this.piCorrection = is.boolean(piCorrection, 'piCorrection');
    this.convScaling = is.oneOf(convScaling, 'convScaling', ['kfc', 'authors'] as const);
    // The authors' KFAC keeps its convex weight and folds step 0's statistics after a warm start (kfac_update).
    this.authorsRule = { convex: true, skipStepZeroAfterWarmStart: false };

    const found = model
      .namedModules()
      .filter((e): e is [string, Linear | Conv2d] => e[1] instanceof Linear || e[1] instanceof Conv2d);
    for (const [name, m] of found)
      if (m instanceof Conv2d && m.groups !== 1)
        throw new RangeError(
          `KFAC: layer '${name}' is a grouped convolution (groups=${m.groups}), which KFAC does not support`,
        );
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the layers' getters read this optimizer's state
    const opt = this;
    this.layerList = found.map(([name, m]) => {
      const w = m.weight;
      const bias = m.bias ?? null;
      const out = w.shape[0]!;
      const din = w.numel() / out + (bias !== null ? 1 : 0);
      const layer: Layer = {
        name,
        module: m,
        weight: w,
        bias,
        din,
        out,
        get A() {
          return opt.layerState(layer, 'factorA');
        },
        get G() {
          return opt.layerState(layer, 'factorG');
        },
        get invA() {
          return opt.layerState(layer, 'inverseA');
        },
        get invG() {
          return opt.layerState(layer, 'inverseG');
        },
      };
      this.byModule.set(m, layer);
      this.byWeight.set(w, layer);
      return layer;
    });
    for (const l of this.layerList) this.layerState(l, 'factorA'); // a state dict has every layer's factors
    const watched = new Set<AnyModule>(this.byModule.keys());
    this.capture = captureOutputs(model, { filter: (m) => watched.has(m) });
  }

  protected get label(): 'KFAC' {
    return 'KFAC';
  }

  /**
   * One of a layer's four state entries; all four are made together on first use: A and G zero, the inverses
   * (0 + sqrt(lambda) I)^-1 with the constructor's damping.
   */
  private layerState(l: Layer, name: LayerEntry): Tensor {
    const s = this.state.get(l.weight);
    const t = s?.[name];
    if (t instanceof Tensor) return t;
    const w = l.weight;
    const fd = { dtype: this.factorDtype, device: w.device };
    const pd = { dtype: w.dtype, device: w.device };
    const lambda = this.defaults.damping;
    const inv = (d: number) => (): Tensor => tidy(() => eye(d, pd).mul(1 / Math.sqrt(lambda)));
    this.stateTensor(w, 'factorA', () => zeros([l.din, l.din], fd));
    this.stateTensor(w, 'factorG', () => zeros([l.out, l.out], fd));
    this.stateTensor(w, 'inverseA', inv(l.din));
    this.stateTensor(w, 'inverseG', inv(l.out));
    return this.state.get(w)![name] as Tensor;
  }

  /** A layer weight's state holds factorA and factorG (factor dtype), inverseA and inverseG (the weight's dtype). */
  protected override stateEntries(p: Tensor): Record<string, StateEntry> {
    const l = this.byWeight.get(p);
    if (l === undefined) return {};
    const [fd, pd] = [this.factorDtype, p.dtype];
    return {
      factorA: { shape: [l.din, l.din], dtype: fd },
      factorG: { shape: [l.out, l.out], dtype: fd },
      inverseA: { shape: [l.din, l.din], dtype: pd },
      inverseG: { shape: [l.out, l.out], dtype: pd },
    };
  }

  /** The preconditioned layers, in the model's module order. */
  get layers(): { name: string; module: Linear | Conv2d }[] {
    return this.layerList.map((l) => ({ name: l.name, module: l.module }));
  }

  private layerGroup(p: Tensor): ParamGroup<KFACOptions> {
    const g = this.groupOf(p);
    if (!g) throw new RangeError('KFAC: a layer parameter is in no parameter group');
    return g;
  }

  /**
   * Folds recorded layers (input, and the gradient of a batch-mean sampled loss w.r.t. the output) into A and G, in one
   * native call. A layer without a record keeps its statistics. sampledBackward() calls this; it is public for custom
   * loops that capture layers themselves.
   */
  updateStatistics(records: KFACLayerRecord[]): void {
    if (!Array.isArray(records)) throw typeError('an array of {module, input, outputGrad}', 'records', records);
    tidy(() => {
      const entries = records.map((r, i) => this.statisticsEntry(r, i));
      const { keep, weight } = this.statisticsCoefficients();
      const r = native.kfacStatistics(entries, weight, keep);
      this.skippedStatistics += r.skippedNonFinite;
    });
    if (this.warmCount >= 0) this.warmCount++;
    else this.statsUpdates++;
  }

  /** The native statistics entry of records[i] (handles of tensors made in the caller's tidy). */
  private statisticsEntry(
    r: KFACLayerRecord,
    i: number,
    into?: { A: Tensor; G: Tensor },
  ): Parameters<typeof native.kfacStatistics>[0][number] {
    const layer = r !== null && typeof r === 'object' ? this.byModule.get(r.module) : undefined;
    if (layer === undefined)
      throw new RangeError(
        `updateStatistics: records[${i}].module is not a Linear or Conv2d layer of this optimizer's model`,
      );
    if (!(r.input instanceof Tensor)) throw typeError('a Tensor', `records[${i}].input`, r.input);
    if (!(r.outputGrad instanceof Tensor)) throw typeError('a Tensor', `records[${i}].outputGrad`, r.outputGrad);
    const A = (into?.A ?? layer.A)._h;
    const G = (into?.G ?? layer.G)._h;
    const out = layer.weight.shape[0]!;
    let a: Tensor, g: Tensor, batch: number;
    if (layer.module instanceof Conv2d) {
      const patches = convPatches(layer.module, r.input); // (N, D, L)
      a = patches.transpose(1, 2).reshape([-1, patches.shape[1]!]);
      g = (r.outputGrad.ndim === 3 ? r.outputGrad.unsqueeze(0) : r.outputGrad)
        .flatten(2)
        .transpose(1, 2)
        .reshape([-1, out]);
      batch = patches.shape[0]!;
      // The authors' scaling: A = (1/N) sum over examples and locations, G = N / L sum (of batch-mean gradients).
      if (this.convScaling === 'authors')
        return {
          a: a._h,
          g: g._h,
          A,
          G,
          bias: layer.bias !== null,
          batch,
          aDivisor: batch,
          gScale: batch / patches.shape[2]!,
        };
    } else {
      const din = layer.weight.shape[1]!;
      a = r.input.reshape([-1, din]);
      g = r.outputGrad.reshape([-1, out]);
      batch = r.input.ndim >= 2 ? r.input.shape[0]! : 1;
    }
    return { a: a._h, g: g._h, A, G, bias: layer.bias !== null, batch };
  }

  /**
   * distributed.CurvatureSync (shard 'all'): this batch's own statistics of each recorded layer, written (not folded)
   * into `targets[k]` (layer k in `layers` order; null: not wanted): A = E[a a^T], G = E[g g^T] of these records
   * alone. Returns per layer 1 (written), 0 (no record) or -1 (left out: a non-finite input or output gradient).
   * @internal
   */
  statisticsContributions(records: KFACLayerRecord[], targets: ({ A: Tensor; G: Tensor } | null)[]): number[] {
    const out = this.layerList.map(() => 0);
    tidy(() => {
      records.forEach((r, i) => {
        const k = this.layerList.indexOf(this.byModule.get(r.module)!);
        const t = targets[k];
        if (k < 0 || !t) return;
        const rep = native.kfacStatistics([this.statisticsEntry(r, i, t)], 1, 0);
        out[k] = rep.updated > 0 ? 1 : -1;
      });
    });
    return out;
  }

  /**
   * distributed.CurvatureSync (shard 'all'): folds global-batch statistics into the moving averages of the given
   * layers (`layer`: index in `layers` order; A, G: the global E[a a^T], E[g g^T]; `skipped`: some rank's records of
   * it were not finite, so it keeps its statistics, as in one process) and counts the update, as updateStatistics
   * does for a batch. Call it on every rank at every statistics step (with this rank's layers: the counters advance
   * everywhere). @internal
   */
  foldStatistics(items: { layer: number; A: Tensor; G: Tensor; skipped: boolean }[]): void {
    const { keep, weight } = this.statisticsCoefficients();
    for (const it of items) {
      if (it.skipped) {
        this.skippedStatistics++;
        continue;
      }
      const l = this.layerList[it.layer]!;
      tidy(() => {
        // as the native fold: a fold that would overflow leaves the layer's statistics as they were (checked on the
        // diagonals, which bound every entry of these positive semidefinite matrices), else it is done in place
        const stays = (F: Tensor, X: Tensor): boolean =>
          Boolean(F.diagonal().mul(keep).add(X.diagonal().to(F.dtype), weight).isfinite().all().item());
        if (!stays(l.A, it.A) || !stays(l.G, it.G)) {
          this.skippedStatistics++;
          return;
        }
        l.A.mul_(keep).add_(it.A.to(l.A.dtype), weight);
        l.G.mul_(keep).add_(it.G.to(l.G.dtype), weight);
      });
    }
    if (this.warmCount >= 0) this.warmCount++;
    else this.statsUpdates++;
  }

  /** Sides of each preconditioned layer's A (input dimension, plus 1 with a bias) and G (outputs), in `layers` order. @internal */
  get layerSides(): { din: number; out: number; weight: Tensor; bias: Tensor | null }[] {
    return this.layerList.map((l) => ({ din: l.din, out: l.out, weight: l.weight, bias: l.bias }));
  }

  /** Recomputes every (A + dA I)^-1 and (G + dG I)^-1 from the current statistics: batched Cholesky, natively. */
  updateInverses(): InverseReport {
    const entries = this.ownLayers().map((l) => ({
      A: l.A._h,
      G: l.G._h,
      invA: l.invA._h,
      invG: l.invG._h,
      damping: this.layerGroup(l.weight).damping,
    }));
    this.lastInverseReport = native.kfacInverses(entries, this.piCorrection);
    return this.lastInverseReport;
  }

  /**
   * The sampled backward pass, after a forward pass of the model (through `.call`): draws y from the likelihood's
   * predictive distribution at `output`, differentiates the sampled loss w.r.t. every recorded layer output (graph
   * retained, `.grad` untouched) and folds inputs and output gradients into A and G. Does nothing (returns false)
   * when statistics are not due this step, unless `force` (which needs the layers to have been recorded).
   */
  sampledBackward(output: Tensor, likelihood: SampleableLikelihood, options: { force?: boolean } = {}): boolean {
    let folded = false;
    this.sampledRecords(output, likelihood, options, (recs) => {
      if (recs === null) return;
      this.updateStatistics(recs);
      folded = true;
    });
    return folded;
  }

  /**
   * sampledBackward's pass with the records handed to `fold` (inside a tidy) instead of folded into A and G; `fold`
   * gets null when the output is not finite (nothing to sample; counted here). Returns whether statistics were due
   * (`fold` was called). distributed.CurvatureSync's shard 'all' uses it. @internal
   */
  sampledRecords(
    output: Tensor,
    likelihood: SampleableLikelihood,
    options: { force?: boolean },
    fold: (records: KFACLayerRecord[] | null) => void,
  ): boolean {
    const { force = false } = is.options(options);
    if (!(output instanceof Tensor)) throw typeError('a Tensor', 'output', output);
    if (
      likelihood === null ||
      typeof likelihood !== 'object' ||
      typeof likelihood.sample !== 'function' ||
      typeof likelihood.loss !== 'function'
    )
      throw typeError('a likelihood with sample() and loss()', 'likelihood', likelihood);
    if (!force && !this.statisticsDue()) {
      this.capture.clear();
      return false;
    }
    // An output holding NaN or Infinity has no predictive distribution to sample: skip (counted) instead of failing.
    if (!tidy(() => output.detach().isfinite().all().item())) {
      this.capture.clear();
      this.skippedStatistics++;
      fold(null);
      return true;
    }
    const recs = this.capture.records();
    if (recs.length === 0)
      throw new TorchError(
        'KFAC.sampledBackward: no layer was recorded in the forward pass; call the model and its layers with .call(x) (forward hooks), and call sampledBackward after the forward pass of a step whose statistics are due',
        'TORCH_ERROR',
      );
    try {
      tidy(() => {
        const y = likelihood.sample(output);
        const loss = likelihood.loss(output, y);
        const gs = this.capture.outputGrads(loss);
        fold(recs.map((r) => ({ module: r.module, input: r.input, outputGrad: gs.get(r.name)! })));
      });
    } finally {
      this.capture.clear();
    }
    return true;
  }

  /**
   * Warm start: one pass over `batches` at the current weights, no updates; A and G become the plain running means of
   * the sampled statistics over those minibatches. `forward` maps a batch's inputs to the model output (through `.call`).
   */
  async warmStart(
    batches: Iterable<[Tensor, ...unknown[]] | Tensor> | AsyncIterable<[Tensor, ...unknown[]] | Tensor>,
    forward: (x: Tensor) => Tensor,
    likelihood: SampleableLikelihood,
  ): Promise<number> {
    is.function(forward, 'forward');
    this.capture.enabled = true;
    try {
      return await this.warmLoop(
        batches,
        () => {
          for (const l of this.layerList) {
            l.A.zero_();
            l.G.zero_();
          }
        },
        (b) => {
          const x = b instanceof Tensor ? b : b[0];
          tidy(() => this.sampledBackward(forward(x), likelihood, { force: true }));
        },
        'warmStart: batches yielded nothing',
      );
    } finally {
      this.capture.clear();
      this.capture.enabled = this.statisticsDue();
    }
  }

  protected refresh(): void {
    this.updateInverses();
  }

  /** Refreshes the inverses when due, then updates every parameter from its `.grad` (momentum, preconditioning, decay). */
  override step<L = undefined>(closure?: () => L): L | undefined {
    try {
      return super.step(closure);
    } finally {
      // Records not consumed by sampledBackward would keep the graph alive; the next forward records only if due.
      this.capture.clear();
      this.capture.enabled = this.statisticsDue();
    }
  }

  /** fit()'s hook: the sampled backward pass, when statistics are due. */
  override beforeBackward(output: Tensor, likelihood?: SampleableLikelihood): boolean {
    if (likelihood === undefined)
      throw new TypeError(
        'KFAC.beforeBackward: KFAC samples from the predictive distribution: pass the likelihood (e.g. new Categorical())',
      );
    return this.sampledBackward(output, likelihood);
  }

  override get needsLikelihood(): boolean {
    return true;
  }

  /** Refreshes the inverses when due; throws a TorchError 'NO_STATISTICS' when statistics were never gathered. */
  protected beforeUpdate(): boolean {
    this.requireStatistics('KFAC');
    if (!this.inversesRefreshed && this.inversesDue()) this.updateInverses(); // CurvatureSync may have refreshed them
    return true;
  }

  /** Every group in one native call: layers along (G + dG I)^-1 M (A + dA I)^-1, other parameters along m. */
  protected update(): StepReport {
    const inLayer = new Set<Tensor>();
    for (const l of this.layerList) {
      inLayer.add(l.weight);
      if (l.bias !== null) inLayer.add(l.bias);
    }
    const layers = this.ownLayers().map((l) => {
      const g = this.layerGroup(l.weight);
      return {
        weight: l.weight._h,
        bias: l.bias === null ? null : l.bias._h,
        momentum: this.momentumOf(l.weight)._h,
        biasMomentum: l.bias === null ? null : this.momentumOf(l.bias)._h,
        invA: l.invA._h,
        invG: l.invG._h,
        lr: g.lr,
        mu: g.momentum,
        wd: g.weightDecay,
      };
    });
    const plain = this.paramGroups.flatMap((g) =>
      g.params
        .filter((p) => !inLayer.has(p))
        .map((p) => ({ param: p._h, momentum: this.momentumOf(p)._h, lr: g.lr, mu: g.momentum, wd: g.weightDecay })),
    );
    return native.kfacStep(layers, plain);
  }

  /** The layers whose inverses and update this rank computes: all, or distributed.CurvatureSync's shard. */
  private ownLayers(): Layer[] {
    return this.shard === null ? this.layerList : this.layerList.filter((l) => this.shard!.has(l.weight));
  }

  private layerOf(layer: AnyModule | string, what: string): Layer {
    const l = typeof layer === 'string' ? this.layerList.find((x) => x.name === layer) : this.byModule.get(layer);
    if (l === undefined) throw new RangeError(`${what}: not a Linear or Conv2d layer of this optimizer's model`);
    return l;
  }

  /**
   * The KFAC direction of a layer for given weight and bias tensors (shaped like the parameters), with the current
   * inverses: [dW | db] = invG [mW | mb] invA. New tensors, the caller's.
   */
  precondition(layer: AnyModule | string, mW: Tensor, mb: Tensor | null = null): [Tensor, Tensor | null] {
    const l = this.layerOf(layer, 'precondition');
    if (!(mW instanceof Tensor)) throw typeError('a Tensor', 'mW', mW);
    if ((mb === null) !== (l.bias === null))
      throw new RangeError(
        `precondition: layer '${l.name}' ${l.bias === null ? 'has no bias' : 'has a bias: give its tensor'}`,
      );
    return tidy(() => {
      const out = l.weight.shape[0]!;
      const M = mb === null ? mW.reshape([out, -1]) : cat([mW.reshape([out, -1]), mb.reshape([out, 1])], 1);
      const D = l.invG.mm(M).mm(l.invA);
      const cols = l.weight.numel() / out;
      const dW = D.narrow(1, 0, cols).reshape(l.weight.shape).contiguous();
      return [dW, mb === null ? null : D.select(1, cols).contiguous()] as [Tensor, Tensor | null];
    });
  }

  /** A layer's factors and inverses (the optimizer's own tensors: read, do not dispose). */
  curvatureState(layer: AnyModule | string): { A: Tensor; G: Tensor; invA: Tensor; invG: Tensor } {
    const l = this.layerOf(layer, 'curvatureState');
    return { A: l.A, G: l.G, invA: l.invA, invG: l.invG };
  }

  /** The base load (every layer's four entries, or none: then fresh ones), then recording as the step needs. */
  override loadStateDict(sd: OptimizerStateDict & { kfac?: Record<string, unknown> }): void {
    super.loadStateDict(sd);
    for (const l of this.layerList) this.layerState(l, 'factorA');
    this.capture.clear();
    this.capture.enabled = this.statisticsDue();
  }

  /** Frees the state (momentum, factors, inverses) and stops recording the model's layers. */
  override dispose(): void {
    super.dispose();
    this.capture.remove();
  }
}
