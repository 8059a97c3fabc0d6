/**
 * Image transforms on batches, as torchvision.transforms on tensors but applied to a whole batch [N, C, H, W] at
 * once (the DataLoader's `transform`). Random transforms draw from libtorch's generator, so `manualSeed()` makes
 * them reproducible, and each image of the batch gets its own draw. A transform returns a new tensor and never
 * disposes its input.
 */
import { Tensor } from '../tensor.js';
import { is, typeError, rangeError } from '../errors.js';
import { tidy } from '../scope.js';
import { tensor, arange, rand, randint, zeros } from '../creation.js';
import { where } from '../ops.js';
import { interpolate, pad } from '../nn/functional.js';

/** A batch transform: images [N, C, H, W] in, images out. */
export type Transform = (images: Tensor) => Tensor;

function images(x: unknown, who: string): [number, number, number, number] {
  if (!(x instanceof Tensor)) throw typeError('a Tensor', 'images', x);
  if (x.ndim !== 4)
    throw new RangeError(`${who}: expected a batch of images [N, C, H, W] but got shape [${x.shape.join(', ')}]`);
  return x.shape as [number, number, number, number];
}

/**
 * Per-channel standardisation, (x - mean[c]) / std[c], as torchvision's Normalize. One value per channel (or one
 * for all channels).
 *
 *   data.transforms.normalize([0.2860], [0.3530])   // Fashion-MNIST's training-set mean and std
 */
export function normalize(mean: number[], std: number[]): Transform {
  if (!Array.isArray(mean) || mean.length === 0 || mean.some((v) => typeof v !== 'number' || !Number.isFinite(v)))
    throw typeError('a non-empty array of finite numbers', 'mean', mean);
  if (!Array.isArray(std) || std.length === 0 || std.some((v) => typeof v !== 'number' || !Number.isFinite(v)))
    throw typeError('a non-empty array of finite numbers', 'std', std);
  if (std.some((v) => v <= 0)) throw rangeError('positive numbers', 'std', std);
  if (mean.length !== std.length)
    throw new RangeError(`normalize: mean has ${mean.length} values but std has ${std.length}`);
  const m = mean.slice(),
    s = std.slice();
  return (x: Tensor): Tensor => {
    const [, c] = images(x, 'normalize');
    if (m.length !== 1 && m.length !== c)
      throw new RangeError(`normalize: ${m.length} mean/std values for images with ${c} channels`);
    return tidy(() => {
      const opts = { dtype: x.dtype, device: x.device, shape: [1, m.length, 1, 1] };
      return x.sub(tensor(m, opts)).div(tensor(s, opts));
    });
  };
}

/**
 * Flips each image left-right with probability `p` (default 0.5), as torchvision's RandomHorizontalFlip: draws
 * `rand([N]) < p` from libtorch's generator, one draw per image.
 */
export function randomHorizontalFlip(p = 0.5): Transform {
  is.inRange(p, 'p', 0, 1);
  return (x: Tensor): Tensor => {
    const [n] = images(x, 'randomHorizontalFlip');
    return tidy(() => {
      const flip = rand([n], { device: x.device }).lt(p).view(n, 1, 1, 1);
      return where(flip, x.flip(3), x);
    });
  };
}

/** Options of `transforms.randomCrop`: the padding added before cropping and its fill value. */
export interface RandomCropOptions {
  /**
   * Border added before cropping: one number for all sides, [leftRight, topBottom], or [left, top, right, bottom]
   * (torchvision's order). Default 0.
   */
  padding?: number | number[];
  /** Value of the padded pixels (default 0). */
  fill?: number;
}

/**
 * Crops each image at a random position to `size` (a number for a square, or [height, width]) after padding, as
 * torchvision's RandomCrop with padding_mode 'constant'. The top offsets of all N images are drawn first, as
 * `randint(0, H + padTop + padBottom - height + 1, [N])`, then the left offsets likewise.
 *
 *   data.transforms.randomCrop(32, { padding: 4 })   // the usual CIFAR augmentation
 */
export function randomCrop(size: number | number[], options: RandomCropOptions = {}): Transform {
  const { padding = 0, fill = 0 } = is.options(options);
  const [h, w] = typeof size === 'number' ? [size, size] : Array.isArray(size) && size.length === 2 ? size : [NaN, NaN];
  if (!Number.isInteger(h) || !Number.isInteger(w) || h! <= 0 || w! <= 0)
    throw typeError('a positive integer or [height, width]', 'size', size);
  const pads =
    typeof padding === 'number'
      ? [padding, padding, padding, padding]
      : Array.isArray(padding) && padding.length === 2
        ? [padding[0], padding[1], padding[0], padding[1]]
        : padding;
  if (
    !Array.isArray(pads) ||
    pads.length !== 4 ||
    pads.some((v) => typeof v !== 'number' || !Number.isInteger(v) || v < 0)
  )
    throw typeError('a non-negative integer, [leftRight, topBottom] or [left, top, right, bottom]', 'padding', padding);
  const [left, top, right, bottom] = pads as [number, number, number, number];
  is.finite(fill, 'fill');
  const th = h!,
    tw = w!;
  return (x: Tensor): Tensor => {
    const [n, c, H, W] = images(x, 'randomCrop');
    const ph = H + top + bottom,
      pw = W + left + right;
    if (th > ph || tw > pw)
      throw new RangeError(
        `randomCrop: required crop size [${th}, ${tw}] is larger than the padded image size [${ph}, ${pw}]`,
      );
    return tidy(() => {
      const padded = left + top + right + bottom > 0 ? pad(x, [left, right, top, bottom], fill) : x;
      const offsets = (range: number): Tensor =>
        range === 1 ? zeros([n], { dtype: 'int64', device: x.device }) : randint(0, range, [n], { device: x.device });
      const tops = offsets(ph - th + 1);
      const lefts = offsets(pw - tw + 1);
      // Gather rows tops[i] .. tops[i] + th - 1 of each image, then columns lefts[i] .. lefts[i] + tw - 1.
      const rows = tops
        .view(n, 1, 1, 1)
        .add(arange(th, { device: x.device }).view(1, 1, th, 1))
        .expand(n, c, th, pw);
      const band = padded.gather(2, rows);
      const cols = lefts
        .view(n, 1, 1, 1)
        .add(arange(tw, { device: x.device }).view(1, 1, 1, tw))
        .expand(n, c, th, tw);
      return band.gather(3, cols);
    });
  };
}

/**
 * Resizes images with bilinear interpolation and antialiasing, as torchvision's Resize on tensors with
 * antialias=True (which calls interpolate(mode='bilinear', align_corners=False, antialias=True)). `size` is
 * [height, width], or a number: the smaller edge becomes `size` and the other keeps the aspect ratio (rounded down,
 * as torchvision).
 *
 *   data.transforms.resize(16)   // 28x28 Fashion-MNIST -> 16x16
 */
export function resize(size: number | number[], options: { antialias?: boolean } = {}): Transform {
  const { antialias = true } = is.options(options);
  if (typeof size === 'number') is.positiveInteger(size, 'size');
  else if (
    !Array.isArray(size) ||
    size.length !== 2 ||
    size.some((v) => typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
  )
    throw typeError('a positive integer or [height, width]', 'size', size);
  is.boolean(antialias, 'antialias');
  return (x: Tensor): Tensor => {
    const [, , H, W] = images(x, 'resize');
    let out: number[];
    if (typeof size === 'number') {
      const [short, long] = H <= W ? [H, W] : [W, H];
      const newLong = Math.floor((size * long) / short);
      out = H <= W ? [size, newLong] : [newLong, size];
    } else out = size;
    if (out[0] === H && out[1] === W) return x.clone();
    return interpolate(x, out, { mode: 'bilinear', alignCorners: false, antialias });
  };
}

/** Applies transforms in order, disposing the intermediate results. */
export function compose(...transforms: Transform[]): Transform {
  transforms.forEach((t, k) => is.function(t, `transforms[${k}]`));
  return (x: Tensor): Tensor => {
    let cur = x;
    try {
      for (const t of transforms) {
        const next = t(cur);
        if (cur !== x && next !== cur) cur.dispose();
        cur = next;
      }
    } catch (err) {
      if (cur !== x) cur.dispose();
      throw err;
    }
    return cur === x ? x.clone() : cur;
  };
}
