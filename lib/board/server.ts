/**
 * `tensornormal board --logdir runs/`: a small live page of the training curves under a folder of TensorBoard
 * event files (this library's SummaryWriter, fit({ logDir }), `tensornormal experiment --logdir`, or PyTorch's).
 * The server follows every event file (lib/tensorboard/reader.ts: only the records completed since its last read)
 * and pushes new points to the page over server-sent events; the page (page.ts: plain HTML, JavaScript and SVG,
 * no framework) draws the loss curves of every run, and the optimizer's diagnostics beside them.
 *
 * Loaded without the native addon: watching runs needs no libtorch.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { EventFileFollower, type ScalarPoint } from '../tensorboard/reader.js';
import { PAGE } from './page.js';

/** One run's curves: tag -> [step, value, wallTime][] */
export type RunCurves = Record<string, [number, number, number][]>;

/** Points added since the last scan: run -> tag -> points. */
type Delta = Record<string, RunCurves>;

/** Options of startBoard(). */
export interface BoardOptions {
  /** The folder of runs (every folder below it holding event files is a run, named by its path relative to it). */
  logDir: string;
  /** Port to listen on (default 6006; 0: any free port). */
  port?: number;
  /** Interface to listen on (default 127.0.0.1: this machine only). */
  host?: string;
  /** How often the event files are read for new records (ms, default 500). */
  pollMs?: number;
}

/** A running board: its URL, the curves it has read, and close(). */
export interface Board {
  url: string;
  server: Server;
  /** Every run's curves read so far. */
  runs(): Record<string, RunCurves>;
  close(): Promise<void>;
}

const MAX_DEPTH = 6;

/** Event files under `dir`, by run name ('.' for the folder itself). */
function findEventFiles(root: string): { run: string; file: string }[] {
  const out: { run: string; file: string }[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return; // removed meanwhile, or unreadable
    }
    for (const e of entries) {
      const p = join(dir, e.name);
      if (e.isDirectory() && depth < MAX_DEPTH) walk(p, depth + 1);
      else if (e.isFile() && e.name.includes('tfevents')) out.push({ run: relative(root, dir) || '.', file: p });
    }
  };
  walk(root, 0);
  return out.sort((a, b) => (a.file < b.file ? -1 : 1));
}

/** Starts the board's HTTP server; resolves once it listens. */
export async function startBoard(options: BoardOptions): Promise<Board> {
  const root = resolve(options.logDir);
  if (!statSync(root, { throwIfNoEntry: false })?.isDirectory())
    throw new Error(`tensornormal board: --logdir ${options.logDir} is not a folder`);
  const pollMs = options.pollMs ?? 500;
  const followers = new Map<string, { run: string; follower: EventFileFollower }>();
  const runs: Record<string, RunCurves> = {};
  const errors = new Map<string, string>();
  const clients = new Set<ServerResponse>();

  const scan = (): Delta => {
    const delta: Delta = {};
    for (const { run, file } of findEventFiles(root))
      if (!followers.has(file))
        followers.set(file, { run: run.split(sep).join('/'), follower: new EventFileFollower(file) });
    for (const [file, { run, follower }] of followers) {
      let points: ScalarPoint[];
      try {
        points = follower.read();
      } catch (err) {
        // a corrupt or vanished file: say so once, keep the others going
        if (!errors.has(file)) errors.set(file, (err as Error).message);
        continue;
      }
      for (const p of points) {
        const point: [number, number, number] = [p.step, p.value, p.wallTime];
        ((runs[run] ??= {})[p.tag] ??= []).push(point);
        ((delta[run] ??= {})[p.tag] ??= []).push(point);
      }
    }
    return delta;
  };
  scan();

  const send = (res: ServerResponse, event: string, data: unknown): void => {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const timer = setInterval(() => {
    const delta = scan();
    if (Object.keys(delta).length > 0) for (const c of clients) send(c, 'points', delta);
    else for (const c of clients) c.write(': keep-alive\n\n');
  }, pollMs);
  timer.unref();

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'http://board');
    if (url.pathname === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(PAGE);
    } else if (url.pathname === '/api/runs') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ logDir: root, runs, errors: Object.fromEntries(errors) }));
    } else if (url.pathname === '/api/events') {
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-store',
        connection: 'keep-alive',
      });
      send(res, 'snapshot', { logDir: root, runs, errors: Object.fromEntries(errors) });
      clients.add(res);
      req.on('close', () => clients.delete(res));
    } else if (url.pathname === '/favicon.ico') {
      res.writeHead(204);
      res.end();
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
    }
  };
  const server = createServer(handler);
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.port ?? 6006, options.host ?? '127.0.0.1', () => ok());
  });
  const a = server.address() as AddressInfo;
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return {
    url: `http://${host}:${a.port}/`,
    server,
    runs: () => runs,
    close: () =>
      new Promise<void>((ok) => {
        clearInterval(timer);
        for (const c of clients) c.end();
        clients.clear();
        server.close(() => ok());
        server.closeAllConnections();
      }),
  };
}

const HELP = `Usage: tensornormal board --logdir DIR [--port N] [--host ADDR]

Serves a live page of the training curves under DIR: every folder below it that holds TensorBoard event files is a
run (fit({ logDir }), train.inWorker({ logDir }), tensornormal experiment --logdir, tensorboard.SummaryWriter, or
PyTorch's torch.utils.tensorboard). Loss curves of every run side by side, the optimizer's diagnostics (inverse
refresh time, retries, skipped steps), throughput and memory beside them; new points appear as the runs write them.

  --logdir DIR     the folder of runs (required)
  --port N         port (default 6006; 0: any free port)
  --host ADDR      interface (default 127.0.0.1; 0.0.0.0 to serve other machines)
  --poll MS        how often the files are read (default 500)
  -h, --help       this help
`;

/** `tensornormal board ...`: returns the exit code once the server stops (SIGINT/SIGTERM). */
export async function runBoardCommand(
  argv: string[],
  io: { stdout: { write(s: string): unknown }; stderr: { write(s: string): unknown } } = process,
): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        logdir: { type: 'string' },
        port: { type: 'string' },
        host: { type: 'string' },
        poll: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    io.stderr.write(
      `tensornormal board: ${(err as Error).message}\nRun 'tensornormal board --help' for the options.\n`,
    );
    return 2;
  }
  if (values.help) {
    io.stdout.write(HELP);
    return 0;
  }
  if (values.logdir === undefined || values.logdir === '') {
    io.stderr.write("tensornormal board: --logdir DIR is required\nRun 'tensornormal board --help' for the options.\n");
    return 2;
  }
  const port = values.port === undefined ? 6006 : Number(values.port);
  const pollMs = values.poll === undefined ? 500 : Number(values.poll);
  if (!Number.isInteger(port) || port < 0 || port > 65535 || !(pollMs >= 20)) {
    io.stderr.write(
      `tensornormal board: ${!Number.isInteger(port) || port < 0 || port > 65535 ? `--port expects a port number but received ${values.port}` : `--poll expects at least 20 (ms) but received ${values.poll}`}\n`,
    );
    return 2;
  }
  let board: Board;
  try {
    board = await startBoard({ logDir: values.logdir, port, pollMs, ...(values.host ? { host: values.host } : {}) });
  } catch (err) {
    io.stderr.write(`${(err as Error).message}\n`);
    return 1;
  }
  io.stdout.write(`tensornormal board: ${board.url} (runs under ${resolve(values.logdir)}; Ctrl-C stops it)\n`);
  await new Promise<void>((ok) => {
    const stop = (): void => void board.close().then(ok);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  return 0;
}
