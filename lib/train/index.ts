/** The training loop: fit() and evaluate(). */
export {
  fit,
  evaluate,
  type FitModel,
  type FitOptions,
  type FitOptimizer,
  type FitCallbacks,
  type BatchSource,
  type BatchEnd,
  type HistoryEntry,
  type Metric,
  type EvaluateOptions,
} from './fit.js';
export type { ProgressStream, StepProgress } from './progress.js';
