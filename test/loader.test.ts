// Loading the addon: what the error says when it cannot be loaded (lib/native.ts), and the install step's choice
// between a prebuild and a source build (scripts/install.mjs), each in a child process.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, copyFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { explain, packageRoot } from '../lib/native.js';

const dist = join(packageRoot, 'dist', 'index.js');
const importDist = (env: Record<string, string>): { status: number | null; stderr: string } => {
  const r = spawnSync(
    process.execPath,
    ['--input-type=module', '-e', `import(${JSON.stringify(dist)}).then(() => console.log('loaded'))`],
    {
      env: { ...process.env, ...env },
      encoding: 'utf8',
    },
  );
  return { status: r.status, stderr: r.stderr };
};

describe('loading the addon', () => {
  it('says "not built yet" for a missing addon file, and names the file', () => {
    const r = importDist({ TENSORNORMAL_ADDON: '/nonexistent/tensornormal.node' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('tensornormal: the native addon could not be loaded.');
    expect(r.stderr).toContain(
      '/nonexistent/tensornormal.node: not built. The install script builds it and did not run (npm install --ignore-scripts?): run `npm rebuild tensornormal` (in a clone of the repository: `npm run build:native`)',
    );
  });

  it("reports a file that is not an addon with the loader's own reason", () => {
    const dir = mkdtempSync(join(tmpdir(), 'tn-loader-'));
    const bad = join(dir, 'tensornormal.node');
    writeFileSync(bad, 'not an ELF file');
    const r = importDist({ TENSORNORMAL_ADDON: bad });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`${bad.replace(/[/.]/g, '\\$&')}: .*(invalid ELF header|file too short)`));
    rmSync(dir, { recursive: true, force: true });
  });

  it("classifies the dynamic loader's messages: libtorch missing, another libtorch or ABI", () => {
    const f = '/p/tensornormal.node';
    expect(explain(f, new Error('libtorch_cpu.so: cannot open shared object file: No such file or directory'))).toBe(
      '/p/tensornormal.node: libtorch was not found at run time (libtorch_cpu.so: cannot open shared object file: No such file or directory). Install it (Debian: apt-get install libtorch-dev libopenblas0-pthread) or add its lib folder to LD_LIBRARY_PATH',
    );
    expect(explain(f, new Error('/p/tensornormal.node: undefined symbol: _ZN2at4_ops3add4callE'))).toBe(
      '/p/tensornormal.node: built against another libtorch or C++ ABI (/p/tensornormal.node: undefined symbol: _ZN2at4_ops3add4callE); rebuild with `npm run build:native`',
    );
    expect(explain(f, new Error("Cannot find module '/p/tensornormal.node'"))).toBe(
      '/p/tensornormal.node: not built. The install script builds it and did not run (npm install --ignore-scripts?): run `npm rebuild tensornormal` (in a clone of the repository: `npm run build:native`)',
    );
  });

  it('the install step uses a prebuild that loads, and builds from source when it does not (TENSORNORMAL_SKIP_BUILD aside)', () => {
    // a package copy whose prebuilds/ holds the built addon: install.mjs must pick it and not build
    const dir = mkdtempSync(join(tmpdir(), 'tn-install-'));
    mkdirSync(join(dir, 'scripts'));
    copyFileSync(join(packageRoot, 'scripts', 'install.mjs'), join(dir, 'scripts', 'install.mjs'));
    const pre = join(dir, 'prebuilds', `${process.platform}-${process.arch}`);
    mkdirSync(pre, { recursive: true });
    copyFileSync(join(packageRoot, 'build', 'Release', 'tensornormal.node'), join(pre, 'tensornormal.node'));
    symlinkSync(join(packageRoot, 'node_modules'), join(dir, 'node_modules'));
    const good = spawnSync(process.execPath, [join(dir, 'scripts', 'install.mjs')], {
      encoding: 'utf8',
      env: { ...process.env, TENSORNORMAL_SKIP_BUILD: '' },
    });
    expect(good.status, good.stderr).toBe(0);
    expect(good.stdout).toContain('tensornormal: using prebuild tensornormal.node');
    // a prebuild that does not load: said, then the source build runs (here it fails fast: no CMakeLists.txt)
    writeFileSync(join(pre, 'tensornormal.node'), 'broken');
    const broken = spawnSync(process.execPath, [join(dir, 'scripts', 'install.mjs')], {
      encoding: 'utf8',
      env: { ...process.env, TENSORNORMAL_SKIP_BUILD: '' },
    });
    expect(broken.stdout).toMatch(/prebuild tensornormal\.node does not load here \(.*\)/);
    expect(broken.stdout).toMatch(
      /no prebuild matches the libtorch here \(.*; prebuilds for tensornormal\.node\); building from source/,
    );
    expect(broken.status).not.toBe(0);
    expect(broken.stderr).toContain(
      'tensornormal: native build failed. Building from source needs cmake, a C++17 compiler and libtorch',
    );
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});
