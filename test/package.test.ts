// The published package (issue 10, item 9): what `npm pack` ships and how an installed copy loads — from CommonJS
// (`require`), with source maps that resolve inside the package, a LICENSE, and, when the install script did not
// run, a load error that says `npm rebuild tensornormal`. Needs the compiled dist/ (`npm run build:ts`), as
// test/loader.test.ts does.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { packageRoot } from '../lib/native.js';
import { addonPath } from './support/transpile-lib.js';

interface Packed {
  filename: string;
  files: { path: string }[];
}

let dir = '';
let packed: Packed;
let installed = '';

/** Runs node in the consumer project; `addon` false leaves the package to find (or miss) its own addon. */
function node(args: string[], addon = true): { status: number | null; stdout: string; stderr: string } {
  const env: Record<string, string | undefined> = { ...process.env, TENSORNORMAL_ADDON: addon ? addonPath : undefined };
  if (!addon) delete env.TENSORNORMAL_ADDON;
  const r = spawnSync(process.execPath, args, { cwd: join(dir, 'consumer'), env, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

beforeAll(() => {
  if (!existsSync(join(packageRoot, 'dist', 'index.cjs')))
    throw new Error('dist/ is not built: run `npm run build:ts` first');
  dir = mkdtempSync(join(tmpdir(), 'tn-package-'));
  // --ignore-scripts: the prepare script would rebuild dist/ (the caller did); the tarball is what `npm publish` sends
  const r = spawnSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], {
    cwd: packageRoot,
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  packed = (JSON.parse(r.stdout) as Packed[])[0]!;
  // A consumer project with the package unpacked where `npm install ./tensornormal-*.tgz --ignore-scripts` puts it
  // (unpacked by hand: the dependencies, cmake-js and node-addon-api, are for building only and the registry is
  // offline here). No install script runs, so the package holds no addon: the tests point TENSORNORMAL_ADDON at
  // this checkout's build, except the one about the missing addon.
  installed = join(dir, 'consumer', 'node_modules', 'tensornormal');
  mkdirSync(installed, { recursive: true });
  writeFileSync(join(dir, 'consumer', 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
  const x = spawnSync('tar', ['-xzf', join(dir, packed.filename), '-C', installed, '--strip-components=1'], {
    encoding: 'utf8',
  });
  expect(x.status, x.stderr).toBe(0);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('ships a LICENSE (MIT) and the CommonJS entry points', () => {
    const files = new Set(packed.files.map((f) => f.path));
    for (const f of [
      'LICENSE',
      'package.json',
      'README.md',
      'dist/index.js',
      'dist/index.cjs',
      'dist/experiments/index.cjs',
      'dist/require-esm.cjs',
    ])
      expect(files.has(f), f).toBe(true);
    const license = readFileSync(join(installed, 'LICENSE'), 'utf8');
    expect(license).toMatch(/^MIT License\n\nCopyright \(c\) 2026 the tensornormal authors\n/);
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as {
      license: string;
      exports: Record<string, unknown>;
    };
    expect(pkg.license).toBe('MIT');
    expect(pkg.exports['.']).toEqual({
      import: { types: './dist/index.d.ts', default: './dist/index.js' },
      require: { types: './dist/index.d.cts', default: './dist/index.cjs' },
    });
    expect(files.has('dist/index.d.cts') && files.has('dist/nn/module.d.cts')).toBe(true);
  });

  it('every source map points at sources inside the package', () => {
    const files = new Set(packed.files.map((f) => f.path));
    const maps = [...files].filter((f) => f.endsWith('.js.map') || f.endsWith('.cjs.map'));
    expect(maps.length).toBeGreaterThan(40);
    for (const m of maps) {
      const map = JSON.parse(readFileSync(join(installed, m), 'utf8')) as { sources: string[]; sourceRoot?: string };
      expect(map.sources.length, m).toBeGreaterThan(0);
      for (const s of map.sources) {
        const resolved = posix.normalize(posix.join(posix.dirname(m), map.sourceRoot ?? '', s));
        expect(files.has(resolved), `${m} -> ${s} (${resolved})`).toBe(true);
      }
    }
  });

  it('require() gives the same module as import (one copy of the library), and the experiments subpath', () => {
    const script = `
      const torch = require('tensornormal');
      const t = torch.tensor([[1, 2], [3, 4]]);
      const s = t.matmul(t).sum().item();
      import('tensornormal').then((esm) => {
        console.log(JSON.stringify({ s, same: esm.Tensor === torch.Tensor && esm.TorchError === torch.TorchError,
          exp: typeof require('tensornormal/experiments').meanStd }));
      });`;
    const r = node(['-e', script]);
    expect(r.status, r.stderr).toBe(0);
    // [[1,2],[3,4]]^2 = [[7,10],[15,22]], sum 54
    expect(JSON.parse(r.stdout)).toEqual({ s: 54, same: true, exp: 'function' });
  });

  it('where this Node cannot require() an ES module, the error says how to import the package', () => {
    const r = node(['--no-experimental-require-module', '-e', "require('tensornormal')"]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('tensornormal is an ES module, and this Node.js');
    expect(r.stderr).toContain("const torch = await import('tensornormal')");
    // the way it points to works in the same process set-up
    const ok = node([
      '--no-experimental-require-module',
      '-e',
      "import('tensornormal').then((t) => console.log(t.ones(3).sum().item()))",
    ]);
    expect(ok.stdout.trim(), ok.stderr).toBe('3');
  });

  it('installed without its install script (no build, no prebuild): the load error says `npm rebuild tensornormal`', () => {
    expect(existsSync(join(installed, 'build'))).toBe(false);
    const r = node(['-e', "import('tensornormal')"], false);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('tensornormal: the native addon could not be loaded.');
    const at = join(installed, 'build', 'Release', 'tensornormal.node');
    expect(r.stderr).toContain(
      `${at}: not built. The install script builds it and did not run (npm install --ignore-scripts?): run \`npm rebuild tensornormal\``,
    );
    // require() reports the same error, not a require(esm) one
    const c = node(['-e', "require('tensornormal')"], false);
    expect(c.stderr).toContain('run `npm rebuild tensornormal`');
  });

  it('TypeScript CommonJS consumers (module node16, and ES ones): type-check against the packed declarations and run', () => {
    // Before the conditional `types` (issue 22) a CommonJS file compiled with module node16 failed with TS1471: the
    // exports map gave it the ES declarations, which `require` cannot reach. The consumer gets the repository's
    // @types/node (its declarations mention node: modules) and its TypeScript.
    const consumer = join(dir, 'consumer');
    mkdirSync(join(consumer, 'node_modules', '@types'), { recursive: true });
    symlinkSync(join(packageRoot, 'node_modules', '@types', 'node'), join(consumer, 'node_modules', '@types', 'node'));
    const tsc = join(packageRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const options = { module: 'node16', moduleResolution: 'node16', strict: true, types: ['node'], outDir: 'out' };
    writeFileSync(
      join(consumer, 'cjs.ts'),
      [
        "import torch = require('tensornormal');",
        "import experiments = require('tensornormal/experiments');",
        'const t: torch.Tensor = torch.ones([2, 3]);',
        'const lin: torch.nn.Linear = new torch.nn.Linear(3, 1);',
        'const opt: torch.optim.Adam = new torch.optim.Adam(lin.parameters(), { lr: 1e-3 });',
        'const s: number = t.sum().item();',
        'console.log(JSON.stringify({ s, lr: opt.paramGroups[0]!.lr, meanStd: typeof experiments.meanStd }));',
      ].join('\n'),
    );
    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify({ compilerOptions: options, files: ['cjs.ts'] }));
    const r = spawnSync(process.execPath, [tsc, '-p', '.'], { cwd: consumer, encoding: 'utf8' });
    expect(r.stdout + r.stderr, 'tsc (CommonJS, module node16)').toBe('');
    expect(r.status).toBe(0);
    // what tsc emitted is CommonJS (`require`), and runs
    expect(readFileSync(join(consumer, 'out', 'cjs.js'), 'utf8')).toContain('require("tensornormal")');
    const run = node(['out/cjs.js']);
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ s: 6, lr: 1e-3, meanStd: 'function' });
    // an ES consumer (.mts) of the same project still gets the ES declarations
    writeFileSync(
      join(consumer, 'esm.mts'),
      "import * as torch from 'tensornormal';\nconst t: torch.Tensor = torch.zeros([2]);\nconsole.log(t.sum().item());\n",
    );
    writeFileSync(join(consumer, 'tsconfig.json'), JSON.stringify({ compilerOptions: options, files: ['esm.mts'] }));
    const e = spawnSync(process.execPath, [tsc, '-p', '.'], { cwd: consumer, encoding: 'utf8' });
    expect(e.stdout + e.stderr, 'tsc (ES module)').toBe('');
  });
});
