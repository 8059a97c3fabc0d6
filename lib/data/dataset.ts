/**
 * Datasets held as whole tensors, as torch.utils.data.TensorDataset: sample i is row i of every tensor. Keeping the
 * data as a few big tensors (not one object per sample) is what lets the DataLoader build a batch with one
 * indexSelect per tensor.
 */
import { Tensor } from '../tensor.js';
import { is, typeError } from '../errors.js';

/**
 * Wraps tensors that share their first dimension. `get(i)` returns row i of each (new views: the caller disposes
 * them). The dataset does not copy its tensors; `dispose()` frees them.
 *
 *   const ds = new data.TensorDataset(x, y);   // x [N, ...], y [N]
 *   const [xi, yi] = ds.get(0);
 */
export class TensorDataset<T extends Tensor[] = Tensor[]> {
  readonly tensors: T;

  constructor(...tensors: T) {
    if (tensors.length === 0) throw new TypeError('TensorDataset needs at least one tensor');
    tensors.forEach((t, k) => {
      if (!(t instanceof Tensor)) throw typeError('a Tensor', `tensors[${k}]`, t);
      if (t.ndim === 0)
        throw new RangeError(`TensorDataset: tensors[${k}] is 0-d; every tensor needs a first (sample) dimension`);
    });
    const n = tensors[0]!.shape[0]!;
    tensors.forEach((t, k) => {
      if (t.shape[0] !== n)
        throw new RangeError(
          `Size mismatch between tensors: tensors[0] has ${n} samples but tensors[${k}] has ${t.shape[0]}`,
        );
    });
    this.tensors = tensors;
  }

  /** Number of samples. */
  get length(): number {
    return this.tensors[0]!.shape[0]!;
  }

  /** Row `index` (negative counts from the end) of every tensor, as new views the caller disposes. */
  get(index: number): T {
    const n = this.length;
    is.integer(index, 'index');
    if (index < -n || index >= n) throw new RangeError(`index ${index} is out of range for a dataset of ${n} samples`);
    return this.tensors.map((t) => t.select(0, index)) as T;
  }

  /** Frees the tensors this dataset holds. */
  dispose(): void {
    for (const t of this.tensors) t.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/**
 * An image classification dataset as the readers return it: `images` float32 [N, C, H, W] in [0, 1] (as
 * torchvision's ToTensor), `labels` int64 [N], and the class names. Its tensors are exempt from tidy() scopes
 * (a dataset outlives training steps); free them with `dispose()`.
 */
export class ImageDataset extends TensorDataset<[Tensor, Tensor]> {
  readonly classes: readonly string[];

  constructor(images: Tensor, labels: Tensor, classes: readonly string[]) {
    super(images, labels);
    this.classes = classes;
  }
  get images(): Tensor {
    return this.tensors[0];
  }
  get labels(): Tensor {
    return this.tensors[1];
  }
}
