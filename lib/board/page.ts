/**
 * The board's page: one HTML document with its style and script inline (no framework, no external resource).
 * Curves are SVG polylines redrawn from the points the server pushes (server-sent events: a 'snapshot' on
 * connect, then 'points' deltas). Loss tags (`loss*`) are drawn on the left, every run of a tag in one chart;
 * the others (optimizer/*, train/*, memory/*, ...) are the diagnostics on the right. Each curve is a
 * `<polyline class="curve" data-run data-tag data-points>` (test/board.test.ts reads those attributes).
 */
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tensornormal board</title>
<style>
  :root { font: 13px/1.4 system-ui, sans-serif; color: #222; background: #fafafa; }
  body { margin: 0; }
  header { display: flex; gap: 16px; align-items: baseline; padding: 10px 16px; background: #fff; border-bottom: 1px solid #ddd; flex-wrap: wrap; }
  header h1 { font-size: 15px; margin: 0; }
  #status { color: #777; }
  #status.live::before { content: '\\25CF '; color: #2a2; }
  #status.down::before { content: '\\25CF '; color: #c33; }
  #runs { display: flex; gap: 12px; flex-wrap: wrap; }
  #runs label { cursor: pointer; }
  #runs .swatch { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; }
  main { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 16px; padding: 16px; }
  section h2 { font-size: 13px; text-transform: uppercase; letter-spacing: .04em; color: #555; margin: 0 0 8px; }
  .charts { display: flex; flex-direction: column; gap: 12px; }
  #diagnostics .charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); }
  figure { margin: 0; background: #fff; border: 1px solid #e3e3e3; border-radius: 6px; padding: 8px; }
  figcaption { font-weight: 600; margin-bottom: 4px; display: flex; justify-content: space-between; }
  figcaption small { font-weight: normal; color: #888; }
  svg { width: 100%; height: auto; display: block; }
  .axis { stroke: #bbb; stroke-width: 1; }
  .grid { stroke: #eee; stroke-width: 1; }
  .tick { fill: #777; font-size: 10px; }
  .curve { fill: none; stroke-width: 1.6; }
  .empty { color: #888; padding: 24px; }
</style>
</head>
<body>
<header>
  <h1>tensornormal board</h1>
  <span id="logdir"></span>
  <span id="status">connecting</span>
  <label><input type="checkbox" id="logy" checked> log-scale loss</label>
  <div id="runs"></div>
</header>
<main>
  <section id="losses"><h2>Loss</h2><div class="charts"></div></section>
  <section id="diagnostics"><h2>Optimizer and run diagnostics</h2><div class="charts"></div></section>
</main>
<script>
'use strict';
(() => {
  const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];
  const SVGNS = 'http://www.w3.org/2000/svg';
  const data = {}; // run -> tag -> [step, value, wallTime][]
  const hidden = new Set();
  const colorOf = new Map();
  let pending = false;

  const isLoss = (tag) => /^loss/i.test(tag);
  const color = (run) => {
    if (!colorOf.has(run)) colorOf.set(run, COLORS[colorOf.size % COLORS.length]);
    return colorOf.get(run);
  };
  const fmt = (v) => {
    const a = Math.abs(v);
    if (v === 0) return '0';
    if (a >= 1e9) return (v / 1e9).toPrecision(3) + 'G';
    if (a >= 1e6) return (v / 1e6).toPrecision(3) + 'M';
    if (a >= 1e4) return (v / 1e3).toPrecision(3) + 'k';
    if (a < 1e-3) return v.toExponential(1);
    return String(Number(v.toPrecision(3)));
  };
  const el = (name, attrs, parent) => {
    const e = document.createElementNS(SVGNS, name);
    for (const k in attrs) e.setAttribute(k, String(attrs[k]));
    if (parent) parent.appendChild(e);
    return e;
  };

  function merge(delta) {
    for (const run in delta) {
      const tags = (data[run] ??= {});
      for (const tag in delta[run]) (tags[tag] ??= []).push(...delta[run][tag]);
    }
  }

  function chart(tag, logScale) {
    const W = 460, H = 200, L = 48, R = 20, T = 8, B = 22;
    const series = [];
    for (const run of Object.keys(data).sort()) {
      if (hidden.has(run)) continue;
      const pts = (data[run][tag] || []).filter((p) => Number.isFinite(p[1]) && (!logScale || p[1] > 0));
      if (pts.length > 0) series.push([run, pts]);
    }
    const fig = document.createElement('figure');
    fig.dataset.tag = tag;
    const cap = document.createElement('figcaption');
    cap.textContent = tag;
    const last = document.createElement('small');
    cap.appendChild(last);
    fig.appendChild(cap);
    const svg = el('svg', { viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': tag }, fig);
    if (series.length === 0) return fig;
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const [, pts] of series)
      for (const [s, v] of pts) {
        const y = logScale ? Math.log10(v) : v;
        x0 = Math.min(x0, s); x1 = Math.max(x1, s); y0 = Math.min(y0, y); y1 = Math.max(y1, y);
      }
    if (x1 === x0) x1 = x0 + 1;
    if (y1 === y0) { y0 -= 0.5; y1 += 0.5; }
    const pad = (y1 - y0) * 0.05; y0 -= pad; y1 += pad;
    const sx = (s) => L + ((s - x0) / (x1 - x0)) * (W - L - R);
    const sy = (v) => T + (1 - ((logScale ? Math.log10(v) : v) - y0) / (y1 - y0)) * (H - T - B);
    for (let i = 0; i <= 4; i++) {
      const yv = y0 + ((y1 - y0) * i) / 4;
      const y = T + (1 - i / 4) * (H - T - B);
      el('line', { class: 'grid', x1: L, x2: W - R, y1: y, y2: y }, svg);
      el('text', { class: 'tick', x: L - 4, y: y + 3, 'text-anchor': 'end' }, svg).textContent = fmt(logScale ? Math.pow(10, yv) : yv);
      const xv = x0 + ((x1 - x0) * i) / 4;
      el('text', { class: 'tick', x: sx(xv), y: H - 6, 'text-anchor': 'middle' }, svg).textContent = fmt(Math.round(xv));
    }
    el('line', { class: 'axis', x1: L, x2: L, y1: T, y2: H - B }, svg);
    el('line', { class: 'axis', x1: L, x2: W - R, y1: H - B, y2: H - B }, svg);
    const lastValues = [];
    for (const [run, pts] of series) {
      const sorted = pts.slice().sort((a, b) => a[0] - b[0]);
      el('polyline', {
        class: 'curve', stroke: color(run), 'data-run': run, 'data-tag': tag, 'data-points': sorted.length,
        points: sorted.map((p) => sx(p[0]).toFixed(1) + ',' + sy(p[1]).toFixed(1)).join(' '),
      }, svg);
      lastValues.push(fmt(sorted[sorted.length - 1][1]));
    }
    last.textContent = lastValues.join(' / ');
    return fig;
  }

  function draw() {
    pending = false;
    const tags = new Set();
    for (const run in data) for (const tag in data[run]) tags.add(tag);
    const runsEl = document.getElementById('runs');
    runsEl.textContent = '';
    for (const run of Object.keys(data).sort()) {
      const label = document.createElement('label');
      const box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = !hidden.has(run);
      box.addEventListener('change', () => { if (box.checked) hidden.delete(run); else hidden.add(run); schedule(); });
      const sw = document.createElement('span');
      sw.className = 'swatch';
      sw.style.background = color(run);
      label.append(box, sw, run);
      runsEl.appendChild(label);
    }
    const logy = document.getElementById('logy').checked;
    for (const [id, pick] of [['losses', isLoss], ['diagnostics', (t) => !isLoss(t)]]) {
      const box = document.querySelector('#' + id + ' .charts');
      box.textContent = '';
      const rank = (t) => ['optimizer/', 'train/', 'memory/'].findIndex((p) => t.startsWith(p)) >>> 0; // the rest last
      const mine = [...tags].filter(pick).sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
      if (mine.length === 0) {
        const p = document.createElement('p');
        p.className = 'empty';
        p.textContent = Object.keys(data).length === 0 ? 'No runs yet: waiting for event files.' : 'Nothing logged here yet.';
        box.appendChild(p);
      }
      for (const tag of mine) box.appendChild(chart(tag, id === 'losses' && logy));
    }
  }
  function schedule() {
    if (!pending) { pending = true; requestAnimationFrame(draw); }
  }
  document.getElementById('logy').addEventListener('change', schedule);

  const status = document.getElementById('status');
  const source = new EventSource('/api/events');
  source.addEventListener('snapshot', (e) => {
    const s = JSON.parse(e.data);
    for (const k of Object.keys(data)) delete data[k];
    merge(s.runs);
    document.getElementById('logdir').textContent = s.logDir;
    status.className = 'live';
    status.textContent = 'live';
    schedule();
  });
  source.addEventListener('points', (e) => {
    merge(JSON.parse(e.data));
    status.className = 'live';
    status.textContent = 'live, updated ' + new Date().toLocaleTimeString();
    schedule();
  });
  source.addEventListener('error', () => {
    status.className = 'down';
    status.textContent = 'reconnecting';
  });
  schedule();
})();
</script>
</body>
</html>
`;
