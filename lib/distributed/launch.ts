/**
 * `tensornormal run`: starts the ranks of a distributed job on this machine, as torchrun does.
 *
 *   npx tensornormal run --nproc-per-node 2 train.js --epochs 3
 *   # two machines: on each, with --node-rank 0 and 1
 *   npx tensornormal run --nnodes 2 --node-rank 0 --nproc-per-node 4 --master-addr 10.0.0.1 --master-port 29500 train.js
 *
 * Each rank is `node script args...` with RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR
 * and MASTER_PORT set (what initProcessGroup's 'env://' reads), and OMP_NUM_THREADS=1 unless set (torchrun's
 * default: N processes should not each start one thread per core). Every line a rank prints is prefixed with
 * `[rank R]: `. When a rank exits with a failure, the others get SIGTERM (SIGKILL after a grace period) and the
 * launcher exits with the failed rank's status (128 + signal number for a signal); 0 when every rank succeeds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import { resolve } from 'node:path';

export interface LaunchOptions {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  script: string;
  args: string[];
  /** Milliseconds between SIGTERM and SIGKILL for the ranks stopped after a failure (default 5000). */
  killGraceMs?: number;
  /**
   * How many times a failed group is restarted (torchrun's --max-restarts; default 0): every rank of this node is
   * stopped and started again, which makes a new rendezvous round; the script resumes from its last checkpoint.
   */
  maxRestarts?: number;
}

interface Output {
  write(s: string): unknown;
}

export const RUN_HELP = `Usage: tensornormal run [options] script.js [script args...]

Starts the ranks of a distributed job (as torchrun): one Node process per rank running script.js, with RANK,
LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, GROUP_RANK, MASTER_ADDR and MASTER_PORT set for
distributed.initProcessGroup() (initMethod 'env://').

Options:
  --nproc-per-node N     processes on this machine (default 1)
  --nnodes M             machines (default 1); run the same command on each with its --node-rank
  --node-rank R          this machine's index in 0..M-1 (default 0)
  --master-addr A        address of node 0, which hosts the rendezvous store (default 127.0.0.1)
  --master-port P        its port (default 29500)
  --max-restarts N       restart the group up to N times after a rank fails (default 0); the ranks see the
                         attempt in TORCHELASTIC_RESTART_COUNT (0 first) and resume from their last checkpoint
  -h, --help             this help

Each line a rank prints is prefixed with "[rank R]: ". If a rank fails, the others are stopped; with restarts
left, every rank of this node is started again (a new rendezvous round), else the launcher exits with the failed
rank's status. On several machines each node's launcher restarts its own ranks: the ranks of the other nodes see
the group break, fail, and are restarted by their launchers, so all meet in the new round.
`;

export class LaunchUsageError extends Error {}

/** Parses `run`'s arguments (everything after the script belongs to the script). */
export function parseRunArgs(argv: string[]): LaunchOptions | 'help' {
  const o = { nprocPerNode: 1, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: 29500, maxRestarts: 0 };
  const ints: Record<string, keyof typeof o> = {
    '--nproc-per-node': 'nprocPerNode',
    '--nproc_per_node': 'nprocPerNode',
    '--nnodes': 'nnodes',
    '--node-rank': 'nodeRank',
    '--node_rank': 'nodeRank',
    '--master-port': 'masterPort',
    '--master_port': 'masterPort',
    '--max-restarts': 'maxRestarts',
    '--max_restarts': 'maxRestarts',
  };
  let i = 0;
  for (; i < argv.length; i++) {
    let a = argv[i]!;
    if (a === '-h' || a === '--help') return 'help';
    if (!a.startsWith('-')) break;
    let value: string | undefined;
    const eq = a.indexOf('=');
    if (eq > 0) {
      value = a.slice(eq + 1);
      a = a.slice(0, eq);
    } else {
      value = argv[++i];
    }
    if (value === undefined) throw new LaunchUsageError(`${a} needs a value`);
    if (a === '--master-addr' || a === '--master_addr') {
      o.masterAddr = value;
      continue;
    }
    const key = ints[a];
    if (key === undefined) throw new LaunchUsageError(`unknown option ${a}`);
    const n = Number(value);
    const zeroOk = key === 'nodeRank' || key === 'maxRestarts';
    if (!Number.isInteger(n) || n < 0 || (!zeroOk && n < 1))
      throw new LaunchUsageError(
        `${a} expects a ${zeroOk ? 'non-negative' : 'positive'} integer but received ${JSON.stringify(value)}`,
      );
    (o as Record<string, number | string>)[key] = n;
  }
  const script = argv[i];
  if (script === undefined) throw new LaunchUsageError('missing the script to run');
  if (o.nodeRank >= o.nnodes)
    throw new LaunchUsageError(`--node-rank ${o.nodeRank} must be below --nnodes ${o.nnodes}`);
  if (o.masterPort > 65535) throw new LaunchUsageError(`--master-port must be at most 65535`);
  return { ...o, script, args: argv.slice(i + 1) };
}

/**
 * Runs the ranks of this node; resolves with the exit status the launcher should have. With `maxRestarts`, a failed
 * group is stopped and started again (torchrun's semantics) until it succeeds or the restarts are spent.
 */
export async function launch(
  o: LaunchOptions,
  io: { stdout: Output; stderr: Output } = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const max = o.maxRestarts ?? 0;
  for (let attempt = 0; ; attempt++) {
    const r = await launchOnce(o, io, attempt);
    // an interrupted launcher (SIGINT / SIGTERM forwarded to the ranks) does not restart them
    if (r.status === 0 || r.interrupted || attempt >= max) return r.status;
    io.stderr.write(
      `tensornormal run: restarting every rank of this node (restart ${attempt + 1} of ${max}); a new rendezvous round\n`,
    );
  }
}

function launchOnce(
  o: LaunchOptions,
  io: { stdout: Output; stderr: Output },
  attempt: number,
): Promise<{ status: number; interrupted: boolean }> {
  const worldSize = o.nprocPerNode * o.nnodes;
  const children: ChildProcess[] = [];
  let failed: number | null = null;
  let interrupted = false;
  let running = o.nprocPerNode;
  const grace = o.killGraceMs ?? 5000;
  return new Promise((done) => {
    let killTimer: NodeJS.Timeout | undefined;
    const stopOthers = (): void => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      killTimer = setTimeout(() => {
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }, grace);
      killTimer.unref();
    };
    const forward = (sig: NodeJS.Signals): void => {
      interrupted = true;
      for (const c of children) if (c.exitCode === null) c.kill(sig);
    };
    const onInt = (): void => forward('SIGINT');
    const onTerm = (): void => forward('SIGTERM');
    process.on('SIGINT', onInt);
    process.on('SIGTERM', onTerm);
    for (let local = 0; local < o.nprocPerNode; local++) {
      const rank = o.nodeRank * o.nprocPerNode + local;
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        RANK: String(rank),
        LOCAL_RANK: String(local),
        WORLD_SIZE: String(worldSize),
        LOCAL_WORLD_SIZE: String(o.nprocPerNode),
        GROUP_RANK: String(o.nodeRank),
        MASTER_ADDR: o.masterAddr,
        MASTER_PORT: String(o.masterPort),
        TORCHELASTIC_RESTART_COUNT: String(attempt),
        TORCHELASTIC_MAX_RESTARTS: String(o.maxRestarts ?? 0),
      };
      if (env.OMP_NUM_THREADS === undefined && o.nprocPerNode > 1) env.OMP_NUM_THREADS = '1';
      const child = spawn(process.execPath, [resolve(o.script), ...o.args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      prefixLines(child.stdout!, io.stdout, `[rank ${rank}]: `);
      prefixLines(child.stderr!, io.stderr, `[rank ${rank}]: `);
      child.on('error', (err) => {
        io.stderr.write(`[rank ${rank}]: could not start: ${err.message}\n`);
      });
      child.on('close', (code, signal) => {
        running--;
        const status = code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1);
        if (status !== 0 && failed === null) {
          failed = status;
          io.stderr.write(
            `tensornormal run: rank ${rank} exited with ${signal ? `signal ${signal}` : `status ${code}`}; stopping the other ranks\n`,
          );
          stopOthers();
        }
        if (running === 0) {
          clearTimeout(killTimer);
          process.off('SIGINT', onInt);
          process.off('SIGTERM', onTerm);
          done({ status: failed ?? 0, interrupted });
        }
      });
    }
  });
}

function prefixLines(stream: NodeJS.ReadableStream, out: Output, prefix: string): void {
  let pending = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop()!;
    if (lines.length > 0) out.write(lines.map((l) => prefix + l + '\n').join(''));
  });
  stream.on('end', () => {
    if (pending !== '') out.write(prefix + pending + '\n');
    pending = '';
  });
}

/**
 * `tensornormal run ...` as a function (torch.distributed.run.main): `argv` is what follows `run`; resolves to the
 * exit status (2 for a usage mistake, the message on `io.stderr`).
 */
export async function runCommand(
  argv: string[],
  io: { stdout: Output; stderr: Output } = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  let o: LaunchOptions | 'help';
  try {
    o = parseRunArgs(argv);
  } catch (err) {
    if (!(err instanceof LaunchUsageError)) throw err;
    io.stderr.write(`tensornormal run: ${err.message}\nRun 'tensornormal run --help' for the options.\n`);
    return 2;
  }
  if (o === 'help') {
    io.stdout.write(RUN_HELP);
    return 0;
  }
  return launch(o, io);
}
