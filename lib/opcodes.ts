/**
 * The op tables of the native boundary, typed: the TypeScript side of native/opcodes.h. A family of ops shares one
 * native entry point (`unary`, `binary`, `reduce`, `factory`, the losses' reduction, interpolate's mode) and picks
 * its op by a code; these constants give each code its name, so `UNARY.exq` or `factory('zero', ...)` fails to
 * compile.
 *
 * The addon exports its own tables (`native.opcodes()`, generated from the X-macro lists in native/opcodes.h), and
 * lib/native.ts checks at load that they equal these, name for name and code for code: an addon built from another
 * revision fails at start-up with the entries that differ instead of running the wrong op.
 */

export const UNARY = {
  neg: 0,
  abs: 1,
  exp: 2,
  log: 3,
  sqrt: 4,
  rsqrt: 5,
  sign: 6,
  relu: 7,
  sigmoid: 8,
  tanh: 9,
  gelu: 10,
  sin: 11,
  cos: 12,
  log1p: 13,
  expm1: 14,
  square: 15,
  reciprocal: 16,
  floor: 17,
  ceil: 18,
  round: 19,
  trunc: 20,
  logicalNot: 21,
  isnan: 22,
  isfinite: 23,
  isinf: 24,
  silu: 25,
  erf: 26,
  log2: 27,
  log10: 28,
  softplus: 29,
  logSigmoid: 30,
  bitwiseNot: 31,
  frac: 32,
  tan: 33,
  asin: 34,
  acos: 35,
  atan: 36,
  sinh: 37,
  cosh: 38,
  mish: 39,
  selu: 40,
} as const;

export const UNARY_INPLACE = {
  zero_: 0,
  neg_: 1,
  abs_: 2,
  exp_: 3,
  log_: 4,
  sqrt_: 5,
  relu_: 6,
  sigmoid_: 7,
  tanh_: 8,
  sign_: 9,
  reciprocal_: 10,
  square_: 11,
  floor_: 12,
  round_: 13,
} as const;

/** Also the codes of `binaryScalar`, `binary_` and `binaryScalar_`, which refuse the ops they lack by name. */
export const BINARY = {
  add: 0,
  sub: 1,
  mul: 2,
  div: 3,
  pow: 4,
  maximum: 5,
  minimum: 6,
  eq: 7,
  ne: 8,
  lt: 9,
  le: 10,
  gt: 11,
  ge: 12,
  atan2: 13,
  remainder: 14,
  fmod: 15,
  logicalAnd: 16,
  logicalOr: 17,
  logicalXor: 18,
  floorDivide: 19,
  matmul: 20,
  mm: 21,
  bmm: 22,
  outer: 23,
  dot: 24,
  mv: 25,
  rsub: 26,
  rdiv: 27,
  rpow: 28,
  bitwiseAnd: 29,
  bitwiseOr: 30,
  bitwiseXor: 31,
  xlogy: 32,
  hypot: 33,
  copysign: 34,
  kron: 35,
} as const;

export const REDUCE = {
  sum: 0,
  mean: 1,
  amax: 2,
  amin: 3,
  prod: 4,
  all: 5,
  any: 6,
  logsumexp: 7,
  nansum: 8,
  countNonzero: 9,
} as const;

/** `native.factory`'s kinds (torch.zeros, torch.ones, ...). */
export const FACTORY = {
  zeros: 0,
  ones: 1,
  empty: 2,
  full: 3,
  rand: 4,
  randn: 5,
  randint: 6,
  randperm: 7,
  eye: 8,
} as const;

/** A loss's `reduction` option. */
export const LOSS_REDUCTION = { none: 0, mean: 1, sum: 2 } as const;

/** nn.functional.interpolate's `mode`, with antialias as its own mode (libtorch's separate kernel). */
export const INTERPOLATE = { nearest: 0, bilinear: 1, bilinearAntialias: 2 } as const;

/** How TNT (and CurvatureSync) invert the factors: native `tntInverses`'s method. */
export const INVERSE_METHOD = { cholesky: 0, lu: 1 } as const;

/** How Shampoo takes the inverse roots: native `shampooRoots`'s method. */
export const ROOT_METHOD = { eigh: 0, newton: 1 } as const;

export type UnaryOp = keyof typeof UNARY;
export type UnaryInplaceOp = keyof typeof UNARY_INPLACE;
export type BinaryOp = keyof typeof BINARY;
export type ReduceOp = keyof typeof REDUCE;
export type FactoryKind = keyof typeof FACTORY;
export type LossReduction = keyof typeof LOSS_REDUCTION;
export type InterpolateMode = keyof typeof INTERPOLATE;

export type UnaryCode = (typeof UNARY)[UnaryOp];
export type UnaryInplaceCode = (typeof UNARY_INPLACE)[UnaryInplaceOp];
export type BinaryCode = (typeof BINARY)[BinaryOp];
export type ReduceCode = (typeof REDUCE)[ReduceOp];
export type FactoryCode = (typeof FACTORY)[FactoryKind];
export type LossReductionCode = (typeof LOSS_REDUCTION)[LossReduction];
export type InterpolateCode = (typeof INTERPOLATE)[InterpolateMode];
export type InverseMethodCode = (typeof INVERSE_METHOD)[keyof typeof INVERSE_METHOD];
export type RootMethodCode = (typeof ROOT_METHOD)[keyof typeof ROOT_METHOD];

/** Every family, under the name `native.opcodes()` gives it. */
export const OPCODES = {
  unary: UNARY,
  unaryInplace: UNARY_INPLACE,
  binary: BINARY,
  reduce: REDUCE,
  factory: FACTORY,
  reduction: LOSS_REDUCTION,
  interpolate: INTERPOLATE,
  inverseMethod: INVERSE_METHOD,
  rootMethod: ROOT_METHOD,
} as const;

/** What `native.opcodes()` returns: each family's name -> code map. */
export type OpTables = Record<string, Record<string, number>>;

/**
 * Throws unless `actual` (the addon's tables) equals `expected` (these) exactly: the same families, the same names
 * in each, the same code for each name. The error lists every entry that differs, e.g.
 * `unary.exp is 2 in the addon but 3 in lib/opcodes.ts`, `binary.kron is missing from the addon`.
 */
export function checkOpcodes(actual: unknown, expected: OpTables = OPCODES): void {
  const diffs: string[] = [];
  const show = (v: unknown): string => (typeof v === 'number' ? String(v) : (JSON.stringify(v) ?? String(v)));
  const isTable = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  if (!isTable(actual)) {
    diffs.push(`the addon's op tables are ${actual === null ? 'null' : typeof actual}, not an object`);
  } else {
    for (const family of Object.keys(expected)) {
      const ours = expected[family]!;
      const theirs = actual[family];
      if (!isTable(theirs)) {
        diffs.push(`family ${family} is missing from the addon`);
        continue;
      }
      for (const [name, code] of Object.entries(ours)) {
        if (!Object.hasOwn(theirs, name)) diffs.push(`${family}.${name} is missing from the addon`);
        else if (theirs[name] !== code)
          diffs.push(`${family}.${name} is ${show(theirs[name])} in the addon but ${code} in lib/opcodes.ts`);
      }
      for (const name of Object.keys(theirs))
        if (!Object.hasOwn(ours, name))
          diffs.push(`${family}.${name} (${show(theirs[name])}) is in the addon but not in lib/opcodes.ts`);
    }
    for (const family of Object.keys(actual))
      if (!Object.hasOwn(expected, family)) diffs.push(`family ${family} is in the addon but not in lib/opcodes.ts`);
  }
  if (diffs.length > 0)
    throw new Error(
      `tensornormal: the native addon's op tables differ from lib/opcodes.ts (an addon built from another revision? ` +
        `rebuild it with \`npm run build:native\`): ${diffs.join('; ')}`,
    );
}
