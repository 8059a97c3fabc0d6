/**
 * Mean and standard deviation of training curves over seeds, as the paper's figures: at equal epochs, and at equal
 * process time (each run's (time, loss) points interpolated linearly onto a common grid of times).
 *
 * The standard deviation is the population one (numpy's np.std, ddof 0), the band the paper's text describes; the
 * standard error (std / sqrt(n)), which the authors' plotting code draws, is reported beside it.
 */

export interface MeanStd {
  mean: number;
  std: number;
  /** Standard error of the mean: std / sqrt(n). */
  sem: number;
  n: number;
}

/** Mean, population standard deviation and standard error of finite values (NaN for an empty list). */
export function meanStd(values: number[]): MeanStd {
  const v = values.filter(Number.isFinite);
  const n = v.length;
  if (n === 0) return { mean: NaN, std: NaN, sem: NaN, n: 0 };
  const mean = v.reduce((s, x) => s + x, 0) / n;
  const std = Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / n);
  return { mean, std, sem: std / Math.sqrt(n), n };
}

/** A curve aggregated over seeds: for each x, the mean, std and standard error of y. */
export interface AggregateCurve {
  x: number[];
  mean: number[];
  std: number[];
  sem: number[];
  /** Number of runs that contributed. */
  runs: number;
}

/**
 * Linear interpolation of the curve (xs increasing) at x; NaN outside [xs[0], xs[last]].
 */
export function interpolate(xs: number[], ys: number[], x: number): number {
  const n = xs.length;
  if (n === 0 || !(x >= xs[0]! && x <= xs[n - 1]!)) return NaN;
  let lo = 0,
    hi = n - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (xs[mid]! <= x) lo = mid;
    else hi = mid;
  }
  const x0 = xs[lo]!,
    x1 = xs[hi]!;
  if (x1 === x0) return ys[lo]!;
  const t = (x - x0) / (x1 - x0);
  return ys[lo]! + t * (ys[hi]! - ys[lo]!);
}

function combine(x: number[], columns: number[][], runs: number): AggregateCurve {
  const stats = x.map((_, i) => meanStd(columns.map((c) => c[i]!)));
  return { x, mean: stats.map((s) => s.mean), std: stats.map((s) => s.std), sem: stats.map((s) => s.sem), runs };
}

/**
 * Aggregates curves sampled at the same x (epochs 1, 2, ...): position i of every curve is averaged, over the
 * positions all curves have (a run stopped early by its time budget shortens the aggregate).
 */
export function aggregateAligned(curves: { x: number[]; y: number[] }[]): AggregateCurve {
  if (curves.length === 0) return { x: [], mean: [], std: [], sem: [], runs: 0 };
  const len = Math.min(...curves.map((c) => c.x.length));
  return combine(
    curves[0]!.x.slice(0, len),
    curves.map((c) => c.y.slice(0, len)),
    curves.length,
  );
}

/**
 * Aggregates curves sampled at different x (process time): each is interpolated onto `points` equally spaced times
 * from the latest first time to the earliest last time over the runs, where every run has a value.
 */
export function aggregateInterpolated(curves: { x: number[]; y: number[] }[], points = 100): AggregateCurve {
  const usable = curves.filter((c) => c.x.length > 0);
  if (usable.length === 0) return { x: [], mean: [], std: [], sem: [], runs: 0 };
  const t0 = Math.max(...usable.map((c) => c.x[0]!));
  const t1 = Math.min(...usable.map((c) => c.x[c.x.length - 1]!));
  if (!(t1 >= t0)) return { x: [], mean: [], std: [], sem: [], runs: usable.length };
  const n = t1 > t0 ? Math.max(2, points) : 1;
  const x = Array.from({ length: n }, (_, i) => (n === 1 ? t0 : t0 + ((t1 - t0) * i) / (n - 1)));
  return combine(
    x,
    usable.map((c) => x.map((t) => interpolate(c.x, c.y, t))),
    usable.length,
  );
}
