// One rank of a test/distributed.test.ts scenario: `node dist-worker.mjs <scenario> [args]`, with RANK,
// WORLD_SIZE, MASTER_ADDR, MASTER_PORT set (by the test or by `tensornormal run`) and TN_LIB naming the transpiled
// library (test/support/transpile-lib.ts). Prints one JSON line per result: {"rank": r, ...}.
import { pathToFileURL } from 'node:url';

const torch = await import(pathToFileURL(process.env.TN_LIB).href);
const { distributed: dist } = torch;
const [scenario, ...args] = process.argv.slice(2);
const out = (o) => process.stdout.write(JSON.stringify({ rank: Number(process.env.RANK), ...o }) + '\n');
const timeout = Number(process.env.TN_TIMEOUT ?? 20000);

const scenarios = {
  // Every collective for every dtype: rank r contributes v_r[i] = (r + 1) * (i + 1) (+ an offset for max/min).
  async collectives() {
    await dist.initProcessGroup({ timeout });
    const rank = dist.getRank(), W = dist.getWorldSize();
    const live0 = torch.liveTensors();
    const bytes0 = dist.bytesCommunicated();
    const res = {};
    const vals = (dtype, f) => torch.tensor([0, 1, 2, 3].map((i) => f(i)), { dtype });
    for (const dtype of torch.DTYPES) {
      const small = dtype === 'bool' ? (i) => (rank + i) % 2 : dtype === 'uint8' || dtype === 'int8' ? (i) => (rank + 1) + i : (i) => (rank + 1) * (i + 1);
      const r = {};
      for (const op of ['sum', 'max', 'min', 'product', ...(['float32', 'float64', 'float16', 'bfloat16'].includes(dtype) ? ['avg'] : [])]) {
        const t = vals(dtype, (i) => (op === 'max' || op === 'min' ? (dtype === 'bool' ? small(i) : ((rank * 7 + i * 3) % 5)) : small(i)));
        await dist.allReduce(t, op);
        r[op] = Array.from(t.toArray(), Number);
        t.dispose();
      }
      const b = vals(dtype, (i) => (dtype === 'bool' ? (rank === 1 ? 1 : 0) : rank * 10 + i));
      await dist.broadcast(b, 1);
      r.broadcast = Array.from(b.toArray(), Number);
      b.dispose();
      const g = vals(dtype, (i) => (dtype === 'bool' ? rank % 2 : rank + i));
      const list = Array.from({ length: W }, () => torch.zerosLike(g));
      await dist.allGather(list, g);
      r.allGather = list.map((x) => Array.from(x.toArray(), Number));
      for (const x of [g, ...list]) x.dispose();
      const inputs = Array.from({ length: W }, (_, k) => vals(dtype, (i) => (dtype === 'bool' ? (rank === k ? 1 : 0) : (k + 1) * (i + 1) + rank)));
      const o = torch.zeros([4], { dtype });
      await dist.reduceScatter(o, inputs, 'sum');
      r.reduceScatter = Array.from(o.toArray(), Number);
      for (const x of [o, ...inputs]) x.dispose();
      res[dtype] = r;
    }
    // a big tensor (several MB): chunked transfer, then the event loop stays free while it runs
    const big = torch.full([1 << 20], rank + 1, { dtype: 'float64' });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const p = dist.allReduce(big, 'sum');
    await p;
    clearInterval(timer);
    res.big = torch.tidy(() => ({ min: big.min().item(), max: big.max().item() }));
    big.dispose();
    await dist.barrier();
    res.bytes = dist.bytesCommunicated() - bytes0;
    res.leaked = torch.liveTensors() - live0;
    out({ res, W, ticks });
    await dist.destroyProcessGroup();
  },

  // Rank KILL_RANK SIGKILLs itself in the middle of a run of all-reduces; the others report what they got.
  async kill() {
    await dist.initProcessGroup({ timeout });
    const rank = dist.getRank();
    const killRank = Number(args[0] ?? 1);
    const t = torch.ones([1 << 16], { dtype: 'float32' });
    const t0 = Date.now();
    try {
      for (let step = 0; step < 1000; step++) {
        if (rank === killRank && step === 5) process.kill(process.pid, 'SIGKILL');
        await dist.allReduce(t, 'avg');
      }
      out({ error: null });
    } catch (e) {
      out({ error: { name: e.name, code: e.code, message: e.message, isTorchError: e instanceof torch.TorchError }, ms: Date.now() - t0 });
    }
    // the group is broken: later collectives fail too, and leaving the process is clean
    try {
      await dist.barrier();
      out({ after: 'ok' });
    } catch (e) {
      out({ after: e.code });
    }
    process.exitCode = 0;
  },

  // Rank SILENT_RANK stops calling collectives (alive, sockets open): the others time out.
  async silent() {
    await dist.initProcessGroup({ timeout });
    const rank = dist.getRank();
    const t = torch.ones([4]);
    if (rank === Number(args[0] ?? 1)) {
      await new Promise((r) => setTimeout(r, timeout + 5000));
      out({ silent: true });
      process.exit(0);
    }
    const t0 = Date.now();
    try {
      await dist.allReduce(t, 'sum');
      out({ error: null });
    } catch (e) {
      out({ error: { code: e.code, message: e.message }, ms: Date.now() - t0 });
    }
    process.exit(0);
  },

  // For the launcher: prints, and fails with status FAIL_STATUS on rank FAIL_RANK.
  async launcher() {
    const env = ['RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT', 'OMP_NUM_THREADS'];
    out({ env: Object.fromEntries(env.map((k) => [k, process.env[k]])) });
    process.stderr.write(`stderr line from ${process.env.RANK}\n`);
    if (args[0] !== undefined) {
      await dist.initProcessGroup({ timeout });
      const t = torch.ones([2]);
      await dist.allReduce(t);
      out({ sum: Array.from(t.toArray()) });
      if (args[0] === 'none') return await dist.destroyProcessGroup();
      if (Number(process.env.RANK) === Number(args[0])) process.exit(Number(args[1]));
      // the others wait in a collective until the launcher stops them
      await dist.allReduce(t);
      await new Promise((r) => setTimeout(r, 60000));
    }
  },
};

await scenarios[scenario]();
