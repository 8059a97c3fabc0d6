/**
 * CIFAR-10 and CIFAR-100 "binary version" readers (https://www.cs.toronto.edu/~kriz/cifar.html). A record is the
 * label byte(s) followed by 3072 pixel bytes: the 1024 red values of the 32x32 image row by row, then green, then
 * blue, which is already the [3, 32, 32] layout of torchvision's ToTensor.
 */
import { existsSync } from 'node:fs';
import { readRegular } from '../fsutil.js';
import { join } from 'node:path';
import { is } from '../errors.js';
import { imageDataset, readMaybeGzip } from './files.js';
import type { ImageDataset } from './dataset.js';

const PIXELS = 3 * 32 * 32;

/** batches.meta.txt of cifar-10-batches-bin. */
export const CIFAR10_CLASSES = [
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
] as const;
/** fine_label_names.txt of cifar-100-binary. */
export const CIFAR100_FINE_CLASSES = [
  'apple',
  'aquarium_fish',
  'baby',
  'bear',
  'beaver',
  'bed',
  'bee',
  'beetle',
  'bicycle',
  'bottle',
  'bowl',
  'boy',
  'bridge',
  'bus',
  'butterfly',
  'camel',
  'can',
  'castle',
  'caterpillar',
  'cattle',
  'chair',
  'chimpanzee',
  'clock',
  'cloud',
  'cockroach',
  'couch',
  'crab',
  'crocodile',
  'cup',
  'dinosaur',
  'dolphin',
  'elephant',
  'flatfish',
  'forest',
  'fox',
  'girl',
  'hamster',
  'house',
  'kangaroo',
  'keyboard',
  'lamp',
  'lawn_mower',
  'leopard',
  'lion',
  'lizard',
  'lobster',
  'man',
  'maple_tree',
  'motorcycle',
  'mountain',
  'mouse',
  'mushroom',
  'oak_tree',
  'orange',
  'orchid',
  'otter',
  'palm_tree',
  'pear',
  'pickup_truck',
  'pine_tree',
  'plain',
  'plate',
  'poppy',
  'porcupine',
  'possum',
  'rabbit',
  'raccoon',
  'ray',
  'road',
  'rocket',
  'rose',
  'sea',
  'seal',
  'shark',
  'shrew',
  'skunk',
  'skyscraper',
  'snail',
  'snake',
  'spider',
  'squirrel',
  'streetcar',
  'sunflower',
  'sweet_pepper',
  'table',
  'tank',
  'telephone',
  'television',
  'tiger',
  'tractor',
  'train',
  'trout',
  'tulip',
  'turtle',
  'wardrobe',
  'whale',
  'willow_tree',
  'wolf',
  'woman',
  'worm',
] as const;
/** coarse_label_names.txt of cifar-100-binary. */
export const CIFAR100_COARSE_CLASSES = [
  'aquatic_mammals',
  'fish',
  'flowers',
  'food_containers',
  'fruit_and_vegetables',
  'household_electrical_devices',
  'household_furniture',
  'insects',
  'large_carnivores',
  'large_man-made_outdoor_things',
  'large_natural_outdoor_scenes',
  'large_omnivores_and_herbivores',
  'medium_mammals',
  'non-insect_invertebrates',
  'people',
  'reptiles',
  'small_mammals',
  'trees',
  'vehicles_1',
  'vehicles_2',
] as const;

/** Options of data.cifar10 / cifar100: the folder holding the extracted archive (`root`), and the split. */
export interface CifarOptions {
  /** The cifar-10-batches-bin (or cifar-100-binary) folder, or the folder that contains it. */
  root: string;
  split?: 'train' | 'test';
}

/** The most a (gzipped) CIFAR file may inflate to: 256 MiB, above the 60,000 records of CIFAR-100's train file (184 MB). */
const MAX_CIFAR_FILE = 256 * 2 ** 20;

/** `root` itself when it holds the files, else its standard sub-folder. */
function folder(root: string, sub: string, probe: string, reader: string): string {
  if (existsSync(join(root, probe))) return root;
  if (existsSync(join(root, sub, probe))) return join(root, sub);
  throw new Error(
    `${reader}: ${probe} is in neither ${root} nor ${join(root, sub)} (download and unpack the binary version from https://www.cs.toronto.edu/~kriz/cifar.html)`,
  );
}

/** Class names from the archive's text file when it has the expected count, else the published list. */
function classNames(file: string, fallback: readonly string[]): readonly string[] {
  if (!existsSync(file)) return fallback;
  const names = readRegular(file, 'cifar')
    .toString('utf8')
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
  return names.length === fallback.length ? names : fallback;
}

/**
 * Splits concatenated files of fixed-size records into pixels [N, 3, 32, 32] and one label array per label byte.
 * A file that is empty or not a whole number of records is an Error naming it.
 */
function readRecords(
  files: string[],
  labelBytes: number,
  reader: string,
): { pixels: Uint8Array; labels: Uint8Array[]; starts: number[] } {
  const record = labelBytes + PIXELS;
  const bufs = files.map((f) => {
    const b = readMaybeGzip(f, reader, MAX_CIFAR_FILE);
    if (b.length === 0) throw new Error(`${reader}: ${f} is empty`);
    if (b.length % record !== 0)
      throw new Error(
        `${reader}: ${f} is truncated or not a CIFAR binary file: its ${b.length} bytes are not a whole number of ${record}-byte records`,
      );
    return b;
  });
  const n = bufs.reduce((a, b) => a + b.length / record, 0);
  const pixels = new Uint8Array(n * PIXELS);
  const labels = Array.from({ length: labelBytes }, () => new Uint8Array(n));
  const starts: number[] = [];
  let i = 0;
  for (const b of bufs) {
    starts.push(i);
    for (let o = 0; o < b.length; o += record, i++) {
      for (let l = 0; l < labelBytes; l++) labels[l]![i] = b[o + l]!;
      pixels.set(b.subarray(o + labelBytes, o + record), i * PIXELS);
    }
  }
  return { pixels, labels, starts };
}

/** Throws when a label is not a class index, naming the file and the record it came from. */
function checkRecordLabels(
  labels: Uint8Array,
  numClasses: number,
  files: string[],
  starts: number[],
  reader: string,
  what: string,
): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! < numClasses) continue;
    let k = starts.length - 1;
    while (starts[k]! > i) k--;
    throw new Error(
      `${reader}: ${files[k]}: ${what} ${labels[i]} of record ${i - starts[k]!} is not a class index (0 to ${numClasses - 1})`,
    );
  }
}

/**
 * CIFAR-10 from the binary version (`cifar-10-batches-bin`: data_batch_1.bin ... data_batch_5.bin, test_batch.bin,
 * raw or gzipped): images float32 [N, 3, 32, 32] in [0, 1], labels int64 [N], 10 classes. N is 50,000 for 'train'
 * and 10,000 for 'test' with the published files (any whole number of records is accepted).
 *
 *   const train = data.cifar10({ root: '/data/cifar-10-batches-bin' });
 */
export function cifar10(options: CifarOptions): ImageDataset {
  const { root, split = 'train' } = options ?? ({} as CifarOptions);
  is.string(root, 'root');
  is.oneOf(split, 'split', ['train', 'test'] as const);
  const reader = 'cifar10';
  const dir = folder(root, 'cifar-10-batches-bin', split === 'train' ? 'data_batch_1.bin' : 'test_batch.bin', reader);
  const files =
    split === 'train' ? [1, 2, 3, 4, 5].map((k) => join(dir, `data_batch_${k}.bin`)) : [join(dir, 'test_batch.bin')];
  const { pixels, labels, starts } = readRecords(files, 1, reader);
  checkRecordLabels(labels[0]!, 10, files, starts, reader, 'label');
  return imageDataset(
    pixels,
    [labels[0]!.length, 3, 32, 32],
    labels[0]!,
    classNames(join(dir, 'batches.meta.txt'), CIFAR10_CLASSES),
  );
}

/**
 * CIFAR-100 from the binary version (`cifar-100-binary`: train.bin, test.bin, raw or gzipped): images float32
 * [N, 3, 32, 32] in [0, 1], labels int64 [N]. `labels: 'fine'` (default, 100 classes) or 'coarse' (20 superclasses).
 */
export function cifar100(options: CifarOptions & { labels?: 'fine' | 'coarse' }): ImageDataset {
  const { root, split = 'train', labels: which = 'fine' } = options ?? ({} as CifarOptions);
  is.string(root, 'root');
  is.oneOf(split, 'split', ['train', 'test'] as const);
  is.oneOf(which, 'labels', ['fine', 'coarse'] as const);
  const reader = 'cifar100';
  const file = `${split}.bin`;
  const dir = folder(root, 'cifar-100-binary', file, reader);
  const files = [join(dir, file)];
  const { pixels, labels, starts } = readRecords(files, 2, reader);
  // Each record starts with the coarse label, then the fine one.
  checkRecordLabels(labels[0]!, 20, files, starts, reader, 'coarse label');
  checkRecordLabels(labels[1]!, 100, files, starts, reader, 'fine label');
  const chosen = which === 'coarse' ? labels[0]! : labels[1]!;
  const classes =
    which === 'coarse'
      ? classNames(join(dir, 'coarse_label_names.txt'), CIFAR100_COARSE_CLASSES)
      : classNames(join(dir, 'fine_label_names.txt'), CIFAR100_FINE_CLASSES);
  return imageDataset(pixels, [chosen.length, 3, 32, 32], chosen, classes);
}
