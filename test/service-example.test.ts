import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ts from 'typescript';
import { addonPath, repoRoot, transpileLib } from './support/transpile-lib.js';
import { data, noGrad, tidy } from '../lib/index.js';

// docs/service.md shows examples/service.ts (the server) and examples/service-job.ts (the job) in full: this test
// holds the two copies equal and runs the example as a user would, a plain node:http server on a free port.
const read = (p: string): string => readFileSync(join(repoRoot, p), 'utf8');

/** The ```ts blocks of a markdown file whose first line is `// <name>: ...`, by name. */
function docBlocks(md: string): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const m of md.matchAll(/```ts\n([\s\S]*?)```/g)) {
    const name = /^\/\/ (\S+?):/.exec(m[1]!)?.[1];
    if (name !== undefined) blocks.set(name, m[1]!);
  }
  return blocks;
}

describe('docs/service.md', () => {
  it('shows examples/service.ts and examples/service-job.ts as they are', () => {
    const blocks = docBlocks(read('docs/service.md'));
    expect(blocks.get('server.ts')).toBe(read('examples/service.ts'));
    expect(blocks.get('job.ts')).toBe(read('examples/service-job.ts'));
  });
});

describe('examples/service.ts', () => {
  let work: string;
  let server: ChildProcess | null = null;
  beforeAll(() => {
    // Node 20 runs no TypeScript: the library and the two example files, transpiled, with 'tensornormal' pointing
    // at the library's copy
    work = mkdtempSync(join(tmpdir(), 'tn-service-example-'));
    transpileLib(work);
    mkdirSync(join(work, 'examples'));
    for (const name of ['service', 'service-job']) {
      const js = ts
        .transpileModule(read(`examples/${name}.ts`), {
          compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
        })
        .outputText.replace(/from 'tensornormal'/g, "from '../lib/index.js'");
      writeFileSync(join(work, 'examples', `${name}.js`), js);
    }
  });
  afterAll(() => {
    server?.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  it('trains the classifier with TNT through fit() in a worker while it answers POST /predict (a training budget: the suite may share the cores); SIGINT stops both', async () => {
    server = spawn(
      process.execPath,
      [join(work, 'examples', 'service.js'), '--port', '0', '--optimizer', 'tnt', '--epochs', '1', '--priority', '0.5'],
      {
        env: { ...process.env, TENSORNORMAL_ADDON: addonPath },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    server.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    server.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    const until = async (re: RegExp): Promise<RegExpMatchArray> => {
      for (;;) {
        const m = re.exec(out);
        if (m !== null) return m;
        if (server!.exitCode !== null) throw new Error(`the example exited (${server!.exitCode}):\n${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const port = Number((await until(/serving on http:\/\/localhost:(\d+) \(training with tnt in a worker\)/))[1]);
    const url = `http://127.0.0.1:${port}`;
    const predict = (body: string): Promise<Response> => fetch(`${url}/predict`, { method: 'POST', body });

    // answers while the job trains (the served model starts from its own initialisation)
    const digits = data.mnistDigits();
    const images = digits.images.reshape(-1, 784);
    const sample = (i: number): number[] => tidy(() => images.select(0, i).toArray() as number[]);
    const first = await predict(JSON.stringify({ pixels: sample(0) }));
    expect(first.status).toBe(200);
    const a = (await first.json()) as { digit: number; probabilities: number[] };
    expect(a.probabilities).toHaveLength(10);
    expect(a.probabilities.reduce((s, p) => s + p, 0)).toBeCloseTo(1, 5);
    expect(a.digit).toBe(a.probabilities.indexOf(Math.max(...a.probabilities)));
    expect((await predict('{"pixels": [1, 2]}')).status).toBe(400);
    expect((await predict('not json')).status).toBe(400);
    expect((await fetch(`${url}/nothing`)).status).toBe(404);

    // one epoch (79 steps of 128): the final snapshot is what the server answers from; it has learned the digits
    await until(/training finished/);
    const status = (await (await fetch(`${url}/status`)).json()) as { snapshot: { step: number } | null };
    expect(status.snapshot).not.toBeNull();
    const n = 200;
    let correct = 0;
    for (let i = 0; i < n; i++) {
      const r = (await (await predict(JSON.stringify({ pixels: sample(i) }))).json()) as { digit: number };
      if (r.digit === noGrad(() => tidy(() => digits.labels.select(0, i).item()))) correct++;
    }
    // 10% by chance (and for a snapshot that never reached the server); 80-90% after one epoch (unseeded shuffle
    // and initialisation: 0.795 seen once)
    expect(correct / n).toBeGreaterThan(0.7);
    images.dispose();
    digits.dispose();

    server.kill('SIGINT');
    const code = await new Promise<number | null>((r) => server!.once('exit', (c) => r(c)));
    expect(code).toBe(0);
    expect(out).toContain('steps/s'); // the 'throughput' events it logs
    server = null;
  });
});
