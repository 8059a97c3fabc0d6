/**
 * Training progress for fit(): a one-line progress bar redrawn in place on a terminal, JSON lines (one object per
 * line) when the output is a pipe or a file, so logs stay machine-readable.
 */

/** Where progress goes: anything with write(), and isTTY when it is a terminal (process.stdout by default). */
export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

/** What a progress line says after a step. */
export interface StepProgress {
  epoch: number;
  epochs: number;
  step: number;
  /** Steps in the epoch, when the loader has a `length`. */
  steps: number | null;
  /** Mean training loss of the epoch so far. */
  loss: number;
  accuracy: number | null;
  samplesPerSecond: number;
  /** Seconds left in the epoch, when the number of steps is known. */
  eta: number | null;
}

export interface Reporter {
  step(p: StepProgress): void;
  epoch(entry: Record<string, unknown> & { epoch: number }, epochs: number): void;
}

const fmt = (x: number | null, digits = 4): string => (x === null || !Number.isFinite(x) ? '-' : x.toFixed(digits));

function duration(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '?';
  const t = Math.max(0, Math.round(s));
  return t >= 3600
    ? `${Math.floor(t / 3600)}h${String(Math.floor(t / 60) % 60).padStart(2, '0')}m`
    : t >= 60
      ? `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`
      : `${t}s`;
}

/** Redraws one line per epoch at most every 100 ms (a terminal write per step would cost more than a small step). */
export function barReporter(out: ProgressStream): Reporter {
  let last = 0;
  return {
    step(p) {
      const now = Date.now();
      if (now - last < 100 && p.step !== p.steps) return;
      last = now;
      const width = 24;
      let bar = '';
      if (p.steps !== null) {
        const done = Math.min(width, Math.floor((width * p.step) / p.steps));
        bar = `[${'='.repeat(done)}${done < width ? '>' : ''}${' '.repeat(Math.max(0, width - done - 1))}] `;
      }
      const acc = p.accuracy === null ? '' : ` acc ${fmt(p.accuracy)}`;
      const line = `epoch ${p.epoch}/${p.epochs} ${bar}${p.step}/${p.steps ?? '?'} loss ${fmt(p.loss)}${acc} ${p.samplesPerSecond.toFixed(0)} samples/s ETA ${duration(p.eta)}`;
      const cols = out.columns ?? 120;
      out.write(`\r${line.slice(0, cols - 1).padEnd(Math.min(cols - 1, line.length + 8))}`);
    },
    epoch(e, epochs) {
      last = 0;
      const parts = [`epoch ${e.epoch}/${epochs}`];
      for (const [k, v] of Object.entries(e))
        if (k !== 'epoch' && typeof v === 'number') parts.push(`${k} ${k === 'seconds' ? v.toFixed(1) : fmt(v)}`);
      const line = parts.join('  ');
      out.write(`\r${line.padEnd(Math.min((out.columns ?? 120) - 1, line.length + 40))}\n`);
    },
  };
}

/** One JSON object per line: `{"event":"step",...}` every `every` steps and `{"event":"epoch",...}` per epoch. */
export function jsonReporter(out: ProgressStream, every: number): Reporter {
  return {
    step(p) {
      if (p.step % every !== 0) return;
      out.write(`${JSON.stringify({ event: 'step', ...p })}\n`);
    },
    epoch(e, epochs) {
      out.write(`${JSON.stringify({ event: 'epoch', ...e, epochs })}\n`);
    },
  };
}

export const silentReporter: Reporter = { step() {}, epoch() {} };
