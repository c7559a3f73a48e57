"use strict";
// The baseline JPEG encoder on its own: a YCbCr 4:2:0 picture in, a JPEG any decoder reads out.
const assert = require("assert");
const jpeg = require("jpeg-js");
const { encodeJpeg } = require("../dist/nodes/lib/codec/jpeg-encoder");
const { readJpegSize } = require("../dist/nodes/lib/codec/jpeg-markers");

/** A flat picture of one YCbCr colour, padded to 16x16 blocks as the encoder expects. */
function flat(width, height, y, cb = 128, cr = 128) {
  const stride = Math.ceil(width / 16) * 16;
  const rows = Math.ceil(height / 16) * 16;
  return {
    width,
    height,
    stride,
    rows,
    y: new Uint8Array(stride * rows).fill(y),
    cb: new Uint8Array((stride * rows) / 4).fill(cb),
    cr: new Uint8Array((stride * rows) / 4).fill(cr),
  };
}

describe("jpeg-encoder", function () {
  it("writes a JPEG of the picture's size that decodes to its colour", function () {
    const buf = encodeJpeg(flat(100, 60, 200), 90);
    assert.deepStrictEqual([buf[0], buf[1]], [0xff, 0xd8]);
    assert.deepStrictEqual([buf[buf.length - 2], buf[buf.length - 1]], [0xff, 0xd9]);
    assert.deepStrictEqual(readJpegSize(buf), { width: 100, height: 60 });
    const img = jpeg.decode(buf);
    for (let i = 0; i < img.data.length; i += 4) {
      assert.ok(Math.abs(img.data[i] - 200) <= 2, `pixel ${i / 4}: ${img.data[i]}`);
    }
  });

  it("keeps colour: a red picture decodes red", function () {
    // Y/Cb/Cr of RGB(255, 0, 0)
    const img = jpeg.decode(encodeJpeg(flat(32, 32, 76, 85, 255), 90));
    const [r, g, b] = img.data;
    assert.ok(r > 230 && g < 30 && b < 30, `${r},${g},${b}`);
  });

  it("gives the same bytes for the same picture, and fewer at a lower quality", function () {
    const busy = flat(64, 64, 0);
    for (let i = 0; i < busy.y.length; i++) busy.y[i] = (i * 37) % 256;
    assert.deepStrictEqual(encodeJpeg(busy, 70), encodeJpeg(busy, 70));
    assert.ok(encodeJpeg(busy, 20).length < encodeJpeg(busy, 95).length);
  });

  it("takes out-of-range and missing qualities (default 70)", function () {
    const pic = flat(16, 16, 128);
    assert.deepStrictEqual(encodeJpeg(pic), encodeJpeg(pic, 70));
    assert.deepStrictEqual(encodeJpeg(pic, 0), encodeJpeg(pic, 70)); // 0 is not a quality: the default
    assert.deepStrictEqual(encodeJpeg(pic, 500), encodeJpeg(pic, 100));
    assert.ok(jpeg.decode(encodeJpeg(pic, -3)).width === 16);
  });
});
