/** Process-wide switches shared by DistributedDataParallel and CurvatureSync (kept apart to avoid an import cycle). */
let suppressed = 0;

/**
 * Runs fn with DistributedDataParallel's gradient hooks switched off: the gradients computed inside (a sampled
 * backward for curvature statistics, autograd.grad) are neither bucketed nor all-reduced.
 */
export function withoutGradientSync<T>(fn: () => T): T {
  suppressed++;
  try {
    return fn();
  } finally {
    suppressed--;
  }
}

/** Whether DDP's gradient hooks are switched off now. */
export function gradientSyncSuppressed(): boolean {
  return suppressed > 0;
}
