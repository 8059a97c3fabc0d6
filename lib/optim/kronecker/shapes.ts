/**
 * The factor shape of a parameter in TNT and Shampoo: its gradient is viewed as a tensor of this shape, one factor
 * per dimension. A Linear weight (out, in) has two factors; a bias or any 1-d tensor one (full d x d); a conv weight
 * (out, in, kh, kw) three, (out, in, kh*kw) (`convFactors: 'full'` gives four); a scalar none (not preconditioned).
 * `custom` (TNT's `factorShape` option) overrides the rule and is checked here.
 */
import type { Tensor } from '../../tensor.js';
import { typeError } from '../../errors.js';

export type ConvFactors = 'merge' | 'full';

export function factorShape(p: Tensor, convFactors: ConvFactors, custom?: (param: Tensor) => number[]): number[] {
  const s = p.shape;
  const n = s.reduce((a, b) => a * b, 1);
  if (custom) {
    const f = custom(p);
    if (!Array.isArray(f) || f.some((d) => !Number.isInteger(d) || d < 1))
      throw typeError('an array of positive integers', 'factorShape(param)', f);
    if (f.length > 0 && f.reduce((a, b) => a * b, 1) !== n)
      throw new RangeError(
        `factorShape(param) returned [${f.join(', ')}], which does not hold the ${n} elements of a parameter of shape [${s.join(', ')}]`,
      );
    return f;
  }
  if (n <= 1) return [];
  if (s.length === 4 && convFactors === 'merge') return [s[0]!, s[1]!, s[2]! * s[3]!];
  return s;
}
