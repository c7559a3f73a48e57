/**
 * A small baseline JPEG encoder (ITU T.81): a YCbCr 4:2:0 picture in, a JPEG out, with the standard Annex
 * K tables, a float AAN DCT, and quantisation tables built once per quality. (jpeg-js rebuilds 65535-entry
 * tables on every encode() call, ~40 ms, which alone would cap a 640x480 test pattern near 20 fps on a
 * whole core.)
 */

/** A YCbCr 4:2:0 picture padded to whole 16x16 blocks: `stride` x `rows` luma samples, chroma half that each way. */
export interface YccImage {
  readonly width: number;
  readonly height: number;
  readonly stride: number;
  readonly rows: number;
  readonly y: Uint8Array;
  readonly cb: Uint8Array;
  readonly cr: Uint8Array;
}

export const DEFAULT_QUALITY = 70;

/** "0a1f" -> [0x0a, 0x1f]: the tables below are written compactly as hex. */
function hex(s: string): Uint8Array {
  return Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
}

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

  encode(canvas: YccImage): Buffer {
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

/** Encodes a YCbCr 4:2:0 picture as a baseline JPEG at `quality` 1..100 (default 70); tables are built once per quality. */
export function encodeJpeg(canvas: YccImage, quality?: number): Buffer {
  const q = Math.min(100, Math.max(1, Math.round(quality ?? DEFAULT_QUALITY) || DEFAULT_QUALITY));
  let encoder = encoders.get(q);
  if (!encoder) {
    encoder = new JpegEncoder(q);
    encoders.set(q, encoder);
  }
  return encoder.encode(canvas);
}
