// Terminating a busy worker never aborts the process: 50 workers training with the compiled library (Adam, TNT,
// module backward hooks, tensor hooks) are terminated at random points, a third of them while a gradient hook is
// running JavaScript. Before node-addon-api's NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS (CMakeLists.txt) this aborted
// the whole process ("terminate called after throwing an instance of 'Napi::Error'") within the first few workers.
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { addonPath, transpileLib } from './support/transpile-lib.js';
import { withTempDir } from './support/helpers.js';

const JOB = `
import { parentPort, workerData } from 'node:worker_threads';
const t = await import(workerData.lib);
const { nn, optim, tidy } = t;
const kind = workerData.kind;
const model = new nn.Sequential(new nn.Linear(32, 32), new nn.ReLU(), new nn.Linear(32, 10));
const opt = kind === 'tnt' ? new optim.TNT(model.parameters(), { lr: 0.01, inverseEvery: 2 }) : new optim.Adam(model.parameters(), { lr: 1e-3 });
const lik = new t.Categorical();
const busy = () => { let s = 0; for (let i = 0; i < 2e6; i++) s += i; return s; };
let signalled = false;
const inHook = () => { if (!signalled) { signalled = true; parentPort.postMessage('in-hook'); } busy(); };
if (kind === 'module-hook') model.registerFullBackwardHook(inHook);
const x = t.randn([128, 32]);
const y = t.randint(0, 10, [128], { dtype: 'int64' });
parentPort.postMessage('ready');
for (;;)
  tidy(() => {
    const out = model.call(x);
    if (kind === 'tnt') opt.sampledBackward(out, lik);
    if (kind === 'tensor-hook') out.registerHook(inHook);
    lik.loss(out, y).backward();
    opt.step();
    opt.zeroGrad();
  });
`;

const DRIVER = `
import { Worker } from 'node:worker_threads';
const [job, lib] = process.argv.slice(2);
const kinds = ['adam', 'tnt', 'module-hook', 'tensor-hook'];
let done = 0, inHook = 0;
async function one(i) {
  const kind = kinds[i % kinds.length];
  const w = new Worker(job, { workerData: { kind, lib } });
  const hooked = kind.endsWith('hook');
  await new Promise((resolve, reject) => {
    w.on('error', reject);
    w.on('message', (m) => {
      // hook workers are terminated inside their hook, the others at a random point of training
      if (m === 'in-hook') { inHook++; resolve(); }
      if (m === 'ready' && !hooked) setTimeout(resolve, 20 + Math.random() * 300);
    });
  });
  await w.terminate();
  done++;
}
for (let i = 0; i < 50; i += 2) await Promise.all([one(i), one(i + 1)]);
console.log('ALIVE ' + done + ' ' + inHook);
`;

describe('worker termination', () => {
  it('terminating 50 busy workers (training, inside gradient hooks) never aborts the process', () => {
    return withTempDir('tn-term-', (work) => {
      transpileLib(work);
      writeFileSync(join(work, 'job.mjs'), JOB);
      writeFileSync(join(work, 'driver.mjs'), DRIVER);
      const r = spawnSync(
        process.execPath,
        [join(work, 'driver.mjs'), join(work, 'job.mjs'), new URL(`file://${join(work, 'lib', 'index.js')}`).href],
        {
          env: { ...process.env, TENSORNORMAL_ADDON: addonPath, TENSORNORMAL_NUM_THREADS: '1' },
          encoding: 'utf8',
          timeout: 110_000,
        },
      );
      expect(r.stderr).not.toContain('terminate called');
      expect({ status: r.status, signal: r.signal }).toEqual({ status: 0, signal: null });
      // every worker ended, and the 24 hook workers (kinds 3 and 4 of 4, 50 workers) were each stopped inside a hook
      expect(r.stdout.trim()).toBe('ALIVE 50 24');
    });
  });
});
