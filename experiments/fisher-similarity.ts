/**
 * The paper's Figure 1: how well each method's direction agrees with a block-Fisher natural-gradient direction.
 *
 * Setup (paper §3.4 and implementation-notes.md): MNIST digits down-scaled to 16x16, an MLP
 * 256-20-20-20-20-20-10 with tanh, categorical likelihood. The trajectory is the block-Fisher method's own: one
 * full Fisher block per layer (weight and bias together, (out*(in+1))^2), built from per-example sampled
 * gradients (y ~ softmax(z)), with the gradient and every curvature statistic kept as moving averages of decay 0.9
 * (weight max(1/(t+1), 0.1), as TNT's). At every iteration each method's direction is computed from the same
 * moving-average gradient m at the same point, and its cosine similarity with the block-Fisher direction is
 * recorded for every layer:
 *   - block Fisher: (F + λ I)^-1 m
 *   - TNT: m x_1 (U_1 + ε I)^-1 x_2 (U_2 + ε I)^-1 for the weight, (U + ε I)^-1 m for the bias (optim.TNT's own
 *     statistics and kernels, fed the batch-mean sampled gradient)
 *   - Adam: m / (sqrt(v) + 1e-8), v the moving average of the squared minibatch gradient
 *   - KFAC: (G + δ_G I)^-1 m (A + δ_A I)^-1 with A = E[ã ã^T] over layer inputs (a 1 appended) and
 *     G = E[g g^T] over per-example sampled output gradients
 *   - Shampoo: m x_1 (H_1 + ε_1 I)^-1/4 x_2 (H_2 + ε_2 I)^-1/4 for the weight, (H + ε I)^-1/2 m for the bias,
 *     H_i from the empirical (true-label) minibatch gradient
 *   - Adam: m / (sqrt(v) + 1e-8), v the moving average of the squared minibatch gradient
 *   - SGD-m: m
 *   - more methods plug in through `extraMethods`.
 *
 * Damping is relative, so that every method is damped alike whatever the scale of its statistics: λ = γ · (mean
 * eigenvalue of F), and for a Kronecker method each of its k factors M gets δ = mean eig(M) ((1 + γ)^(1/k) - 1),
 * so the damped Kronecker product's mean eigenvalue is (1 + γ) times the undamped one's (TNT: per parameter
 * tensor; KFAC: over A and G; Shampoo: over H_1, H_2 before the root).
 */
import {
  Tensor,
  tidy,
  keep,
  dispose,
  zeros,
  tensor,
  eye,
  manualSeed,
  cat,
  einsum,
  multinomial,
  grad,
  noGrad,
  linalg,
  nn,
  optim,
} from 'tensornormal';

const F = nn.functional;
const { TNT } = optim;

export interface SimilarityOptions {
  iterations?: number;
  batchSize?: number;
  lr?: number;
  /**
   * Relative damping γ (default 3: of 0.1, 0.3, 1 and 3 at lr 0.1, the block-Fisher trajectory trains best with 3;
   * the level of every method's cosine rises with γ, see the README's Figure 1 section).
   */
  gamma?: number;
  /**
   * What the block Fisher F (the trajectory and the reference direction) is estimated from, per minibatch:
   * 'per-example' (default, as in the authors' code): the mean of J_n J_n^T over the B per-example sampled
   * gradients; 'batch-mean': B Ḡ Ḡ^T from their batch mean Ḡ, one rank-one sample per minibatch (the
   * estimator TNT's factors use). Both have expectation F.
   */
  fisherEstimator?: 'per-example' | 'batch-mean';
  /**
   * What TNT's factors are estimated from: 'batch-mean' (default; the algorithm as published and as optim.TNT
   * runs it, G^(i) of the batch-mean sampled gradient) or 'per-example' (the mean over the minibatch of G_n^(i)
   * of the per-example sampled gradients, the same data the block Fisher uses; 'TNT' is then computed by
   * `tntMethod`). Both have expectation proportional to the contractions of F.
   */
  tntStatistics?: 'batch-mean' | 'per-example';
  seed?: number;
  /** Refresh the Cholesky factor of blocks larger than this every `bigRefresh` iterations (others: every iteration). */
  bigBlock?: number;
  bigRefresh?: number;
  widths?: number[];
  /** Records every this many iterations. */
  every?: number;
  onProgress?: (it: number, loss: number) => void;
  /** Images [N, 256] in [0, 1] and int64 labels [N]. */
  data: { x: Tensor; y: Tensor };
  extraMethods?: SimilarityMethod[];
}

/** A method compared in the experiment: it sees every layer's statistics and returns a direction per layer. */
export interface SimilarityMethod {
  name: string;
  /** Called once per iteration with the batch's tensors (all detached). */
  observe(ctx: LayerContext[], w: number): void;
  /** The method's direction for layer l (shape (out, in+1)), given the moving-average gradient. */
  direction(l: number, m: Tensor): Tensor;
  dispose(): void;
}

export interface LayerContext {
  /** Layer input with a 1 appended: (B, in+1). */
  input: Tensor;
  /** Per-example sampled-loss gradients w.r.t. the layer output (loss summed over the batch): (B, out). */
  outputGrad: Tensor;
  /** Batch-mean minibatch gradient of the real loss: (out, in+1). */
  grad: Tensor;
}

export interface SimilarityResult {
  iterations: number[];
  loss: number[];
  /** method -> layer (1-based) -> cosine per recorded iteration */
  cosine: Record<string, number[][]>;
  options: Record<string, unknown>;
  seconds: number;
}

/** (M + δ I)^(power) of a symmetric PSD matrix by eigendecomposition, δ = mean eig(M) ((1 + γ)^(1/k) - 1). */
function dampedPower(M: Tensor, gamma: number, k: number, power: number): Tensor {
  return tidy(() => {
    const n = M.shape[0]!;
    const delta = Math.max((M.trace().item() / n) * ((1 + gamma) ** (1 / k) - 1), 1e-12);
    const { eigenvalues, eigenvectors } = linalg.eigh(M);
    const d = eigenvalues.clamp(0, null).add(delta).pow(power);
    return eigenvectors.mul(d.unsqueeze(0)).matmul(eigenvectors.t());
  });
}

/** KFAC's direction per layer, from moving averages of A = E[ã ã^T] and G = E[g g^T]. */
export function kfacMethod(gamma: number): SimilarityMethod {
  let A: Tensor[] = [],
    G: Tensor[] = [];
  return {
    name: 'KFAC',
    observe(ctx, w) {
      ctx.forEach((c, l) => {
        const B = c.input.shape[0]!;
        if (!A[l]) A[l] = keep(zeros([c.input.shape[1]!, c.input.shape[1]!]));
        if (!G[l]) G[l] = keep(zeros([c.outputGrad.shape[1]!, c.outputGrad.shape[1]!]));
        tidy(() => {
          A[l]!.mul_(1 - w).add_(c.input.t().mm(c.input), w / B);
          G[l]!.mul_(1 - w).add_(c.outputGrad.t().mm(c.outputGrad), w / B);
        });
      });
    },
    direction(l, m) {
      return tidy(() =>
        dampedPower(G[l]!, gamma, 2, -1)
          .mm(m)
          .mm(dampedPower(A[l]!, gamma, 2, -1)),
      );
    },
    dispose() {
      dispose([A, G]);
      A = [];
      G = [];
    },
  };
}

/**
 * TNT's direction per layer computed here (eigendecompositions) rather than by optim.TNT: m x_1 (U_1 + δ I)^-1
 * x_2 (U_2 + δ I)^-1 for the weight and (U + δ I)^-1 m for the bias, with the same relative damping and eq. 5's
 * normalisation (which sets the weight's scale relative to the bias's, and so the cosine of their concatenation). With
 * 'batch-mean' statistics it is optim.TNT's direction (the tests check that); with 'per-example' its factors are
 * the minibatch means of G_n G_n^T = |x_n|^2 g_n g_n^T and G_n^T G_n = |g_n|^2 x_n x_n^T (bias: g_n g_n^T), the
 * per-example sampled gradients G_n = g_n x_n^T that the block Fisher is built from.
 */
export function tntMethod(
  gamma: number,
  statistics: 'batch-mean' | 'per-example',
  name = statistics === 'batch-mean' ? 'TNT' : 'TNT (per-example)',
): SimilarityMethod {
  let H1: Tensor[] = [],
    H2: Tensor[] = [],
    Hb: Tensor[] = [];
  return {
    name,
    observe(ctx, w) {
      ctx.forEach((c, l) => {
        const B = c.input.shape[0]!,
          inW = c.input.shape[1]! - 1,
          out = c.outputGrad.shape[1]!;
        if (!H1[l]) H1[l] = keep(zeros([out, out]));
        if (!H2[l]) H2[l] = keep(zeros([inW, inW]));
        if (!Hb[l]) Hb[l] = keep(zeros([out, out]));
        tidy(() => {
          const x = c.input.narrow(1, 0, inW),
            g = c.outputGrad;
          if (statistics === 'per-example') {
            const x2 = x.square().sum(1, true),
              g2 = g.square().sum(1, true);
            H1[l]!.mul_(1 - w).add_(g.mul(x2).t().mm(g), w / B);
            H2[l]!.mul_(1 - w).add_(x.mul(g2).t().mm(x), w / B);
            Hb[l]!.mul_(1 - w).add_(g.t().mm(g), w / B);
          } else {
            foldContractions(H1[l]!, H2[l]!, Hb[l]!, g.t().mm(x).div(B), g.mean(0, true).t(), w);
          }
        });
      });
    },
    direction(l, m) {
      return tidy(() => {
        const inW = m.shape[1]! - 1;
        // eq. 5 scales the factors so that U_1 ⊗ U_2 has the trace of H (tr H_1 = tr H_2 = E||G||^2), not its
        // square: the weight's and the bias's blocks then keep TNT's relative scale in the concatenated direction
        const dW = dampedPower(H1[l]!, gamma, 2, -1)
          .mm(m.narrow(1, 0, inW))
          .mm(dampedPower(H2[l]!, gamma, 2, -1))
          .mul(H1[l]!.trace().item());
        const db = dampedPower(Hb[l]!, gamma, 1, -1).mm(m.narrow(1, inW, 1));
        return cat([dW, db], 1);
      });
    },
    dispose() {
      dispose([H1, H2, Hb]);
      H1 = [];
      H2 = [];
      Hb = [];
    },
  };
}

/** Folds the mode contractions of one weight gradient gW (out x in) and bias gradient gb (out x 1) into moving averages. */
function foldContractions(H1: Tensor, H2: Tensor, Hb: Tensor, gW: Tensor, gb: Tensor, w: number): void {
  H1.mul_(1 - w).add_(gW.mm(gW.t()), w);
  H2.mul_(1 - w).add_(gW.t().mm(gW), w);
  Hb.mul_(1 - w).add_(gb.mm(gb.t()), w);
}

/** Shampoo's direction per layer (weight and bias preconditioned separately), from the empirical gradient. */
export function shampooMethod(gamma: number): SimilarityMethod {
  let H1: Tensor[] = [],
    H2: Tensor[] = [],
    Hb: Tensor[] = [];
  return {
    name: 'Shampoo',
    observe(ctx, w) {
      ctx.forEach((c, l) => {
        const inW = c.grad.shape[1]! - 1;
        tidy(() => {
          const gW = c.grad.narrow(1, 0, inW),
            gb = c.grad.narrow(1, inW, 1);
          if (!H1[l]) H1[l] = keep(zeros([gW.shape[0]!, gW.shape[0]!]));
          if (!H2[l]) H2[l] = keep(zeros([inW, inW]));
          if (!Hb[l]) Hb[l] = keep(zeros([gW.shape[0]!, gW.shape[0]!]));
          foldContractions(H1[l]!, H2[l]!, Hb[l]!, gW, gb, w);
        });
      });
    },
    direction(l, m) {
      return tidy(() => {
        const inW = m.shape[1]! - 1;
        const dW = dampedPower(H1[l]!, gamma, 2, -0.25)
          .mm(m.narrow(1, 0, inW))
          .mm(dampedPower(H2[l]!, gamma, 2, -0.25));
        const db = dampedPower(Hb[l]!, gamma, 1, -0.5).mm(m.narrow(1, inW, 1));
        return cat([dW, db], 1);
      });
    },
    dispose() {
      dispose([H1, H2, Hb]);
      H1 = [];
      H2 = [];
      Hb = [];
    },
  };
}

function cosine(a: Tensor, b: Tensor): number {
  return tidy(() => {
    const x = a.flatten(),
      y = b.flatten();
    return x.dot(y).item() / (x.norm().item() * y.norm().item() + 1e-300);
  });
}

export function runFisherSimilarity(o: SimilarityOptions): SimilarityResult {
  const iterations = o.iterations ?? 1000;
  const B = o.batchSize ?? 100;
  const lr = o.lr ?? 0.1;
  const gamma = o.gamma ?? 3;
  const widths = o.widths ?? [256, 20, 20, 20, 20, 20, 10];
  const every = o.every ?? 10;
  const bigBlock = o.bigBlock ?? 1000;
  const bigRefresh = o.bigRefresh ?? 20;
  const fisherEstimator = o.fisherEstimator ?? 'per-example';
  const tntStatistics = o.tntStatistics ?? 'batch-mean';
  if (fisherEstimator !== 'per-example' && fisherEstimator !== 'batch-mean')
    throw new RangeError(
      `runFisherSimilarity: fisherEstimator must be 'per-example' or 'batch-mean' but received ${String(fisherEstimator)}`,
    );
  if (tntStatistics !== 'per-example' && tntStatistics !== 'batch-mean')
    throw new RangeError(
      `runFisherSimilarity: tntStatistics must be 'per-example' or 'batch-mean' but received ${String(tntStatistics)}`,
    );
  manualSeed(o.seed ?? 0);
  const t0 = performance.now();
  const L = widths.length - 1;

  // parameters: PyTorch's default Linear initialisation
  const Ws: Tensor[] = [],
    bs: Tensor[] = [];
  for (let l = 0; l < L; l++) {
    const bound = 1 / Math.sqrt(widths[l]!);
    Ws.push(
      keep(
        tidy(() =>
          zeros([widths[l + 1]!, widths[l]!])
            .uniform_(-bound, bound)
            .requiresGrad_(),
        ),
      ),
    );
    bs.push(
      keep(
        tidy(() =>
          zeros([widths[l + 1]!])
            .uniform_(-bound, bound)
            .requiresGrad_(),
        ),
      ),
    );
  }
  const params = Ws.flatMap((w, l) => [w, bs[l]!]);

  // moving averages
  const mG = Ws.map((w) => keep(zeros([w.shape[0]!, w.shape[1]! + 1])));
  const vG = Ws.map((w) => keep(zeros([w.shape[0]!, w.shape[1]! + 1])));
  const fisher = Ws.map((w) => {
    const n = w.shape[0]! * (w.shape[1]! + 1);
    return keep(zeros([n, n]));
  });
  const chol: (Tensor | null)[] = Ws.map(() => null);
  const nativeTnt = tntStatistics === 'batch-mean';
  const tnt = nativeTnt
    ? new TNT(
        params.map((p) => ({ params: [p] })),
        { lr: 0, damping: 1, statsEvery: 1, inverseEvery: 1 },
      )
    : null;
  const extra = [
    ...(nativeTnt ? [] : [tntMethod(gamma, 'per-example', 'TNT')]),
    kfacMethod(gamma),
    shampooMethod(gamma),
    ...(o.extraMethods ?? []),
  ];
  const names = [...(nativeTnt ? ['TNT'] : []), ...extra.map((m) => m.name), 'Adam', 'SGD-m'];
  const cos: Record<string, number[][]> = Object.fromEntries(names.map((n) => [n, Ws.map(() => [] as number[])]));
  const its: number[] = [],
    losses: number[] = [];
  const N = o.data.x.shape[0]!;

  for (let it = 0; it < iterations; it++) {
    const w = Math.max(1 / (it + 1), 0.1);
    const loss = tidy(() => {
      const idx = tensor(Array.from({ length: B }, (_, k) => BigInt(((it * B + k) * 7919) % N)));
      const x = o.data.x.indexSelect(0, idx),
        y = o.data.y.indexSelect(0, idx);
      // forward, keeping every layer's input and pre-activation
      const inputs: Tensor[] = [],
        outs: Tensor[] = [];
      let a = x;
      for (let l = 0; l < L; l++) {
        inputs.push(a);
        const z = F.linear(a, Ws[l]!, bs[l]!);
        outs.push(z);
        a = l < L - 1 ? z.tanh() : z;
      }
      const logits = a;
      // sampled per-example gradients w.r.t. every layer output (summed loss: rows are per-example)
      const ys = multinomial(logits.detach().softmax(1), 1, true).reshape([-1]);
      const sampledSum = F.crossEntropy(logits, ys, { reduction: 'sum' });
      const gOut = grad(sampledSum, outs, { retainGraph: true }) as Tensor[];
      const real = F.crossEntropy(logits, y);
      const gReal = grad(real, params);
      const ctx: LayerContext[] = [];
      const sampledMean: Tensor[] = [];
      noGrad(() => {
        for (let l = 0; l < L; l++) {
          const inp = cat([inputs[l]!.detach(), zeros([B, 1]).add(1)], 1);
          const go = gOut[l]!;
          const g = cat([gReal[2 * l]!, gReal[2 * l + 1]!.unsqueeze(1)], 1);
          ctx.push({ input: inp, outputGrad: go, grad: g });
          // per-example gradients J (B, out*(in+1)) and the block Fisher
          const J = einsum('bo,bi->boi', go, inp).reshape([B, -1]);
          if (fisherEstimator === 'per-example') fisher[l]!.mul_(1 - w).add_(J.t().mm(J), w / B);
          else {
            const Jm = J.mean(0, true);
            fisher[l]!.mul_(1 - w).add_(Jm.t().mm(Jm), w * B);
          }
          mG[l]!.mul_(1 - w).add_(g, w);
          vG[l]!.mul_(1 - w).add_(g.square(), w);
          // TNT's statistics come from the batch-mean sampled gradient, per parameter tensor
          sampledMean.push(go.t().mm(inputs[l]!.detach()).div(B), go.mean(0));
        }
        tnt?.updateStatistics(sampledMean);
        for (const m of extra) m.observe(ctx, w);
      });

      // block-Fisher directions (the trajectory) and everybody's similarity to them
      noGrad(() => {
        const record = it % every === 0 || it === iterations - 1;
        // TNT: relative damping per parameter, then its own kernels
        tnt?.paramGroups.forEach((gr) => {
          const p = gr.params[0]!;
          const us = tnt.normalizedFactors(p);
          const k = us.length;
          const c0 = us[0]!.trace().item() / us[0]!.shape[0]!;
          gr.damping = Math.max(c0 * ((1 + gamma) ** (1 / k) - 1), 1e-12);
          dispose(us);
        });
        tnt?.updateInverses();
        for (let l = 0; l < L; l++) {
          const m = mG[l]!;
          const n = fisher[l]!.shape[0]!;
          if (chol[l] === null || n <= bigBlock || it % bigRefresh === 0) {
            const lam = Math.max((fisher[l]!.trace().item() / n) * gamma, 1e-12);
            chol[l]?.dispose();
            chol[l] = keep(linalg.cholesky(fisher[l]!.add(eye(n).mul(lam))));
          }
          const dBF = linalg.choleskySolve(m.reshape([-1, 1]), chol[l]!).reshape(m.shape);
          if (record) {
            const inW = Ws[l]!.shape[1]!;
            if (tnt) {
              const dW = tnt.precondition(Ws[l]!, m.narrow(1, 0, inW).contiguous());
              const db = tnt.precondition(bs[l]!, m.narrow(1, inW, 1).reshape([-1]).contiguous());
              cos.TNT![l]!.push(cosine(cat([dW, db.unsqueeze(1)], 1), dBF));
            }
            for (const em of extra) cos[em.name]![l]!.push(cosine(em.direction(l, m), dBF));
            cos.Adam![l]!.push(cosine(m.div(vG[l]!.sqrt().add(1e-8)), dBF));
            cos['SGD-m']![l]!.push(cosine(m, dBF));
          }
          const inW = Ws[l]!.shape[1]!;
          Ws[l]!.sub_(dBF.narrow(1, 0, inW), lr);
          bs[l]!.sub_(dBF.narrow(1, inW, 1).reshape([-1]), lr);
        }
      });
      return real.item();
    });
    if (it % every === 0 || it === iterations - 1) {
      its.push(it);
      losses.push(loss);
      o.onProgress?.(it, loss);
    }
  }
  const result: SimilarityResult = {
    iterations: its,
    loss: losses,
    cosine: cos,
    options: {
      iterations,
      batchSize: B,
      lr,
      gamma,
      fisherEstimator,
      tntStatistics,
      widths,
      seed: o.seed ?? 0,
      bigBlock,
      bigRefresh,
      every,
    },
    seconds: (performance.now() - t0) / 1000,
  };
  tnt?.dispose();
  for (const m of extra) m.dispose();
  dispose([Ws, bs, mG, vG, fisher, chol.filter((c): c is Tensor => c !== null)]);
  return result;
}
