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
export {
  inWorker,
  Trainer,
  type InWorkerOptions,
  type JobContext,
  type PublishOptions,
  type TrainerEvents,
  type Throughput,
} from './worker.js';
export type { WeightsSnapshot, WeightEntry, SnapshotModel } from './snapshot.js';
export type { MetricsOptions, StepSample, OptimizerSample, MemorySample } from './telemetry.js';
