/**
 * `tensornormal experiment ... --logdir DIR`: every run's curves as TensorBoard event files, one run folder each
 * (`DIR/<optimizer>-seed<N>`, grid runs `DIR/grid<K>-<optimizer>`), written while the runs train, for
 * `tensorboard --logdir DIR` or `tensornormal board --logdir DIR`. Tags: `loss/train` (each minibatch's loss, at the
 * run's step), `time/cpu_seconds`, per epoch `loss/train_epoch`, `loss/val`, `error/val`, `train/lr`; the
 * hyperparameters as text at the start and an hparams row (with the final loss) at the end.
 */
import { join } from 'node:path';
import { tensorboard } from 'tensornormal';
import type { ExperimentEvent } from './experiment.js';

/** Feeds experiment events to per-run SummaryWriters. */
export class ExperimentLog {
  private readonly writers = new Map<string, tensorboard.SummaryWriter>();
  /** The running mean of the epoch's losses at the previous step, per run: step losses are recovered from it. */
  private readonly prevMean = new Map<string, number>();
  constructor(readonly logDir: string) {}

  private key(e: { phase: 'grid' | 'main'; run: number; optimizer: string; seed: number }): string {
    return e.phase === 'grid' ? `grid${e.run}-${e.optimizer}` : `${e.optimizer}-seed${e.seed}`;
  }

  event(e: ExperimentEvent): void {
    if (e.type === 'grid-chosen') return;
    const key = this.key(e);
    if (e.type === 'run-start') {
      this.writers.get(key)?.close();
      const w = new tensorboard.SummaryWriter(join(this.logDir, key), { flushSecs: 2 });
      this.writers.set(key, w);
      w.addText('hyperparameters', '```\n' + JSON.stringify(e.hp, null, 2) + '\n```', 0);
      return;
    }
    const w = this.writers.get(key);
    if (w === undefined) return;
    if (e.type === 'step') {
      const global = (e.epoch - 1) * e.steps + e.step;
      // e.loss is the running mean of the epoch's n = e.step losses: the step's own is n m_n - (n - 1) m_(n-1)
      const prev = e.step === 1 ? 0 : (this.prevMean.get(key) ?? e.loss);
      this.prevMean.set(key, e.loss);
      w.addScalar('loss/train', e.step * e.loss - (e.step - 1) * prev, global);
      w.addScalar('time/cpu_seconds', e.cpu, global);
    } else if (e.type === 'epoch') {
      const global = e.epoch * e.steps;
      w.addScalar('loss/train_epoch', e.loss, global);
      if (e.valLoss !== undefined) w.addScalar('loss/val', e.valLoss, global);
      if (e.valError !== undefined) w.addScalar('error/val', e.valError, global);
      w.addScalar('train/lr', e.lr, global);
      w.flush();
    } else if (e.type === 'run-end') {
      const hp: Record<string, number | string> = { optimizer: e.optimizer, seed: e.seed };
      for (const [k, v] of Object.entries(e.hp)) if (typeof v === 'number') hp[k] = v;
      w.addHparams(hp, e.loss === null ? {} : { 'hparam/final_loss': e.loss }, { runName: 'hparams' });
      w.close();
      this.writers.delete(key);
    }
  }

  /** Closes the writers of runs still open (an experiment that stopped early). */
  close(): void {
    for (const w of this.writers.values()) w.close();
    this.writers.clear();
  }
}
