/**
 * torch.optim: the Optimizer base class, first-order optimizers (SGD, Adam, AdamW), learning-rate schedulers, and
 * the second-order TNT, Shampoo and KFAC.
 *
 *   import { optim } from 'tensornormal';
 *   const opt = new optim.Adam(model.parameters(), { lr: 1e-3 });
 *   const sched = new optim.lrScheduler.CosineAnnealingLR(opt, { tMax: 10 });
 */
export {
  Optimizer,
  type BaseOptions,
  type ParamGroup,
  type ParamGroupInput,
  type Params,
  type ParamState,
  type OptimizerStateDict,
} from './optimizer.js';
export { SGD, type SGDOptions } from './sgd.js';
export { Adam, type AdamOptions } from './adam.js';
export { AdamW } from './adamw.js';
export * as lrScheduler from './lr_scheduler.js';
export { Shampoo, type ShampooOptions, type ShampooConfig, type WarmStartLoss } from './shampoo.js';
export { KFAC, type KFACOptions, type KFACConfig, type KFACLayerRecord } from './kfac.js';
export { TNT, type TNTOptions, type TNTConfig, type SampleableLikelihood } from './tnt.js';
export type { InverseReport, TntInverseReport } from '../native.js';
