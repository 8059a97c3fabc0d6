/**
 * The job of bench/service-wakeup.mjs: "steps" of `stepMs` of busy JavaScript (one thread, no memory traffic), each
 * followed by ctx.afterStep(), until cancelled.
 */
export default async function spin(ctx) {
  const { stepMs = 20 } = ctx.workerData ?? {};
  while (!ctx.signal.aborted) {
    const until = performance.now() + stepMs;
    while (performance.now() < until);
    await ctx.afterStep(1);
  }
}
