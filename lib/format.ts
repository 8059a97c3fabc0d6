/** PyTorch-style printing (torch/_tensor_str.py's rules: int mode, fixed 4 decimals, or scientific; summarised above 1000 elements). */
import type { Tensor } from './tensor.js';

const THRESHOLD = 1000;
const EDGE = 3;

function pyName(dtype: string): string {
  return `torch.${dtype}`;
}

function makeFormatter(values: number[], floating: boolean, isBool: boolean): (v: number) => string {
  if (isBool) return (v) => (v ? 'True' : 'False');
  if (!floating) return (v) => String(v);
  const finite = values.filter((v) => Number.isFinite(v));
  const nonzero = finite.map(Math.abs).filter((v) => v !== 0);
  const intMode = finite.every((v) => v === Math.ceil(v));
  let fmt: (v: number) => string;
  const special = (v: number): string | null => (Number.isNaN(v) ? 'nan' : v === Infinity ? 'inf' : v === -Infinity ? '-inf' : null);
  if (nonzero.length === 0) {
    fmt = (v) => special(v) ?? (intMode ? `${v.toFixed(0)}.` : v.toFixed(4));
  } else {
    const max = Math.max(...nonzero);
    const min = Math.min(...nonzero);
    if (intMode) {
      if (max / min > 1000 || max > 1e8) fmt = (v) => special(v) ?? sci(v);
      else fmt = (v) => special(v) ?? `${v.toFixed(0)}.`;
    } else if (max / min > 1000 || max > 1e8 || min < 1e-4) fmt = (v) => special(v) ?? sci(v);
    else fmt = (v) => special(v) ?? v.toFixed(4);
  }
  return (v) => {
    const s = fmt(v);
    return s === '-0.' ? '-0.' : s === '-0.0000' ? '-0.0000' : s;
  };
}

function sci(v: number): string {
  // Python's '{:.4e}' writes a two-digit exponent: 1.0000e+03
  const [m, e] = v.toExponential(4).split('e');
  const sign = e!.startsWith('-') ? '-' : '+';
  const digits = e!.replace(/^[+-]/, '').padStart(2, '0');
  return `${m}e${sign}${digits}`;
}

export function formatTensor(t: Tensor): string {
  const shape = t.shape;
  const dtype = t.dtype;
  const numel = shape.reduce((a, b) => a * b, 1);
  const floating = dtype.startsWith('float') || dtype === 'bfloat16';
  const isBool = dtype === 'bool';
  const flat = t.dataSync() as unknown as (number | boolean)[];
  const values = flat.map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v));
  const summarize = numel > THRESHOLD;

  // strides of the contiguous layout, to read flat[] by multi-index
  const strides: number[] = new Array(shape.length);
  let acc = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = acc;
    acc *= shape[d]!;
  }
  const shown: number[] = [];
  const visit = (d: number, off: number): void => {
    if (d === shape.length) {
      shown.push(values[off]!);
      return;
    }
    const n = shape[d]!;
    for (let i = 0; i < n; i++) {
      if (summarize && n > 2 * EDGE && i === EDGE) i = n - EDGE;
      visit(d + 1, off + i * strides[d]!);
    }
  };
  if (numel > 0) visit(0, 0);
  const f = makeFormatter(shown, floating, isBool);
  const width = Math.max(0, ...shown.map((v) => f(v).length));
  const cell = (v: number): string => f(v).padStart(width);

  const prefix = 'tensor(';
  const build = (d: number, off: number, indent: number): string => {
    if (d === shape.length) return cell(values[off]!);
    const n = shape[d]!;
    const parts: string[] = [];
    for (let i = 0; i < n; i++) {
      if (summarize && n > 2 * EDGE && i === EDGE) {
        parts.push('...');
        i = n - EDGE;
      }
      parts.push(build(d + 1, off + i * strides[d]!, indent + 1));
    }
    if (d === shape.length - 1) return `[${parts.join(', ')}]`;
    const sep = ',' + '\n'.repeat(shape.length - d - 1) + ' '.repeat(indent + 1);
    return `[${parts.join(sep)}]`;
  };

  let body: string;
  if (shape.length === 0) body = f(values[0]!);
  else if (numel === 0) body = '[]';
  else body = build(0, 0, prefix.length);

  const suffix: string[] = [];
  if (numel === 0 && shape.length > 1) suffix.push(`size=(${shape.join(', ')})`);
  const dev = t.device;
  if (dev !== 'cpu') suffix.push(`device='${dev}'`);
  if (dtype !== 'float32' && dtype !== 'int64' && dtype !== 'bool') suffix.push(`dtype=${pyName(dtype)}`);
  const gradFn = t.gradFn;
  if (gradFn) suffix.push(`grad_fn=<${gradFn}>`);
  else if (t.requiresGrad) suffix.push('requires_grad=True');
  return `${prefix}${body}${suffix.length ? ', ' + suffix.join(', ') : ''})`;
}
