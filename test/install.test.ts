// Installing without a compiler: the packed package with a prebuild for the libtorch installed here
// (prebuilds/<platform>-<arch>/tensornormal.libtorch-<major>.<minor>.node, as `npm run prebuilds` makes them)
// installs with `npm install <tarball>` on a PATH without gcc, g++, cc, c++, cmake and make, and the demo runs; with
// only prebuilds for other libtorch versions it tries to build, and the failure says what to install. Needs dist/
// (`npm run build:ts`) and this checkout's addon (standing in for the prebuild: it is built from the same sources
// against the same libtorch). The npm registry or npm's cache must hold cmake-js and node-addon-api (the package's
// dependencies; `npm ci` in this checkout filled the cache).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as torch from '../lib/index.js';
import { candidates, installedTorchVersions, packageRoot, prebuildTorch } from '../lib/native.js';
import { addonPath } from './support/transpile-lib.js';

const COMPILERS =
  /^(cc|c\+\+|gcc|g\+\+|cpp|clang|clang\+\+|cmake|ctest|make|gmake|ninja|ld|x86_64-linux-gnu-.*|.*-g\+\+-\d+|g\+\+-\d+|gcc-\d+|clang-\d+)$/;
const tag = torch.versions().torch.split('.').slice(0, 2).join('.');
let dir = '';
let bin = '';
let unpacked = '';

/** A folder of links to every program on PATH but the compilers and build tools. */
function pathWithoutCompilers(): string {
  const out = join(dir, 'bin');
  mkdirSync(out);
  for (const d of (process.env.PATH ?? '').split(':')) {
    let names: string[];
    try {
      names = readdirSync(d);
    } catch {
      continue;
    }
    for (const n of names) {
      if (COMPILERS.test(n) || existsSync(join(out, n))) continue;
      symlinkSync(join(d, n), join(out, n));
    }
  }
  return out;
}

/** Packs the unpacked package with these prebuilds into a tarball; returns its path. */
function tarball(name: string, prebuilds: Record<string, string | Buffer>): string {
  const pre = join(unpacked, 'package', 'prebuilds', `${process.platform}-${process.arch}`);
  rmSync(join(unpacked, 'package', 'prebuilds'), { recursive: true, force: true });
  mkdirSync(pre, { recursive: true });
  for (const [f, from] of Object.entries(prebuilds))
    if (typeof from === 'string') copyFileSync(from, join(pre, f));
    else writeFileSync(join(pre, f), from);
  const out = join(dir, `${name}.tgz`);
  const r = spawnSync('tar', ['-czf', out, '-C', unpacked, 'package'], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return out;
}

function npmInstall(project: string, tgz: string): { status: number | null; out: string; seconds: number } {
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
  const { TENSORNORMAL_ADDON: _a, npm_config_prefix: _p, ...env } = process.env;
  const started = Date.now();
  const r = spawnSync('npm', ['install', tgz, '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts'], {
    cwd: project,
    env: { ...env, PATH: bin },
    encoding: 'utf8',
    timeout: 300_000,
  });
  return { status: r.status, out: r.stdout + r.stderr, seconds: (Date.now() - started) / 1000 };
}

beforeAll(() => {
  if (!existsSync(join(packageRoot, 'dist', 'index.js'))) throw new Error('dist/ is not built: run `npm run build:ts`');
  dir = mkdtempSync(join(tmpdir(), 'tn-install-'));
  bin = pathWithoutCompilers();
  const r = spawnSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', dir], {
    cwd: packageRoot,
    encoding: 'utf8',
  });
  expect(r.status, r.stderr).toBe(0);
  const packed = (JSON.parse(r.stdout) as { filename: string }[])[0]!;
  unpacked = join(dir, 'unpacked');
  mkdirSync(unpacked);
  const x = spawnSync('tar', ['-xzf', join(dir, packed.filename), '-C', unpacked], { encoding: 'utf8' });
  expect(x.status, x.stderr).toBe(0);
}, 120_000);

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('installing without a compiler', () => {
  it('the PATH it installs with has no compiler', () => {
    for (const c of ['gcc', 'g++', 'cc', 'c++', 'cmake', 'make']) {
      const r = spawnSync('sh', ['-c', `command -v ${c}`], { env: { PATH: bin }, encoding: 'utf8' });
      expect(r.status, `${c} found at ${r.stdout}`).not.toBe(0);
    }
    expect(spawnSync('sh', ['-c', 'command -v node && command -v npm'], { env: { PATH: bin } }).status).toBe(0);
  });

  it('names prebuilds by libtorch and tries the installed libtorch first', () => {
    expect(prebuildTorch('/x/tensornormal.libtorch-1.13.node')).toBe('1.13');
    expect(prebuildTorch('tensornormal.libtorch-2.6.node')).toBe('2.6');
    expect(prebuildTorch('tensornormal.node')).toBeUndefined();
    // Debian's libtorch: libtorch_cpu.so.<major>.<minor> in the multiarch folder
    const fake = join(dir, 'libs');
    mkdirSync(fake);
    writeFileSync(join(fake, 'libtorch_cpu.so.2.6'), '');
    writeFileSync(join(fake, 'libtorch_cpu.so.2.6.0'), '');
    writeFileSync(join(fake, 'libtorch_cpu.so'), '');
    expect(installedTorchVersions([fake, join(dir, 'missing')])).toEqual(['2.6']);
    if (existsSync('/usr/lib/x86_64-linux-gnu/libtorch_cpu.so.' + tag)) expect(installedTorchVersions()).toContain(tag);
    // the loader's order, with prebuilds for two libtorch versions in a package root: the installed one first
    const { TENSORNORMAL_ADDON: saved } = process.env;
    delete process.env.TENSORNORMAL_ADDON;
    try {
      // this checkout's own build comes first (newer than any prebuild beside it)
      expect(candidates()[0]).toBe(join(packageRoot, 'build', 'Release', 'tensornormal.node'));
    } finally {
      if (saved !== undefined) process.env.TENSORNORMAL_ADDON = saved;
    }
  });

  it(`with a prebuild for this libtorch (${tag}) and another: installs with no compiler, and the demo runs`, () => {
    const tgz = tarball('with-prebuild', {
      [`tensornormal.libtorch-${tag}.node`]: addonPath,
      // a prebuild for another libtorch, first in name order: skipped for the matching one
      'tensornormal.libtorch-0.9.node': Buffer.from('not an ELF file'),
    });
    const project = join(dir, 'consumer');
    const r = npmInstall(project, tgz);
    expect(r.status, r.out).toBe(0);
    expect(r.out).toContain(`tensornormal: using prebuild tensornormal.libtorch-${tag}.node`);
    expect(r.out).not.toContain('does not load here');
    console.log(`install with a prebuild: ${r.seconds.toFixed(1)} s`);
    copyFileSync(join(packageRoot, 'examples', 'demo.mjs'), join(project, 'demo.mjs'));
    const { TENSORNORMAL_ADDON: _a, ...env } = process.env;
    const demo = spawnSync(process.execPath, ['demo.mjs'], { cwd: project, env, encoding: 'utf8' });
    expect(demo.status, demo.stderr).toBe(0);
    // y = 3x - 2 + noise, fitted: within a few hundredths of the truth
    const m = /w = (-?[\d.]+)\s+b = (-?[\d.]+)/.exec(demo.stdout);
    expect(m, demo.stdout).not.toBeNull();
    expect(Math.abs(Number(m![1]) - 3)).toBeLessThan(0.05);
    expect(Math.abs(Number(m![2]) + 2)).toBeLessThan(0.05);
    expect(demo.stdout).toContain(`libtorch ${torch.versions().torch}`);
    const installed = readdirSync(join(project, 'node_modules', 'tensornormal'));
    expect(installed).not.toContain('build');
  }, 300_000);

  it('with prebuilds for other libtorch versions only and no compiler: the install fails saying what to install', () => {
    const tgz = tarball('no-match', { 'tensornormal.libtorch-0.9.node': Buffer.from('not an ELF file') });
    const r = npmInstall(join(dir, 'consumer-no-match'), tgz);
    expect(r.status).not.toBe(0);
    expect(r.out).toContain('tensornormal: no prebuild matches the libtorch here');
    expect(r.out).toContain('prebuilds for 0.9');
    expect(r.out).toContain('apt-get install libtorch-dev libopenblas0-pthread build-essential cmake');
    expect(r.out).toContain('Without a compiler, install a libtorch a prebuild was made for');
  }, 300_000);
});
