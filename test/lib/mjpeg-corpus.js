// MJPEG byte streams for parser tests and benchmarks: real JPEG frames from the bundled ffmpeg wrapped as
// multipart/x-mixed-replace with the quirks real cameras have, JPEGs carrying an EXIF thumbnail, real
// progressive JPEGs (ffmpeg 4 cannot write them), and helpers to chunk a stream and run a parser over it.
"use strict";
const { makeFrames } = require("./fake-cameras");

/**
 * Wraps JPEG frames as a multipart body. Options (defaults first):
 *   boundary "camrelay"           the delimiter written in the body
 *   headerBoundary = boundary     the one announced in the Content-Type header (cameras get this wrong)
 *   quoted false                  boundary="..." in the Content-Type header
 *   dashes true                   write "--" before the boundary in the body (some cameras do not)
 *   eol "\r\n"                    line end of boundary and header lines ("\n" for LF-only cameras)
 *   contentLength true            true, false, or (jpeg, i) => number | undefined (to lie, or count a CRLF)
 *   headers (i) => []             extra part header lines, e.g. "X-Timestamp: 1764000000.123"
 *   strayDashes false             a lone "--" line before every other part
 *   preamble ""                   text before the first boundary
 *   closing false                 end with the closing "--boundary--"
 * Returns { body, contentType, parts } where parts[i] = { offset, length } locates frame i in body.
 */
function multipart(jpegs, options = {}) {
  const boundary = options.boundary ?? "camrelay";
  const headerBoundary = options.headerBoundary ?? boundary;
  const eol = options.eol ?? "\r\n";
  const dashes = options.dashes === false ? "" : "--";
  const contentLength = options.contentLength ?? true;
  const pieces = [];
  const parts = [];
  let offset = 0;
  const add = (buf) => {
    pieces.push(buf);
    offset += buf.length;
  };
  if (options.preamble) add(Buffer.from(options.preamble, "latin1"));
  jpegs.forEach((jpeg, i) => {
    const lines = [];
    if (options.strayDashes && i % 2 === 1) lines.push("--");
    lines.push(`${dashes}${boundary}`, "Content-Type: image/jpeg");
    const length =
      typeof contentLength === "function" ? contentLength(jpeg, i) : contentLength && jpeg.length;
    if (typeof length === "number") lines.push(`Content-Length: ${length}`);
    lines.push(...(options.headers ? options.headers(i) : []));
    add(Buffer.from(lines.join(eol) + eol + eol, "latin1"));
    parts.push({ offset, length: jpeg.length });
    add(jpeg);
    add(Buffer.from(eol, "latin1"));
  });
  if (options.closing) add(Buffer.from(`${dashes}${boundary}--${eol}`, "latin1"));
  const shown = options.quoted ? `"${headerBoundary}"` : headerBoundary;
  return {
    body: Buffer.concat(pieces),
    contentType: `multipart/x-mixed-replace; boundary=${shown}`,
    parts,
  };
}

/** Cuts buf into pieces of `size` bytes (the last may be shorter). */
function chunk(buf, size) {
  const out = [];
  for (let i = 0; i < buf.length; i += size) out.push(buf.subarray(i, i + size));
  return out;
}

/** Cuts buf at the given offsets (any order, duplicates allowed). */
function splitAt(buf, offsets) {
  const cuts = [...new Set(offsets.filter((o) => o > 0 && o < buf.length))].sort((a, b) => a - b);
  const out = [];
  let from = 0;
  for (const cut of [...cuts, buf.length]) {
    out.push(buf.subarray(from, cut));
    from = cut;
  }
  return out;
}

/**
 * Runs a fresh MjpegPartParser over the chunks and collects what it says. `check(parser)` runs after every
 * push (for invariants); `end` calls reset() at the end, as sources do when the connection closes.
 */
function parse(MjpegPartParser, chunks, { options = {}, check, end = false } = {}) {
  const frames = [];
  const problems = [];
  const parser = new MjpegPartParser(
    (jpeg, width, height) => frames.push({ jpeg, width, height }),
    (problem) => problems.push(problem),
    options,
  );
  let maxBuffered = 0;
  for (const c of chunks) {
    parser.push(c);
    maxBuffered = Math.max(maxBuffered, parser.bufferedBytes);
    if (check) check(parser);
  }
  if (end) parser.reset();
  return { frames, problems, parser, maxBuffered };
}

// ---------------------------------------------------------------------------------------------------------
// EXIF

/**
 * Returns `jpeg` with an EXIF APP1 segment right after SOI whose IFD1 carries `thumbnail`, a whole JPEG
 * (FFD8..FFD9) inside the outer one, as cameras write it.
 */
function withExifThumbnail(jpeg, thumbnail) {
  const ifd0 = 8;
  const ifd1 = ifd0 + 2 + 12 + 4;
  const thumbAt = ifd1 + 2 + 3 * 12 + 4;
  const tiff = Buffer.alloc(thumbAt);
  tiff.write("MM", 0, "latin1");
  tiff.writeUInt16BE(42, 2);
  tiff.writeUInt32BE(ifd0, 4);
  const entry = (at, tag, type, value) => {
    tiff.writeUInt16BE(tag, at);
    tiff.writeUInt16BE(type, at + 2);
    tiff.writeUInt32BE(1, at + 4);
    if (type === 3) tiff.writeUInt16BE(value, at + 8);
    else tiff.writeUInt32BE(value, at + 8);
  };
  tiff.writeUInt16BE(1, ifd0);
  entry(ifd0 + 2, 0x0112, 3, 1); // Orientation
  tiff.writeUInt32BE(ifd1, ifd0 + 14);
  tiff.writeUInt16BE(3, ifd1);
  entry(ifd1 + 2, 0x0103, 3, 6); // Compression: JPEG
  entry(ifd1 + 14, 0x0201, 4, thumbAt); // JPEGInterchangeFormat
  entry(ifd1 + 26, 0x0202, 4, thumbnail.length); // JPEGInterchangeFormatLength
  const payload = Buffer.concat([Buffer.from("Exif\0\0", "latin1"), tiff, thumbnail]);
  if (payload.length > 65533) throw new Error("thumbnail too large for one APP1 segment");
  return Buffer.concat([jpeg.subarray(0, 2), segment(0xe1, payload), jpeg.subarray(2)]);
}

function segment(marker, body) {
  const head = Buffer.from([0xff, marker, 0, 0]);
  head.writeUInt16BE(body.length + 2, 2);
  return Buffer.concat([head, Buffer.from(body)]);
}

// ---------------------------------------------------------------------------------------------------------
// Progressive JPEG: one grey component, spectral-selection scans (DC, AC 1..5, AC 6..63), standard Huffman
// tables re-sent before each AC scan, and optionally restart markers inside the scans.

const ZIGZAG = [
  0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7,
  14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46,
  53, 60, 61, 54, 47, 55, 62, 63,
]; // zig-zag position -> natural index
const LUMA_QUANT = [
  16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22,
  29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103,
  121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
];
const DC_BITS = [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
const DC_VALS = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
const AC_BITS = [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d];
const AC_VALS = Buffer.from(
  "01020300041105122131410613516107227114328191a1082342b1c11552d1f0" +
    "2433627282090a161718191a25262728292a3435363738393a43444546474849" +
    "4a535455565758595a636465666768696a737475767778797a83848586878889" +
    "8a92939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5" +
    "c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9fa",
  "hex",
);

function huffman(bits, vals) {
  const table = new Map();
  let code = 0;
  let k = 0;
  for (let len = 1; len <= 16; len++) {
    for (let i = 0; i < bits[len - 1]; i++) table.set(vals[k++], [code++, len]);
    code <<= 1;
  }
  return table;
}

class BitWriter {
  constructor() {
    this.bytes = [];
    this.acc = 0;
    this.n = 0;
  }
  put(code, len) {
    for (let i = len - 1; i >= 0; i--) {
      this.acc = (this.acc << 1) | ((code >> i) & 1);
      if (++this.n === 8) this.byte(this.acc);
    }
  }
  byte(b) {
    this.bytes.push(b);
    if (b === 0xff) this.bytes.push(0);
    this.acc = this.n = 0;
  }
  flush() {
    while (this.n > 0) this.put(1, 1);
  }
}

function magnitude(v) {
  const abs = Math.abs(v);
  const size = abs === 0 ? 0 : 32 - Math.clz32(abs);
  return [size, v < 0 ? v + (1 << size) - 1 : v];
}

/** Quantized coefficients (zig-zag order) of every 8x8 block of a grey image, in raster order. */
function quantizedBlocks(gray, width, height, quant) {
  const cos = [];
  for (let x = 0; x < 8; x++)
    for (let u = 0; u < 8; u++) cos[x * 8 + u] = Math.cos(((2 * x + 1) * u * Math.PI) / 16);
  const blocks = [];
  for (let by = 0; by < Math.ceil(height / 8); by++) {
    for (let bx = 0; bx < Math.ceil(width / 8); bx++) {
      const px = [];
      for (let y = 0; y < 8; y++) {
        for (let x = 0; x < 8; x++) {
          const sy = Math.min(height - 1, by * 8 + y);
          const sx = Math.min(width - 1, bx * 8 + x);
          px.push(gray[sy * width + sx] - 128);
        }
      }
      const coef = new Array(64);
      for (let k = 0; k < 64; k++) {
        const natural = ZIGZAG[k];
        const v = natural >> 3;
        const u = natural & 7;
        let sum = 0;
        for (let y = 0; y < 8; y++)
          for (let x = 0; x < 8; x++) sum += px[y * 8 + x] * cos[x * 8 + u] * cos[y * 8 + v];
        const c = (u === 0 ? Math.SQRT1_2 : 1) * (v === 0 ? Math.SQRT1_2 : 1) * 0.25 * sum;
        coef[k] = Math.round(c / quant[natural]);
      }
      blocks.push(coef);
    }
  }
  return blocks;
}

/**
 * A real progressive (SOF2) JPEG of a grey image. `restartInterval` > 0 adds DRI and RSTn markers.
 * Decodes with ffmpeg and jpeg-js; ffprobe calls it "Progressive".
 */
function progressiveJpeg(gray, width, height, { restartInterval = 0 } = {}) {
  const quant = LUMA_QUANT.map((q) => Math.max(1, Math.round(q / 2)));
  const blocks = quantizedBlocks(gray, width, height, quant);
  const dc = huffman(DC_BITS, DC_VALS);
  const ac = huffman(AC_BITS, AC_VALS);
  const dht = (cls) =>
    cls === 0 ? segment(0xc4, [0x00, ...DC_BITS, ...DC_VALS]) : segment(0xc4, [0x10, ...AC_BITS, ...AC_VALS]);
  const sos = (ss, se) => segment(0xda, [1, 1, 0x00, ss, se, 0]);

  const scan = (encodeBlock) => {
    const w = new BitWriter();
    let restarts = 0;
    const state = { pred: 0 };
    blocks.forEach((block, i) => {
      if (restartInterval && i > 0 && i % restartInterval === 0) {
        w.flush();
        w.bytes.push(0xff, 0xd0 + (restarts++ % 8));
        state.pred = 0;
      }
      encodeBlock(w, block, state);
    });
    w.flush();
    return Buffer.from(w.bytes);
  };
  const dcScan = scan((w, block, state) => {
    const [size, bits] = magnitude(block[0] - state.pred);
    state.pred = block[0];
    w.put(...dc.get(size));
    if (size) w.put(bits, size);
  });
  const acScan = (ss, se) =>
    scan((w, block) => {
      let run = 0;
      for (let k = ss; k <= se; k++) {
        if (block[k] === 0) {
          run++;
          continue;
        }
        while (run > 15) {
          w.put(...ac.get(0xf0));
          run -= 16;
        }
        const [size, bits] = magnitude(Math.max(-1023, Math.min(1023, block[k])));
        w.put(...ac.get((run << 4) | size));
        w.put(bits, size);
        run = 0;
      }
      if (run > 0) w.put(...ac.get(0x00)); // EOB (EOBRUN 1)
    });

  const dqt = segment(0xdb, [0, ...ZIGZAG.map((natural) => quant[natural])]);
  const sof2 = segment(0xc2, [8, height >> 8, height & 255, width >> 8, width & 255, 1, 1, 0x11, 0]);
  const dri = restartInterval ? [segment(0xdd, [restartInterval >> 8, restartInterval & 255])] : [];
  return Buffer.concat([
    Buffer.from([0xff, 0xd8]),
    segment(0xe0, Buffer.from("JFIF\0\x01\x01\0\0\x01\0\x01\0\0", "latin1")),
    dqt,
    sof2,
    ...dri,
    dht(0),
    sos(0, 0),
    dcScan,
    dht(1),
    sos(1, 5),
    acScan(1, 5),
    dht(1),
    sos(6, 63),
    acScan(6, 63),
    Buffer.from([0xff, 0xd9]),
  ]);
}

/** The luma plane of a decoded RGBA image (jpeg-js decode output). */
function lumaOf(img) {
  const gray = new Uint8Array(img.width * img.height);
  for (let i = 0; i < gray.length; i++) {
    const p = i * 4;
    gray[i] = Math.round(0.299 * img.data[p] + 0.587 * img.data[p + 1] + 0.114 * img.data[p + 2]);
  }
  return gray;
}

module.exports = { makeFrames, multipart, chunk, splitAt, parse, withExifThumbnail, progressiveJpeg, lumaOf };
