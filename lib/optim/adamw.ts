/** AdamW: Adam with decoupled weight decay (torch.optim.AdamW, PyTorch 1.13's update rule). */
import { AdamBase, type AdamOptions } from './adam.js';
import type { Params } from './optimizer.js';

/**
 * AdamW. As Adam (see adam.ts), except that the weight decay shrinks the parameter directly instead of entering
 * the gradient and the moment estimates:
 *
 *     θ ← θ·(1 - γλ)    (before the Adam update, with λ = weightDecay, default 1e-2)
 *
 *     const opt = new optim.AdamW(model.parameters(), { lr: 1e-3, weightDecay: 0.05 });
 */
export class AdamW extends AdamBase {
  protected readonly decoupled = true;
  constructor(params: Params<AdamOptions>, options?: Partial<AdamOptions>) {
    super(params, options, 1e-2, 'AdamW');
  }
}
