// The native boundary's op tables (native/opcodes.h, lib/opcodes.ts): the addon's tables equal the typed ones, a
// table that differs is refused with the entries that differ, and a code outside a table is an error, not a
// silently different op.
import { describe, it, expect, expectTypeOf } from 'vitest';
import * as torch from '../lib/index.js';
import { TorchError } from '../lib/index.js';
import { native } from '../lib/native.js';
import {
  BINARY,
  FACTORY,
  INTERPOLATE,
  LOSS_REDUCTION,
  OPCODES,
  REDUCE,
  UNARY,
  UNARY_INPLACE,
  checkOpcodes,
  type BinaryOp,
  type FactoryKind,
  type LossReduction,
  type UnaryOp,
} from '../lib/opcodes.js';
import { noLeak } from './support/helpers.js';

/** A deep copy of the TypeScript tables to doctor. */
function copy(): Record<string, Record<string, number>> {
  return JSON.parse(JSON.stringify(OPCODES)) as Record<string, Record<string, number>>;
}

const PREFIX =
  "tensornormal: the native addon's op tables differ from lib/opcodes.ts (an addon built from another revision? rebuild it with `npm run build:native`): ";

describe('op tables', () => {
  it("the addon's tables are lib/opcodes.ts's, name for name and code for code", () => {
    expect(native.opcodes()).toEqual(OPCODES);
    // spot checks against the order of native/opcodes.h's lists (a code is its position)
    expect([UNARY.neg, UNARY.expm1, UNARY.selu]).toEqual([0, 14, 40]);
    expect([BINARY.remainder, BINARY.fmod, BINARY.floorDivide, BINARY.kron]).toEqual([14, 15, 19, 35]);
    expect([UNARY_INPLACE.zero_, REDUCE.countNonzero, FACTORY.eye]).toEqual([0, 9, 8]);
    expect(LOSS_REDUCTION).toEqual({ none: 0, mean: 1, sum: 2 });
    expect(INTERPOLATE).toEqual({ nearest: 0, bilinear: 1, bilinearAntialias: 2 });
    // every family's codes are 0..n-1, each once
    for (const [family, table] of Object.entries(OPCODES))
      expect(
        Object.values(table).sort((a, b) => a - b),
        family,
      ).toEqual([...Object.keys(table).keys()]);
    expect(() => checkOpcodes(native.opcodes())).not.toThrow();
  });

  it('a table that differs is refused, naming every entry that differs', () => {
    const swapped = copy();
    swapped.unary!.exp = 3;
    swapped.unary!.log = 2;
    expect(() => checkOpcodes(swapped)).toThrow(
      PREFIX +
        'unary.exp is 3 in the addon but 2 in lib/opcodes.ts; unary.log is 2 in the addon but 3 in lib/opcodes.ts',
    );

    const renamed = copy();
    delete renamed.binary!.kron;
    renamed.binary!.kronecker = 35;
    expect(() => checkOpcodes(renamed)).toThrow(
      PREFIX + 'binary.kron is missing from the addon; binary.kronecker (35) is in the addon but not in lib/opcodes.ts',
    );

    const families = copy();
    delete families.reduction;
    families.extra = { a: 0 };
    expect(() => checkOpcodes(families)).toThrow(
      PREFIX + 'family reduction is missing from the addon; family extra is in the addon but not in lib/opcodes.ts',
    );

    const stringCode = copy();
    (stringCode.factory as Record<string, unknown>).zeros = '0';
    expect(() => checkOpcodes(stringCode)).toThrow(
      PREFIX + 'factory.zeros is "0" in the addon but 0 in lib/opcodes.ts',
    );

    expect(() => checkOpcodes(null)).toThrow(PREFIX + "the addon's op tables are null, not an object");
    expect(() => checkOpcodes(copy(), { unary: { neg: 0 } })).toThrow(
      /unary\.abs \(1\) is in the addon but not in lib\/opcodes\.ts/,
    );
  });

  it('op names are types: a typo does not compile', () => {
    expectTypeOf<'exp'>().toMatchTypeOf<UnaryOp>();
    expectTypeOf<'exq'>().not.toMatchTypeOf<UnaryOp>();
    expectTypeOf<'floorDivide'>().toMatchTypeOf<BinaryOp>();
    expectTypeOf<'randint'>().toMatchTypeOf<FactoryKind>();
    expectTypeOf<LossReduction>().toEqualTypeOf<'none' | 'mean' | 'sum'>();
    expectTypeOf<typeof UNARY.exp>().toEqualTypeOf<2>();
    expectTypeOf<Parameters<typeof native.factory>[0]>().toEqualTypeOf<0 | 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8>();
    // @ts-expect-error: no such unary op
    void UNARY.exq;
    // @ts-expect-error: factory takes a code of the factory table, no longer a string
    expect(() => native.factory('zeros', [2], 0, null)).toThrow(TypeError);
  });

  it('a code outside its table is an error naming the family, not another op', async () => {
    await noLeak(() => {
      const x = torch.tensor([1, 2], { dtype: 'float64' });
      const thrown = (f: () => unknown): Error => {
        try {
          f();
        } catch (e) {
          return e as Error;
        }
        throw new Error('did not throw');
      };
      const cases: [() => unknown, string][] = [
        [() => native.unary(41 as never, x._h), 'unknown unary code 41'],
        [() => native.unary(-1 as never, x._h), 'unknown unary code -1'],
        [() => native.unary_(14 as never, x._h), 'unknown unaryInplace code 14'],
        [() => native.binary(36 as never, x._h, x._h), 'unknown binary code 36'],
        [() => native.binaryScalar(99 as never, x._h, 2), 'unknown binary code 99'],
        [() => native.reduce(10 as never, x._h, null, false), 'unknown reduce code 10'],
        [() => native.factory(9 as never, [2], 0, null), 'unknown factory code 9'],
        // before the table, any reduction but 0 and 2 silently meant 'mean'
        [() => native.mseLoss(x._h, x._h, 3 as never), 'unknown reduction code 3'],
        // before the table, any mode but 0 and 1 silently meant antialiased bilinear
        [() => native.interpolate(x._h, [2, 2], 3 as never, false), 'unknown interpolate code 3'],
        // before the tables, TNT's method was 'LU if 1, else Cholesky' (any other number meant Cholesky)
        [() => native.tntInverses([], [], [], 0.1, 2 as never), 'unknown inverseMethod code 2'],
        [() => native.shampooRoots([], [], [], 1e-4, 2 as never), 'unknown rootMethod code 2'],
        // the scalar and in-place forms refuse, by name, the ops of the binary table they lack
        [() => native.binaryScalar(BINARY.matmul, x._h, 2), 'op matmul does not take a scalar'],
        [() => native.binary_(BINARY.eq, x._h, x._h), 'op eq has no in-place form'],
        [() => native.binaryScalar_(BINARY.kron, x._h, 2), 'op kron has no in-place scalar form'],
      ];
      for (const [f, message] of cases) {
        const e = thrown(f);
        expect(e, message).toBeInstanceOf(TorchError);
        expect(e.message, message).toBe(message);
      }
      // the table's names reach the integer-division guard (remainder, fmod, floorDivide)
      const lo = torch.tensor([-(2 ** 31)], { dtype: 'int32' });
      expect(() => native.binaryScalar(BINARY.fmod, lo._h, -1)).toThrow(
        'fmod: integer overflow: the smallest Int value (-2147483648) divided by -1 does not fit in Int',
      );
      // each loss reduction by name gives its own result: none keeps the elements, sum and mean reduce them
      const y = torch.tensor([0, 0], { dtype: 'float64' });
      torch.tidy(() => {
        expect(Array.from(torch.nn.functional.mseLoss(x, y, { reduction: 'none' }).dataSync())).toEqual([1, 4]);
        expect(torch.nn.functional.mseLoss(x, y, { reduction: 'sum' }).item()).toBe(5);
        expect(torch.nn.functional.mseLoss(x, y, { reduction: 'mean' }).item()).toBe(2.5);
      });
      torch.dispose([x, lo, y]);
    });
  });
});
