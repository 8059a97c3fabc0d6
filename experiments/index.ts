/** Experiments from the paper, as library functions (the CLI and examples call these). */
export {
  runFisherSimilarity,
  kfacMethod,
  shampooMethod,
  type SimilarityOptions,
  type SimilarityResult,
  type SimilarityMethod,
  type LayerContext,
} from './fisher-similarity.js';
export {
  lineChart,
  chartDrawing,
  toSvg,
  type Panel,
  type Series,
  type ChartOptions,
  type Drawing,
  type Shape,
  type Clip,
} from './svg.js';
export { lineChartPng, encodePng, crc32, Raster } from './png.js';
export {
  meanStd,
  interpolate,
  aggregateAligned,
  aggregateInterpolated,
  type MeanStd,
  type AggregateCurve,
} from './aggregate.js';
export { OPTIMIZERS, OPTIMIZER_LABELS, HYPER_KEYS, type OptimizerName, type Hyper } from './hyper.js';
export {
  trainRun,
  makeOptimizer,
  type RunConfig,
  type RunResult,
  type RunEvent,
  type EpochRecord,
  type PointRecord,
  type StepEvent,
} from './run.js';
export {
  runExperiment,
  aggregateRuns,
  summarize,
  figurePanels,
  writeExperiment,
  summaryTable,
  ladder,
  gridCandidates,
  type ExperimentSpec,
  type ExperimentResult,
  type ExperimentEvent,
  type GridOptions,
  type GridResult,
  type GridCandidate,
  type OptimizerSummary,
  type OptimizerAggregate,
} from './experiment.js';
export {
  runAutoencoderExperiment,
  autoencoderData,
  AUTOENCODER_DEFAULTS,
  type AutoencoderExperimentOptions,
} from './autoencoder.js';
export {
  runCnnExperiment,
  cnnModel,
  CNN_DEFAULTS,
  CNN_MODELS,
  CNN_DATASETS,
  type CnnExperimentOptions,
  type CnnModel,
  type CnnDataset,
} from './cnn.js';
export {
  runCharLMExperiment,
  mergeCharLMResults,
  writeCharLM,
  charlmTable,
  CHARLM_DEFAULTS,
  type CharLMExperimentOptions,
  type CharLMResult,
  type CharLMRun,
  type CharLMPoint,
  type CharLMEvent,
} from './charlm.js';
export { main, parseCommand, UsageError, type Command } from './cli.js';
export { progressReporter, type Output, type ProgressReporter } from './progress.js';
