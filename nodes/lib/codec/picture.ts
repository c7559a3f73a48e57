/**
 * Pictures made without a camera: the test-pattern camera's frames and the "camera offline" card. Drawing
 * happens straight into a YCbCr 4:2:0 canvas (no colour conversion per frame), text uses a built-in 5x7
 * font, and jpeg-encoder.ts turns the canvas into a JPEG.
 */
import type { Size } from "../settings";
import { encodeJpeg, type YccImage } from "./jpeg-encoder";

export interface RenderOptions {
  width: number;
  height: number;
  /** JPEG quality 1..100; default 70. */
  quality?: number;
}

const MAX_WIDTH = 3840;
const MAX_HEIGHT = 2160;
const MIN_SIDE = 16;

function evenClamp(v: number, max: number): number {
  if (!Number.isFinite(v)) return MIN_SIDE;
  return Math.min(max, Math.max(MIN_SIDE, Math.floor(v))) & ~1;
}

/** A size clamped to what the pictures are drawn at: 16..3840 x 16..2160, rounded down to even numbers. */
export function pictureSize(size: Size): Size {
  return { width: evenClamp(size.width, MAX_WIDTH), height: evenClamp(size.height, MAX_HEIGHT) };
}

// ---------------------------------------------------------------------------------------------------------
// Canvas

interface Ycc {
  y: number;
  cb: number;
  cr: number;
}

function rgb(r: number, g: number, b: number): Ycc {
  const clamp = (v: number) => Math.max(0, Math.min(255, Math.round(v)));
  return {
    y: clamp(0.299 * r + 0.587 * g + 0.114 * b),
    cb: clamp(-0.168736 * r - 0.331264 * g + 0.5 * b + 128),
    cr: clamp(0.5 * r - 0.418688 * g - 0.081312 * b + 128),
  };
}

/** A YCbCr 4:2:0 image padded to whole 16x16 blocks; drawing clips to the visible size. */
class Canvas implements YccImage {
  readonly stride: number;
  readonly rows: number;
  readonly y: Uint8Array;
  readonly cb: Uint8Array;
  readonly cr: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.stride = Math.ceil(width / 16) * 16;
    this.rows = Math.ceil(height / 16) * 16;
    this.y = new Uint8Array(this.stride * this.rows);
    this.cb = new Uint8Array((this.stride * this.rows) / 4);
    this.cr = new Uint8Array((this.stride * this.rows) / 4);
  }

  copyFrom(other: Canvas): void {
    this.y.set(other.y);
    this.cb.set(other.cb);
    this.cr.set(other.cr);
  }

  fillRect(x: number, y: number, w: number, h: number, c: Ycc): void {
    const x0 = Math.max(0, Math.round(x));
    const y0 = Math.max(0, Math.round(y));
    const x1 = Math.min(this.width, Math.round(x + w));
    const y1 = Math.min(this.height, Math.round(y + h));
    if (x1 <= x0 || y1 <= y0) return;
    for (let row = y0; row < y1; row++) this.y.fill(c.y, row * this.stride + x0, row * this.stride + x1);
    const cs = this.stride >> 1;
    const cx0 = x0 >> 1;
    const cx1 = ((x1 - 1) >> 1) + 1;
    for (let row = y0 >> 1; row <= (y1 - 1) >> 1; row++) {
      this.cb.fill(c.cb, row * cs + cx0, row * cs + cx1);
      this.cr.fill(c.cr, row * cs + cx0, row * cs + cx1);
    }
  }

  /** Luma only: text is drawn on neutral (grey) panels, where chroma is already 128. */
  fillLuma(x0: number, y0: number, x1: number, y1: number, luma: number): void {
    x0 = Math.max(0, x0);
    x1 = Math.min(this.width, x1);
    y1 = Math.min(this.height, y1);
    if (x1 <= x0) return;
    for (let row = Math.max(0, y0); row < y1; row++)
      this.y.fill(luma, row * this.stride + x0, row * this.stride + x1);
  }

  /** Repeats the last visible column and row into the padding so edge blocks compress cleanly. */
  padEdges(): void {
    const pad = (plane: Uint8Array, stride: number, w: number, h: number, rows: number) => {
      for (let row = 0; row < h; row++)
        plane.fill(plane[row * stride + w - 1], row * stride + w, (row + 1) * stride);
      for (let row = h; row < rows; row++) plane.copyWithin(row * stride, (h - 1) * stride, h * stride);
    };
    pad(this.y, this.stride, this.width, this.height, this.rows);
    const cw = (this.width + 1) >> 1;
    const ch = (this.height + 1) >> 1;
    pad(this.cb, this.stride >> 1, cw, ch, this.rows >> 1);
    pad(this.cr, this.stride >> 1, cw, ch, this.rows >> 1);
  }
}

/** "0a1f" -> [0x0a, 0x1f]: the font below is written compactly as hex. */
function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
}

// ---------------------------------------------------------------------------------------------------------
// 5x7 font: printable ASCII 32..126, 7 rows per glyph, 2 hex digits per row, bit 4 = leftmost pixel.

const FONT_HEX =
  "00000000000000 04040404040004 0a0a0a00000000 0a0a1f0a1f0a0a 040f140e051e04 18190204081303 0c12140815120d" +
  "04040800000000 02040808080402 08040202020408 0004150e150400 0004041f040400 000000000c0408 0000001f000000" +
  "00000000000c0c 00010204081000 0e11131519110e 040c040404040e 0e11010204081f 1f02040201110e 02060a121f0202" +
  "1f101e0101110e 0608101e11110e 1f010204080808 0e11110e11110e 0e11110f01020c 000c0c000c0c00 000c0c000c0408" +
  "02040810080402 00001f001f0000 08040201020408 0e110102040004 0e11010d15150e 0e11111f111111 1e11111e11111e" +
  "0e11101010110e 1c12111111121c 1f10101e10101f 1f10101e101010 0e11101711110f 1111111f111111 0e04040404040e" +
  "0702020202120c 11121418141211 1010101010101f 111b1515111111 11111915131111 0e11111111110e 1e11111e101010" +
  "0e11111115120d 1e11111e141211 0f10100e01011e 1f040404040404 1111111111110e 11111111110a04 1111111515150a" +
  "11110a040a1111 11110a04040404 1f01020408101f 0e08080808080e 00100804020100 0e02020202020e 040a1100000000" +
  "0000000000001f 08040200000000 00000e010f110f 1010161911111e 00000e1010110e 01010d1311110f 00000e111f100e" +
  "0609081c080808 000f11110f010e 10101619111111 04000c0404040e 0200060202120c 10101214181412 0c04040404040e" +
  "00001a15151111 00001619111111 00000e1111110e 00001e111e1010 00000d130f0101 00001619101010 00000e100e011e" +
  "08081c08080906 0000111111130d 00001111110a04 0000111115150a 0000110a040a11 000011110f010e 00001f0204081f" +
  "02040408040402 04040404040404 08040402040408 00000815020000";

const GLYPHS = hex(FONT_HEX.replace(/ /g, ""));
const GLYPH_ROWS = 7;
/** A character cell is 6x10 font pixels: 5x7 glyph, 1 column and 3 rows of space. */
const CELL_W = 6;
const LINE_H = 10;

function textWidth(chars: number, scale: number): number {
  return chars > 0 ? (chars * CELL_W - 1) * scale : 0;
}

function drawText(canvas: Canvas, text: string, x: number, y: number, scale: number, luma: number): void {
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code < 32 || code > 126) code = 63; // "?"
    const gx = x + i * CELL_W * scale;
    for (let r = 0; r < GLYPH_ROWS; r++) {
      const bits = GLYPHS[(code - 32) * GLYPH_ROWS + r];
      // Fill runs of set pixels in one go.
      for (let c = 0; c < 5;) {
        if (!(bits & (0x10 >> c))) {
          c++;
          continue;
        }
        let end = c + 1;
        while (end < 5 && bits & (0x10 >> end)) end++;
        const py = y + r * scale;
        canvas.fillLuma(gx + c * scale, py, gx + end * scale, py + scale, luma);
        c = end;
      }
    }
  }
}

/** The largest scale (<= max) at which `text` fits in `room` pixels, and the text cut to fit at scale 1. */
function fitText(text: string, room: number, max: number): { text: string; scale: number } {
  if (text.length === 0) return { text, scale: max };
  const scale = Math.max(1, Math.min(max, Math.floor(room / (text.length * CELL_W - 1))));
  const chars = Math.max(0, Math.floor((room / scale + 1) / CELL_W));
  return { text: text.length > chars ? text.slice(0, chars) : text, scale };
}

// ---------------------------------------------------------------------------------------------------------
// Pictures

/** Static backgrounds and scratch canvases, per kind and size; a handful of sizes at most in practice. */
const canvases = new Map<string, Canvas>();

function cachedCanvas(key: string, size: Size, draw?: (c: Canvas) => void): Canvas {
  const k = `${key}:${size.width}x${size.height}`;
  let canvas = canvases.get(k);
  if (!canvas) {
    if (canvases.size >= 24) canvases.clear();
    canvas = new Canvas(size.width, size.height);
    if (draw) {
      draw(canvas);
      canvas.padEdges();
    }
    canvases.set(k, canvas);
  }
  return canvas;
}

const pad2 = (n: number) => String(n).padStart(2, "0");

/** Local wall-clock time as HH:MM:SS.mmm. */
function clockText(t: Date): string {
  return `${pad2(t.getHours())}:${pad2(t.getMinutes())}:${pad2(t.getSeconds())}.${String(t.getMilliseconds()).padStart(3, "0")}`;
}

/** Local date and time as YYYY-MM-DD HH:MM:SS. */
function dateTimeText(t: Date): string {
  const date = `${t.getFullYear()}-${pad2(t.getMonth() + 1)}-${pad2(t.getDate())}`;
  return `${date} ${pad2(t.getHours())}:${pad2(t.getMinutes())}:${pad2(t.getSeconds())}`;
}

/** Test-pattern layout, as fractions of the height: colour bars, text panel, then the grey ramp. */
const BARS_END = 0.4;
const PANEL_END = 0.78;
const BAR_COLOURS = [
  rgb(192, 192, 192),
  rgb(192, 192, 0),
  rgb(0, 192, 192),
  rgb(0, 192, 0),
  rgb(192, 0, 192),
  rgb(192, 0, 0),
  rgb(0, 0, 192),
];
const PANEL = rgb(24, 24, 24);
const BOX = rgb(255, 96, 0);
const BOX_EDGE = rgb(0, 0, 0);
const WHITE_LUMA = 240;
/** The box crosses the ramp and back in this many milliseconds. */
const BOX_PERIOD_MS = 4000;

function drawPatternBackground(c: Canvas): void {
  const { width: w, height: h } = c;
  const barsEnd = Math.round(h * BARS_END);
  const panelEnd = Math.round(h * PANEL_END);
  BAR_COLOURS.forEach((colour, i) => {
    const x0 = Math.round((i * w) / BAR_COLOURS.length);
    const x1 = Math.round(((i + 1) * w) / BAR_COLOURS.length);
    c.fillRect(x0, 0, x1 - x0, barsEnd, colour);
  });
  c.fillRect(0, barsEnd, w, panelEnd - barsEnd, PANEL);
  for (let x = 0; x < w; x++) {
    const v = Math.round((x * 255) / (w - 1));
    c.fillRect(x, panelEnd, 1, h - panelEnd, { y: v, cb: 128, cr: 128 });
  }
}

/**
 * Draws `lines` centred in the band [top, bottom), each at the largest scale up to `maxScale` that fits, or
 * all at the scale that fits the longest when `uniform`.
 */
function drawCentredLines(
  c: Canvas,
  lines: string[],
  top: number,
  bottom: number,
  maxScale: number,
  luma: (i: number) => number,
  uniform = false,
): void {
  if (lines.length === 0) return;
  const room = c.width - 2 * Math.max(2, Math.round(c.width * 0.04));
  if (uniform) maxScale = Math.min(...lines.map((line) => fitText(line, room, maxScale).scale));
  const pitch = LINE_H * maxScale;
  let y = Math.round((top + bottom - (lines.length * pitch - 3 * maxScale)) / 2);
  lines.forEach((line, i) => {
    const fit = fitText(line, room, maxScale);
    const x = Math.round((c.width - textWidth(fit.text.length, fit.scale)) / 2);
    const dy = Math.round(((maxScale - fit.scale) * GLYPH_ROWS) / 2);
    drawText(c, fit.text, x, y + dy, fit.scale, luma(i));
    y += pitch;
  });
}

/**
 * A live-looking test frame: colour bars across the top 40 %, a dark panel (40..78 % of the height) with
 * three centred text lines (the camera label, the local wall-clock time HH:MM:SS.mmm and `#seq`), and a
 * grey ramp at the bottom that a box crosses every 4 s. Sizes are clamped by pictureSize.
 */
export function renderTestPattern(opts: RenderOptions & { label: string; time: Date; seq: number }): Buffer {
  const size = pictureSize(opts);
  const background = cachedCanvas("pattern", size, drawPatternBackground);
  const c = cachedCanvas("scratch", size);
  c.copyFrom(background);
  const { width: w, height: h } = size;

  const panelTop = Math.round(h * BARS_END);
  const panelEnd = Math.round(h * PANEL_END);
  const scale = Math.max(1, Math.floor((panelEnd - panelTop) / (3 * LINE_H + 1)));
  drawCentredLines(
    c,
    [opts.label, clockText(opts.time), `#${opts.seq}`],
    panelTop,
    panelEnd,
    scale,
    () => WHITE_LUMA,
  );

  const box = Math.max(4, Math.round((h - panelEnd) * 0.6));
  const edge = Math.max(1, Math.round(box / 12));
  const travel = Math.max(0, w - box - 2);
  const phase = ((opts.time.getTime() % BOX_PERIOD_MS) + BOX_PERIOD_MS) % BOX_PERIOD_MS;
  const tri = phase < BOX_PERIOD_MS / 2 ? phase / (BOX_PERIOD_MS / 2) : 2 - phase / (BOX_PERIOD_MS / 2);
  const bx = 1 + Math.round(tri * travel);
  const by = panelEnd + Math.round((h - panelEnd - box) / 2);
  c.fillRect(bx, by, box, box, BOX_EDGE);
  c.fillRect(bx + edge, by + edge, box - 2 * edge, box - 2 * edge, BOX);
  return encodeJpeg(c, opts.quality);
}

const CARD = rgb(28, 28, 28);
const CARD_EDGE = rgb(72, 72, 72);

function drawCardBackground(c: Canvas): void {
  const edge = Math.max(1, Math.round(Math.min(c.width, c.height) / 120));
  c.fillRect(0, 0, c.width, c.height, CARD_EDGE);
  c.fillRect(edge, edge, c.width - 2 * edge, c.height - 2 * edge, CARD);
}

/**
 * A dark card with centred text lines (the first in white, the rest light grey), e.g.
 * ["camera offline", "front door", "2026-11-24 10:42:07"]. With `time`, a small footer shows it as local
 * YYYY-MM-DD HH:MM:SS, so a placeholder refreshed every second visibly ticks.
 */
export function renderCard(opts: RenderOptions & { lines: string[]; time?: Date }): Buffer {
  const size = pictureSize(opts);
  const background = cachedCanvas("card", size, drawCardBackground);
  const c = cachedCanvas("scratch", size);
  c.copyFrom(background);
  const { height: h } = size;
  const footer = opts.time ? Math.max(1, Math.floor(h / 240)) : 0;
  const footerTop = h - footer * (LINE_H + 4);
  const maxScale = Math.max(
    1,
    Math.min(Math.floor(h / 48), Math.floor(footerTop / (opts.lines.length * LINE_H + 4))),
  );
  drawCentredLines(c, opts.lines, 0, footerTop, maxScale, (i) => (i === 0 ? WHITE_LUMA : 176), true);
  if (opts.time) drawCentredLines(c, [dateTimeText(opts.time)], footerTop, h - 2 * footer, footer, () => 150);
  return encodeJpeg(c, opts.quality);
}
