/**
 * The optimizers of the experiments and their hyperparameters, without loading the library (the CLI parses its
 * flags with these before libtorch is loaded).
 */

export const OPTIMIZERS = ['tnt', 'kfac', 'shampoo', 'adam', 'sgd'] as const;
export type OptimizerName = (typeof OPTIMIZERS)[number];

/** Names in figures and tables, as the paper's. */
export const OPTIMIZER_LABELS: Record<OptimizerName, string> = {
  tnt: 'TNT',
  kfac: 'KFAC',
  shampoo: 'Shampoo',
  adam: 'Adam',
  sgd: 'SGD-m',
};

/**
 * Hyperparameters of one optimizer. `damping` is each method's damping as the authors' code calls it
 * (`damping_value`): TNT's epsilon, KFAC's lambda, Shampoo's epsilon, Adam's eps (unused by SGD-m). `weightDecay`
 * is decoupled for every method (W <- W (1 - lr wd)), as the paper. `statsEvery`/`inverseEvery` are T1/T2 of the
 * second-order methods.
 */
export interface Hyper {
  lr: number;
  damping?: number;
  weightDecay?: number;
  momentum?: number;
  statsEvery?: number;
  inverseEvery?: number;
  /** TNT: the sampled pass's sub-batch (a fraction <= 1 or a count of rows), its KL clip, and 1 for statDecayPerStep. */
  statsBatch?: number;
  klClip?: number;
  statDecayPerStep?: number;
  /** TNT: inverses on a background thread swapped in this many steps after they are due (0: inline). */
  asyncInverses?: number;
}

/** Keys of Hyper that `--set opt.key=value` and the grid may change. */
export const HYPER_KEYS = [
  'lr',
  'damping',
  'weightDecay',
  'momentum',
  'statsEvery',
  'inverseEvery',
  'statsBatch',
  'klClip',
  'statDecayPerStep',
  'asyncInverses',
] as const;
