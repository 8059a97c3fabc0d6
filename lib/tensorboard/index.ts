/**
 * TensorBoard logging: `SummaryWriter` writes event files TensorBoard (and `tensornormal board`) reads, with
 * torch.utils.tensorboard's method names; `readScalars` reads the scalars of such a file back.
 */
export { SummaryWriter, type SummaryWriterOptions } from './writer.js';
export type { HparamValue } from './events.js';
export { readScalars, EventFileFollower, type ScalarPoint } from './reader.js';
