/**
 * PyTorch-style printing: a port of torch/_tensor_str.py (1.13) with its default print options, so that
 * `t.toString()` equals Python's `repr(t)` (test/format.test.ts compares against strings PyTorch printed).
 */
import type { Tensor } from './tensor.js';

// torch._tensor_str.PRINT_OPTS defaults.
const PRECISION = 4;
const THRESHOLD = 1000;
const EDGEITEMS = 3;
const LINEWIDTH = 80;

type Value = number | bigint | boolean;

function special(v: number): string | null {
  return Number.isNaN(v) ? 'nan' : v === Infinity ? 'inf' : v === -Infinity ? '-inf' : null;
}

/**
 * Python's `'{:.Nf}'.format(v)`. JS's toFixed reads the same exact binary value but breaks exact ties away from zero,
 * where Python rounds them to even (1.03125 -> '1.0312'): the tie is detected on the exact expansion.
 */
function pyFixed(v: number, digits: number): string {
  const sp = special(v);
  if (sp !== null) return sp;
  const sign = v < 0 || Object.is(v, -0) ? '-' : '';
  const a = Math.abs(v);
  if (a >= 1e21) return sign + BigInt(a).toString() + (digits > 0 ? '.' + '0'.repeat(digits) : '');
  let s = a.toFixed(digits);
  const exact = a.toFixed(100);
  const dot = exact.indexOf('.');
  const tail = exact.slice(dot + 1 + digits);
  if (/^50*$/.test(tail)) {
    const kept = digits > 0 ? exact.slice(0, dot + 1 + digits) : exact.slice(0, dot);
    if (Number(kept[kept.length - 1]) % 2 === 0) s = kept;
  }
  return sign + s;
}

/** Python's `'{:.Ne}'.format(v)`: ties to even, and an exponent of at least two digits (1.0000e+03). */
function pySci(v: number, digits: number): string {
  const sp = special(v);
  if (sp !== null) return sp;
  const sign = v < 0 || Object.is(v, -0) ? '-' : '';
  const a = Math.abs(v);
  let s = a.toExponential(digits);
  const exact = a.toExponential(100);
  const [mant, exp] = exact.split('e') as [string, string];
  const tail = mant.slice(2 + digits);
  if (/^50*$/.test(tail)) {
    const kept = digits > 0 ? mant.slice(0, 2 + digits) : mant.slice(0, 1);
    if (Number(kept[kept.length - 1]) % 2 === 0) s = `${kept}e${exp}`;
  }
  const [m, e] = s.split('e') as [string, string];
  const esign = e.startsWith('-') ? '-' : '+';
  return `${sign}${m}e${esign}${e.replace(/^[+-]/, '').padStart(2, '0')}`;
}

/** Python's `'{}'.format(v)` for the non-floating dtypes. */
function pyStr(v: Value): string {
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  return String(v);
}

/** torch._tensor_str._Formatter: chooses int mode, fixed or scientific from the values shown, and their width. */
class Formatter {
  intMode = true;
  sciMode = false;
  maxWidth = 1;

  constructor(
    private readonly floating: boolean,
    values: Value[],
  ) {
    if (!floating) {
      for (const v of values) this.maxWidth = Math.max(this.maxWidth, pyStr(v).length);
      return;
    }
    const nz = (values as number[]).filter((v) => Number.isFinite(v) && v !== 0);
    if (nz.length === 0) return;
    const abs = nz.map(Math.abs);
    const min = Math.min(...abs);
    const max = Math.max(...abs);
    this.intMode = nz.every((v) => v === Math.ceil(v));
    if (this.intMode) {
      if (max / min > 1000 || max > 1e8) {
        this.sciMode = true;
        for (const v of nz) this.maxWidth = Math.max(this.maxWidth, pySci(v, PRECISION).length);
      } else for (const v of nz) this.maxWidth = Math.max(this.maxWidth, pyFixed(v, 0).length + 1);
    } else if (max / min > 1000 || max > 1e8 || min < 1e-4) {
      this.sciMode = true;
      for (const v of nz) this.maxWidth = Math.max(this.maxWidth, pySci(v, PRECISION).length);
    } else for (const v of nz) this.maxWidth = Math.max(this.maxWidth, pyFixed(v, PRECISION).length);
  }

  format(value: Value): string {
    let ret: string;
    if (this.floating) {
      const v = value as number;
      if (this.sciMode) ret = pySci(v, PRECISION);
      else if (this.intMode) ret = pyFixed(v, 0) + (Number.isFinite(v) ? '.' : '');
      else ret = pyFixed(v, PRECISION);
    } else ret = pyStr(value);
    return ret.padStart(this.maxWidth);
  }
}

function tupleStr(shape: number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

/** torch._tensor_str._add_suffixes: suffixes go on a new line when they would pass the line width. */
function addSuffixes(tensorStr: string, suffixes: string[], indent: number): string {
  const parts = [tensorStr];
  let lastLineLen = tensorStr.length - tensorStr.lastIndexOf('\n') + 1;
  for (const suffix of suffixes) {
    if (lastLineLen + suffix.length + 2 > LINEWIDTH) {
      parts.push(',\n' + ' '.repeat(indent) + suffix);
      lastLineLen = indent + suffix.length;
    } else {
      parts.push(', ' + suffix);
      lastLineLen += suffix.length + 2;
    }
  }
  parts.push(')');
  return parts.join('');
}

/** Reads the data as values Python would print: float16/bfloat16 widened to float32, int64 exactly (bigint). */
function values(t: Tensor): Value[] {
  const d = t.dtype;
  if (d === 'int64') return Array.from(t.toTypedArray() as BigInt64Array);
  return t.dataSync() as unknown as Value[];
}

export function formatTensor(t: Tensor): string {
  const shape = t.shape;
  const dtype = t.dtype;
  const numel = shape.reduce((a, b) => a * b, 1);
  const floating = dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16';
  const prefix = 'tensor(';
  const indent = prefix.length;
  const suffixes: string[] = [];
  const dev = t.device;
  if (dev !== 'cpu') suffixes.push(`device='${dev}'`);

  let body: string;
  if (numel === 0) {
    // an empty tensor shows its shape unless it is (0,), and its dtype unless it is the default float32
    if (shape.length !== 1) suffixes.push(`size=${tupleStr(shape)}`);
    if (dtype !== 'float32') suffixes.push(`dtype=torch.${dtype}`);
    body = '[]';
  } else {
    if (dtype !== 'float32' && dtype !== 'int64' && dtype !== 'bool') suffixes.push(`dtype=torch.${dtype}`);
    body = tensorStr(values(t), shape, floating, indent);
  }
  const gradFn = t.gradFn;
  // Python shows the node's class name, without a C++ namespace
  if (gradFn) suffixes.push(`grad_fn=<${gradFn.slice(gradFn.lastIndexOf(':') + 1)}>`);
  else if (t.requiresGrad) suffixes.push('requires_grad=True');
  return addSuffixes(prefix + body, suffixes, indent);
}

/** torch._tensor_str._tensor_str for a non-empty tensor whose contiguous data is `flat`. */
function tensorStr(flat: Value[], shape: number[], floating: boolean, indent: number): string {
  const numel = flat.length;
  const summarize = numel > THRESHOLD;
  const strides: number[] = new Array(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = acc;
    acc *= shape[d]!;
  }
  // The indices shown along a dimension of size n (the edges only when summarising).
  const shownIdx = (n: number): (number | null)[] => {
    if (!(summarize && n > 2 * EDGEITEMS)) return Array.from({ length: n }, (_, i) => i);
    const head = Array.from({ length: EDGEITEMS }, (_, i) => i);
    const tail = Array.from({ length: EDGEITEMS }, (_, i) => n - EDGEITEMS + i);
    return [...head, null, ...tail];
  };

  // get_summarized_data: the formatter sees only the values that will be printed.
  const shown: Value[] = [];
  const visit = (d: number, off: number): void => {
    if (d === shape.length) {
      shown.push(flat[off]!);
      return;
    }
    for (const i of shownIdx(shape[d]!)) if (i !== null) visit(d + 1, off + i * strides[d]!);
  };
  visit(0, 0);
  const fmt = new Formatter(floating, shown);

  if (shape.length === 0) return fmt.format(flat[0]!);

  const vectorStr = (off: number, ind: number): string => {
    const elementLength = fmt.maxWidth + 2;
    const perLine = Math.max(1, Math.floor((LINEWIDTH - ind) / elementLength));
    const data = shownIdx(shape[shape.length - 1]!).map((i) => (i === null ? ' ...' : fmt.format(flat[off + i]!)));
    const lines: string[] = [];
    for (let i = 0; i < data.length; i += perLine) lines.push(data.slice(i, i + perLine).join(', '));
    return '[' + lines.join(',\n' + ' '.repeat(ind + 1)) + ']';
  };
  const build = (d: number, off: number, ind: number): string => {
    if (d === shape.length - 1) return vectorStr(off, ind);
    const slices = shownIdx(shape[d]!).map((i) => (i === null ? '...' : build(d + 1, off + i * strides[d]!, ind + 1)));
    const dimsLeft = shape.length - d;
    return '[' + slices.join(',' + '\n'.repeat(dimsLeft - 1) + ' '.repeat(ind + 1)) + ']';
  };
  return build(0, 0, indent);
}
