// The time stamp the latency bench burns into each picture: a strip of STAMP_BLOCKS black or white
// 16x16 blocks, aligned to the 16x16 macroblock grid (so H.264 at ~2 Mbit/s keeps each block flat), at
// (STAMP_X, STAMP_Y). 24 bits carry Date.now() modulo 2^24 ms (wraps every 4.6 hours; a latency is the
// difference modulo 2^24), 8 bits a CRC-8 of them, so a frame caught mid-update or smeared by the codec is
// rejected instead of read as a wrong time.
//
// The reader (readStamp) is plain browser-safe JavaScript: the latency page gets its source text through
// readStampSource, so the page and the self-check here decode with the same code.
"use strict";

const STAMP_X = 16;
const STAMP_Y = 16;
const STAMP_BLOCK = 16;
const STAMP_BLOCKS = 32;
const TIME_BITS = 24;
const TIME_MOD = 2 ** TIME_BITS;

/** CRC-8 (polynomial 0x07) of the three bytes of a 24-bit value. */
function crc8(value) {
  let crc = 0;
  for (const byte of [(value >>> 16) & 255, (value >>> 8) & 255, value & 255]) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 255 : (crc << 1) & 255;
  }
  return crc;
}

/** The 32 bits for a time in ms: 24 bits of time (most significant first), then its CRC-8. */
function stampBits(ms) {
  const value = ((ms % TIME_MOD) + TIME_MOD) % TIME_MOD;
  const crc = crc8(value);
  const bits = [];
  for (let i = TIME_BITS - 1; i >= 0; i--) bits.push((value >>> i) & 1);
  for (let i = 7; i >= 0; i--) bits.push((crc >>> i) & 1);
  return bits;
}

/** Draws the stamp for `ms` into a luma plane (`stride` bytes a row): white 235, black 16. */
function drawStamp(y, stride, ms) {
  const bits = stampBits(ms);
  for (let b = 0; b < STAMP_BLOCKS; b++) {
    const v = bits[b] ? 235 : 16;
    const x0 = STAMP_X + b * STAMP_BLOCK;
    for (let row = 0; row < STAMP_BLOCK; row++) {
      y.fill(v, (STAMP_Y + row) * stride + x0, (STAMP_Y + row) * stride + x0 + STAMP_BLOCK);
    }
  }
}

/**
 * Reads a stamp from RGBA pixels of the strip's rectangle (STAMP_BLOCKS*STAMP_BLOCK x STAMP_BLOCK, as
 * getImageData(STAMP_X, STAMP_Y, ...) returns it): the 24-bit time, or -1 when the CRC does not match.
 * Each block is the mean of its inner 8x8 pixels, so a blurred edge does not count.
 */
function readStamp(rgba, width) {
  const block = 16;
  const blocks = 32;
  let value = 0;
  let crc = 0;
  for (let b = 0; b < blocks; b++) {
    let sum = 0;
    for (let row = 4; row < 12; row++) {
      for (let col = 4; col < 12; col++) {
        const i = (row * width + b * block + col) * 4;
        sum += rgba[i] + rgba[i + 1] + rgba[i + 2];
      }
    }
    const bit = sum / (64 * 3) > 128 ? 1 : 0;
    if (b < 24) value = value * 2 + bit;
    else crc = crc * 2 + bit;
  }
  let check = 0;
  for (const byte of [(value >>> 16) & 255, (value >>> 8) & 255, value & 255]) {
    check ^= byte;
    for (let i = 0; i < 8; i++) check = check & 0x80 ? ((check << 1) ^ 0x07) & 255 : (check << 1) & 255;
  }
  return check === crc ? value : -1;
}

/** ms between a read 24-bit stamp and a full Date.now(): the age of the picture. */
function stampAge(stamp, now) {
  return (((now % TIME_MOD) - stamp + TIME_MOD) % TIME_MOD) | 0;
}

/** readStamp and stampAge as source text for a page (function declarations). */
function readStampSource() {
  return `${readStamp.toString()}\nconst TIME_MOD = ${TIME_MOD};\n${stampAge.toString()}\n`;
}

module.exports = {
  STAMP_X,
  STAMP_Y,
  STAMP_BLOCK,
  STAMP_BLOCKS,
  TIME_MOD,
  crc8,
  stampBits,
  drawStamp,
  readStamp,
  stampAge,
  readStampSource,
};
