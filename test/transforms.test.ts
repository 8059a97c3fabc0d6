import { describe, it, expect, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import * as torch from '../lib/index.js';
import { data, Tensor } from '../lib/index.js';
import { expectClose, noLeak } from './support/helpers.js';

const T = data.transforms;
const ref = JSON.parse(readFileSync(new URL('./reference/data_reference.json', import.meta.url), 'utf8'));

/** Image batch [n, c, h, w] with x[b, ch, i, j] = f(b, ch, i, j), and the same values as nested JS arrays. */
function images(
  shape: [number, number, number, number],
  f: (b: number, ch: number, i: number, j: number) => number,
): { x: Tensor; js: number[][][][] } {
  const [n, c, h, w] = shape;
  const js = Array.from({ length: n }, (_, b) =>
    Array.from({ length: c }, (_, ch) =>
      Array.from({ length: h }, (_, i) => Array.from({ length: w }, (_, j) => f(b, ch, i, j))),
    ),
  );
  return { x: torch.tensor(js), js };
}
const flipJs = (img: number[][][]): number[][][] => img.map((ch) => ch.map((row) => row.slice().reverse()));

describe('normalize', () => {
  it('computes (x - mean[c]) / std[c] per channel', async () => {
    const { x, js } = images([2, 3, 2, 2], (b, ch, i, j) => 0.1 * b + 0.2 * ch + 0.05 * i - 0.03 * j);
    const mean = [0.5, 0.25, -0.125],
      std = [0.2, 0.5, 2];
    await noLeak(() => {
      const y = T.normalize(mean, std)(x);
      expectClose(
        y,
        js.map((img) => img.map((ch, c) => ch.map((row) => row.map((v) => (v - mean[c]!) / std[c]!)))),
        { atol: 1e-6 },
      );
      y.dispose();
      // one value for every channel
      const z = T.normalize([0.5], [0.25])(x);
      expectClose(
        z,
        js.map((img) => img.map((ch) => ch.map((row) => row.map((v) => (v - 0.5) / 0.25)))),
        { atol: 1e-6 },
      );
      z.dispose();
    });
    expect(x.isDisposed).toBe(false);
    x.dispose();
  });
  it('rejects bad arguments', () => {
    expect(() => T.normalize([0.5, 0.5], [1])).toThrow('normalize: mean has 2 values but std has 1');
    expect(() => T.normalize([0.5], [0])).toThrow('Expected positive numbers for std but received [0] of type array');
    expect(() => T.normalize([], [])).toThrow(
      'Expected a non-empty array of finite numbers for mean but received [] of type array',
    );
    expect(() => T.normalize([0], [NaN])).toThrow(
      'Expected a non-empty array of finite numbers for std but received [null] of type array',
    );
    const x = torch.zeros(1, 3, 2, 2);
    expect(() => T.normalize([0, 0], [1, 1])(x)).toThrow('normalize: 2 mean/std values for images with 3 channels');
    const v = torch.zeros(3, 2, 2);
    expect(() => T.normalize([0], [1])(v)).toThrow(
      'normalize: expected a batch of images [N, C, H, W] but got shape [3, 2, 2]',
    );
    torch.dispose([x, v]);
  });
});

describe('randomHorizontalFlip', () => {
  const { x, js } = images([4, 2, 2, 3], (b, ch, i, j) => 100 * b + 10 * ch + 3 * i + j);
  afterAll(() => x.dispose());
  it('flips every image with p = 1 and none with p = 0', async () => {
    await noLeak(() => {
      const all = T.randomHorizontalFlip(1)(x);
      expectClose(all, js.map(flipJs), { atol: 0 });
      const none = T.randomHorizontalFlip(0)(x);
      expectClose(none, js, { atol: 0 });
      torch.dispose([all, none]);
    });
  });
  it('flips image i when the i-th draw of rand([N]) is below p, so manualSeed reproduces it', async () => {
    await noLeak(() => {
      for (const seed of [0, 1, 2, 3, 4, 5]) {
        torch.manualSeed(seed);
        const draws = torch.tidy(() => torch.rand([4]).dataSync());
        torch.manualSeed(seed);
        const y = T.randomHorizontalFlip(0.5)(x);
        expectClose(
          y,
          js.map((img, b) => (draws[b]! < 0.5 ? flipJs(img) : img)),
          { atol: 0 },
        );
        y.dispose();
      }
    });
  });
  it('rejects p outside [0, 1]', () => {
    expect(() => T.randomHorizontalFlip(1.5)).toThrow(
      'Expected a number in [0, 1] for p but received 1.5 of type number',
    );
  });
});

describe('randomCrop', () => {
  /** The crop of a constant-padded image at (top, left), computed in JS. */
  function cropJs(
    img: number[][][],
    pads: [number, number, number, number],
    fill: number,
    top: number,
    left: number,
    th: number,
    tw: number,
  ): number[][][] {
    const [l, t] = pads;
    return img.map((ch) =>
      Array.from({ length: th }, (_, i) =>
        Array.from({ length: tw }, (_, j) => {
          const r = top + i - t,
            c = left + j - l;
          return r >= 0 && r < ch.length && c >= 0 && c < ch[0]!.length ? ch[r]![c]! : fill;
        }),
      ),
    );
  }
  it('crops each image at the drawn offsets of the padded image (tops first, then lefts)', async () => {
    const { x, js } = images([6, 2, 4, 5], (b, ch, i, j) => 1 + 100 * b + 20 * ch + 5 * i + j);
    const cases: {
      size: number | [number, number];
      padding: number | number[];
      fill: number;
      pads: [number, number, number, number];
    }[] = [
      { size: 4, padding: 2, fill: 0, pads: [2, 2, 2, 2] },
      { size: [3, 6], padding: [1, 2], fill: -1, pads: [1, 2, 1, 2] }, // [leftRight, topBottom]
      { size: [5, 4], padding: [1, 2, 3, 0], fill: 0.5, pads: [1, 2, 3, 0] }, // [left, top, right, bottom]
      { size: [4, 5], padding: 0, fill: 0, pads: [0, 0, 0, 0] }, // the whole image: nothing to draw
    ];
    await noLeak(() => {
      for (const { size, padding, fill, pads } of cases) {
        const [th, tw] = typeof size === 'number' ? [size, size] : size;
        const ph = 4 + pads[1] + pads[3],
          pw = 5 + pads[0] + pads[2];
        torch.manualSeed(11);
        const tops =
          ph - th + 1 > 1 ? torch.tidy(() => torch.randint(0, ph - th + 1, [6]).dataSync()) : [0, 0, 0, 0, 0, 0];
        const lefts =
          pw - tw + 1 > 1 ? torch.tidy(() => torch.randint(0, pw - tw + 1, [6]).dataSync()) : [0, 0, 0, 0, 0, 0];
        torch.manualSeed(11);
        const y = T.randomCrop(size, { padding, fill })(x);
        expect(y.shape).toEqual([6, 2, th, tw]);
        expectClose(
          y,
          js.map((img, b) => cropJs(img, pads, fill, tops[b]!, lefts[b]!, th, tw)),
          { atol: 0 },
        );
        y.dispose();
      }
    });
    x.dispose();
  });
  it('reaches every offset, padding included', () => {
    const x = torch.ones(400, 1, 2, 2);
    torch.manualSeed(5);
    const y = T.randomCrop(2, { padding: 1 })(x);
    // the position of the image inside each crop tells the offset: sum of the crop's ones is 1, 2 or 4
    const sums = torch.tidy(() => y.sum([1, 2, 3]).dataSync());
    const hist = new Map<number, number>();
    for (const s of sums) hist.set(s, (hist.get(s) ?? 0) + 1);
    // 9 offsets in a 4x4 padded image: 4 corners see one pixel, 4 edges two, the centre all four
    expect([...hist.keys()].sort()).toEqual([1, 2, 4]);
    for (const [s, k] of [
      [1, 4],
      [2, 4],
      [4, 1],
    ] as const)
      expect(Math.abs(hist.get(s)! / 400 - k / 9)).toBeLessThan(0.1);
    torch.dispose([x, y]);
  });
  it('rejects bad arguments', () => {
    const x = torch.zeros(1, 1, 4, 4);
    expect(() => T.randomCrop(5)(x)).toThrow(
      'randomCrop: required crop size [5, 5] is larger than the padded image size [4, 4]',
    );
    expect(() => T.randomCrop(0)).toThrow(
      'Expected a positive integer or [height, width] for size but received 0 of type number',
    );
    expect(() => T.randomCrop(3, { padding: -1 })).toThrow(
      'Expected a non-negative integer, [leftRight, topBottom] or [left, top, right, bottom] for padding but received -1 of type number',
    );
    expect(() => T.randomCrop(3, { padding: [1, 2, 3] })).toThrow('for padding but received [1,2,3] of type array');
    x.dispose();
  });
});

describe('resize', () => {
  /** The reference script's input: ((31 i + 17 j + 7 n + 13 c) mod 256) / 255 in float32. */
  const pattern = (shape: [number, number, number, number]): Tensor =>
    images(shape, (n, c, i, j) => Math.fround(((31 * i + 17 * j + 7 * n + 13 * c) % 256) / 255)).x;
  it('matches torch.nn.functional.interpolate(bilinear, antialias=True), torchvision Resize on tensors', async () => {
    await noLeak(() => {
      for (const c of ref.resize as {
        input: [number, number, number, number];
        size: [number, number];
        shape: number[];
        values: number[];
      }[]) {
        const x = pattern(c.input);
        const y = T.resize(c.size)(x);
        expect(y.shape).toEqual(c.shape);
        expectClose(y, Float64Array.from(c.values), { atol: 2e-6, rtol: 0 });
        torch.dispose([x, y]);
      }
    });
  });
  it('with a number scales the smaller edge to it and keeps the aspect ratio', async () => {
    await noLeak(() => {
      const c = ref.resize[1];
      const x = pattern(c.input);
      const y = T.resize(16)(x); // 28x32 -> 16x18 (18 = floor(16 * 32 / 28))
      expect(y.shape).toEqual([1, 3, 16, 18]);
      expectClose(y, Float64Array.from(c.values), { atol: 2e-6, rtol: 0 });
      const t = torch.zeros(2, 1, 32, 28);
      const u = T.resize(16)(t);
      expect(u.shape).toEqual([2, 1, 18, 16]);
      // 28x28 Fashion-MNIST to 16x16
      const f = torch.zeros(3, 1, 28, 28);
      const g = T.resize(16)(f);
      expect(g.shape).toEqual([3, 1, 16, 16]);
      torch.dispose([x, y, t, u, f, g]);
    });
  });
  it('rejects bad sizes', () => {
    expect(() => T.resize(0)).toThrow('Expected a positive integer for size but received 0 of type number');
    expect(() => T.resize([16])).toThrow(
      'Expected a positive integer or [height, width] for size but received [16] of type array',
    );
  });
});

describe('compose', () => {
  it('applies transforms in order and frees the intermediate results', async () => {
    const { x, js } = images([2, 1, 2, 3], (b, _c, i, j) => b + 0.25 * i + 0.125 * j);
    await noLeak(() => {
      const t = T.compose(T.normalize([0.5], [0.5]), T.randomHorizontalFlip(1));
      const y = t(x);
      expectClose(
        y,
        js.map((img) => flipJs(img.map((ch) => ch.map((row) => row.map((v) => (v - 0.5) / 0.5))))),
        { atol: 1e-6 },
      );
      y.dispose();
      // an empty composition still returns a new tensor
      const z = T.compose()(x);
      expect(z).not.toBe(x);
      z.dispose();
      // a failing step frees what came before it
      expect(() => T.compose(T.normalize([0], [1]), T.randomCrop(9))(x)).toThrow(
        'randomCrop: required crop size [9, 9] is larger than the padded image size [2, 3]',
      );
    });
    expect(() => T.compose(T.normalize([0], [1]), 'flip' as unknown as data.transforms.Transform)).toThrow(
      'Expected a function for transforms[1] but received "flip" of type string',
    );
    x.dispose();
  });
});
