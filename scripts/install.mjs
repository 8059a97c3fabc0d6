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

const pre = join(root, 'prebuilds', `${process.platform}-${process.arch}`);
if (existsSync(pre)) {
  for (const f of readdirSync(pre).filter((f) => f.endsWith('.node'))) {
    try {
      require(join(pre, f));
      console.log(`tensornormal: using prebuild ${f}`);
      process.exit(0);
    } catch (err) {
      console.log(
        `tensornormal: prebuild ${f} does not load here (${String(err.message).split('\n')[0]}); building from source`,
      );
    }
  }
}

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
    'tensornormal: native build failed. Needs cmake, a C++17 compiler and libtorch ' +
      '(Debian: apt-get install libtorch-dev libopenblas0-pthread build-essential cmake), or LIBTORCH / Torch_DIR set.',
  );
  process.exit(r.status ?? 1);
}
