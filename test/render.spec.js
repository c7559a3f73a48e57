"use strict";
const assert = require("assert");
const { execFileSync } = require("child_process");
const jpeg = require("jpeg-js");
const ffmpegPath = require("@ffmpeg-installer/ffmpeg").path;
const ffprobePath = require("@ffprobe-installer/ffprobe").path;
const { renderTestPattern, renderCard } = require("../dist/nodes/lib/codec/picture");
const { testPatternSize: parseSize } = require("../dist/nodes/lib/sources/test-pattern-source");
const { readJpegSize } = require("../dist/nodes/lib/codec/jpeg-markers");

const TIME = new Date(2026, 10, 24, 10, 42, 7, 123);

function pattern(width, height, extra = {}) {
  return renderTestPattern({ width, height, label: "front door", time: TIME, seq: 1234, ...extra });
}

/** Counts pixels in [x0,x1) x [y0,y1) for which test(r, g, b) holds. */
function countPixels(img, x0, y0, x1, y1, test) {
  let n = 0;
  for (let y = Math.round(y0); y < Math.round(y1); y++) {
    for (let x = Math.round(x0); x < Math.round(x1); x++) {
      const i = (y * img.width + x) * 4;
      if (test(img.data[i], img.data[i + 1], img.data[i + 2])) n++;
    }
  }
  return n;
}

function pixel(img, x, y) {
  const i = (Math.round(y) * img.width + Math.round(x)) * 4;
  return [img.data[i], img.data[i + 1], img.data[i + 2]];
}

const bright = (r, g, b) => r > 200 && g > 200 && b > 200;
const orange = (r, g, b) => r > 200 && g > 40 && g < 160 && b < 60;

/** Decodes with ffmpeg (errors fatal) and returns its complaints, "" for a clean JPEG. */
function ffmpegErrors(buf) {
  return execFileSync(ffmpegPath, ["-v", "error", "-f", "mjpeg", "-i", "pipe:0", "-f", "null", "-"], {
    input: buf,
    stdio: ["pipe", "pipe", "pipe"],
  }).toString();
}

/** The panel of the test pattern spans 40..78 % of the height and holds three text lines. */
function panelLines(h) {
  const top = h * 0.4;
  const third = (h * 0.78 - top) / 3;
  return [0, 1, 2].map((i) => [top + i * third, top + (i + 1) * third]);
}

describe("render", function () {
  describe("renderTestPattern", function () {
    for (const [w, h] of [
      [320, 240],
      [640, 480],
      [1280, 720],
    ]) {
      it(`makes a valid ${w}x${h} JPEG that jpeg-js and ffmpeg decode`, function () {
        const buf = pattern(w, h);
        assert.strictEqual(buf[0], 0xff);
        assert.strictEqual(buf[1], 0xd8);
        assert.strictEqual(buf[buf.length - 2], 0xff);
        assert.strictEqual(buf[buf.length - 1], 0xd9);
        assert.deepStrictEqual(readJpegSize(buf), { width: w, height: h });
        const img = jpeg.decode(buf);
        assert.strictEqual(img.width, w);
        assert.strictEqual(img.height, h);
        assert.strictEqual(ffmpegErrors(buf), "");
      });
    }

    it("is read by ffprobe as mjpeg with the right size", function () {
      const out = execFileSync(
        ffprobePath,
        ["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "json", "-i", "pipe:0"],
        { input: pattern(640, 480) },
      );
      const [stream] = JSON.parse(out.toString()).streams;
      assert.strictEqual(stream.codec_name, "mjpeg");
      assert.strictEqual(stream.width, 640);
      assert.strictEqual(stream.height, 480);
    });

    it("draws colour bars that keep their colours", function () {
      const img = jpeg.decode(pattern(640, 480, { quality: 90 }));
      const barY = 480 * 0.2;
      const [r0, g0, b0] = pixel(img, 640 / 14, barY);
      assert.ok(
        Math.abs(r0 - 192) < 12 && Math.abs(g0 - 192) < 12 && Math.abs(b0 - 192) < 12,
        `grey ${r0},${g0},${b0}`,
      );
      const [r1, g1, b1] = pixel(img, (640 * 3) / 14, barY);
      assert.ok(r1 > 170 && g1 > 170 && b1 < 40, `yellow ${r1},${g1},${b1}`);
      const [r6, g6, b6] = pixel(img, (640 * 13) / 14, barY);
      assert.ok(r6 < 40 && g6 < 40 && b6 > 170, `blue ${r6},${g6},${b6}`);
    });

    it("writes the label, time and sequence number where the panel is", function () {
      const h = 480;
      const [label, time, seq] = panelLines(h);
      const withLabel = jpeg.decode(pattern(640, h));
      const noLabel = jpeg.decode(pattern(640, h, { label: "" }));
      assert.ok(countPixels(withLabel, 0, label[0], 640, label[1], bright) > 500, "label pixels");
      assert.strictEqual(countPixels(noLabel, 0, label[0], 640, label[1], bright), 0, "no label, no pixels");
      assert.ok(countPixels(noLabel, 0, time[0], 640, time[1], bright) > 500, "time pixels");
      assert.ok(countPixels(noLabel, 0, seq[0], 640, seq[1], bright) > 200, "seq pixels");
      // Text sits on a dark panel: no bright pixels at its far left and right.
      assert.strictEqual(countPixels(withLabel, 0, label[0], 20, seq[1], bright), 0);
      assert.strictEqual(countPixels(withLabel, 620, label[0], 640, seq[1], bright), 0);
    });

    it("changes with time: the clock text and the box move", function () {
      const a = pattern(640, 480);
      const b = pattern(640, 480, { time: new Date(TIME.getTime() + 1000) });
      assert.notDeepStrictEqual(a, b);
      const [, time] = panelLines(480);
      const ia = jpeg.decode(a);
      const ib = jpeg.decode(b);
      let diff = 0;
      for (let y = Math.round(time[0]); y < time[1]; y++) {
        for (let x = 0; x < 640; x++) {
          const i = (y * 640 + x) * 4;
          if (Math.abs(ia.data[i] - ib.data[i]) > 100) diff++;
        }
      }
      assert.ok(diff > 100, `clock line changed in ${diff} pixels`);
      const centroid = (img) => {
        let sx = 0;
        let n = 0;
        for (let y = Math.round(480 * 0.78); y < 480; y++) {
          for (let x = 0; x < 640; x++) {
            const [r, g, bl] = pixel(img, x, y);
            if (orange(r, g, bl)) {
              sx += x;
              n++;
            }
          }
        }
        assert.ok(n > 100, `box visible (${n} pixels)`);
        return sx / n;
      };
      assert.ok(Math.abs(centroid(ia) - centroid(ib)) > 50, "box moved");
    });

    it("changes with the sequence number alone", function () {
      assert.notDeepStrictEqual(pattern(320, 240, { seq: 1 }), pattern(320, 240, { seq: 2 }));
    });

    it("survives long, empty and non-ASCII labels, odd sizes and extreme qualities", function () {
      const cases = [
        { width: 320, height: 240, label: "x".repeat(1000) },
        { width: 320, height: 240, label: "Kamera Tür ☃" },
        { width: 17, height: 17, label: "tiny" },
        { width: 5, height: 5, label: "clamped" },
        { width: 642, height: 362, label: "not a multiple of 16", quality: 1 },
        { width: 3840, height: 2160, label: "4K", quality: 100 },
      ];
      for (const c of cases) {
        const buf = renderTestPattern({ time: TIME, seq: 1, ...c });
        const size = readJpegSize(buf);
        assert.deepStrictEqual(size, parseSize(`${c.width}x${c.height}`, { width: 0, height: 0 }), c.label);
        assert.strictEqual(ffmpegErrors(buf), "", c.label);
        const img = jpeg.decode(buf, { maxResolutionInMP: 10 });
        assert.strictEqual(img.width, size.width);
      }
    });
  });

  describe("renderCard", function () {
    it("draws centred lines on a dark card", function () {
      const buf = renderCard({
        width: 640,
        height: 480,
        lines: ["camera offline", "front door"],
        quality: 90,
      });
      assert.deepStrictEqual(readJpegSize(buf), { width: 640, height: 480 });
      assert.strictEqual(ffmpegErrors(buf), "");
      const img = jpeg.decode(buf);
      const [r, g, b] = pixel(img, 40, 40);
      assert.ok(r < 40 && g < 40 && b < 40, `dark background ${r},${g},${b}`);
      const middle = countPixels(img, 0, 160, 640, 320, bright);
      assert.ok(middle > 1000, `text in the middle (${middle} pixels)`);
      assert.strictEqual(countPixels(img, 0, 0, 640, 120, bright), 0, "nothing bright at the top");
      assert.strictEqual(countPixels(img, 0, 360, 640, 480, bright), 0, "nothing bright at the bottom");
      // Centred: about as many text pixels left of the middle as right of it.
      const left = countPixels(img, 0, 160, 320, 320, bright);
      const right = countPixels(img, 320, 160, 640, 320, bright);
      assert.ok(Math.abs(left - right) < middle * 0.2, `centred ${left} / ${right}`);
    });

    it("with no lines is an empty dark card", function () {
      const img = jpeg.decode(renderCard({ width: 320, height: 240, lines: [] }));
      assert.strictEqual(
        countPixels(img, 0, 0, 320, 240, (r, g, b) => r > 100 || g > 100 || b > 100),
        0,
      );
    });

    it("shows the time in a footer when given one", function () {
      const footer = (img) => countPixels(img, 0, 440, 640, 478, (r, g, b) => r > 100 && g > 100 && b > 100);
      const without = jpeg.decode(renderCard({ width: 640, height: 480, lines: ["camera offline"] }));
      const a = renderCard({ width: 640, height: 480, lines: ["camera offline"], time: TIME });
      const b = renderCard({
        width: 640,
        height: 480,
        lines: ["camera offline"],
        time: new Date(TIME.getTime() + 1000),
      });
      assert.strictEqual(footer(without), 0);
      assert.ok(footer(jpeg.decode(a)) > 50);
      assert.notDeepStrictEqual(a, b);
    });

    it("fits many long lines into a small card", function () {
      const lines = Array.from({ length: 12 }, (_, i) => `line ${i} ${"long text ".repeat(8)}`);
      const buf = renderCard({ width: 160, height: 120, lines, time: TIME });
      assert.deepStrictEqual(readJpegSize(buf), { width: 160, height: 120 });
      assert.strictEqual(ffmpegErrors(buf), "");
    });
  });

  describe("parseSize", function () {
    const fallback = { width: 640, height: 480 };
    const cases = [
      ["640x480", 640, 480],
      [" 1280 X 720 ", 1280, 720],
      ["320*240", 320, 240],
      ["641x481", 640, 480],
      ["8x8", 16, 16],
      ["0x0", 16, 16],
      ["99999x99999", 3840, 2160],
      ["1920x1080", 1920, 1080],
      ["", 640, 480],
      ["640", 640, 480],
      ["640x", 640, 480],
      ["-640x480", 640, 480],
      ["640x480x3", 640, 480],
      ["abc", 640, 480],
      [undefined, 640, 480],
    ];
    for (const [text, width, height] of cases) {
      it(`${JSON.stringify(text)} -> ${width}x${height}`, function () {
        assert.deepStrictEqual(parseSize(text, fallback), { width, height });
      });
    }

    it("normalizes the fallback too", function () {
      assert.deepStrictEqual(parseSize("nope", { width: 5001, height: 7 }), { width: 3840, height: 16 });
      assert.deepStrictEqual(parseSize(undefined, { width: NaN, height: 301 }), { width: 16, height: 300 });
    });
  });
});
