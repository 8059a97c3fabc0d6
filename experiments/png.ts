/**
 * PNG output for the charts of svg.ts without any dependency: a small rasteriser for the shapes of a `Drawing`
 * (anti-aliased lines and polylines, filled translucent polygons, rectangles, text in the 5x7 bitmap font of
 * font.ts) and a PNG encoder (8-bit RGB, deflate from node:zlib).
 */
import { deflateSync } from 'node:zlib';
import { chartDrawing, type ChartOptions, type Clip, type Drawing, type Panel } from './svg.js';
import { glyph, GLYPH_ADVANCE, GLYPH_ASCENT } from './font.js';

const NAMED: Record<string, [number, number, number]> = { white: [255, 255, 255], black: [0, 0, 0], none: [0, 0, 0] };

function parseColor(c: string): [number, number, number] {
  if (NAMED[c]) return NAMED[c]!;
  const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(c);
  if (!m) throw new RangeError(`Expected a colour as #rgb, #rrggbb, white or black but received ${JSON.stringify(c)}`);
  const h = m[1]!.length === 3 ? [...m[1]!].map((d) => d + d).join('') : m[1]!;
  return [parseInt(h.slice(0, 2), 16), parseInt(h.slice(2, 4), 16), parseInt(h.slice(4, 6), 16)];
}

/** An RGB image that shapes are painted onto in drawing units times `scale`. */
export class Raster {
  readonly width: number;
  readonly height: number;
  readonly scale: number;
  /** Row-major RGB bytes. */
  readonly data: Uint8Array;
  private readonly mask: Float32Array;

  constructor(width: number, height: number, scale = 1) {
    this.scale = scale;
    this.width = Math.max(1, Math.round(width * scale));
    this.height = Math.max(1, Math.round(height * scale));
    this.data = new Uint8Array(this.width * this.height * 3).fill(255);
    this.mask = new Float32Array(this.width * this.height);
  }

  /** Pixel bounds [x0, y0, x1, y1) of a clip rectangle (drawing units), the whole image without one. */
  private bounds(clip?: Clip): [number, number, number, number] {
    if (!clip) return [0, 0, this.width, this.height];
    const s = this.scale;
    return [
      Math.max(0, Math.floor(clip.x * s)),
      Math.max(0, Math.floor(clip.y * s)),
      Math.min(this.width, Math.ceil((clip.x + clip.w) * s)),
      Math.min(this.height, Math.ceil((clip.y + clip.h) * s)),
    ];
  }

  private blend(i: number, rgb: [number, number, number], a: number): void {
    if (a <= 0) return;
    if (a > 1) a = 1;
    const d = this.data,
      k = i * 3;
    d[k] = Math.round(d[k]! + (rgb[0] - d[k]!) * a);
    d[k + 1] = Math.round(d[k + 1]! + (rgb[1] - d[k + 1]!) * a);
    d[k + 2] = Math.round(d[k + 2]! + (rgb[2] - d[k + 2]!) * a);
  }

  /** A filled and/or outlined rectangle (1-pixel outline, as a 1-unit SVG stroke at scale 1). */
  rect(x: number, y: number, w: number, h: number, fill?: string, stroke?: string): void {
    if (fill && fill !== 'none') {
      const rgb = parseColor(fill);
      const [bx0, by0, bx1, by1] = this.bounds({ x, y, w, h });
      for (let py = by0; py < by1; py++) for (let px = bx0; px < bx1; px++) this.blend(py * this.width + px, rgb, 1);
    }
    if (stroke) {
      const pts: [number, number][] = [
        [x, y],
        [x + w, y],
        [x + w, y + h],
        [x, y + h],
        [x, y],
      ];
      this.polyline(pts, stroke, 1);
    }
  }

  /** An anti-aliased polyline of the given width (drawing units); overlapping segments are painted once. */
  polyline(points: [number, number][], color: string, width: number, clip?: Clip): void {
    if (points.length === 0) return;
    const s = this.scale,
      half = (width * s) / 2,
      rgb = parseColor(color);
    const [bx0, by0, bx1, by1] = this.bounds(clip);
    const mask = this.mask;
    let mx0 = Infinity,
      my0 = Infinity,
      mx1 = -Infinity,
      my1 = -Infinity;
    const segs = points.length === 1 ? [[points[0]!, points[0]!]] : points.slice(1).map((p, i) => [points[i]!, p]);
    for (const [[ax0, ay0], [bxx, byy]] of segs as [[number, number], [number, number]][]) {
      const ax = ax0 * s,
        ay = ay0 * s,
        bx = bxx * s,
        by = byy * s;
      const x0 = Math.max(bx0, Math.floor(Math.min(ax, bx) - half - 1)),
        x1 = Math.min(bx1, Math.ceil(Math.max(ax, bx) + half + 1));
      const y0 = Math.max(by0, Math.floor(Math.min(ay, by) - half - 1)),
        y1 = Math.min(by1, Math.ceil(Math.max(ay, by) + half + 1));
      if (x0 >= x1 || y0 >= y1) continue;
      mx0 = Math.min(mx0, x0);
      my0 = Math.min(my0, y0);
      mx1 = Math.max(mx1, x1);
      my1 = Math.max(my1, y1);
      const dx = bx - ax,
        dy = by - ay,
        len2 = dx * dx + dy * dy;
      for (let py = y0; py < y1; py++)
        for (let px = x0; px < x1; px++) {
          const cx = px + 0.5 - ax,
            cy = py + 0.5 - ay;
          const t = len2 > 0 ? Math.min(1, Math.max(0, (cx * dx + cy * dy) / len2)) : 0;
          const ex = cx - t * dx,
            ey = cy - t * dy;
          const cov = Math.min(1, Math.max(0, half + 0.5 - Math.sqrt(ex * ex + ey * ey)));
          const i = py * this.width + px;
          if (cov > mask[i]!) mask[i] = cov;
        }
    }
    for (let py = my0; py < my1; py++)
      for (let px = mx0; px < mx1; px++) {
        const i = py * this.width + px;
        if (mask[i]! > 0) {
          this.blend(i, rgb, mask[i]!);
          mask[i] = 0;
        }
      }
  }

  /** A polygon filled by the even-odd rule with the given opacity, anti-aliased by 4 sub-scanlines per row. */
  polygon(points: [number, number][], color: string, opacity: number, clip?: Clip): void {
    if (points.length < 3) return;
    const s = this.scale,
      rgb = parseColor(color);
    const [bx0, by0, bx1, by1] = this.bounds(clip);
    const P = points.map(([x, y]) => [x * s, y * s] as const);
    const ymin = Math.max(by0, Math.floor(Math.min(...P.map((p) => p[1])))),
      ymax = Math.min(by1, Math.ceil(Math.max(...P.map((p) => p[1]))));
    const row = new Float32Array(this.width);
    const SUB = 4;
    for (let py = ymin; py < ymax; py++) {
      row.fill(0);
      for (let k = 0; k < SUB; k++) {
        const y = py + (k + 0.5) / SUB;
        const xs: number[] = [];
        for (let i = 0; i < P.length; i++) {
          const [x1, y1] = P[i]!,
            [x2, y2] = P[(i + 1) % P.length]!;
          if ((y1 <= y && y2 > y) || (y2 <= y && y1 > y)) xs.push(x1 + ((y - y1) / (y2 - y1)) * (x2 - x1));
        }
        xs.sort((a, b) => a - b);
        for (let j = 0; j + 1 < xs.length; j += 2) {
          const xa = Math.max(bx0, xs[j]!),
            xb = Math.min(bx1, xs[j + 1]!);
          if (xb <= xa) continue;
          for (let px = Math.floor(xa); px < Math.ceil(xb); px++)
            row[px]! += (Math.min(xb, px + 1) - Math.max(xa, px)) / SUB;
        }
      }
      for (let px = bx0; px < bx1; px++) if (row[px]! > 0) this.blend(py * this.width + px, rgb, row[px]! * opacity);
    }
  }

  /**
   * Text in the bitmap font with its baseline at y (drawing units), anchored at its start, middle or end. The glyph
   * pixel is an integer multiple of the image pixel, chosen so that a size-11 label is about as wide as in the SVG.
   * `rotate`: the text runs bottom to top about (x, y), as SVG's rotate(-90).
   */
  text(
    x: number,
    y: number,
    str: string,
    {
      anchor = 'start',
      size = 11,
      rotate = false,
      color = '#000',
    }: { anchor?: 'start' | 'middle' | 'end'; size?: number; rotate?: boolean; color?: string } = {},
  ): void {
    const s = this.scale,
      k = Math.max(1, Math.round((size * s) / 11)),
      rgb = parseColor(color);
    const chars = [...str];
    const w = (chars.length * GLYPH_ADVANCE - 1) * k;
    const u0 = anchor === 'start' ? 0 : anchor === 'middle' ? -w / 2 : -w;
    const cx = x * s,
      cy = y * s;
    chars.forEach((ch, ci) => {
      for (const [gx, gy] of glyph(ch)) {
        const u = Math.round(u0 + (ci * GLYPH_ADVANCE + gx) * k),
          v = (gy - GLYPH_ASCENT) * k;
        for (let a = 0; a < k; a++)
          for (let b = 0; b < k; b++) {
            // text frame (u right, v down) -> image; rotate(-90): (u, v) -> (v, -u)
            const px = Math.round(rotate ? cx + v + b : cx + u + a);
            const py = Math.round(rotate ? cy - (u + a) - 1 : cy + v + b);
            if (px >= 0 && px < this.width && py >= 0 && py < this.height) this.blend(py * this.width + px, rgb, 1);
          }
      }
    });
  }

  /** Paints every shape of a drawing, in order. */
  draw(d: Drawing): this {
    for (const sh of d.shapes) {
      switch (sh.type) {
        case 'rect':
          this.rect(sh.x, sh.y, sh.w, sh.h, sh.fill, sh.stroke);
          break;
        case 'line':
          this.polyline(
            [
              [sh.x1, sh.y1],
              [sh.x2, sh.y2],
            ],
            sh.stroke,
            sh.width,
          );
          break;
        case 'polyline':
          this.polyline(sh.points, sh.stroke, sh.width, sh.clip);
          break;
        case 'polygon':
          this.polygon(sh.points, sh.fill, sh.opacity, sh.clip);
          break;
        case 'text':
          this.text(sh.x, sh.y, sh.text, { anchor: sh.anchor, size: sh.size, rotate: sh.rotate });
          break;
      }
    }
    return this;
  }

  /** The image as a PNG file. */
  toPng(): Buffer {
    return encodePng(this.width, this.height, this.data);
  }
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309, as PNG chunks use). */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, body: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.write(type, 4, 'ascii');
  Buffer.from(body.buffer, body.byteOffset, body.byteLength).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + body.length)), 8 + body.length);
  return out;
}

/** Encodes 8-bit RGB pixels (row-major, width * height * 3 bytes) as a PNG file. */
export function encodePng(width: number, height: number, rgb: Uint8Array): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1)
    throw new RangeError(`Expected positive integer PNG dimensions but received ${width} x ${height}`);
  if (rgb.length !== width * height * 3)
    throw new RangeError(
      `Expected ${width * height * 3} RGB bytes for ${width} x ${height} but received ${rgb.length}`,
    );
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  // compression, filter and interlace methods: 0
  const raw = Buffer.alloc(height * (width * 3 + 1));
  for (let y = 0; y < height; y++)
    Buffer.from(rgb.buffer, rgb.byteOffset + y * width * 3, width * 3).copy(raw, y * (width * 3 + 1) + 1); // filter 0
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw, { level: 9 })),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** The chart of `lineChart` as a PNG, `scale` image pixels per drawing unit (default 2, for a sharp image). */
export function lineChartPng(panels: Panel[], options: ChartOptions & { scale?: number } = {}): Buffer {
  const { scale = 2, ...rest } = options;
  const d = chartDrawing(panels, rest);
  return new Raster(d.width, d.height, scale).draw(d).toPng();
}
