/**
 * The benchmark cases, shared by the runner (bench/run.mjs) and both workers (bench/node/worker.mjs,
 * bench/python/worker.py receive each case's object as JSON). A case is one thing timed on both sides:
 *
 *   kind 'loop'   a tight loop of `iters` iterations after `warmup` ones; the sample is seconds per iteration.
 *   kind 'train'  `warmup` training steps, then `steps` timed ones; the sample is the median step time, or, with
 *                 `amortised`, the mean (TNT's statistics and inverses run only every T1 / T2 steps, so the cost
 *                 of a step is only meaningful averaged over a whole period).
 *
 * `reps` is how many times the runner alternates a Node run and a Python run; the reported time is the median
 * of the runs' samples, with their spread (min-max) and the spread of the per-repetition Node/PyTorch ratios.
 * A case with `nodeOnly` (options the Python TNT of bench/python/ does not have) runs on the Node side alone.
 *
 *   kind 'ratio'  Node alone: the training cases named in `members`, each in its own worker, run interleaved
 *                 (rotating order) `reps` times; the sample of each member is as above, and the table gives every
 *                 member's median step over the first member's (SGD-m), with the min-max of the per-repetition
 *                 ratios. `capS` bounds one case's wall time (both sides, all runs): a run that is still going at
 * the cap is killed and the case reports what it had.
 */

/** Paper hyperparameters (implementation-notes.md, "Experiments"). */
export const HYPER = {
  aeSgd: { lr: 3e-3, momentum: 0.9 },
  aeAdam: { lr: 1e-4, eps: 1e-4 },
  aeTnt: { lr: 1e-4, eps: 0.1, momentum: 0.9, weightDecay: 0, T1: 1, T2: 20 },
  // The CNN rows take the paper's CIFAR settings (SGD-m lr 0.03, wd 0.01; TNT lr 1e-4, decoupled wd 10, T1 = 10,
  // T2 = 100) except TNT's eps: 0.01 diverges within 10 steps on this small CNN without BatchNorm (a conv weight has
  // three factors, so the preconditioner can scale a direction by up to eps^-3 = 1e6); 0.1 trains smoothly.
  cnnSgd: { lr: 0.03, momentum: 0.9, weightDecay: 0.01 },
  cnnTnt: { lr: 1e-4, eps: 0.1, momentum: 0.9, weightDecay: 10, T1: 10, T2: 100 },
};
/**
 * TNT's cheaper step on the autoencoder (docs/tnt.md, "A cheaper step"): statistics from a quarter of the batch
 * every second step, the moving average counted per step, the update-size control on. Same estimator as aeTnt.
 */
HYPER.aeTntFast = { ...HYPER.aeTnt, T1: 2, statsBatch: 0.25, statDecayPerStep: true, klClip: 0.01 };

/** The paper's MNIST autoencoder: ReLU after every Linear except the 30-wide code layer and the output. */
export const AE_WIDTHS = [784, 1000, 500, 250, 30, 250, 500, 1000, 784];
export const AE_BATCH = 1000;
/** A small MNIST CNN for the TNT (T1=10, T2=100) row: conv-relu-pool x2, then a linear classifier. */
export const CNN_BATCH = 128;

export const CASES = [
  {
    name: 'add-1',
    title: '1-element add, result freed',
    group: 'ops',
    kind: 'loop',
    op: 'add1',
    iters: 50_000,
    warmup: 5_000,
    reps: 7,
    unit: 'us',
    capS: 120,
  },
  {
    name: 'chain10-16',
    title: '10 small ops on 16 elements (tidy)',
    group: 'ops',
    kind: 'loop',
    op: 'chain10',
    iters: 10_000,
    warmup: 1_000,
    reps: 7,
    unit: 'us',
    capS: 120,
  },
  {
    name: 'matmul-512',
    title: '512x512 float32 matmul',
    group: 'ops',
    kind: 'loop',
    op: 'matmul512',
    iters: 40,
    warmup: 5,
    reps: 7,
    unit: 'ms',
    capS: 180,
  },
  {
    name: 'ae-sgd',
    title: 'MNIST autoencoder step, SGD-m',
    group: 'train',
    kind: 'train',
    model: 'autoencoder',
    optim: 'sgd',
    hyper: HYPER.aeSgd,
    steps: 20,
    warmup: 3,
    reps: 7,
    unit: 'ms',
    capS: 600,
  },
  {
    name: 'ae-adam',
    title: 'MNIST autoencoder step, Adam',
    group: 'train',
    kind: 'train',
    model: 'autoencoder',
    optim: 'adam',
    hyper: HYPER.aeAdam,
    steps: 20,
    warmup: 3,
    reps: 7,
    unit: 'ms',
    capS: 600,
  },
  {
    name: 'ae-tnt',
    title: 'MNIST autoencoder step, TNT (T1=1, T2=20)',
    group: 'train',
    kind: 'train',
    model: 'autoencoder',
    optim: 'tnt',
    hyper: HYPER.aeTnt,
    // Warm up through the first T2 steps (inverses refreshed every T1 steps there), then time 40 steady-state
    // steps: two inverse refreshes, statistics every step.
    steps: 40,
    warmup: 20,
    amortised: true,
    reps: 5,
    unit: 'ms',
    capS: 1800,
  },
  {
    name: 'ae-tnt-fast',
    title: 'MNIST autoencoder step, TNT cheaper step (T1=2, statsBatch 0.25)',
    group: 'train',
    kind: 'train',
    model: 'autoencoder',
    optim: 'tnt',
    hyper: HYPER.aeTntFast,
    nodeOnly: true,
    steps: 40,
    warmup: 20,
    amortised: true,
    reps: 5,
    unit: 'ms',
    capS: 1200,
  },
  {
    name: 'tnt-sgd-ratio',
    title: 'TNT / SGD-m step, autoencoder (Node)',
    group: 'train',
    kind: 'ratio',
    members: ['ae-sgd', 'ae-tnt', 'ae-tnt-fast'],
    reps: 5,
    unit: 'ms',
    capS: 1800,
  },
  {
    name: 'cnn-sgd',
    title: 'small CNN step, SGD-m',
    group: 'train',
    kind: 'train',
    model: 'cnn',
    optim: 'sgd',
    hyper: HYPER.cnnSgd,
    steps: 20,
    warmup: 3,
    reps: 7,
    unit: 'ms',
    capS: 300,
  },
  {
    name: 'cnn-tnt',
    title: 'small CNN step, TNT (T1=10, T2=100)',
    group: 'train',
    kind: 'train',
    model: 'cnn',
    optim: 'tnt',
    hyper: HYPER.cnnTnt,
    // One full T2 period after the first one: ten statistics steps and one inverse refresh.
    steps: 100,
    warmup: 100,
    amortised: true,
    reps: 4,
    unit: 'ms',
    capS: 1200,
  },
];

/** `--check`: both sides start from the same weights and data and must report the same first losses. */
export const CHECKS = [
  { name: 'check-ae-sgd', model: 'autoencoder', optim: 'sgd', hyper: HYPER.aeSgd, steps: 3 },
  { name: 'check-ae-adam', model: 'autoencoder', optim: 'adam', hyper: HYPER.aeAdam, steps: 3 },
  { name: 'check-ae-tnt', model: 'autoencoder', optim: 'tnt', hyper: HYPER.aeTnt, steps: 3 },
  { name: 'check-cnn-sgd', model: 'cnn', optim: 'sgd', hyper: HYPER.cnnSgd, steps: 3 },
  // T1 = 1 here so that statistics, inverses and the sampled pass all take part in the three compared steps.
  { name: 'check-cnn-tnt', model: 'cnn', optim: 'tnt', hyper: { ...HYPER.cnnTnt, T1: 1 }, steps: 3 },
];
