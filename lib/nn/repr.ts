/**
 * Python-style value formatting for module reprs, so that `String(model)` reads like PyTorch's `print(model)`
 * (`eps=1e-05`, `bias=True`, `kernel_size=(3, 3)`) and a PyTorch user can compare the two trees line by line.
 */

/** A float as Python's repr() writes it: shortest round-trip digits, `1.0` for integers, exponent form below 1e-4 or from 1e16. */
export function pyFloat(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  // toExponential() without digits gives the shortest digits that round-trip, as Python's repr does.
  const [mant, expStr] = x.toExponential().split('e') as [string, string];
  const exp = Number(expStr);
  if (exp < -4 || exp >= 16) {
    const sign = exp < 0 ? '-' : '+';
    const e = Math.abs(exp);
    return `${mant}e${sign}${e < 10 ? '0' : ''}${e}`;
  }
  const s = String(x); // positional for -4 <= exp < 16 in JS too (JS switches to exponents only below 1e-6 or from 1e21)
  return Number.isInteger(x) ? `${s}.0` : s;
}

/** A JS value as Python's repr would show the corresponding Python value (arrays become tuples). */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : pyFloat(v);
  if (typeof v === 'string') return `'${v}'`;
  if (Array.isArray(v)) return v.length === 1 ? `(${pyRepr(v[0])},)` : `(${v.map(pyRepr).join(', ')})`;
  return String(v);
}

/** Indents every line but the first by `n` spaces (torch.nn.modules.module._addindent). */
export function addIndent(s: string, n: number): string {
  const lines = s.split('\n');
  if (lines.length === 1) return s;
  const pad = ' '.repeat(n);
  return [lines[0], ...lines.slice(1).map((l) => pad + l)].join('\n');
}
