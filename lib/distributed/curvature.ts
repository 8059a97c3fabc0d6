/**
 * distributed.CurvatureSync: TNT, KFAC and Shampoo over a process group, with statistics equal to the
 * single-process statistics of the global batch (every rank holding an equal share of it).
 *
 * What travels, per statistics step, and why:
 * - TNT all-reduces (averages) the batch-mean *sampled gradient* before it is folded into the factors. The factors
 *   are quadratic in that gradient (G G^T and G^T G of its matricizations), so the mean of per-rank factors is not
 *   the factor of the mean gradient; the gradient itself is linear in the examples, so its rank average is exactly
 *   the global batch mean. Bytes: sum_i numel(W_i) per step (one gradient). All-reducing factors would cost
 *   sum_i sum_k d_ik^2 (e.g. 1000^2 + 784^2 for a 1000x784 layer, 2.1x its 784k weights) and be wrong.
 * - KFAC all-reduces its factors A and G after folding the local batch in: A and G are means over examples of
 *   outer products (linear in the per-example terms), and the previous moving average is identical on every rank,
 *   so the rank average of (1 - w) A + w A_r is (1 - w) A + w mean_r A_r, the global-batch statistic. Bytes:
 *   sum over layers of (d_in + 1)^2 + d_out^2 per statistics step (the per-example activations and output
 *   gradients, B (d_in + d_out) numbers, would be larger for B >~ d). With shard 'all' (KAISA's layout) the
 *   per-rank contributions are reduce-scattered instead, each owner receiving only its own layers' means, and
 *   folded there: (W - 1) / W of the factors leave each rank instead of 2 (W - 1) / W.
 * - Shampoo's statistics come from the gradient, which DistributedDataParallel has already averaged: nothing more.
 *
 * Inverses (TNT, KFAC): `inverses: 'replicated'` computes every inverse on every rank (no bytes, W-fold redundant
 * work); `'sharded'` assigns each factor's inverse to one rank (largest first, to the least loaded rank, the same
 * plan on every rank), computes it there and broadcasts it (bytes: the inverses). bench/distributed.mjs measures
 * both: sharded was faster (TNT T2=5 on 2 ranks: 414-783 ms against 446-1162 ms per step). `shard: 'all'` (the
 * default for all three) divides the statistics and updates too, per parameter (TNT, Shampoo) or per layer (KFAC).
 *
 *   const ddp = await nn.parallel.DistributedDataParallel.create(model);
 *   const opt = new optim.TNT(ddp.parameters(), { lr: 0.1 });
 *   const sync = new distributed.CurvatureSync(opt);
 *   const out = ddp.call(x);
 *   await sync.sampledBackward(out, lik);       // instead of opt.sampledBackward
 *   tidy(() => lossFn(out, y).backward());
 *   await ddp.synchronize();
 *   await sync.step();                          // instead of opt.step()
 */
import { Tensor } from '../tensor.js';
import { TNT, KFAC, Shampoo, type SampleableLikelihood } from '../optim/index.js';
import { grad as autogradGrad, noGrad } from '../autograd.js';
import { zeros } from '../creation.js';
import { cat } from '../ops.js';
import { tidy, keep } from '../scope.js';
import { native } from '../native.js';
import { INVERSE_METHOD } from '../opcodes.js';
import { is, typeError } from '../errors.js';
import type { InverseReport } from '../native.js';
import {
  allGatherIntoTensor,
  allReduce,
  broadcast,
  getRank,
  getWorldSize,
  reduce,
  reduceScatterTensor,
} from './index.js';
import { withoutGradientSync } from './state.js';

/** Options of distributed.CurvatureSync: how the inverse refreshes are shared across ranks (`inverses`). */
export interface CurvatureSyncOptions {
  /**
   * How the curvature work is divided: 'all' (the default; as Distributed Shampoo and KAISA) gives
   * each parameter to one rank, balanced by cost, which folds its statistics, inverts its factors (roots) and
   * computes its update; the updated parameters are broadcast from their owners. KFAC takes 'all' per layer: each
   * layer's A and G contributions are reduce-scattered to its owner, which folds them, inverts them and steps the
   * layer; the updated layers are all-gathered. 'inverses' (TNT and KFAC) shards the inverses only
   * (statistics and updates on every rank); 'none' repeats everything on every rank.
   */
  shard?: 'all' | 'inverses' | 'none';
  /**
   * The older switch, still read when `shard` is not given: 'sharded' is shard 'inverses', 'replicated' is 'none'.
   */
  inverses?: 'replicated' | 'sharded';
}

type Curvature = { shape: number[]; mains: Tensor[]; auxes: Tensor[] };
type KfacLayer = { A: Tensor; G: Tensor; invA: Tensor; invG: Tensor; weight: Tensor; bias: Tensor | null };

const elementBytes = (t: Tensor): number =>
  t.dtype === 'float64' ? 8 : t.dtype === 'float16' || t.dtype === 'bfloat16' ? 2 : 4;

/**
 * Averages `tensors` over the ranks in place, one all-reduce per dtype (concatenated); with `dst`, a reduce: only
 * rank `dst`'s tensors receive the average (the others' are left as they were).
 */
async function averageInPlace(tensors: Tensor[], dst?: number): Promise<void> {
  const byType = new Map<string, Tensor[]>();
  for (const t of tensors) byType.set(t.dtype, [...(byType.get(t.dtype) ?? []), t]);
  await Promise.all(
    [...byType.values()].map(async (ts) => {
      // kept: a caller's tidy() (fit()'s step) may end while the all-reduce is in flight
      const flat = tidy(() => keep(cat(ts.map((t) => t.reshape([-1])))));
      try {
        if (dst === undefined) await allReduce(flat, 'avg');
        else {
          await reduce(flat, dst, 'avg');
          if (getRank() !== dst) return;
        }
        let off = 0;
        tidy(() => {
          for (const t of ts) {
            const n = t.numel();
            t.copy_(flat.narrow(0, off, n).view(t.shape));
            off += n;
          }
        });
      } finally {
        flat.dispose();
      }
    }),
  );
}

/** Wraps TNT or KFAC for data-parallel training: their statistics are averaged over the process group and their inverse refreshes sharded across ranks, so every replica preconditions alike. See docs/distributed.md. */
export class CurvatureSync {
  readonly optimizer: TNT | KFAC | Shampoo;
  readonly inverses: 'replicated' | 'sharded';
  /** How the curvature work is divided (see CurvatureSyncOptions.shard). */
  readonly shard: 'all' | 'inverses' | 'none';
  /** shard 'all': the owner rank of each parameter (optimizer.params order), made on first use. */
  private owners: number[] | null = null;
  /** shard 'all' with KFAC: the owner rank of each preconditioned layer (optimizer.layers order). */
  private layerOwners: number[] | null = null;
  /** shard 'all' with KFAC: the statistics exchange buffers, kept from step to step (see dispose()). */
  private kfacBuffers: { input: Tensor; mean: Tensor } | null = null;
  /** Marks an optimizer whose statistics are gathered over the process group (fit() checks it under DDP). */
  readonly distributed = true;
  /** Bytes this rank handed to collectives for statistics and inverses so far. */
  bytes = 0;

  constructor(optimizer: TNT | KFAC | Shampoo, options: CurvatureSyncOptions = {}) {
    if (!(optimizer instanceof TNT || optimizer instanceof KFAC || optimizer instanceof Shampoo))
      throw typeError('a TNT, KFAC or Shampoo optimizer', 'optimizer', optimizer);
    if (options === null || typeof options !== 'object') throw typeError('an options object', 'options', options);
    this.optimizer = optimizer;
    const inv =
      options.inverses === undefined
        ? undefined
        : is.oneOf(options.inverses, 'inverses', ['replicated', 'sharded'] as const);
    // default: all the curvature work divided (bench/distributed.mjs: TNT and Shampoo; KFAC 'all' against
    // 'inverses' 1.13x faster in the mean of 14 interleaved 2-rank rounds, 8 faster, 5 slower, with 22-50% fewer bytes)
    const shard = options.shard ?? (inv === 'replicated' ? 'none' : inv === 'sharded' ? 'inverses' : 'all');
    this.shard = is.oneOf(shard, 'shard', ['all', 'inverses', 'none'] as const);
    this.inverses = this.shard === 'none' ? 'replicated' : 'sharded';
    if (this.shard === 'inverses' && optimizer instanceof Shampoo)
      throw new TypeError(
        "CurvatureSync: inverses 'sharded' is implemented for TNT and KFAC; Shampoo computes its roots on every rank",
      );
  }

  /**
   * shard 'all': which rank owns each parameter (optimizer.params order). Greedy largest-first onto the least loaded
   * rank (the same plan on every rank), by the parameter's per-step cost in flops: its statistics (a rank-k update
   * per mode, numel * d_i, every statsEvery steps), its preconditioned direction (2 numel * d_i per mode) and its
   * factors' inverses (d_i^3 / 3 every inverseEvery steps).
   */
  owner(): number[] {
    if (this.owners !== null) return this.owners;
    const opt = this.optimizer as TNT | Shampoo;
    // an inverse root (Shampoo: eigh or Newton iterations) costs about 10 d^3 against a Cholesky's d^3 / 3
    const inverse = opt instanceof Shampoo ? 10 : 1 / 3;
    const costs = opt.params.map((p) => {
      const shape = tntShape(opt, p);
      const n = p.numel();
      if (shape.length === 0) return n;
      const sum = shape.reduce((a, d) => a + d, 0);
      return n * sum * (1 / opt.statsEvery + 2) + shape.reduce((a, d) => a + inverse * d ** 3, 0) / opt.inverseEvery;
    });
    this.owners = this.plan(costs);
    const rank = getRank();
    opt.shard = new Set(opt.params.filter((_, i) => this.owners![i] === rank));
    return this.owners;
  }

  /**
   * shard 'all': makes every rank's copy of the optimizer state whole (each parameter's momentum, statistics and
   * inverses broadcast from its owner), e.g. before rank 0 writes a checkpoint of it. Call it on every rank. A restored
   * state is whole already; after it, training goes on sharded.
   */
  async gatherState(): Promise<void> {
    if (this.shard !== 'all') return;
    if (this.optimizer instanceof KFAC) return this.kfacGatherState(this.optimizer);
    const opt = this.optimizer as TNT | Shampoo;
    const owners = this.owner();
    const sends: Promise<void>[] = [];
    const params = opt.params;
    params.forEach((p, i) => {
      {
        const m = (opt as unknown as { momentumOf(p: Tensor): Tensor }).momentumOf(p);
        let state: Tensor[];
        if (opt instanceof TNT) {
          const c = tntCurvature(opt, p);
          state = [...c.mains, ...c.auxes];
        } else {
          const eps = opt.paramGroups.find((g) => g.params.includes(p))!.epsilon;
          const c = (
            opt as unknown as { curvatureOf(p: Tensor, e: number): { factors: Tensor[]; roots: Tensor[] } }
          ).curvatureOf(p, eps);
          state = [...c.factors, ...c.roots];
        }
        for (const t of [m, ...state]) {
          this.bytes += t.numel() * elementBytes(t);
          sends.push(broadcast(t, owners[i]!));
        }
      }
    });
    await Promise.all(sends);
  }

  /**
   * The distributed sampled backward pass (TNT, KFAC): as the optimizer's sampledBackward, with the statistics of
   * the global batch. Call it on every rank at the same steps. Resolves to whether statistics were due.
   */
  async sampledBackward(
    output: Tensor,
    likelihood: SampleableLikelihood,
    { force = false }: { force?: boolean } = {},
  ): Promise<boolean> {
    const opt = this.optimizer;
    if (opt instanceof Shampoo)
      throw new TypeError(
        'CurvatureSync.sampledBackward: Shampoo has no sampled backward (its statistics come from the DDP-averaged gradient in step())',
      );
    if (!(output instanceof Tensor)) throw typeError('a Tensor', 'output', output);
    if (
      likelihood === null ||
      typeof likelihood !== 'object' ||
      typeof likelihood.sample !== 'function' ||
      typeof likelihood.loss !== 'function'
    )
      throw typeError('a likelihood with sample() and loss()', 'likelihood', likelihood);
    if (opt instanceof KFAC && this.shard === 'all') return this.kfacStatisticsSharded(opt, output, likelihood, force);
    if (opt instanceof KFAC) {
      if (!withoutGradientSync(() => opt.sampledBackward(output, likelihood, { force }))) return false;
      const layers = kfacLayers(opt);
      const fs = layers.flatMap((l) => [l.A, l.G]);
      this.bytes += fs.reduce((a, t) => a + t.numel() * elementBytes(t), 0);
      await averageInPlace(fs);
      return true;
    }
    if (!force && !opt.statisticsDue()) return false;
    const params = opt.params;
    const raw = tidy(() => {
      const y = likelihood.sample(output);
      const loss = likelihood.loss(output, y);
      const gs = withoutGradientSync(() => autogradGrad(loss, params, { retainGraph: true, allowUnused: true }));
      for (const g of gs) if (g !== null) keep(g);
      return gs;
    });
    // (a parameter without a gradient has none on every rank: same model, same graph)
    const grads = raw.filter((g): g is Tensor => g !== null);
    try {
      this.bytes += grads.reduce((a, t) => a + t.numel() * elementBytes(t), 0);
      if (this.shard === 'all') {
        // each owner needs only its parameters' global-mean sampled gradient: one reduce per owner
        const owners = this.owner();
        const byOwner = new Map<number, Tensor[]>();
        raw.forEach((g, i) => {
          if (g !== null) byOwner.set(owners[i]!, [...(byOwner.get(owners[i]!) ?? []), g]);
        });
        await Promise.all([...byOwner].map(([r, ts]) => averageInPlace(ts, r)));
      } else await averageInPlace(grads);
      opt.updateStatistics(raw);
    } finally {
      for (const g of grads) g.dispose();
    }
    return true;
  }

  /** The optimizer's parameter groups (so that fit() can take a CurvatureSync as its optimizer). */
  get paramGroups(): TNT['paramGroups'] | KFAC['paramGroups'] | Shampoo['paramGroups'] {
    return this.optimizer.paramGroups;
  }

  zeroGrad(options?: { setToNone?: boolean }): void {
    this.optimizer.zeroGrad(options);
  }

  /** fit()'s hook: the distributed sampled backward pass (TNT, KFAC); nothing for Shampoo. fit() awaits it before step(). */
  beforeBackward(output: Tensor, likelihood?: SampleableLikelihood): Promise<boolean> {
    if (this.optimizer instanceof Shampoo) return Promise.resolve(false);
    if (likelihood === undefined)
      return Promise.reject(
        new TypeError(
          'CurvatureSync.beforeBackward: TNT and KFAC sample from the predictive distribution: pass the likelihood',
        ),
      );
    return this.sampledBackward(output, likelihood);
  }

  get needsLikelihood(): boolean {
    return !(this.optimizer instanceof Shampoo);
  }

  /**
   * The optimizer's step, with sharded inverses refreshed first when they are due. Call it on every rank after
   * `await ddp.synchronize()`.
   */
  async step(): Promise<void> {
    const opt = this.optimizer;
    if (this.shard === 'all' && opt instanceof KFAC) return this.kfacStepSharded(opt);
    if (this.shard === 'all') return this.stepSharded(opt as TNT | Shampoo);
    const due = opt.inversesDue() && (opt.statsUpdates > 0 || opt.warmStarted);
    if (this.inverses === 'sharded' && due) {
      if (opt instanceof TNT) await this.tntSharded(opt);
      else if (opt instanceof KFAC) await this.kfacSharded(opt);
      opt.inversesRefreshed = true;
    }
    try {
      opt.step();
    } finally {
      opt.inversesRefreshed = false;
    }
  }

  /**
   * shard 'all': every rank updates the parameters it owns (their inverses refreshed there when due), then each
   * owner broadcasts its updated parameters (one flat broadcast per owner and dtype). The gradients (DDP-averaged) are
   * the same on every rank, so a non-finite one anywhere skips the step on every rank, as in one process.
   */
  private async stepSharded(opt: TNT | Shampoo): Promise<void> {
    const owners = this.owner();
    const rank = getRank();
    const params = opt.params;
    const others = params.filter((_, i) => owners[i] !== rank);
    if (!stepOwned(opt, others)) return; // skipped everywhere: nothing changed
    const W = getWorldSize();
    const sends: Promise<void>[] = [];
    for (let r = 0; r < W; r++) {
      const byType = new Map<string, Tensor[]>();
      params.forEach((p, i) => {
        if (owners[i] === r) byType.set(p.dtype, [...(byType.get(p.dtype) ?? []), p]);
      });
      for (const ps of byType.values()) {
        const n = ps.reduce((a, p) => a + p.numel(), 0);
        if (r === rank) this.bytes += n * elementBytes(ps[0]!);
        sends.push(this.broadcastParams(ps, r, rank));
      }
    }
    await Promise.all(sends);
  }

  /**
   * shard 'all' with KFAC (as KAISA): which rank owns each preconditioned layer, greedy largest-first onto the least
   * loaded rank by the layer's per-step cost in flops: its preconditioned direction (G^-1 M A^-1: 2 out din (out +
   * din)), the fold of its statistics (din^2 + out^2 every statsEvery steps) and its inverses (Cholesky and inverse,
   * about din^3 + out^3, every inverseEvery steps). The same plan on every rank. Sets the optimizer's shard: the
   * owned layers' weights and biases, and every parameter outside a layer (updated on every rank, from the same
   * DDP-averaged gradient).
   */
  private kfacOwners(opt: KFAC): number[] {
    if (this.layerOwners !== null) return this.layerOwners;
    const layers = opt.layerSides;
    const costs = layers.map(
      ({ din, out }) =>
        2 * out * din * (out + din) +
        (din * din + out * out) / opt.statsEvery +
        (din ** 3 + out ** 3) / opt.inverseEvery,
    );
    this.layerOwners = this.plan(costs);
    const rank = getRank();
    const inLayer = new Set<Tensor>();
    const mine = new Set<Tensor>();
    layers.forEach((l, i) => {
      for (const p of l.bias === null ? [l.weight] : [l.weight, l.bias]) {
        inLayer.add(p);
        if (this.layerOwners![i] === rank) mine.add(p);
      }
    });
    for (const p of opt.params) if (!inLayer.has(p)) mine.add(p);
    opt.shard = mine;
    return this.layerOwners;
  }

  /**
   * shard 'all' with KFAC: every rank computes its own batch's A and G contributions of every layer (per-example work,
   * already divided by data parallelism) into one buffer laid out as W blocks, block r holding rank r's layers (A, G,
   * and a flag that is non-zero where a rank's records were not finite); one reduceScatterTensor ('avg') leaves each
   * owner the global-batch means of its own layers only ((W - 1) / W of the buffer leaves each rank, against 2 (W -
   * 1) / W for the all-reduce of every factor), and the owner folds them into its moving averages.
   */
  private async kfacStatisticsSharded(
    opt: KFAC,
    output: Tensor,
    likelihood: SampleableLikelihood,
    force: boolean,
  ): Promise<boolean> {
    const owners = this.kfacOwners(opt);
    const layers = opt.layerSides;
    const W = getWorldSize();
    const rank = getRank();
    const offsets: number[] = [];
    const blockLen = new Array<number>(W).fill(0);
    layers.forEach((l, i) => {
      offsets.push(blockLen[owners[i]!]!);
      blockLen[owners[i]!]! += l.din * l.din + l.out * l.out + 1;
    });
    const len = Math.max(1, ...blockLen);
    const at = (i: number): number => owners[i]! * len + offsets[i]!;
    const fd = { dtype: opt.factorDtype, device: opt.params[0]?.device ?? 'cpu' };
    // the buffers live from step to step (fresh ones cost page faults of 3x the factors every step): the
    // contributions overwrite their regions, the flags are cleared here, the padding stays zero
    const buf = (this.kfacBuffers ??= {
      input: keep(zeros([W * len], fd)),
      mean: keep(zeros([len], fd)),
    });
    const { input, mean } = buf;
    tidy(() => layers.forEach((l, i) => input.narrow(0, at(i) + l.din * l.din + l.out * l.out, 1).zero_()));
    let recorded: number[] = [];
    const due = withoutGradientSync(() =>
      opt.sampledRecords(output, likelihood, { force }, (recs) => {
        if (recs === null) {
          // no statistics from this rank's batch: every layer left out, as one process leaves them all
          recorded = layers.map(() => -1);
        } else {
          const targets = layers.map((l, i) => ({
            A: input.narrow(0, at(i), l.din * l.din).view([l.din, l.din]),
            G: input.narrow(0, at(i) + l.din * l.din, l.out * l.out).view([l.out, l.out]),
          }));
          recorded = opt.statisticsContributions(recs, targets);
        }
        recorded.forEach((v, i) => {
          if (v < 0) input.narrow(0, at(i) + layers[i]!.din ** 2 + layers[i]!.out ** 2, 1).fill_(1);
        });
      }),
    );
    if (!due) return false;
    this.bytes += (W - 1) * len * elementBytes(input);
    await reduceScatterTensor(mean, input, 'avg');
    const items: { layer: number; A: Tensor; G: Tensor; skipped: boolean }[] = [];
    tidy(() => {
      layers.forEach((l, i) => {
        // a layer no rank recorded (the same model everywhere: none did) keeps its statistics
        if (owners[i] !== rank || recorded[i] === 0) return;
        const o = offsets[i]!;
        items.push({
          layer: i,
          A: mean.narrow(0, o, l.din * l.din).view([l.din, l.din]),
          G: mean.narrow(0, o + l.din * l.din, l.out * l.out).view([l.out, l.out]),
          skipped: mean.narrow(0, o + l.din * l.din + l.out * l.out, 1).item() !== 0,
        });
      });
      opt.foldStatistics(items);
    });
    return true;
  }

  /**
   * Frees the buffers CurvatureSync keeps between steps (KFAC shard 'all': the statistics exchange buffer, the size
   * of the factors). The optimizer is not touched; a later step makes them again.
   */
  dispose(): void {
    if (this.kfacBuffers === null) return;
    this.kfacBuffers.input.dispose();
    this.kfacBuffers.mean.dispose();
    this.kfacBuffers = null;
  }

  /**
   * shard 'all' with KFAC: every rank steps its own layers (their inverses refreshed there when due) and every
   * parameter outside a layer; then one allGatherIntoTensor per dtype (blocks padded to the largest owner's) hands
   * every rank the owners' updated layer parameters. The DDP-averaged gradients are the same on every rank, so a
   * non-finite one anywhere skips the step on every rank, as in one process.
   */
  private async kfacStepSharded(opt: KFAC): Promise<void> {
    const owners = this.kfacOwners(opt);
    const layers = opt.layerSides;
    const W = getWorldSize();
    const rank = getRank();
    const paramsOf = (r: number): Tensor[] =>
      layers.flatMap((l, i) => (owners[i] !== r ? [] : l.bias === null ? [l.weight] : [l.weight, l.bias]));
    const others = Array.from({ length: W }, (_, r) => (r === rank ? [] : paramsOf(r))).flat();
    if (!stepOwned(opt, others)) return; // skipped everywhere: nothing changed
    const blocks = Array.from({ length: W }, (_, r) => paramsOf(r));
    const dtypes = [...new Set(layers.map((l) => l.weight.dtype))];
    await Promise.all(
      dtypes.map(async (dt) => {
        const per = blocks.map((ps) => ps.filter((p) => p.dtype === dt));
        const sizes = per.map((ps) => ps.reduce((a, p) => a + p.numel(), 0));
        const len = Math.max(1, ...sizes);
        const mine = per[rank]!;
        const device = layers[0]!.weight.device;
        const input = tidy(() => {
          const parts = mine.map((p) => p.detach().reshape([-1]));
          if (sizes[rank]! < len) parts.push(zeros([len - sizes[rank]!], { dtype: dt, device }));
          return keep(cat(parts));
        });
        const gathered = keep(zeros([W * len], { dtype: dt, device }));
        try {
          this.bytes += (W - 1) * len * elementBytes(input);
          await allGatherIntoTensor(gathered, input);
          noGrad(() =>
            tidy(() => {
              per.forEach((ps, r) => {
                if (r === rank) return;
                let off = r * len;
                for (const p of ps) {
                  const n = p.numel();
                  p.copy_(gathered.narrow(0, off, n).view(p.shape));
                  off += n;
                }
              });
            }),
          );
        } finally {
          input.dispose();
          gathered.dispose();
        }
      }),
    );
  }

  /** shard 'all' with KFAC: each layer's momenta, factors and inverses broadcast from its owner to every rank. */
  private async kfacGatherState(opt: KFAC): Promise<void> {
    const owners = this.kfacOwners(opt);
    const momentumOf = (p: Tensor): Tensor => (opt as unknown as { momentumOf(p: Tensor): Tensor }).momentumOf(p);
    const sends: Promise<void>[] = [];
    kfacLayers(opt).forEach((l, i) => {
      const ms = l.bias === null ? [momentumOf(l.weight)] : [momentumOf(l.weight), momentumOf(l.bias)];
      for (const t of [...ms, l.A, l.G, l.invA, l.invG]) {
        this.bytes += t.numel() * elementBytes(t);
        sends.push(broadcast(t, owners[i]!));
      }
    });
    await Promise.all(sends);
  }

  private async broadcastParams(ps: Tensor[], src: number, rank: number): Promise<void> {
    const flat = tidy(() =>
      keep(
        rank === src
          ? cat(ps.map((p) => p.detach().reshape([-1])))
          : zeros([ps.reduce((a, p) => a + p.numel(), 0)], { dtype: ps[0]!.dtype, device: ps[0]!.device }),
      ),
    );
    try {
      await broadcast(flat, src);
      if (rank === src) return;
      noGrad(() =>
        tidy(() => {
          let off = 0;
          for (const p of ps) {
            const n = p.numel();
            p.copy_(flat.narrow(0, off, n).view(p.shape));
            off += n;
          }
        }),
      );
    } finally {
      flat.dispose();
    }
  }

  /** Bytes per statistics step of the two TNT choices (gradient vs factors), and KFAC's factors. */
  statisticsBytes(): { gradient: number; factors: number } {
    const opt = this.optimizer;
    if (opt instanceof KFAC) {
      const fs = kfacLayers(opt).flatMap((l) => [l.A, l.G]);
      return {
        gradient: opt.params.reduce((a, p) => a + p.numel() * elementBytes(p), 0),
        factors: fs.reduce((a, t) => a + t.numel() * elementBytes(t), 0),
      };
    }
    const params = opt.params;
    let factors = 0;
    for (const p of params) {
      const b = p.dtype === 'float64' ? 8 : 4;
      const shape = opt instanceof TNT ? tntShape(opt, p) : p.shape;
      for (const d of shape) factors += d * d * b;
    }
    return { gradient: params.reduce((a, p) => a + p.numel() * elementBytes(p), 0), factors };
  }

  private plan(costs: number[]): number[] {
    const W = getWorldSize();
    const load = new Array<number>(W).fill(0);
    const owner = new Array<number>(costs.length).fill(0);
    const order = costs.map((c, i) => [c, i] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
    for (const [c, i] of order) {
      let best = 0;
      for (let r = 1; r < W; r++) if (load[r]! < load[best]!) best = r;
      owner[i] = best;
      load[best]! += c;
    }
    return owner;
  }

  private async tntSharded(opt: TNT): Promise<void> {
    const rank = getRank();
    const items: { p: Tensor; damping: number; c: Curvature }[] = [];
    for (const g of opt.paramGroups)
      for (const p of g.params) items.push({ p, damping: g.damping, c: tntCurvature(opt, p, g.damping) });
    const owner = this.plan(items.map(({ c }) => c.shape.reduce((a, d) => a + d ** 3, 0)));
    const total: InverseReport = { inverted: 0, retriedFloat64: 0, retriedDamping: 0, failed: 0, skippedNonFinite: 0 };
    const byDamping = new Map<number, Curvature[]>();
    items.forEach((it, i) => {
      if (owner[i] === rank) byDamping.set(it.damping, [...(byDamping.get(it.damping) ?? []), it.c]);
    });
    for (const [damping, cs] of byDamping) {
      const r = native.tntInverses(
        cs.map((c) => c.shape),
        cs.map((c) => c.mains.map((f) => f._h)),
        cs.map((c) => c.auxes.map((f) => f._h)),
        damping,
        INVERSE_METHOD[opt.inverseMethod],
      );
      for (const k of Object.keys(total) as (keyof InverseReport)[]) total[k] += r[k];
    }
    opt.lastInverseReport = total;
    const sends: Promise<void>[] = [];
    items.forEach((it, i) => {
      for (const t of [...it.c.mains, ...it.c.auxes]) {
        this.bytes += t.numel() * elementBytes(t);
        sends.push(broadcast(t, owner[i]!));
      }
    });
    await Promise.all(sends);
  }

  private async kfacSharded(opt: KFAC): Promise<void> {
    const rank = getRank();
    const layers = kfacLayers(opt);
    const owner = this.plan(layers.map((l) => l.A.shape[0]! ** 3 + l.G.shape[0]! ** 3));
    const groupOf = (p: Tensor): number => opt.paramGroups.find((g) => g.params.includes(p))!.damping;
    const mine = layers.filter((_, i) => owner[i] === rank);
    if (mine.length > 0)
      opt.lastInverseReport = native.kfacInverses(
        mine.map((l) => ({ A: l.A._h, G: l.G._h, invA: l.invA._h, invG: l.invG._h, damping: groupOf(l.weight) })),
        opt.piCorrection,
      );
    const sends: Promise<void>[] = [];
    layers.forEach((l, i) => {
      for (const t of [l.invA, l.invG]) {
        this.bytes += t.numel() * elementBytes(t);
        sends.push(broadcast(t, owner[i]!));
      }
    });
    await Promise.all(sends);
  }
}

// The optimizers' own state (read and written in place; never disposed here).
function kfacLayers(opt: KFAC): KfacLayer[] {
  return (opt as unknown as { layerList: KfacLayer[] }).layerList;
}
function tntShape(opt: TNT | Shampoo, p: Tensor): number[] {
  return (opt as unknown as { shapeOf(p: Tensor): number[] }).shapeOf(p);
}
function tntCurvature(opt: TNT, p: Tensor, damping?: number): Curvature {
  const d = damping ?? opt.paramGroups.find((g) => g.params.includes(p))!.damping;
  return (opt as unknown as { curvatureOf(p: Tensor, d: number): Curvature }).curvatureOf(p, d);
}

/**
 * One step of a sharded optimizer on this rank's own share. A non-finite gradient among the parameters other ranks
 * own (every rank sees the same DDP-averaged gradients) makes it skip the step, as one process would; returns
 * false when the step was skipped (nothing changed, nothing to exchange).
 */
function stepOwned(opt: { step(): void; skipNonFinite: boolean; skippedSteps: number }, others: Tensor[]): boolean {
  const finite = tidy(() =>
    others.every((p) => {
      const g = p.grad;
      return g === null || Boolean(g.isfinite().all().item());
    }),
  );
  const skipped = opt.skippedSteps;
  opt.skipNonFinite = !finite;
  try {
    opt.step();
  } finally {
    opt.skipNonFinite = false;
  }
  return finite || opt.skippedSteps === skipped;
}
