"use strict";
// The H.264 encoder profiles and the choice between them (nodes/lib/ffmpeg/encoders.ts), without ffmpeg.
const assert = require("assert");
const encoders = require("../dist/nodes/lib/ffmpeg/encoders");
const ffmpeg = require("../dist/nodes/lib/ffmpeg");
const args = require("../dist/nodes/lib/transcode/args");

describe("ffmpeg encoders", function () {
  it("is exported from ffmpeg/ and still from transcode/args", function () {
    assert.strictEqual(ffmpeg.ENCODERS, encoders.ENCODERS);
    assert.strictEqual(args.ENCODERS, encoders.ENCODERS);
    assert.strictEqual(args.chooseEncoder, encoders.chooseEncoder);
  });

  it("has a profile for libx264 and every hardware encoder auto tries", function () {
    for (const name of ["libx264", ...encoders.HARDWARE_ENCODERS]) {
      assert.strictEqual(encoders.ENCODERS[name].name, name);
    }
  });

  it("gives the H.264 level for a size", function () {
    assert.strictEqual(encoders.h264Level(640, 480), "3.0");
    assert.strictEqual(encoders.h264Level(1280, 720), "3.1");
    assert.strictEqual(encoders.h264Level(1920, 1080), "4.1");
    assert.strictEqual(encoders.h264Level(2560, 1920), "5.0");
    assert.strictEqual(encoders.h264Level(4096, 2160), "5.1");
  });

  it("tells libx264 the real frame rate and level", function () {
    assert.deepStrictEqual(encoders.ENCODERS.libx264.stream(640, 480, 12), [
      "-level:v",
      "3.0",
      "-x264-params",
      "fps=12",
    ]);
  });

  it("takes a named encoder as it is, libx264 for nothing set or an unknown name", async function () {
    assert.strictEqual((await encoders.chooseEncoder("/nonexistent/ffmpeg", "h264_qsv")).name, "h264_qsv");
    assert.strictEqual((await encoders.chooseEncoder("/nonexistent/ffmpeg", undefined)).name, "libx264");
    assert.strictEqual((await encoders.chooseEncoder("/nonexistent/ffmpeg", " ")).name, "libx264");
    assert.strictEqual((await encoders.chooseEncoder("/nonexistent/ffmpeg", "h265_magic")).name, "libx264");
  });

  it("falls back to libx264 for auto when ffmpeg cannot be asked", async function () {
    assert.strictEqual((await encoders.chooseEncoder("/nonexistent/ffmpeg", "auto")).name, "libx264");
  });
});
