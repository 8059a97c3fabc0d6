// TNT's native kernels against a float64 re-derivation that never matricises: G^(i) by explicit index loops,
// eq. (5) by hand, and the direction by solving with the dense Kronecker product U_1 (x) ... (x) U_k (Proposition 1).
import { describe, it, expect } from 'vitest';
import * as torch from '../lib/index.js';
import { native } from '../lib/native.js';
import { lcg, noLeak } from './support/helpers.js';
import { relErr } from './support/dense.js';
import {
  prod,
  contractionByIndex,
  movingAverage,
  normalizedFactors,
  damped,
  kronSolve,
} from './support/tnt-reference.js';

describe('TNT kernels against a dense float64 re-derivation', () => {
  // The state is packed (native/optim/tnt.cc): per full factor one d x d buffer P (A_i in the upper triangle with
  // the diagonal, H_i's strict lower triangle) and diag(H_i); both kernel paths (the BLAS's syrk/symm, libtorch ops)
  // are checked against the same re-derivation.
  const paths = native.tntBlasAvailable() ? [true, false] : [false];
  // P for a fresh factor: inverse I / damping in the upper triangle, zero statistics.
  const fresh = (d: number, damping = 1): [torch.Tensor, torch.Tensor] => [
    torch.tidy(() => torch.eye(d, { dtype: 'float64' }).mul(1 / damping)),
    torch.zeros([d], { dtype: 'float64' }),
  ];
  const unpack = (P: torch.Tensor, h: torch.Tensor): [number[], number[]] => {
    const [H, A] = native.tntUnpack(P._h, h._h).map((x) => new torch.Tensor(x));
    const out: [number[], number[]] = [H!.dataSync(), A!.dataSync()];
    torch.dispose([H, A]);
    return out;
  };

  for (const blas of paths)
    for (const shape of [[5], [6, 4], [3, 4, 5], [4, 3, 3, 3]]) {
      it(`statistics, normalised factors and direction for shape (${shape.join(', ')})${blas ? ', BLAS kernels' : ', libtorch kernels'}`, async () => {
        await noLeak(() => {
          const rnd = lcg(shape.length * 7 + shape[0]!);
          const n = prod(shape);
          const k = shape.length;
          const eps = 0.05;
          const statDecay = 0.9;
          // Reference statistics: the authors' moving average weight max(1/(t+1), 1 - decay), from zero.
          const ref: number[][][] = shape.map((d) => Array.from({ length: d }, () => new Array<number>(d).fill(0)));
          const state = shape.map((d) => fresh(d));
          const mains = state.map((x) => x[0]._h);
          const auxes = state.map((x) => x[1]._h);
          for (let t = 0; t < 4; t++) {
            const g = new Float64Array(n).map(() => rnd() * (1 + t));
            const w = Math.max(1 / (t + 1), 1 - statDecay);
            for (let i = 0; i < k; i++) ref[i] = movingAverage(ref[i]!, contractionByIndex(g, shape, i), w);
            const gt = torch.tensor(g, { shape });
            native.tntStatistics([gt._h], [shape], [mains], [auxes], w, blas);
            gt.dispose();
          }
          for (let i = 0; i < k; i++) {
            const [H, A] = unpack(state[i]![0], state[i]![1]);
            expect(relErr(H, ref[i]!.flat())).toBeLessThan(1e-12);
            // the statistics never touch the inverse in the same buffer
            expect(A).toEqual(ref[i]!.flat().map((_, j) => (j % (shape[i]! + 1) === 0 ? 1 : 0)));
          }

          // eq. (5)
          const tr = ref[0]!.reduce((s, row, a) => s + row[a]!, 0);
          const c0 = (tr / n) ** (1 / k);
          const U = normalizedFactors(ref, shape);
          for (let i = 0; i < k; i++)
            expect(U[i]!.reduce((s, row, a) => s + row[a]!, 0)).toBeCloseTo(c0 * shape[i]!, 10);
          const us = native.tntNormalizedFactors([shape], [mains], [auxes])[0]!.map((h) => new torch.Tensor(h));
          for (let i = 0; i < k; i++) expect(relErr(us[i]!.dataSync(), U[i]!.flat())).toBeLessThan(1e-12);
          torch.dispose(us);

          // direction = (U_1 + eps I) (x) ... (x) (U_k + eps I) \ vec(M)
          const report = native.tntInverses([shape], [mains], [auxes], eps, 0);
          expect(report).toMatchObject({ inverted: k, failed: 0 });
          // the inverses leave the statistics in the same buffer as they were
          for (let i = 0; i < k; i++)
            expect(relErr(unpack(state[i]![0], state[i]![1])[0], ref[i]!.flat())).toBeLessThan(1e-12);
          const m = new Float64Array(n).map(() => rnd());
          const want = kronSolve(
            U.map((Ui) => damped(Ui, eps)),
            Array.from(m),
          );
          const mt = torch.tensor(m, { shape });
          const dir = new torch.Tensor(native.tntPackedDirection(mt._h, shape, mains, auxes, blas));
          expect(relErr(dir.dataSync(), want)).toBeLessThan(1e-10);
          // and the LU path agrees
          native.tntInverses([shape], [mains], [auxes], eps, 1);
          const dirLu = new torch.Tensor(native.tntPackedDirection(mt._h, shape, mains, auxes, blas));
          expect(relErr(dirLu.dataSync(), want)).toBeLessThan(1e-10);
          torch.dispose([mt, dir, dirLu, state]);
        });
      });
    }

  it('packs and unpacks a factor exactly; float32 statistics through the BLAS match libtorch', async () => {
    await noLeak(() => {
      const rnd = lcg(5);
      const d = 7;
      const sym = (): number[][] => {
        const a = Array.from({ length: d }, () => Array.from({ length: d }, () => rnd()));
        return a.map((row, i) => row.map((v, j) => v + a[j]![i]!));
      };
      const Hm = sym(),
        Am = sym();
      const H = torch.tensor(Hm, { dtype: 'float64' }),
        A = torch.tensor(Am, { dtype: 'float64' });
      const [P, h] = fresh(d);
      native.tntPack(H._h, A._h, P._h, h._h);
      const [H2, A2] = unpack(P, h);
      expect(H2).toEqual(Hm.flat());
      expect(A2).toEqual(Am.flat());
      // float32, a (3, 40) gradient: factor 0 sees a 3 x 40 matricisation, factor 1 its transpose (both BLAS layouts)
      const g = torch.tensor(
        Array.from({ length: 120 }, () => rnd()),
        { shape: [3, 40] },
      );
      const results = paths.map((blas) => {
        const st = [3, 40].map((e) => [torch.tidy(() => torch.eye(e).mul(2)), torch.zeros([e])] as const);
        native.tntStatistics([g._h], [[3, 40]], [st.map((x) => x[0]._h)], [st.map((x) => x[1]._h)], 1, blas);
        native.tntStatistics([g._h], [[3, 40]], [st.map((x) => x[0]._h)], [st.map((x) => x[1]._h)], 0.5, blas);
        const out = st.map(([P1, h1]) =>
          torch.tidy(() => native.tntUnpack(P1._h, h1._h).map((x) => new torch.Tensor(x).dataSync() as number[])),
        );
        torch.dispose(st.flat());
        return out;
      });
      const G = Array.from({ length: 3 }, (_, i) => g.dataSync().slice(i * 40, i * 40 + 40));
      const want0 = G.flatMap((r) => G.map((q) => r.reduce((s, v, j) => s + v * q[j]!, 0)));
      for (const r of results) {
        const [H0, A0] = r[0]!,
          [H1, A1] = r[1]!;
        expect(relErr(H0!, want0)).toBeLessThan(1e-6);
        expect(A0).toEqual([2, 0, 0, 0, 2, 0, 0, 0, 2]);
        expect(A1!.filter((v) => v !== 0).length).toBe(40);
        expect(H1!.length).toBe(1600);
      }
      if (results.length === 2) expect(relErr(results[0]![1]![0]!, results[1]![1]![0]!)).toBeLessThan(1e-6);
      torch.dispose([H, A, P, h, g]);
    });
  });

  it('a diagonal factor keeps diag(G^(i)) and inverts elementwise', async () => {
    await noLeak(() => {
      const shape = [6, 4];
      const rnd = lcg(99);
      const g = new Float64Array(24).map(() => rnd());
      const [full, fullDiag] = fresh(6);
      const diag = torch.zeros([4], { dtype: 'float64' });
      const inv1 = torch.ones([4], { dtype: 'float64' });
      const gt = torch.tensor(g, { shape });
      native.tntStatistics([gt._h], [shape], [[full._h, diag._h]], [[fullDiag._h, inv1._h]], 1, true);
      const c1 = contractionByIndex(g, shape, 1);
      expect(
        relErr(
          diag.dataSync(),
          c1.map((row, a) => row[a]!),
        ),
      ).toBeLessThan(1e-14);
      expect(inv1.dataSync()).toEqual([1, 1, 1, 1]);
      native.tntInverses([shape], [[full._h, diag._h]], [[fullDiag._h, inv1._h]], 0.1, 0);
      const tr = c1.reduce((s, row, a) => s + row[a]!, 0);
      const c0 = Math.sqrt(tr / 24);
      const want = c1.map((row, a) => 1 / (row[a]! / (c0 * 6) + 0.1));
      expect(relErr(inv1.dataSync(), want)).toBeLessThan(1e-12);
      torch.dispose([full, fullDiag, diag, gt, inv1]);
    });
  });

  it('a non-finite gradient never reaches the statistics, and a failed factorisation keeps the last inverse', async () => {
    await noLeak(() => {
      // statistics [[1, 0.5], [0.5, 2]] with inverse I
      const packed = (Hm: number[][], Am: number[][]): [torch.Tensor, torch.Tensor] => {
        const [P, h] = fresh(2);
        torch.tidy(() =>
          native.tntPack(
            torch.tensor(Hm, { dtype: 'float64' })._h,
            torch.tensor(Am, { dtype: 'float64' })._h,
            P._h,
            h._h,
          ),
        );
        return [P, h];
      };
      const I2 = [
        [1, 0],
        [0, 1],
      ];
      const [P, h] = packed(
        [
          [1, 0.5],
          [0.5, 2],
        ],
        I2,
      );
      const bad = torch.tensor([NaN, 1], { dtype: 'float64' });
      const r = native.tntStatistics([bad._h], [[2]], [[P._h]], [[h._h]], 0.5, true);
      expect(r).toEqual({ updated: 0, skippedNonFinite: 1 });
      expect(unpack(P, h)).toEqual([
        [1, 0.5, 0.5, 2],
        [1, 0, 0, 1],
      ]);
      // An indefinite factor (impossible from statistics, but reachable through loadStateDict) cannot be
      // factorised even with 1000x damping: the previous inverse stays.
      // U = H / 2c0 has diagonal (745.4, -74.5): still indefinite after adding 1000 * eps = 1.
      const indefinite = packed(
        [
          [1e6, 0],
          [0, -1e5],
        ],
        I2,
      );
      const rep = native.tntInverses([[2]], [[indefinite[0]._h]], [[indefinite[1]._h]], 1e-3, 0);
      expect(rep).toMatchObject({ failed: 1, inverted: 0 });
      expect(unpack(...indefinite)[1]).toEqual([1, 0, 0, 1]);
      // a negative trace is refused outright
      const negative = packed(
        [
          [-1, 0],
          [0, -1],
        ],
        I2,
      );
      expect(native.tntInverses([[2]], [[negative[0]._h]], [[negative[1]._h]], 1e-3, 0)).toMatchObject({
        failed: 1,
        inverted: 0,
      });
      expect(unpack(...negative)[1]).toEqual([1, 0, 0, 1]);
      // a slightly indefinite factor is rescued by more damping, and says so
      const slight = packed(
        [
          [1, 0],
          [0, -0.001],
        ],
        I2,
      );
      const rep2 = native.tntInverses([[2]], [[slight[0]._h]], [[slight[1]._h]], 1e-3, 0);
      expect(rep2).toMatchObject({ failed: 0, inverted: 1, retriedDamping: 1 });
      torch.dispose([P, h, bad, indefinite, negative, slight]);
    });
  });
});
