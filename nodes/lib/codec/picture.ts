/**
 * Pictures made without a camera: the test-pattern camera's frames and the "camera offline" card. Drawing
 * happens straight into a YCbCr 4:2:0 canvas (no colour conversion per frame), text uses a built-in 5x7
 * font, and a small baseline JPEG encoder with tables built once per quality turns the canvas into a JPEG.
 * (jpeg-js rebuilds 65535-entry tables on every encode() call, ~40 ms, which alone would cap a 640x480
 * test pattern near 20 fps on a whole core.)
 */

export interface RenderOptions {
  width: number;
  height: number;
  /** JPEG quality 1..100; default 70. */
  quality?: number;
}

export interface Size {
  width: number;
  height: number;
}

const MAX_WIDTH = 3840;
const MAX_HEIGHT = 2160;
const MIN_SIDE = 16;
const DEFAULT_QUALITY = 70;

function evenClamp(v: number, max: number): number {
  if (!Number.isFinite(v)) return MIN_SIDE;
  return Math.min(max, Math.max(MIN_SIDE, Math.floor(v))) & ~1;
}

/** "640x480" -> {640, 480}, clamped to 16..3840 x 16..2160 and rounded down to even numbers. */
export function parseSize(text: string | undefined, fallback: Size): Size {
  const m = /^\s*(\d{1,6})\s*[xX×*]\s*(\d{1,6})\s*$/.exec(text ?? "");
  const size = m ? { width: Number(m[1]), height: Number(m[2]) } : fallback;
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
class Canvas {
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

/** "0a1f" -> [0x0a, 0x1f]: the font and the JPEG tables below are written compactly as hex. */
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
// Baseline JPEG encoder (ITU T.81): 4:2:0, standard Annex K tables, float AAN DCT.

/** ZIGZAG[natural index] = position in the zig-zag scan. */
const ZIGZAG = Uint8Array.from([
  0, 1, 5, 6, 14, 15, 27, 28, 2, 4, 7, 13, 16, 26, 29, 42, 3, 8, 12, 17, 25, 30, 41, 43, 9, 11, 18, 24, 31,
  40, 44, 53, 10, 19, 23, 32, 39, 45, 52, 54, 20, 22, 33, 38, 46, 51, 55, 60, 21, 34, 37, 47, 50, 56, 59, 61,
  35, 36, 48, 49, 57, 58, 62, 63,
]);

const LUMA_QUANT = Uint8Array.from([
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22,
  29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103,
  121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]);
const CHROMA_QUANT = Uint8Array.from([
  17,
  18,
  24,
  47,
  99,
  99,
  99,
  99,
  18,
  21,
  26,
  66,
  99,
  99,
  99,
  99,
  24,
  26,
  56,
  99,
  99,
  99,
  99,
  99,
  47,
  66,
  99,
  99,
  99,
  99,
  99,
  99,
  ...new Array<number>(32).fill(99),
]);

/** Huffman table specs: 16 code-length counts, then the symbols (Annex K.3). */
const DC_LUMA = hex("00010501010101010100000000000000" + "000102030405060708090a0b");
const DC_CHROMA = hex("00030101010101010101010000000000" + "000102030405060708090a0b");
const AC_LUMA = hex(
  "0002010303020403050504040000017d" +
    "01020300041105122131410613516107227114328191a1082342b1c11552d1f0" +
    "2433627282090a161718191a25262728292a3435363738393a43444546474849" +
    "4a535455565758595a636465666768696a737475767778797a83848586878889" +
    "8a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5" +
    "c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8" +
    "f9fa",
);
const AC_CHROMA = hex(
  "00020102040403040705040400010277" +
    "000102031104052131061241510761711322328108144291a1b1c109233352f0" +
    "156272d10a162434e125f11718191a262728292a35363738393a434445464748" +
    "494a535455565758595a636465666768696a737475767778797a828384858687" +
    "88898a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3" +
    "c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8" +
    "f9fa",
);

interface HuffCodes {
  codes: Uint16Array;
  sizes: Uint8Array;
}

function huffCodes(spec: Uint8Array): HuffCodes {
  const codes = new Uint16Array(256);
  const sizes = new Uint8Array(256);
  let code = 0;
  let k = 16;
  for (let len = 1; len <= 16; len++) {
    for (let i = 0; i < spec[len - 1]; i++) {
      codes[spec[k]] = code++;
      sizes[spec[k++]] = len;
    }
    code <<= 1;
  }
  return { codes, sizes };
}

const HUFF = {
  dcY: huffCodes(DC_LUMA),
  acY: huffCodes(AC_LUMA),
  dcC: huffCodes(DC_CHROMA),
  acC: huffCodes(AC_CHROMA),
};

function segment(marker: number, body: number[] | Uint8Array): Buffer {
  const seg = Buffer.alloc(4 + body.length);
  seg[0] = 0xff;
  seg[1] = marker;
  seg.writeUInt16BE(body.length + 2, 2);
  seg.set(body, 4);
  return seg;
}

const HEAD = Buffer.concat([
  Buffer.from([0xff, 0xd8]),
  segment(0xe0, [0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]), // JFIF 1.01, aspect 1:1
]);
const DHT = segment(0xc4, [
  ...[0x00, ...DC_LUMA],
  ...[0x10, ...AC_LUMA],
  ...[0x01, ...DC_CHROMA],
  ...[0x11, ...AC_CHROMA],
]);
const SOS = segment(0xda, [3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
const EOI = Buffer.from([0xff, 0xd9]);
const AAN_SCALE = [1.0, 1.387039845, 1.306562965, 1.175875602, 1.0, 0.785694958, 0.5411961, 0.275899379];

class JpegEncoder {
  private readonly dqt: Buffer;
  /** Per natural-order coefficient: 1 / (quantizer * AAN scale * 8). */
  private readonly fdtblY = new Float64Array(64);
  private readonly fdtblC = new Float64Array(64);
  private readonly d = new Float64Array(64);
  private readonly zz = new Int32Array(64);
  private out = Buffer.allocUnsafe(64 * 1024);
  private o = 0;
  private acc = 0;
  private nbits = 0;

  constructor(quality: number) {
    const scale = quality < 50 ? Math.floor(5000 / quality) : 200 - quality * 2;
    const table = (base: Uint8Array, fdtbl: Float64Array): number[] => {
      const zz = new Array<number>(64);
      for (let i = 0; i < 64; i++) {
        const q = Math.min(255, Math.max(1, Math.floor((base[i] * scale + 50) / 100)));
        zz[ZIGZAG[i]] = q;
        fdtbl[i] = 1 / (q * AAN_SCALE[i >> 3] * AAN_SCALE[i & 7] * 8);
      }
      return zz;
    };
    this.dqt = segment(0xdb, [0, ...table(LUMA_QUANT, this.fdtblY), 1, ...table(CHROMA_QUANT, this.fdtblC)]);
  }

  encode(canvas: Canvas): Buffer {
    const { stride, rows } = canvas;
    const cs = stride >> 1;
    const { width: w, height: h } = canvas;
    // 8-bit samples; Y sampled 2x2 with quant table 0, Cb and Cr 1x1 with table 1.
    const sof = segment(0xc0, [8, h >> 8, h & 255, w >> 8, w & 255, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    this.o = this.acc = this.nbits = 0;
    let dcY = 0;
    let dcCb = 0;
    let dcCr = 0;
    const { dcY: hdY, acY: haY, dcC: hdC, acC: haC } = HUFF;
    for (let my = 0; my < rows; my += 16) {
      // Worst case is well under 1 KB per 8x8 block; 6 blocks per 16x16 MCU.
      this.reserve((stride / 16) * 6 * 1024);
      for (let mx = 0; mx < stride; mx += 16) {
        const yo = my * stride + mx;
        dcY = this.block(canvas.y, stride, yo, this.fdtblY, dcY, hdY, haY);
        dcY = this.block(canvas.y, stride, yo + 8, this.fdtblY, dcY, hdY, haY);
        dcY = this.block(canvas.y, stride, yo + 8 * stride, this.fdtblY, dcY, hdY, haY);
        dcY = this.block(canvas.y, stride, yo + 8 * stride + 8, this.fdtblY, dcY, hdY, haY);
        const co = (my >> 1) * cs + (mx >> 1);
        dcCb = this.block(canvas.cb, cs, co, this.fdtblC, dcCb, hdC, haC);
        dcCr = this.block(canvas.cr, cs, co, this.fdtblC, dcCr, hdC, haC);
      }
    }
    if (this.nbits > 0) this.put((1 << (8 - this.nbits)) - 1, 8 - this.nbits);
    return Buffer.concat([HEAD, this.dqt, sof, DHT, SOS, this.out.subarray(0, this.o), EOI]);
  }

  private reserve(bytes: number): void {
    if (this.o + bytes <= this.out.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.out.length * 2, this.o + bytes));
    this.out.copy(next, 0, 0, this.o);
    this.out = next;
  }

  private put(bits: number, size: number): void {
    let acc = (this.acc << size) | bits;
    let n = this.nbits + size;
    const out = this.out;
    while (n >= 8) {
      n -= 8;
      const byte = (acc >>> n) & 0xff;
      out[this.o++] = byte;
      if (byte === 0xff) out[this.o++] = 0;
    }
    acc &= (1 << n) - 1;
    this.acc = acc;
    this.nbits = n;
  }

  /** DCT, quantize and entropy-code one 8x8 block; returns its DC value for the next block's prediction. */
  private block(
    plane: Uint8Array,
    stride: number,
    off: number,
    fdtbl: Float64Array,
    prevDc: number,
    dcHuff: HuffCodes,
    acHuff: HuffCodes,
  ): number {
    const d = this.d;
    for (let r = 0, p = off; r < 64; r += 8, p += stride) {
      for (let c = 0; c < 8; c++) d[r + c] = plane[p + c] - 128;
      fdct8(d, r, 1);
    }
    for (let c = 0; c < 8; c++) fdct8(d, c, 8);
    const zz = this.zz;
    for (let i = 0; i < 64; i++) {
      const v = d[i] * fdtbl[i];
      let q = v < 0 ? -((0.5 - v) | 0) : (v + 0.5) | 0;
      if (q > 1023) q = 1023;
      else if (q < -1023) q = -1023;
      zz[ZIGZAG[i]] = q;
    }

    const dc = zz[0];
    const diff = dc - prevDc;
    if (diff === 0) {
      this.put(dcHuff.codes[0], dcHuff.sizes[0]);
    } else {
      const cat = 32 - Math.clz32(diff < 0 ? -diff : diff);
      this.put(dcHuff.codes[cat], dcHuff.sizes[cat]);
      this.put(diff < 0 ? diff + (1 << cat) - 1 : diff, cat);
    }
    let end = 63;
    while (end > 0 && zz[end] === 0) end--;
    const { codes, sizes } = acHuff;
    let run = 0;
    for (let i = 1; i <= end; i++) {
      const v = zz[i];
      if (v === 0) {
        run++;
        continue;
      }
      while (run >= 16) {
        this.put(codes[0xf0], sizes[0xf0]);
        run -= 16;
      }
      const cat = 32 - Math.clz32(v < 0 ? -v : v);
      const sym = (run << 4) | cat;
      this.put(codes[sym], sizes[sym]);
      this.put(v < 0 ? v + (1 << cat) - 1 : v, cat);
      run = 0;
    }
    if (end < 63) this.put(codes[0], sizes[0]);
    return dc;
  }
}

/** One 8-point AAN forward DCT (IJG jfdctflt) in place on d[base + k * step], k = 0..7. */
function fdct8(d: Float64Array, base: number, step: number): void {
  const d0 = d[base];
  const d1 = d[base + step];
  const d2 = d[base + 2 * step];
  const d3 = d[base + 3 * step];
  const d4 = d[base + 4 * step];
  const d5 = d[base + 5 * step];
  const d6 = d[base + 6 * step];
  const d7 = d[base + 7 * step];
  const tmp0 = d0 + d7;
  const tmp7 = d0 - d7;
  const tmp1 = d1 + d6;
  const tmp6 = d1 - d6;
  const tmp2 = d2 + d5;
  const tmp5 = d2 - d5;
  const tmp3 = d3 + d4;
  const tmp4 = d3 - d4;

  let tmp10 = tmp0 + tmp3;
  const tmp13 = tmp0 - tmp3;
  let tmp11 = tmp1 + tmp2;
  let tmp12 = tmp1 - tmp2;
  d[base] = tmp10 + tmp11;
  d[base + 4 * step] = tmp10 - tmp11;
  const z1 = (tmp12 + tmp13) * 0.707106781;
  d[base + 2 * step] = tmp13 + z1;
  d[base + 6 * step] = tmp13 - z1;

  tmp10 = tmp4 + tmp5;
  tmp11 = tmp5 + tmp6;
  tmp12 = tmp6 + tmp7;
  const z5 = (tmp10 - tmp12) * 0.382683433;
  const z2 = 0.5411961 * tmp10 + z5;
  const z4 = 1.306562965 * tmp12 + z5;
  const z3 = tmp11 * 0.707106781;
  const z11 = tmp7 + z3;
  const z13 = tmp7 - z3;
  d[base + 5 * step] = z13 + z2;
  d[base + 3 * step] = z13 - z2;
  d[base + step] = z11 + z4;
  d[base + 7 * step] = z11 - z4;
}

const encoders = new Map<number, JpegEncoder>();

function encode(canvas: Canvas, quality: number | undefined): Buffer {
  const q = Math.min(100, Math.max(1, Math.round(quality ?? DEFAULT_QUALITY) || DEFAULT_QUALITY));
  let encoder = encoders.get(q);
  if (!encoder) {
    encoder = new JpegEncoder(q);
    encoders.set(q, encoder);
  }
  return encoder.encode(canvas);
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

function normalize(opts: RenderOptions): Size {
  return { width: evenClamp(opts.width, MAX_WIDTH), height: evenClamp(opts.height, MAX_HEIGHT) };
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
 * grey ramp at the bottom that a box crosses every 4 s. Sizes are clamped like parseSize.
 */
export function renderTestPattern(opts: RenderOptions & { label: string; time: Date; seq: number }): Buffer {
  const size = normalize(opts);
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
  return encode(c, opts.quality);
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
  const size = normalize(opts);
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
  return encode(c, opts.quality);
}
