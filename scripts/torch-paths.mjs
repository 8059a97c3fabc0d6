// Prints libtorch's include folders, library folder or link flags for binding.gyp (node-gyp's build of native/):
//   node scripts/torch-paths.mjs include|libdir|libs|defines
// Looks where CMakeLists.txt looks: LIBTORCH or Torch_DIR, then the Python torch that `python3` imports, then the
// system.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** The libtorch folder above Torch_DIR (which holds TorchConfig.cmake, e.g. <libtorch>/share/cmake/Torch). */
function fromTorchDir(torchDir) {
  for (let d = torchDir, k = 0; k < 5; k++, d = dirname(d)) {
    if (existsSync(join(d, 'include', 'ATen', 'ATen.h'))) {
      const lib = existsSync(join(d, 'lib', 'libtorch.so')) ? join(d, 'lib') : '/usr/lib/x86_64-linux-gnu';
      return { include: join(d, 'include'), lib, abi: process.env.TORCH_CXX11_ABI ?? '1' };
    }
  }
  console.error(`torch-paths: no libtorch headers (include/ATen/ATen.h) above Torch_DIR=${torchDir}`);
  process.exit(1);
}

function prefix() {
  if (process.env.LIBTORCH)
    return {
      include: join(process.env.LIBTORCH, 'include'),
      lib: join(process.env.LIBTORCH, 'lib'),
      abi: process.env.TORCH_CXX11_ABI ?? '1',
    };
  if (process.env.Torch_DIR) return fromTorchDir(process.env.Torch_DIR);
  try {
    const out = execFileSync(
      'python3',
      ['-c', 'import torch, os; print(os.path.dirname(torch.__file__), int(torch._C._GLIBCXX_USE_CXX11_ABI))'],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    )
      .toString()
      .trim();
    const [dir, abi] = out.split(' ');
    if (dir && existsSync(join(dir, 'include'))) return { include: join(dir, 'include'), lib: join(dir, 'lib'), abi };
  } catch {
    // no python torch: fall through to the system
  }
  return { include: '/usr/include', lib: '/usr/lib/x86_64-linux-gnu', abi: '1' };
}

const p = prefix();
const what = process.argv[2];
if (what === 'include') console.log([p.include, join(p.include, 'torch/csrc/api/include')].join(' '));
else if (what === 'libdir') console.log(p.lib);
else if (what === 'defines') {
  // Gloo's c10d process group (native/distributed.cc) needs c10d's and Gloo's headers (Debian: libgloo-dev).
  const gloo =
    existsSync(join(p.include, 'torch/csrc/distributed/c10d/ProcessGroupGloo.hpp')) &&
    [p.include, '/usr/include', '/usr/local/include'].some((d) => existsSync(join(d, 'gloo/context.h')));
  console.log([`_GLIBCXX_USE_CXX11_ABI=${p.abi}`, ...(gloo ? ['TN_HAVE_GLOO', 'USE_C10D_GLOO'] : [])].join(' '));
} else if (what === 'libs') console.log(`-L${p.lib} -Wl,-rpath,${p.lib} -ltorch -ltorch_cpu -lc10`);
else {
  console.error('usage: node scripts/torch-paths.mjs include|libdir|libs|defines');
  process.exit(2);
}
