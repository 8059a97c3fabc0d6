// NCCL smoke check for scripts/gpu-check.sh: a one-rank NCCL group (and a one-rank Gloo group) all-reduce and
// broadcast CUDA / CPU tensors. Prints what the build supports; exits 1 when a supported backend fails.
import { createServer } from 'node:net';

const torch = await import(new URL('../dist/index.js', import.meta.url).href);
const { distributed: dist } = torch;
const port = () =>
  new Promise((r) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => r(p));
    });
  });
console.log('distributed available:', dist.isAvailable(), 'nccl:', dist.isNcclAvailable());
let failed = false;
for (const backend of ['gloo', 'nccl']) {
  if (!dist.isAvailable() || (backend === 'nccl' && (!dist.isNcclAvailable() || !torch.cuda.isAvailable()))) continue;
  try {
    await dist.initProcessGroup({
      backend,
      initMethod: `tcp://127.0.0.1:${await port()}`,
      rank: 0,
      worldSize: 1,
      timeout: 60_000,
    });
    const t = torch.tensor([1.5, -2, 3]).to(backend === 'nccl' ? 'cuda' : 'cpu');
    await dist.allReduce(t, 'sum');
    await dist.broadcast(t, 0);
    const back = t.to('cpu').toArray();
    const ok = JSON.stringify(back) === JSON.stringify([1.5, -2, 3]);
    console.log(`${backend}: allReduce/broadcast on ${t.device}: ${ok ? 'ok' : `WRONG ${JSON.stringify(back)}`}`);
    failed ||= !ok;
    await dist.destroyProcessGroup();
  } catch (e) {
    console.log(`${backend}: FAILED ${e.code ?? ''} ${e.message}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
