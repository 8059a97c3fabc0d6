/**
 * SummaryWriter: TensorBoard event files from Node.js, with torch.utils.tensorboard.SummaryWriter's methods in
 * camelCase (addScalar, addScalars, addHistogram, addText, addHparams, flush, close). The files are the ones
 * PyTorch and TensorFlow write (lib/tensorboard/events.ts), so `tensorboard --logdir runs` shows them beside
 * Python runs, and `tensornormal board --logdir runs` draws their scalars live.
 *
 * Events are encoded at once and written in batches: when `maxQueue` events are pending, every `flushSecs`
 * seconds, on flush() and close(), and when the process exits. Writes are synchronous and small (a scalar is
 * about 50 bytes), so a training loop never waits on a stream.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { Tensor } from '../tensor.js';
import { is, typeError } from '../errors.js';
import {
  eventBytes,
  frameRecord,
  histogramOf,
  histogramSummary,
  hparamsSummaries,
  scalarSummary,
  textSummary,
  type HparamValue,
} from './events.js';
import type { ProtoWriter } from './protobuf.js';

/** Options of a SummaryWriter (PyTorch's keyword arguments, camelCase). */
export interface SummaryWriterOptions {
  /** The run's directory (created if missing). Default `runs/<Mon>DD_HH-MM-SS_<host><comment>`, as PyTorch's. */
  logDir?: string;
  /** Appended to the default logDir's name (ignored when logDir is given). */
  comment?: string;
  /** Events held before they are written (default 10). */
  maxQueue?: number;
  /** Seconds between writes of pending events (default 10; PyTorch's is 120). */
  flushSecs?: number;
  /** Appended to the event file's name. */
  filenameSuffix?: string;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const open = new Set<SummaryWriter>();
let exitHook = false;
let fileCounter = 0;

/** PyTorch's default run directory: runs/Dec07_19-10-00_host (local time). */
function defaultLogDir(comment: string): string {
  const d = new Date();
  const p = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${MONTHS[d.getMonth()]}${p(d.getDate())}_${p(d.getHours())}-${p(d.getMinutes())}-${p(d.getSeconds())}`;
  return join('runs', `${stamp}_${hostname()}${comment}`);
}

function scalarOf(v: unknown, name: string): number {
  if (typeof v === 'number') return v;
  if (v instanceof Tensor) {
    if (v.numel() !== 1)
      throw new RangeError(`${name}: expected a number or a one-element tensor, got shape [${v.shape.join(', ')}]`);
    return v.item();
  }
  throw typeError('a number or a one-element Tensor', name, v);
}

function stepOf(step: unknown): number {
  if (step === undefined || step === null) return 0;
  return is.nonNegativeInteger(step, 'globalStep');
}

function wallTimeOf(t: unknown): number {
  if (t === undefined || t === null) return Date.now() / 1000;
  return is.finite(t, 'walltime');
}

function tagOf(tag: unknown, name = 'tag'): string {
  if (typeof tag !== 'string' || tag === '') throw typeError('a non-empty string', name, tag);
  return tag;
}

/**
 * Writes TensorBoard event files into a run directory.
 *
 *   import { tensorboard } from 'tensornormal';
 *   const writer = new tensorboard.SummaryWriter('runs/adam-lr1e-3');
 *   for (let step = 0; step < 100; step++) writer.addScalar('loss/train', loss, step);
 *   writer.addHistogram('fc1.weight', model.fc1.weight, 100);
 *   writer.close();
 */
export class SummaryWriter {
  /** The run's directory. */
  readonly logDir: string;
  /** The event file this writer appends to. */
  readonly file: string;
  private fd: number | null;
  private pending: Uint8Array[] = [];
  private readonly maxQueue: number;
  private readonly timer: NodeJS.Timeout;
  private readonly children = new Map<string, SummaryWriter>();
  private readonly options: SummaryWriterOptions;

  /** `new SummaryWriter('runs/x')`, `new SummaryWriter({ logDir, flushSecs })` or `new SummaryWriter()` (PyTorch's default directory). */
  constructor(logDir?: string | SummaryWriterOptions, options: SummaryWriterOptions = {}) {
    if (logDir !== undefined && typeof logDir === 'object' && logDir !== null) {
      options = logDir;
      logDir = options.logDir;
    }
    options = is.options(options);
    if (logDir !== undefined && (typeof logDir !== 'string' || logDir === ''))
      throw typeError('a directory path', 'logDir', logDir);
    const comment = options.comment ?? '';
    is.string(comment, 'comment');
    const suffix = options.filenameSuffix ?? '';
    is.string(suffix, 'filenameSuffix');
    this.maxQueue = is.positiveInteger(options.maxQueue ?? 10, 'maxQueue');
    const flushSecs = is.positive(options.flushSecs ?? 10, 'flushSecs');
    this.options = { maxQueue: this.maxQueue, flushSecs };
    this.logDir = logDir ?? defaultLogDir(comment);
    mkdirSync(this.logDir, { recursive: true });
    const now = Date.now() / 1000;
    this.file = join(
      this.logDir,
      `events.out.tfevents.${String(Math.floor(now)).padStart(10, '0')}.${hostname()}.${process.pid}.${fileCounter++}${suffix}`,
    );
    this.fd = openSync(this.file, 'a');
    this.pending.push(frameRecord(eventBytes({ wallTime: now, fileVersion: 'brain.Event:2' })));
    this.flush();
    this.timer = setInterval(() => this.flush(), flushSecs * 1000);
    this.timer.unref();
    open.add(this);
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const w of open) w.flush();
      });
    }
  }

  /** PyTorch's get_logdir(). */
  getLogdir(): string {
    return this.logDir;
  }

  private add(summary: ProtoWriter, step: number, wallTime: number): void {
    if (this.fd === null) throw new Error(`SummaryWriter(${this.logDir}) is closed`);
    this.pending.push(frameRecord(eventBytes({ wallTime, step, summary })));
    if (this.pending.length >= this.maxQueue) this.flush();
  }

  /** One value of a curve: `tag` at `globalStep` (default 0). `value` is a number or a one-element tensor. */
  addScalar(tag: string, value: number | Tensor, globalStep?: number, walltime?: number): void {
    this.add(scalarSummary(tagOf(tag), scalarOf(value, 'value')), stepOf(globalStep), wallTimeOf(walltime));
  }

  /**
   * Several curves in one chart, as PyTorch's add_scalars: each key of `values` is written by its own run
   * `${logDir}/${mainTag}_${key}` under the tag `mainTag` ('/' in mainTag becomes '_').
   */
  addScalars(mainTag: string, values: Record<string, number | Tensor>, globalStep?: number, walltime?: number): void {
    tagOf(mainTag, 'mainTag');
    if (values === null || typeof values !== 'object') throw typeError('an object of numbers', 'values', values);
    const step = stepOf(globalStep);
    const wall = wallTimeOf(walltime);
    for (const [key, v] of Object.entries(values)) {
      const dir = join(this.logDir, `${mainTag.replace(/\//g, '_')}_${key}`);
      let w = this.children.get(dir);
      if (w === undefined) {
        w = new SummaryWriter(dir, this.options);
        this.children.set(dir, w);
      }
      w.addScalar(mainTag, scalarOf(v, `values.${key}`), step, wall);
    }
  }

  /**
   * The distribution of `values` (a tensor of any shape, or numbers) in `bins` equal-width buckets (default 30)
   * between their min and max; non-finite values are left out. PyTorch's add_histogram.
   */
  addHistogram(
    tag: string,
    values: Tensor | ArrayLike<number>,
    globalStep?: number,
    bins: number = 30,
    walltime?: number,
  ): void {
    tagOf(tag);
    is.positiveInteger(bins, 'bins');
    let data: ArrayLike<number>;
    if (values instanceof Tensor) data = values.dataSync();
    else if (values !== null && typeof values === 'object' && typeof (values as ArrayLike<number>).length === 'number')
      data = values;
    else throw typeError('a Tensor or an array of numbers', 'values', values);
    const h = histogramOf(data, bins);
    if (h === null) throw new RangeError(`addHistogram(${tag}): no finite value to make a histogram of`);
    this.add(histogramSummary(tag, h), stepOf(globalStep), wallTimeOf(walltime));
  }

  /** Text (Markdown in TensorBoard's Text tab), under `${tag}/text_summary` as PyTorch's add_text. */
  addText(tag: string, text: string, globalStep?: number, walltime?: number): void {
    tagOf(tag);
    is.string(text, 'text');
    this.add(textSummary(tag, text), stepOf(globalStep), wallTimeOf(walltime));
  }

  /**
   * One row of TensorBoard's HParams table: the run's hyper-parameters and final metrics, written as PyTorch's
   * add_hparams does into a run of its own, `${logDir}/${runName}` (default: the time in seconds), with each metric
   * as a scalar there too.
   */
  addHparams(
    hparams: Record<string, HparamValue>,
    metrics: Record<string, number>,
    options: { runName?: string } = {},
  ): void {
    if (hparams === null || typeof hparams !== 'object') throw typeError('an object', 'hparams', hparams);
    if (metrics === null || typeof metrics !== 'object') throw typeError('an object', 'metrics', metrics);
    options = is.options(options);
    for (const [k, v] of Object.entries(hparams))
      if (!['number', 'string', 'boolean'].includes(typeof v))
        throw typeError('a number, string or boolean', `hparams.${k}`, v);
    for (const [k, v] of Object.entries(metrics)) is.number(v, `metrics.${k}`);
    const now = Date.now() / 1000;
    const run = options.runName ?? String(now);
    is.string(run, 'runName');
    const w = new SummaryWriter(join(this.logDir, run), this.options);
    try {
      for (const s of hparamsSummaries(hparams, Object.keys(metrics), now)) w.add(s, 0, now);
      for (const [k, v] of Object.entries(metrics)) w.addScalar(k, v, 0, now);
    } finally {
      w.close();
    }
  }

  /** Writes the pending events to the file. */
  flush(): void {
    for (const c of this.children.values()) c.flush();
    if (this.fd === null || this.pending.length === 0) return;
    const chunks = this.pending;
    this.pending = [];
    const all = Buffer.concat(chunks);
    let off = 0;
    while (off < all.length) off += writeSync(this.fd, all, off, all.length - off);
  }

  /** Flushes and closes the file (and those of addScalars' runs). Adding to a closed writer is an error. */
  close(): void {
    if (this.fd === null) return;
    this.flush();
    for (const c of this.children.values()) c.close();
    clearInterval(this.timer);
    closeSync(this.fd);
    this.fd = null;
    open.delete(this);
  }

  /** `using writer = new SummaryWriter(...)` closes it at the end of the block. */
  [Symbol.dispose](): void {
    this.close();
  }
}
