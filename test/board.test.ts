// `tensornormal board` (issue 22) in a real browser: Debian's chromium, driven by playwright-core. The page loads
// without a console error, draws the curves of the runs already there, and a curve gains points while fit() trains
// into the same folder (`logDir`); the test saves a screenshot under the temporary folder it prints. Skips, saying
// so, where /usr/bin/chromium is missing (`apt-get install chromium`; .ci/run installs it).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import * as torch from '../lib/index.js';
import { packageRoot } from '../lib/native.js';
import { startBoard, type Board } from '../lib/board/server.js';

const CHROMIUM = '/usr/bin/chromium';
const here = existsSync(CHROMIUM);
if (!here)
  console.warn(`board.test.ts: ${CHROMIUM} is missing (apt-get install -y chromium): the browser tests are skipped`);

let root = '';
let board: Board | null = null;
let context: BrowserContext | null = null;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'tn-board-'));
});
afterAll(async () => {
  await context?.close();
  await board?.close();
  // the screenshot stays for a person to look at; the runs and the browser profile go
  if (root) for (const d of ['runs', 'profile']) rmSync(join(root, d), { recursive: true, force: true });
});

async function launch(): Promise<Page> {
  context = await chromium.launchPersistentContext(join(root, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  });
  return context.pages()[0] ?? (await context.newPage());
}

/** data-points of the curve of `run` in the chart of `tag`, or 0 when it is not drawn. */
async function pointsOf(page: Page, run: string, tag: string): Promise<number> {
  const curve = page.locator(`polyline.curve[data-run="${run}"][data-tag="${tag}"]`);
  if ((await curve.count()) === 0) return 0;
  try {
    return Number(await curve.first().getAttribute('data-points', { timeout: 1000 }));
  } catch {
    return 0; // redrawn meanwhile
  }
}

async function until<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!here)('tensornormal board in chromium', () => {
  it('draws the runs, gains points while fit() trains, no console errors; screenshot saved', async () => {
    const runs = join(root, 'runs');
    mkdirSync(runs);
    // a finished run, written by hand: 20 losses and the optimizer's refresh times
    const done = new torch.tensorboard.SummaryWriter(join(runs, 'adam'));
    for (let s = 1; s <= 20; s++) {
      done.addScalar('loss/train', 2 / s, s);
      if (s % 5 === 0) done.addScalar('optimizer/inverse_refresh_seconds', 0.01 * s, s);
    }
    done.close();
    board = await startBoard({ logDir: runs, port: 0, pollMs: 100 });
    const page = await launch();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(`console.${m.type()}: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => {
      // the event stream is cut when the test closes the page
      if (!r.url().endsWith('/api/events')) problems.push(`request failed: ${r.url()}`);
    });
    await page.goto(board.url);
    expect(
      await until(
        'the finished run',
        () => pointsOf(page, 'adam', 'loss/train'),
        (n) => n === 20,
      ),
    ).toBe(20);
    expect(await pointsOf(page, 'adam', 'optimizer/inverse_refresh_seconds')).toBe(4);
    // the optimizer's diagnostics are beside the losses, not among them
    expect(await page.locator('#diagnostics figure[data-tag="optimizer/inverse_refresh_seconds"]').count()).toBe(1);
    expect(await page.locator('#losses figure[data-tag="loss/train"]').count()).toBe(1);

    // a run that trains now, in this process (fit() yields between steps, so the board keeps answering)
    torch.manualSeed(0);
    const x = torch.randn([64, 8]);
    const y = torch.tidy(() => x.sum(1, true).mul(0.5));
    const batches = [0, 1, 2, 3].map((i) => [x.narrow(0, 16 * i, 16), y.narrow(0, 16 * i, 16)]);
    const model = torch.models.mlp([8, 16, 1]);
    const optimizer = new torch.optim.Adam(model.parameters(), { lr: 1e-2 });
    const writer = new torch.tensorboard.SummaryWriter(join(runs, 'live'), { maxQueue: 1 });
    const seen: number[] = [];
    let epochsDone = 0;
    const training = torch.fit(model, {
      train: batches,
      epochs: 400,
      optimizer,
      loss: (o, t) => torch.nn.functional.mseLoss(o, t),
      progress: 'none',
      logDir: writer,
      callbacks: {
        // slow the run down a little, so that the page sees it grow in several pushes
        onEpochEnd: async () => {
          epochsDone++;
          await new Promise((r) => setTimeout(r, 5));
        },
      },
    });
    let finished = false;
    void training.finally(() => (finished = true));
    // the curve of the live run appears and gains points while the run is still training
    seen.push(
      await until(
        'the live run',
        () => pointsOf(page, 'live', 'loss/train'),
        (n) => n > 0,
      ),
    );
    seen.push(
      await until(
        'more points',
        () => pointsOf(page, 'live', 'loss/train'),
        (n) => n > seen[0]!,
      ),
    );
    expect(finished).toBe(false);
    seen.push(
      await until(
        'still more points',
        () => pointsOf(page, 'live', 'loss/train'),
        (n) => n > seen[1]!,
      ),
    );
    await training;
    writer.close();
    const total = 400 * 4;
    expect(
      await until(
        'every step',
        () => pointsOf(page, 'live', 'loss/train'),
        (n) => n === total,
      ),
    ).toBe(total);
    expect(seen[0]!).toBeLessThan(seen[1]!);
    expect(seen[1]!).toBeLessThan(total);
    expect(epochsDone).toBe(400);
    // the live run's diagnostics are drawn too
    expect(await pointsOf(page, 'live', 'train/samples_per_second')).toBe(total);
    const shot = join(root, 'board.png');
    await page.screenshot({ path: shot, fullPage: true });
    const png = readFileSync(shot);
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(png.length).toBeGreaterThan(10_000);
    console.log(`board.test.ts: screenshot at ${shot}`);
    expect(problems).toEqual([]);
    torch.dispose([x, y, ...batches.flat()]);
    model.dispose();
    optimizer.dispose?.();
  });

  it('the command: --help, a missing --logdir, and a board that serves the page', async () => {
    const cli = join(packageRoot, 'dist', 'cli.js');
    if (!existsSync(cli)) return; // dist/ not built: the in-process test above covers the server
    const run = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((ok) => {
        const c = spawn(process.execPath, [cli, 'board', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        c.stdout.on('data', (d: Buffer) => (out += d.toString()));
        c.stderr.on('data', (d: Buffer) => (out += d.toString()));
        c.on('exit', (code) => ok({ code, out }));
      });
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.out).toMatch(/^Usage: tensornormal board --logdir DIR/);
    const missing = await run([]);
    expect(missing.code).toBe(2);
    expect(missing.out).toContain('--logdir DIR is required');
    const notDir = await run(['--logdir', join(root, 'nope')]);
    expect(notDir.code).toBe(1);
    expect(notDir.out).toContain('is not a folder');
    const c = spawn(process.execPath, [cli, 'board', '--logdir', root, '--port', '0'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      let out = '';
      c.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const url = await until(
        'the board',
        async () => /http:\/\/[^ ]+\//.exec(out)?.[0],
        (u) => u !== undefined,
        30_000,
      );
      const page = await (await fetch(url!)).text();
      expect(page).toContain('<title>tensornormal board</title>');
    } finally {
      c.kill('SIGINT');
      expect(await new Promise((ok) => c.once('exit', ok))).toBe(0);
    }
  });
});
