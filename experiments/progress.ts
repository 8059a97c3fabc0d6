/**
 * Progress of an experiment: on a terminal, one progress line redrawn in place (phase and run, optimizer, seed,
 * epoch, step, loss, elapsed and ETA) above which epochs, warm starts and finished runs are logged; otherwise one
 * JSON object per line (`{"event":"step",...}` about ten times per epoch, every other event in full).
 */
import type { ExperimentEvent } from './experiment.js';
import { OPTIMIZER_LABELS } from './hyper.js';

/** Where progress goes: anything with write(), and isTTY when it is a terminal. */
export interface Output {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface ProgressReporter {
  event(e: ExperimentEvent): void;
  /** Ends the progress line. */
  done(): void;
}

export function duration(s: number | null): string {
  if (s === null || !Number.isFinite(s)) return '?';
  const t = Math.max(0, Math.round(s));
  return t >= 3600
    ? `${Math.floor(t / 3600)}h${String(Math.floor(t / 60) % 60).padStart(2, '0')}m`
    : t >= 60
      ? `${Math.floor(t / 60)}m${String(t % 60).padStart(2, '0')}s`
      : `${t}s`;
}

const num = (x: number | null | undefined, d = 4): string =>
  x === null || x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d);

function hp(h: Record<string, number | undefined>): string {
  return Object.entries(h)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

export function progressReporter(out: Output, json: boolean): ProgressReporter {
  if (json) {
    return {
      event(e) {
        if (e.type === 'step') {
          const every = Math.max(1, Math.floor(e.steps / 10));
          if (e.step % every !== 0 && e.step !== e.steps) return;
        }
        const { type, ...rest } = e;
        out.write(`${JSON.stringify({ event: type, ...rest })}\n`);
      },
      done() {},
    };
  }
  let last = 0;
  let barShown = false;
  const cols = (): number => out.columns ?? 120;
  const line = (s: string): void => {
    out.write(`${barShown ? '\r\x1b[K' : ''}${s}\n`);
    barShown = false;
  };
  return {
    event(e) {
      const who = 'optimizer' in e ? `${OPTIMIZER_LABELS[e.optimizer]}` : '';
      switch (e.type) {
        case 'run-start':
          if (e.phase === 'grid') line(`grid ${e.run}/${e.runs}: ${who} ${hp({ ...e.hp })}`);
          break;
        case 'warm-start':
          line(`${who} seed ${e.seed}: warm start over ${e.batches} batches, ${e.cpu.toFixed(1)} s process time`);
          break;
        case 'step': {
          const now = Date.now();
          if (now - last < 100 && e.step !== e.steps) return;
          last = now;
          const width = 20;
          const done = Math.min(width, Math.floor((width * e.step) / e.steps));
          const bar = `[${'='.repeat(done)}${done < width ? '>' : ''}${' '.repeat(Math.max(0, width - done - 1))}]`;
          const s = `${e.phase === 'grid' ? 'grid' : 'run'} ${e.run}/${e.runs} ${who} seed ${e.seed} | epoch ${e.epoch}/${e.epochs} ${bar} ${e.step}/${e.steps} | loss ${num(e.loss)} | ${duration(e.wall)} elapsed, ETA ${duration(e.eta)}`;
          out.write(`\r${s.slice(0, cols() - 1)}\x1b[K`);
          barShown = true;
          break;
        }
        case 'epoch': {
          if (e.phase === 'grid') return;
          const val = e.valError !== undefined ? `  val loss ${num(e.valLoss)}  val error ${num(e.valError)}` : '';
          line(
            `${who} seed ${e.seed} epoch ${e.epoch}/${e.epochs}  loss ${num(e.loss)}${val}  ${e.cpu.toFixed(1)} s process time`,
          );
          break;
        }
        case 'run-end': {
          const why = e.stoppedBy === 'epochs' ? '' : e.stoppedBy === 'time-budget' ? ' (time budget)' : ' (diverged)';
          line(
            e.phase === 'grid'
              ? `  -> loss ${num(e.loss)}${why}, ${e.cpu.toFixed(1)} s`
              : `${who} seed ${e.seed} done: loss ${num(e.loss)}${why}, ${e.cpu.toFixed(1)} s process time` +
                  (e.stoppedBy === 'diverged' && e.error ? `\n  ${e.error}` : ''),
          );
          break;
        }
        case 'grid-chosen':
          line(`grid: ${who} uses ${hp({ ...e.hp })} (loss ${num(e.loss)})`);
          break;
      }
    },
    done() {
      if (barShown) out.write('\r\x1b[K');
      barShown = false;
    },
  };
}
