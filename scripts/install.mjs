// npm install step: use a prebuild when one loads on this machine (same platform, libtorch ABI present),
// otherwise build native/ with cmake-js against the libtorch found (see CMakeLists.txt for the order).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

if (process.env.TENSORNORMAL_SKIP_BUILD) process.exit(0);

// Prebuilds are named tensornormal.libtorch-<major>.<minor>.node (`npm run prebuilds`); the one built against the
// libtorch installed here (Debian names its libraries libtorch_cpu.so.<major>.<minor>) is tried first.
function installedTorch() {
  const multiarch = process.arch === 'arm64' ? 'aarch64-linux-gnu' : 'x86_64-linux-gnu';
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    `/usr/lib/${multiarch}`,
    `/lib/${multiarch}`,
    '/usr/local/lib',
    '/usr/lib',
  ];
  const found = new Set();
  for (const d of dirs) {
    try {
      for (const n of readdirSync(d)) {
        const m = /^libtorch_cpu\.so\.(\d+\.\d+)$/.exec(n);
        if (m) found.add(m[1]);
      }
    } catch {
      // not there
    }
  }
  return found;
}

const pre = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const offered = existsSync(pre)
  ? readdirSync(pre)
      .filter((f) => f.endsWith('.node'))
      .sort()
  : [];
const here = installedTorch();
const tag = (f) => /\.libtorch-(\d+\.\d+)\.node$/.exec(f)?.[1];
for (const f of [...offered.filter((f) => here.has(tag(f))), ...offered.filter((f) => !here.has(tag(f)))]) {
  try {
    require(join(pre, f));
    console.log(`tensornormal: using prebuild ${f}`);
    process.exit(0);
  } catch (err) {
    console.log(`tensornormal: prebuild ${f} does not load here (${String(err.message).split('\n')[0]})`);
  }
}
if (offered.length > 0)
  console.log(
    `tensornormal: no prebuild matches the libtorch here (${here.size ? [...here].join(', ') : 'none found in the library folders'}; prebuilds for ${offered.map((f) => tag(f) ?? f).join(', ')}); building from source`,
  );

const cmakeJs = join(root, 'node_modules', '.bin', 'cmake-js');
const r = spawnSync(
  existsSync(cmakeJs) ? cmakeJs : 'npx',
  existsSync(cmakeJs) ? ['compile'] : ['cmake-js', 'compile'],
  {
    cwd: root,
    stdio: 'inherit',
  },
);
if (r.status !== 0) {
  console.error(
    'tensornormal: native build failed. Building from source needs cmake, a C++17 compiler and libtorch ' +
      '(Debian: apt-get install libtorch-dev libopenblas0-pthread build-essential cmake), or LIBTORCH / Torch_DIR set. ' +
      'Without a compiler, install a libtorch a prebuild was made for: Debian 12 (libtorch 1.13) or 13 (2.6), ' +
      '`apt-get install libtorch-dev libopenblas0-pthread`.',
  );
  process.exit(r.status ?? 1);
}
