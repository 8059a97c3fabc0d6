// server.ts: answers POST /predict with a digit classifier while it trains in a worker thread (job.ts). The served
// model is this thread's own copy; every snapshot the job publishes is copied into it between two requests.
//
//   npm run build:ts && npm run example:service -- [--port 3000] [--optimizer adam|tnt] [--epochs 20]
//     [--priority serve|train|0.25]             # who gets the cores (docs/service.md)
//   curl -d "{\"pixels\": [$(seq -s, 0 783 | sed 's/[0-9]*/0.5/g')]}" localhost:3000/predict
//   curl localhost:3000/status                  # training progress and the served snapshot
//   curl localhost:3000/metrics                 # Prometheus metrics (prom-client): the trainer's and the server's
//     [--logdir runs/service]                   # and TensorBoard event files of the training (docs/watching.md)
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { noGrad, tensor, tidy, train } from 'tensornormal';
import { makeModel, type JobData } from './service-job.js';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '3000' },
    optimizer: { type: 'string', default: 'adam' },
    epochs: { type: 'string', default: '20' },
    priority: { type: 'string', default: 'serve' },
    logdir: { type: 'string' },
  },
});

// One registry for the trainer's metrics (tensornormal_train_*, tensornormal_optimizer_*, and the worker's
// tensornormal_native_bytes and tensornormal_live_tensors), the server's own, and prom-client's process metrics.
// prom-client is an optional peer dependency: without it there is no /metrics.
const client = await import('prom-client').then(
  (m) => m.default,
  () => null,
);
const registry = client === null ? null : new client.Registry();
if (client !== null && registry !== null) client.collectDefaultMetrics({ register: registry });
const requests =
  client === null || registry === null
    ? null
    : new client.Histogram({
        name: 'predict_request_seconds',
        help: 'Time to answer POST /predict',
        buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
        registers: [registry],
      });
const served = makeModel();
served.eval();
const job: JobData = {
  optimizer: args.optimizer === 'tnt' ? 'tnt' : 'adam',
  epochs: Number(args.epochs),
  publishEvery: 50,
};
const priority = args.priority === 'serve' || args.priority === 'train' ? args.priority : Number(args.priority);
const trainer = train.inWorker(new URL('./service-job.js', import.meta.url), {
  workerData: job,
  serve: served,
  priority,
  ...(registry !== null ? { prometheus: { registry } } : {}),
  ...(args.logdir !== undefined ? { logDir: args.logdir } : {}),
});
let progress: unknown = null;
trainer.on('progress', (p) => (progress = p));
trainer.on('throughput', (t) => console.log(`training: ${t.stepsPerSecond.toFixed(1)} steps/s`));
trainer.done.then(
  (result) => console.log('training finished', result),
  (err: Error) => console.error('training stopped:', err.message),
);

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** The digit and the 10 class probabilities of one 784-pixel image, from the served weights. */
function classify(pixels: number[]): { digit: number; probabilities: number[] } {
  return noGrad(() =>
    tidy(() => {
      const p = served.call(tensor(pixels).reshape(1, 784)).softmax(1).reshape(10);
      return { digit: p.argmax().item(), probabilities: p.toArray() as number[] };
    }),
  );
}

const server = createServer((req, res) => {
  if (req.url === '/status') {
    const w = trainer.weights();
    return send(res, 200, {
      progress,
      snapshot: w && { version: w.version, step: w.step, ageMs: Date.now() - w.time },
    });
  }
  if (req.url === '/metrics') {
    if (registry === null) return send(res, 501, { error: '/metrics needs prom-client: npm install prom-client' });
    void registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(text);
    });
    return;
  }
  if (req.url !== '/predict' || req.method !== 'POST')
    return send(res, 404, { error: 'POST /predict, GET /status or GET /metrics' });
  const end = requests?.startTimer();
  res.on('finish', () => end?.());
  let body = '';
  req.setEncoding('utf8');
  req.on('data', (chunk: string) => (body += chunk));
  req.on('end', () => {
    let pixels: unknown;
    try {
      pixels = (JSON.parse(body) as { pixels?: unknown }).pixels;
    } catch {
      return send(res, 400, { error: 'the body is not JSON' });
    }
    if (!Array.isArray(pixels) || pixels.length !== 784 || !pixels.every((v) => typeof v === 'number'))
      return send(res, 400, { error: 'expected {"pixels": [784 numbers in [0, 1]]}' });
    send(res, 200, classify(pixels as number[]));
  });
});
server.listen(Number(args.port), () => {
  const { port } = server.address() as AddressInfo;
  console.log(`serving on http://localhost:${port} (training with ${job.optimizer} in a worker)`);
});

process.on('SIGINT', () => {
  server.close();
  void trainer.cancel('the server is shutting down').then(() => {
    served.dispose();
    process.exit(0);
  });
});
