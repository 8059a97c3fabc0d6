/**
 * tensornormal: libtorch tensors, autograd and training for Node.js, with Tensor Normal Training.
 *
 *   import * as torch from 'tensornormal';
 *   const x = torch.randn([3, 4], { requiresGrad: true });
 */
export {
  Tensor,
  type Device,
  type Scalar,
  type NestedArray,
  type IndexSpec,
  type BackwardOptions,
  type TensorHook,
  type TensorHookHandle,
} from './tensor.js';
export { TorchError, type TorchErrorCode } from './errors.js';
export { type DType, DTYPES } from './dtype.js';
export {
  tidy,
  keep,
  dispose,
  memory,
  liveTensors,
  leaks,
  traceLeaks,
  type MemoryInfo,
  type LeakSite,
} from './scope.js';
export * from './creation.js';
export * from './ops.js';
export { grad, noGrad, enableGrad, isGradEnabled, setGradEnabled } from './autograd.js';
export * as autograd from './autograd.js';
export * as linalg from './linalg.js';
export * as nn from './nn/index.js';
export * as optim from './optim/index.js';
export {
  fit,
  evaluate,
  type FitModel,
  type FitOptions,
  type HistoryEntry,
  type BatchSource,
  type Metric,
} from './train/index.js';
export * as train from './train/index.js';
export * as tensorboard from './tensorboard/index.js';
export * as data from './data/index.js';
export * as distributed from './distributed/index.js';
export * as jit from './jit.js';
export { loadPickledStateDict, type PickleReadOptions } from './pickle.js';
export {
  save,
  load,
  restore,
  saveWeights,
  loadWeights,
  pytorchName,
  type SaveWeightsOptions,
  type LoadWeightsOptions,
  type Checkpoint,
  type SaveContents,
  type RestoreOptions,
  type CheckpointModel,
  type CheckpointOptimizer,
} from './checkpoint.js';
export * as models from './models/index.js';
export * as likelihoods from './likelihoods.js';
export {
  Categorical,
  SequenceCategorical,
  Bernoulli,
  Gaussian,
  type Likelihood,
  type LikelihoodReduction,
  type SampleableLikelihood,
} from './likelihoods.js';
