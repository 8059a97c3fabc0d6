/** File helpers shared by the dataset readers: reading (gzip or raw), and turning bytes into an ImageDataset. */
import { native } from '../native.js';
import { wrap, type Tensor } from '../tensor.js';
import { dtypeCode } from '../dtype.js';
import { gunzipCapped, readRegular } from '../fsutil.js';
import { ImageDataset } from './dataset.js';

/**
 * Reads a whole regular file; a missing or unreadable file, or one that is not a regular file (a directory, a FIFO,
 * a device such as /dev/zero), gives an Error naming it. At most the size the file had when opened is read.
 */
export function readBytes(file: string, reader: string): Uint8Array {
  return readRegular(file, reader);
}

/** gzip streams start with 1f 8b (RFC 1952 section 2.3.1). */
export const isGzip = (b: Uint8Array): boolean => b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b;

/**
 * Returns the file's bytes, decompressed when they are gzip (detected by magic bytes, not by the name), to at most
 * `maxBytes` (a longer output is a 'gzip bomb' error naming the file).
 */
export function readMaybeGzip(file: string, reader: string, maxBytes: number): Uint8Array {
  const raw = readBytes(file, reader);
  if (!isGzip(raw)) return raw;
  return gunzipCapped(raw, maxBytes, file, reader);
}

/**
 * Builds an ImageDataset from uint8 pixels laid out [N, C, H, W] and uint8 labels: images become float32 / 255
 * exactly as torchvision's ToTensor (`img.float().div(255)`), labels int64. The tensors are kept (exempt from tidy).
 */
export function imageDataset(
  pixels: Uint8Array,
  shape: [number, number, number, number],
  labels: Uint8Array,
  classes: readonly string[],
): ImageDataset {
  const u8 = dtypeCode('uint8');
  let images: Tensor | null = null;
  let targets: Tensor | null = null;
  try {
    const bytes = wrap(native.fromBuffer(pixels, shape, u8));
    const asFloat = bytes.to('float32');
    bytes.dispose();
    images = asFloat.div(255);
    asFloat.dispose();
    const lab = wrap(native.fromBuffer(labels, [labels.length], u8));
    targets = lab.to('int64');
    lab.dispose();
  } catch (err) {
    images?.dispose();
    targets?.dispose();
    throw err;
  }
  images.keep();
  targets.keep();
  return new ImageDataset(images, targets, classes);
}

/** Throws when a label is not a class index, naming the file and the first bad sample. */
export function checkLabels(
  labels: Uint8Array,
  numClasses: number,
  file: string,
  reader: string,
  what = 'label',
): void {
  for (let i = 0; i < labels.length; i++)
    if (labels[i]! >= numClasses)
      throw new Error(
        `${reader}: ${file}: ${what} ${labels[i]} of sample ${i} is not a class index (0 to ${numClasses - 1})`,
      );
}
