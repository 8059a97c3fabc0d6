/**
 * Minimal line charts for experiment results: panels side by side, one line per series, an optional band
 * (mean ± std), axes with ticks, a legend. No dependencies. A chart is first laid out as a `Drawing` (a flat list of
 * rectangles, lines, polylines, polygons and text in pixel coordinates); `lineChart` writes it as SVG, and
 * `lineChartPng` (png.ts) rasterises the same drawing, so the two files always show the same figure.
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

export interface ChartOptions {
  /** Size of one panel in pixels. Defaults 320 x 240. */
  width?: number;
  height?: number;
  /** Panels per row. Default 4. */
  columns?: number;
}

/** Clip rectangle of a shape (its panel's plot area). */
export interface Clip {
  x: number;
  y: number;
  w: number;
  h: number;
}

export type Shape =
  | { type: 'rect'; x: number; y: number; w: number; h: number; fill?: string; stroke?: string }
  | { type: 'line'; x1: number; y1: number; x2: number; y2: number; stroke: string; width: number }
  | { type: 'polyline'; points: [number, number][]; stroke: string; width: number; clip?: Clip }
  | { type: 'polygon'; points: [number, number][]; fill: string; opacity: number; clip?: Clip }
  | {
      type: 'text';
      x: number;
      y: number;
      text: string;
      anchor: 'start' | 'middle' | 'end';
      size: number;
      rotate?: boolean;
    };

/** A laid-out chart: `rotate` text runs bottom to top (SVG rotate(-90) about its anchor point). */
export interface Drawing {
  width: number;
  height: number;
  shapes: Shape[];
}

/** The paper's colours, in the order series first appear (matplotlib's tab10). */
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

/**
 * Ticks of a log axis spanning 10^lo .. 10^hi: the decades, or, when fewer than three decades fall inside (a loss
 * that moves within one decade, as an autoencoder's), 1-2-5 and then 1..9 times the decades, or evenly spaced
 * round values for a narrower range.
 */
function logTicks(lo: number, hi: number): number[] {
  for (const mantissas of [[1], [1, 2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
    const out: number[] = [];
    for (let d = Math.floor(lo); d <= Math.ceil(hi); d++)
      for (const m of mantissas) {
        const v = +(m * 10 ** d).toPrecision(12);
        const l = Math.log10(v);
        if (l >= lo - 1e-9 && l <= hi + 1e-9) out.push(v);
      }
    if (out.length >= 3) return out;
  }
  // a range narrower than the steps between 1..9 times a decade (530 to 545): plain ticks on the values
  return niceTicks(10 ** lo, 10 ** hi, 4).filter((v) => v > 0);
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e4 || a < 1e-3) return v.toExponential(0);
  return String(+v.toPrecision(3));
}

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Lays out panels in a row (wrapping after `columns`). */
export function chartDrawing(panels: Panel[], { width = 320, height = 240, columns = 4 }: ChartOptions = {}): Drawing {
  const m = { l: 56, r: 12, t: 28, b: 40 };
  const names = [...new Set(panels.flatMap((p) => p.series.map((s) => s.name)))];
  const color = (name: string): string => COLORS[names.indexOf(name) % COLORS.length]!;
  const cols = Math.max(1, Math.min(columns, panels.length));
  const rows = Math.ceil(panels.length / cols);
  const legendH = 24;
  const W = cols * width,
    H = rows * height + legendH;
  const shapes: Shape[] = [{ type: 'rect', x: 0, y: 0, w: W, h: H, fill: 'white' }];
  panels.forEach((p, pi) => {
    const ox = (pi % cols) * width,
      oy = Math.floor(pi / cols) * height;
    const tx = (v: number): number => (p.logY ? Math.log10(Math.max(v, 1e-300)) : v);
    const xs = p.series.flatMap((s) => s.x).filter(Number.isFinite);
    // The y range covers the lines and their bands; on a log axis a band's lower edge counts down to a tenth of the
    // line at most (a band reaching 0 or below would otherwise stretch the axis to 1e-300).
    const ys = p.series
      .flatMap((s) =>
        s.y.flatMap((y, i) => {
          const b = s.band?.[i] ?? 0;
          const lo = p.logY ? Math.max(y - b, y / 10) : y - b;
          return [lo, y + b];
        }),
      )
      .filter((v) => Number.isFinite(v) && (!p.logY || v > 0))
      .map(tx);
    let [y0, y1] = p.yRange ? [tx(p.yRange[0]), tx(p.yRange[1])] : [Math.min(...ys), Math.max(...ys)];
    if (!Number.isFinite(y0) || !Number.isFinite(y1)) [y0, y1] = [0, 1];
    if (!(y1 > y0)) [y0, y1] = [y0 - 1, y1 + 1];
    const x0 = xs.length > 0 ? Math.min(...xs) : 0;
    let x1 = xs.length > 0 ? Math.max(...xs) : 1;
    if (!(x1 > x0)) x1 = x0 + 1;
    const pw = width - m.l - m.r,
      ph = height - m.t - m.b;
    const clip: Clip = { x: ox + m.l, y: oy + m.t, w: pw, h: ph };
    const sx = (v: number): number => ox + m.l + ((v - x0) / (x1 - x0)) * pw;
    // values far outside the axis are pinned just beyond it (the clip hides them), so coordinates stay small
    const sy = (v: number): number =>
      oy + m.t + (1 - (Math.min(Math.max(tx(v), y0 - (y1 - y0)), y1 + (y1 - y0)) - y0) / (y1 - y0)) * ph;
    shapes.push({ type: 'text', x: ox + m.l + pw / 2, y: oy + 16, text: p.title, anchor: 'middle', size: 13 });
    shapes.push({ type: 'rect', x: ox + m.l, y: oy + m.t, w: pw, h: ph, stroke: '#333' });
    for (const t of niceTicks(x0, x1)) {
      shapes.push({
        type: 'line',
        x1: sx(t),
        y1: oy + m.t + ph,
        x2: sx(t),
        y2: oy + m.t + ph + 4,
        stroke: '#333',
        width: 1,
      });
      shapes.push({ type: 'text', x: sx(t), y: oy + m.t + ph + 15, text: fmt(t), anchor: 'middle', size: 11 });
    }
    const yt = p.logY ? logTicks(y0, y1) : niceTicks(y0, y1);
    for (const t of yt) {
      if (tx(t) < y0 - 1e-9 || tx(t) > y1 + 1e-9) continue;
      shapes.push({
        type: 'line',
        x1: ox + m.l - 4,
        y1: sy(t),
        x2: ox + m.l + pw,
        y2: sy(t),
        stroke: '#ddd',
        width: 1,
      });
      shapes.push({ type: 'text', x: ox + m.l - 6, y: sy(t) + 4, text: fmt(t), anchor: 'end', size: 11 });
    }
    shapes.push({ type: 'text', x: ox + m.l + pw / 2, y: oy + height - 6, text: p.xLabel, anchor: 'middle', size: 11 });
    shapes.push({
      type: 'text',
      x: ox + 14,
      y: oy + m.t + ph / 2,
      text: p.yLabel,
      anchor: 'middle',
      size: 11,
      rotate: true,
    });
    for (const s of p.series) {
      const c = color(s.name);
      const idx = s.x
        .map((_, i) => i)
        .filter((i) => Number.isFinite(s.x[i]) && Number.isFinite(s.y[i]) && (!p.logY || s.y[i]! > 0));
      if (s.band) {
        const up = idx.map((i): [number, number] => [sx(s.x[i]!), sy(s.y[i]! + (s.band![i] ?? 0))]);
        const dn = idx.map((i): [number, number] => [sx(s.x[i]!), sy(s.y[i]! - (s.band![i] ?? 0))]).reverse();
        if (idx.length > 1) shapes.push({ type: 'polygon', points: [...up, ...dn], fill: c, opacity: 0.18, clip });
      }
      shapes.push({
        type: 'polyline',
        points: idx.map((i): [number, number] => [sx(s.x[i]!), sy(s.y[i]!)]),
        stroke: c,
        width: 1.5,
        clip,
      });
    }
  });
  let lx = 10;
  const ly = rows * height + 16;
  for (const n of names) {
    shapes.push({ type: 'line', x1: lx, y1: ly - 4, x2: lx + 20, y2: ly - 4, stroke: color(n), width: 2 });
    shapes.push({ type: 'text', x: lx + 24, y: ly, text: n, anchor: 'start', size: 11 });
    lx += 34 + n.length * 7;
  }
  return { width: W, height: H, shapes };
}

const n1 = (v: number): string => String(+v.toFixed(1));
const pts = (p: [number, number][]): string => p.map(([x, y]) => `${n1(x)},${n1(y)}`).join(' ');

/** Writes a drawing as an SVG document (each panel's lines and bands clipped to its plot area). */
export function toSvg(d: Drawing): string {
  const clips = new Map<string, string>();
  const clipId = (c: Clip | undefined): string => {
    if (c === undefined) return '';
    const key = `${c.x},${c.y},${c.w},${c.h}`;
    if (!clips.has(key)) clips.set(key, `c${clips.size}`);
    return ` clip-path="url(#${clips.get(key)})"`;
  };
  const body = d.shapes.map((s) => {
    switch (s.type) {
      case 'rect':
        return `<rect x="${n1(s.x)}" y="${n1(s.y)}" width="${n1(s.w)}" height="${n1(s.h)}" fill="${s.fill ?? 'none'}"${s.stroke ? ` stroke="${s.stroke}"` : ''}/>`;
      case 'line':
        return `<line x1="${n1(s.x1)}" y1="${n1(s.y1)}" x2="${n1(s.x2)}" y2="${n1(s.y2)}" stroke="${s.stroke}"${s.width !== 1 ? ` stroke-width="${s.width}"` : ''}/>`;
      case 'polyline':
        return `<polyline points="${pts(s.points)}" fill="none" stroke="${s.stroke}" stroke-width="${s.width}"${clipId(s.clip)}/>`;
      case 'polygon':
        return `<polygon points="${pts(s.points)}" fill="${s.fill}" fill-opacity="${s.opacity}" stroke="none"${clipId(s.clip)}/>`;
      case 'text': {
        const size = s.size !== 11 ? ` font-size="${s.size}"` : '';
        const anchor = s.anchor !== 'start' ? ` text-anchor="${s.anchor}"` : '';
        const pos = s.rotate
          ? `transform="translate(${n1(s.x)},${n1(s.y)}) rotate(-90)"`
          : `x="${n1(s.x)}" y="${n1(s.y)}"`;
        return `<text ${pos}${anchor}${size}>${esc(s.text)}</text>`;
      }
    }
  });
  const defs = [...clips].map(([key, id]) => {
    const [x, y, w, h] = key.split(',').map(Number) as [number, number, number, number];
    return `<clipPath id="${id}"><rect x="${n1(x)}" y="${n1(y)}" width="${n1(w)}" height="${n1(h)}"/></clipPath>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${d.width}" height="${d.height}" viewBox="0 0 ${d.width} ${d.height}" font-family="Helvetica, Arial, sans-serif" font-size="11">`,
    ...(defs.length > 0 ? ['<defs>', ...defs, '</defs>'] : []),
    ...body,
    '</svg>',
  ].join('\n');
}

/** Renders panels in a row (wrapping after `columns`) as one SVG document. */
export function lineChart(panels: Panel[], options: ChartOptions = {}): string {
  return toSvg(chartDrawing(panels, options));
}
