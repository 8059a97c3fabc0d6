// Worker for test/worker.test.ts. Workers cannot run the TypeScript sources, so this loads the addon itself (the
// path comes in workerData, defaulting to build/Release) and computes with the raw native functions.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parentPort, workerData } from 'node:worker_threads';

const here = dirname(fileURLToPath(import.meta.url));
const file = workerData?.addon ?? join(here, '..', '..', 'build', 'Release', 'tensornormal.node');
const native = createRequire(import.meta.url)(file);

/** This environment's own error class: the addon must throw instances of it, not of the main thread's class. */
class WorkerTorchError extends Error {
  constructor(message, code) {
    super(message);
    this.name = 'TorchError';
    this.code = code;
  }
}
native.init(WorkerTorchError);
const { binary, reduce, factory } = native.opcodes();
const FLOAT64 = 1; // dtype code shared with lib/dtype.ts

/**
 * Sums A B for A[i][j] = (i + 1) (j + seed) and B all ones, `rounds` times, creating and freeing tensors each
 * round so that the two workers and the main thread allocate concurrently.
 */
function compute({ n, seed, rounds }) {
  const live0 = native.liveCount();
  const a = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) a[i * n + j] = (i + 1) * (j + seed);
  let total = 0;
  let liveMax = 0;
  for (let r = 0; r < rounds; r++) {
    const A = native.fromBuffer(a, [n, n], FLOAT64);
    const B = native.factory(factory.ones, [n, n], FLOAT64, null);
    const C = native.binary(binary.matmul, A, B);
    const s = native.reduce(reduce.sum, C, null, false);
    total = native.item(s);
    liveMax = Math.max(liveMax, native.liveCount());
    native.disposeMany([A, B, C, s]);
  }
  return { live0, liveMax, liveAfter: native.liveCount(), total };
}

const held = [];
parentPort.on('message', (msg) => {
  try {
    if (msg.kind === 'compute') parentPort.postMessage({ ok: true, ...compute(msg) });
    else if (msg.kind === 'hold') {
      // tensors left alive when the worker is terminated: the environment's cleanup must free them
      for (let k = 0; k < msg.count; k++) held.push(native.factory(factory.randn, [256, 256], FLOAT64, null));
      parentPort.postMessage({ ok: true, live: native.liveCount() });
    } else if (msg.kind === 'hook') {
      // a gradient hook (a JS function held by the autograd graph): y = x * x, the hook doubles dL/dy
      const x = native.fromBuffer(Float64Array.from([1, 2, 3]), [3], FLOAT64);
      native.setRequiresGrad(x, true);
      const y = native.binary(binary.mul, x, x);
      const seen = [];
      native.registerHook(y, (g) => {
        const twice = native.binary(binary.add, g, g);
        seen.push(native.item(native.reduce(reduce.sum, g, null, false)));
        return twice; // the addon takes this handle over
      });
      const s = native.reduce(reduce.sum, y, null, false);
      native.backward(s, -1, false, false);
      const grad = Array.from(new Float64Array(native.toBuffer(native.grad(x, -1))));
      // with msg.keep the graph (and its hook) stays alive when the worker is terminated
      if (msg.keep) held.push(x, y, s);
      else native.disposeMany([x, y, s]);
      parentPort.postMessage({ ok: true, seen: seen.length, grad });
    } else if (msg.kind === 'throw') native.throwForTest(msg.which);
    else if (msg.kind === 'exit') process.exit(0);
  } catch (err) {
    parentPort.postMessage({
      ok: false,
      ownClass: err instanceof WorkerTorchError,
      name: err.name,
      code: err.code,
      message: err.message,
    });
  }
});
parentPort.postMessage({ ok: true, ready: true, live: native.liveCount() });
