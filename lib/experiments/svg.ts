/**
 * Minimal SVG line charts for experiment results: panels side by side, one line per series, an optional band
 * (mean ± std), axes with ticks, a legend. No dependencies; the output opens in any browser and in the README.
 */

export interface Series {
  name: string;
  x: number[];
  y: number[];
  /** Half-width of a shaded band around y (e.g. the standard deviation over seeds). */
  band?: number[];
}

export interface Panel {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
  logY?: boolean;
  yRange?: [number, number];
}

const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12 * Math.abs(hi); v += step) out.push(+v.toPrecision(12));
  return out;
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(0);
  return String(+v.toPrecision(3));
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Renders panels in a row (wrapping after `columns`) as one SVG document. */
export function lineChart(panels: Panel[], { width = 320, height = 240, columns = 4 }: { width?: number; height?: number; columns?: number } = {}): string {
  const m = { l: 56, r: 12, t: 28, b: 40 };
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  const color = (name: string): string => COLORS[names.indexOf(name) % COLORS.length]!;
  const cols = Math.min(columns, panels.length);
  const rows = Math.ceil(panels.length / cols);
  const legendH = 24;
  const W = cols * width, H = rows * height + legendH;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
  ];
  panels.forEach((p, pi) => {
    const ox = (pi % cols) * width, oy = Math.floor(pi / cols) * height;
    const xs = p.series.flatMap((s) => s.x);
    const ys = p.series.flatMap((s) => s.y.map((y, i) => [y - (s.band?.[i] ?? 0), y + (s.band?.[i] ?? 0)]).flat()).filter(Number.isFinite);
    const tx = (v: number): number => (p.logY ? Math.log10(Math.max(v, 1e-300)) : v);
    let [y0, y1] = p.yRange ?? [Math.min(...ys.map(tx)), Math.max(...ys.map(tx))];
    if (p.yRange && p.logY) [y0, y1] = [Math.log10(p.yRange[0]), Math.log10(p.yRange[1])];
    if (!(y1 > y0)) [y0, y1] = [y0 - 1, y1 + 1];
    const x0 = Math.min(...xs), x1 = Math.max(...xs) > x0 ? Math.max(...xs) : x0 + 1;
    const pw = width - m.l - m.r, ph = height - m.t - m.b;
    const sx = (v: number): number => ox + m.l + ((v - x0) / (x1 - x0)) * pw;
    const sy = (v: number): number => oy + m.t + (1 - (tx(v) - y0) / (y1 - y0)) * ph;
    parts.push(`<text x="${ox + m.l + pw / 2}" y="${oy + 16}" text-anchor="middle" font-size="13">${esc(p.title)}</text>`);
    parts.push(`<rect x="${ox + m.l}" y="${oy + m.t}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
    for (const t of niceTicks(x0, x1)) {
      parts.push(`<line x1="${sx(t)}" y1="${oy + m.t + ph}" x2="${sx(t)}" y2="${oy + m.t + ph + 4}" stroke="#333"/>`);
      parts.push(`<text x="${sx(t)}" y="${oy + m.t + ph + 15}" text-anchor="middle">${fmt(t)}</text>`);
    }
    const yt = p.logY ? niceTicks(Math.floor(y0), Math.ceil(y1)).filter((v) => Number.isInteger(v)).map((v) => 10 ** v) : niceTicks(y0, y1);
    for (const t of yt) {
      if (tx(t) < y0 - 1e-9 || tx(t) > y1 + 1e-9) continue;
      parts.push(`<line x1="${ox + m.l - 4}" y1="${sy(t)}" x2="${ox + m.l + pw}" y2="${sy(t)}" stroke="#ddd"/>`);
      parts.push(`<text x="${ox + m.l - 6}" y="${sy(t) + 4}" text-anchor="end">${fmt(t)}</text>`);
    }
    parts.push(`<text x="${ox + m.l + pw / 2}" y="${oy + height - 6}" text-anchor="middle">${esc(p.xLabel)}</text>`);
    parts.push(`<text transform="translate(${ox + 14},${oy + m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(p.yLabel)}</text>`);
    for (const s of p.series) {
      const c = color(s.name);
      if (s.band) {
        const up = s.x.map((x, i) => `${sx(x).toFixed(1)},${sy(s.y[i]! + s.band![i]!).toFixed(1)}`);
        const dn = s.x.map((x, i) => `${sx(x).toFixed(1)},${sy(s.y[i]! - s.band![i]!).toFixed(1)}`).reverse();
        parts.push(`<polygon points="${[...up, ...dn].join(' ')}" fill="${c}" fill-opacity="0.18" stroke="none"/>`);
      }
      const pts = s.x.map((x, i) => [x, s.y[i]!] as const).filter(([, y]) => Number.isFinite(y) && (!p.logY || y > 0));
      parts.push(`<polyline points="${pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}" fill="none" stroke="${c}" stroke-width="1.5"/>`);
    }
  });
  let lx = 10;
  const ly = rows * height + 16;
  for (const n of names) {
    parts.push(`<line x1="${lx}" y1="${ly - 4}" x2="${lx + 20}" y2="${ly - 4}" stroke="${color(n)}" stroke-width="2"/>`);
    parts.push(`<text x="${lx + 24}" y="${ly}">${esc(n)}</text>`);
    lx += 34 + n.length * 7;
  }
  parts.push('</svg>');
  return parts.join('\n');
}
