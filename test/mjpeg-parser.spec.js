"use strict";
const assert = require("assert");
const { execFileSync } = require("child_process");
const fc = require("fast-check");
const jpeg = require("jpeg-js");
const ffprobePath = require("@ffprobe-installer/ffprobe").path;
const { JpegStreamSplitter } = require("../dist/nodes/lib/codec/jpeg-stream-splitter");
const { readJpegSize } = require("../dist/nodes/lib/codec/jpeg-markers");
const { renderTestPattern } = require("../dist/nodes/lib/codec/picture");
const {
  makeFrames,
  multipart,
  chunk,
  splitAt,
  parse,
  withExifThumbnail,
  progressiveJpeg,
  lumaOf,
} = require("./lib/mjpeg-corpus");

function run(chunks, options) {
  return parse(JpegStreamSplitter, chunks, { options });
}

function assertFrames(result, expected, label = "") {
  const got = result.frames.map((f) => f.jpeg);
  const problems = result.problems.map((p) => `${p.kind}: ${p.message}`).join("; ");
  assert.strictEqual(
    got.length,
    expected.length,
    `${label} ${got.length} frames, expected ${expected.length} (${problems})`,
  );
  got.forEach((g, i) => {
    assert.ok(
      g.equals(expected[i]),
      `${label} frame ${i} differs: ${g.length} bytes, expected ${expected[i].length}`,
    );
  });
}

function kinds(result) {
  return result.problems.map((p) => p.kind);
}

describe("JpegStreamSplitter", function () {
  let frames; // 20 real 320x240 frames
  let small; // 4 real 64x48 frames
  let thumb; // a 160x120 frame used as an EXIF thumbnail
  let exif; // frames[0..2] with EXIF thumbnails
  let progressive; // real progressive 160x120 JPEGs, with and without restart markers

  before(function () {
    this.timeout(30000);
    frames = makeFrames(20, "320x240");
    small = makeFrames(4, "64x48");
    thumb = makeFrames(1, "160x120")[0];
    exif = frames.slice(0, 3).map((f) => withExifThumbnail(f, thumb));
    const gray = lumaOf(jpeg.decode(thumb));
    progressive = [progressiveJpeg(gray, 160, 120), progressiveJpeg(gray, 160, 120, { restartInterval: 5 })];
  });

  describe("corpus", function () {
    it("builds real progressive JPEGs and EXIF thumbnails that ffprobe reads", function () {
      for (const p of progressive) {
        const out = execFileSync(
          ffprobePath,
          [
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,profile,width,height",
            "-of",
            "json",
            "-i",
            "pipe:0",
          ],
          { input: p },
        );
        const [stream] = JSON.parse(out.toString()).streams;
        assert.deepStrictEqual(
          [stream.codec_name, stream.profile, stream.width, stream.height],
          ["mjpeg", "Progressive", 160, 120],
        );
        assert.strictEqual(jpeg.decode(p).width, 160);
      }
      assert.ok(progressive[1].includes(Buffer.from([0xff, 0xd0])), "restart markers present");
      // The thumbnail sits inside APP1 with its own SOI and EOI.
      assert.ok(exif[0].indexOf(thumb) > 0);
      assert.deepStrictEqual(readJpegSize(exif[0]), { width: 320, height: 240 });
      assert.strictEqual(jpeg.decode(exif[0]).width, 320);
    });
  });

  describe("multipart variants", function () {
    const variants = {
      "with Content-Length": {},
      "without Content-Length": { contentLength: false },
      "quoted boundary in the header": { quoted: true },
      "boundary without leading --": { dashes: false },
      "boundary different from the header's": { headerBoundary: "somethingelse", boundary: "--myboundary" },
      "LF instead of CRLF": { eol: "\n" },
      "LF, no Content-Length": { eol: "\n", contentLength: false },
      "stray -- lines": { strayDashes: true },
      "X-Timestamp part headers": { headers: (i) => [`X-Timestamp: ${1764000000 + i / 10}`] },
      "Content-Length counting the trailing CRLF": { contentLength: (j) => j.length + 2 },
      "a preamble and a closing boundary": { preamble: "HTTP/1.0 200 OK\r\n\r\n", closing: true },
    };
    for (const [name, options] of Object.entries(variants)) {
      it(`splits a stream ${name}, in 64 KiB and 1460-byte chunks`, function () {
        const { body } = multipart(frames, options);
        for (const size of [65536, 1460, 7]) {
          const result = run(chunk(body, size));
          assertFrames(result, frames, `${name} / ${size}:`);
          assert.deepStrictEqual(kinds(result), []);
          for (const f of result.frames) assert.deepStrictEqual([f.width, f.height], [320, 240]);
        }
      });
    }

    it("splits back-to-back JPEGs (ffmpeg image2pipe) and Canon-style noise between frames", function () {
      assertFrames(run(chunk(Buffer.concat(frames), 4096)), frames, "image2pipe");
      const canon = Buffer.concat(frames.flatMap((f, i) => [Buffer.from(i === 0 ? "100\r\n" : "\n\n\n"), f]));
      const result = run(chunk(canon, 1000));
      assertFrames(result, frames, "canon");
      assert.deepStrictEqual(kinds(result), []);
    });
  });

  describe("wrong Content-Length", function () {
    const lies = {
      "too small by 1": (j) => j.length - 1,
      "too small by a lot": (j) => Math.floor(j.length / 3),
      "too large by 1": (j) => j.length + 1,
      "too large by 5": (j) => j.length + 5,
      "too large by 100 KB": (j) => j.length + 100000,
      zero: () => 0,
      "the same for every part": () => 5000,
      "spanning the next frame too": (j, i) => j.length + 90 + (frames[i + 1] ? frames[i + 1].length : 0),
    };
    for (const [name, contentLength] of Object.entries(lies)) {
      it(`still cuts whole frames, none held back, when it is ${name}`, function () {
        const { body } = multipart(frames, { contentLength });
        for (const size of [65536, 1460]) {
          const result = run(chunk(body, size));
          assertFrames(result, frames, `${name} / ${size}:`);
          assert.deepStrictEqual(kinds(result), []);
        }
      });
    }

    it("never cuts a frame at its EXIF thumbnail's EOI, whatever Content-Length says", function () {
      const thumbEnd = exif[0].indexOf(thumb) + thumb.length;
      for (const cl of [thumbEnd, thumbEnd + 2]) {
        const result = run([multipart([exif[0], frames[5]], { contentLength: () => cl }).body]);
        assertFrames(result, [exif[0], frames[5]], `Content-Length ${cl}:`);
      }
    });

    it("rescues a frame the marker walk cannot follow when Content-Length frames it", function () {
      // Padding between two header segments: decoders skip it, the marker walk cannot.
      const sos = frames[1].indexOf(Buffer.from([0xff, 0xda]));
      const odd = Buffer.concat([
        frames[1].subarray(0, sos),
        Buffer.from([0, 0, 0]),
        frames[1].subarray(sos),
      ]);
      const withLength = run(chunk(multipart([frames[0], odd, frames[2]]).body, 1460));
      assertFrames(withLength, [frames[0], odd, frames[2]], "with Content-Length:");
      assert.deepStrictEqual(withLength.frames[1].width, 320);
      const without = run([multipart([frames[0], odd, frames[2]], { contentLength: false }).body]);
      assertFrames(without, [frames[0], frames[2]], "without Content-Length:");
      assert.deepStrictEqual(kinds(without), ["corrupt"]);
    });
  });

  describe("every split point", function () {
    let parts;
    before(function () {
      parts = [small[0], withExifThumbnail(small[1], small[2]), progressive[1], small[3]];
    });

    for (const [name, options] of Object.entries({
      "with Content-Length": {},
      "without Content-Length": { contentLength: false },
      "LF, Content-Length counting CRLF": { eol: "\n", contentLength: (j) => j.length + 2 },
    })) {
      it(`gives the same frames for a split at any byte, ${name}`, function () {
        const { body } = multipart(parts, { ...options, closing: true });
        for (let i = 1; i < body.length; i++) {
          const result = run([body.subarray(0, i), body.subarray(i)]);
          if (result.frames.length !== parts.length || result.problems.length)
            assertFrames(result, parts, `split ${i}:`);
          for (let k = 0; k < parts.length; k++) {
            if (!result.frames[k].jpeg.equals(parts[k])) assertFrames(result, parts, `split ${i}:`);
          }
        }
        assertFrames(run(chunk(body, 1)), parts, "byte by byte:");
      });
    }
  });

  describe("JPEG structure", function () {
    it("keeps a frame with an EXIF thumbnail whole and reports the outer size", function () {
      for (const contentLength of [true, false]) {
        for (const size of [65536, 1460, 100]) {
          const result = run(chunk(multipart(exif, { contentLength }).body, size));
          assertFrames(result, exif, `Content-Length ${contentLength} / ${size}:`);
          for (const f of result.frames) assert.deepStrictEqual([f.width, f.height], [320, 240]);
        }
      }
    });

    it("keeps progressive JPEGs (several scans, tables between scans, restart markers) whole", function () {
      const stream = [progressive[0], frames[0], progressive[1], progressive[0]];
      for (const contentLength of [true, false]) {
        for (const size of [65536, 500, 3]) {
          const result = run(chunk(multipart(stream, { contentLength }).body, size));
          assertFrames(result, stream, `Content-Length ${contentLength} / ${size}:`);
          assert.deepStrictEqual(
            result.frames.map((f) => `${f.width}x${f.height}`),
            ["160x120", "320x240", "160x120", "160x120"],
          );
        }
      }
    });

    it("reports width and height that match the SOF of every frame", function () {
      const mixed = [
        ...makeFrames(2, "640x480"),
        ...makeFrames(2, "34x18"),
        ...small,
        renderTestPattern({ width: 1280, height: 720, label: "x", time: new Date(), seq: 1 }),
        ...progressive,
        ...exif,
      ];
      for (const contentLength of [true, false]) {
        const result = run(chunk(multipart(mixed, { contentLength }).body, 4096));
        assertFrames(result, mixed);
        result.frames.forEach((f, i) => {
          assert.deepStrictEqual({ width: f.width, height: f.height }, readJpegSize(mixed[i]), `frame ${i}`);
        });
      }
    });
  });

  describe("problems", function () {
    it("drops a frame bigger than maxFrameBytes, says oversize, and the next frame still comes out", function () {
      const big = makeFrames(1, "640x480")[0];
      const maxFrameBytes = frames[0].length + 1024;
      assert.ok(big.length > maxFrameBytes);
      for (const contentLength of [true, false]) {
        for (const size of [1 << 20, 65536, 1460]) {
          const { body } = multipart([frames[0], big, frames[1], big, big, frames[2]], { contentLength });
          const result = run(chunk(body, size), { maxFrameBytes });
          assertFrames(
            result,
            [frames[0], frames[1], frames[2]],
            `Content-Length ${contentLength} / ${size}:`,
          );
          assert.deepStrictEqual(kinds(result), ["oversize", "oversize", "oversize"]);
          assert.strictEqual(result.parser.droppedFrames, 3);
          assert.ok(result.maxBuffered <= maxFrameBytes + 64 * 1024);
        }
      }
    });

    it("does not turn the EXIF thumbnail of a dropped oversize frame into a frame", function () {
      // The APP1 segment alone passes maxFrameBytes; the thumbnail inside it would fit.
      const outer = withExifThumbnail(frames[0], thumb);
      const result = run(chunk(multipart([outer, small[0]]).body, 1460), {
        maxFrameBytes: thumb.length + 40,
      });
      assertFrames(result, [small[0]]);
      assert.deepStrictEqual(kinds(result), ["oversize"]);
    });

    it("reports a frame cut short by a new SOI as truncated, then gives good frames", function () {
      const cutAt = [3, 20, 300, 700, Math.floor(frames[0].length / 2), frames[0].length - 2];
      for (const at of cutAt) {
        for (const contentLength of [true, false]) {
          const parts = [frames[0].subarray(0, at), frames[1], frames[2]];
          const result = run(chunk(multipart(parts, { contentLength }).body, 1460));
          assertFrames(result, [frames[1], frames[2]], `cut at ${at}, Content-Length ${contentLength}:`);
          assert.strictEqual(result.problems.length, 1, `cut at ${at}: ${JSON.stringify(result.problems)}`);
          if (at > 700) assert.deepStrictEqual(kinds(result), ["truncated"]);
        }
      }
    });

    it("reports a stream that ends inside a frame as truncated on reset, and starts clean after", function () {
      const got = [];
      const problems = [];
      const parser = new JpegStreamSplitter(
        (j) => got.push(j),
        (p) => problems.push(p.kind),
      );
      parser.push(multipart([frames[0]]).body);
      parser.push(Buffer.from("--camrelay\r\nContent-Type: image/jpeg\r\n\r\n"));
      parser.push(frames[1].subarray(0, 5000));
      parser.reset();
      assert.strictEqual(parser.bufferedBytes, 0);
      parser.push(multipart([frames[2], frames[3]]).body);
      assertFrames({ frames: got.map((j) => ({ jpeg: j })), problems: [] }, [
        frames[0],
        frames[2],
        frames[3],
      ]);
      assert.deepStrictEqual(problems, ["truncated"]);
    });

    it("says noise, and gives no frame, for an HTML error page", function () {
      const page = Buffer.from(
        "<!DOCTYPE html>\n<html><head><title>500 Internal Server Error</title></head>\n<body><h1>Error</h1>" +
          "<p>The camera could not serve the stream.</p>".repeat(8) +
          "</body></html>\n",
      );
      const result = run(chunk(page, 100), { maxNoiseBytes: 256 });
      assert.strictEqual(result.frames.length, 0);
      assert.deepStrictEqual(kinds(result), ["noise"]);
      assert.match(
        result.problems[0].message,
        /without a JPEG frame \(starts "<!DOCTYPE html> <html><head><title>500/,
      );
      // With the default threshold a long page is reported once, and nothing it contains is a frame.
      const long = run(chunk(Buffer.concat(Array(800).fill(page)), 65536));
      assert.strictEqual(long.frames.length, 0);
      assert.deepStrictEqual(kinds(long), ["noise"]);
      assert.ok(long.parser.noiseBytes > 256 * 1024);
      assert.ok(long.maxBuffered <= 64 * 1024);
    });

    it("reports noise again only after a frame came in between", function () {
      const garbage = Buffer.alloc(3000, "x");
      const { body } = multipart([frames[0]]);
      const result = run([garbage, garbage, body, garbage, garbage], { maxNoiseBytes: 1000 });
      assertFrames(result, [frames[0]]);
      assert.deepStrictEqual(kinds(result), ["noise", "noise"]);
    });
  });

  describe("fuzz", function () {
    this.timeout(60000);
    let corpus; // [{ jpeg }]: small real frames, one with an EXIF thumbnail, one progressive with RSTn

    before(function () {
      corpus = [
        ...small.map((j) => ({ jpeg: j })),
        { jpeg: withExifThumbnail(small[0], small[1]) },
        { jpeg: progressiveJpeg(lumaOf(jpeg.decode(small[2])), 64, 48, { restartInterval: 3 }) },
      ];
    });

    const format = fc.record({
      contentLength: fc.constantFrom("none", "exact", "crlf", "lie"),
      lie: fc.integer({ min: -3000, max: 3000 }),
      eol: fc.constantFrom("\r\n", "\n"),
      dashes: fc.boolean(),
      strayDashes: fc.boolean(),
      timestamp: fc.boolean(),
      preamble: fc.constantFrom("", "100\r\n", "HTTP/1.0 200 OK\r\nContent-Length: 99\r\n\r\n"),
      closing: fc.boolean(),
    });
    const streamSpec = fc.record({
      picks: fc.array(fc.nat(5), { minLength: 1, maxLength: 6 }),
      format,
    });
    /** Split points as fractions, so they fit any stream length. */
    const cuts = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 25 });
    const mutation = fc.oneof(
      fc.record({
        op: fc.constant("flip"),
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        xor: fc.integer({ min: 1, max: 255 }),
      }),
      fc.record({
        op: fc.constant("insert"),
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        bytes: fc.uint8Array({ maxLength: 40 }),
      }),
      fc.record({
        op: fc.constant("insertMarker"),
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        marker: fc.constantFrom(0xd8, 0xd9, 0xda, 0xc0, 0xc4, 0xe1, 0xd0, 0x00, 0xff),
      }),
      fc.record({
        op: fc.constant("delete"),
        at: fc.double({ min: 0, max: 1, noNaN: true }),
        n: fc.integer({ min: 1, max: 300 }),
      }),
      fc.record({ op: fc.constant("truncate"), at: fc.double({ min: 0, max: 1, noNaN: true }) }),
    );
    const options = fc.constantFrom(
      {},
      { maxFrameBytes: 1024 },
      { maxFrameBytes: 1800 },
      { maxNoiseBytes: 100 },
    );

    function build(spec) {
      const jpegs = spec.picks.map((i) => corpus[i].jpeg);
      const f = spec.format;
      const contentLength = {
        none: false,
        exact: true,
        crlf: (j) => j.length + 2,
        lie: (j) => Math.max(0, j.length + f.lie),
      }[f.contentLength];
      const headers = f.timestamp ? (i) => [`X-Timestamp: ${1764000000 + i}`] : undefined;
      return { jpegs, body: multipart(jpegs, { ...f, contentLength, headers }).body };
    }

    function at(buf, fraction) {
      return Math.min(buf.length, Math.floor(fraction * (buf.length + 1)));
    }

    function mutate(buf, mutations) {
      let out = Buffer.from(buf);
      for (const m of mutations) {
        const i = at(out, m.at);
        if (m.op === "flip" && i < out.length) out[i] ^= m.xor;
        if (m.op === "insert")
          out = Buffer.concat([out.subarray(0, i), Buffer.from(m.bytes), out.subarray(i)]);
        if (m.op === "insertMarker")
          out = Buffer.concat([out.subarray(0, i), Buffer.from([0xff, m.marker]), out.subarray(i)]);
        if (m.op === "delete") out = Buffer.concat([out.subarray(0, i), out.subarray(i + m.n)]);
        if (m.op === "truncate") out = out.subarray(0, i);
      }
      return out;
    }

    /** The invariants that hold for any input at all. */
    function checkInvariants(result, input, opts) {
      const cap = (opts.maxFrameBytes ?? 4 * 1024 * 1024) + 64 * 1024;
      assert.ok(result.maxBuffered <= cap, `buffered ${result.maxBuffered} > ${cap}`);
      for (const { jpeg: f } of result.frames) {
        assert.ok(f.length >= 4 && f[0] === 0xff && f[1] === 0xd8, "starts with SOI");
        assert.ok(f[f.length - 2] === 0xff && f[f.length - 1] === 0xd9, "ends with EOI");
        assert.ok(f.length <= (opts.maxFrameBytes ?? Infinity), "within maxFrameBytes");
        assert.ok(input.includes(f), "a piece of the input");
      }
    }

    /** Parses input in one chunk and cut at the given fractions, checking the invariants of both. */
    function wholeAndSplit(input, fractions, opts) {
      const whole = parseChecked([input], opts);
      checkInvariants(whole, input, opts);
      const split = parseChecked(cutAt(input, fractions), opts);
      checkInvariants(split, input, opts);
      return { whole, split };
    }

    function cutAt(buf, fractions) {
      return splitAt(
        buf,
        fractions.map((x) => at(buf, x)),
      );
    }

    function parseChecked(chunks, opts) {
      return parse(JpegStreamSplitter, chunks, {
        options: opts,
        check: (p) => assert.ok(p.bufferedBytes <= (opts.maxFrameBytes ?? 4 * 1024 * 1024) + 64 * 1024),
        end: true,
      });
    }

    it("gives every frame byte-identical, whatever the chunking, for unmutated streams", function () {
      fc.assert(
        fc.property(streamSpec, cuts, (spec, c) => {
          fc.pre(spec.format.contentLength !== "lie");
          const { jpegs, body } = build(spec);
          const result = parseChecked(cutAt(body, c), {});
          assertFrames(result, jpegs);
          assert.deepStrictEqual(kinds(result), []);
        }),
        { numRuns: 5000 },
      );
    });

    it("gives every frame byte-identical whatever Content-Length claims", function () {
      fc.assert(
        fc.property(
          streamSpec,
          cuts,
          fc.array(fc.integer({ min: -5000, max: 5000 }), { minLength: 6, maxLength: 6 }),
          (spec, c, lies) => {
            const jpegs = spec.picks.map((i) => corpus[i].jpeg);
            const lying = multipart(jpegs, {
              ...spec.format,
              contentLength: (j, i) => Math.max(0, j.length + lies[i]),
            }).body;
            assertFrames(parseChecked(cutAt(lying, c), {}), jpegs);
          },
        ),
        { numRuns: 5000 },
      );
    });

    it("never throws and keeps its invariants on mutated streams; chunking does not change the frames", function () {
      fc.assert(
        fc.property(
          streamSpec,
          fc.array(mutation, { minLength: 1, maxLength: 6 }),
          cuts,
          options,
          (spec, muts, c, opts) => {
            const { whole, split } = wholeAndSplit(mutate(build(spec).body, muts), c, opts);
            assert.deepStrictEqual(
              split.frames.map((f) => f.jpeg.toString("hex")),
              whole.frames.map((f) => f.jpeg.toString("hex")),
            );
          },
        ),
        { numRuns: 20000 },
      );
    });

    it("never throws and keeps its invariants on random bytes and marker soup", function () {
      const token = fc.oneof(
        fc.uint8Array({ minLength: 1, maxLength: 50 }).map((a) => Buffer.from(a)),
        fc.constantFrom(
          ...[
            [0xff, 0xd8, 0xff],
            [0xff, 0xd9],
            [0xff, 0xda, 0x00, 0x08],
            [0xff, 0xc0, 0x00, 0x11, 0x08, 0x00, 0x10, 0x00, 0x10],
            [0xff, 0xe1, 0xff, 0xff],
            [0xff, 0xe0, 0x00, 0x02],
            [0xff, 0xe0, 0x00, 0x00],
            [0xff, 0x00],
            [0xff, 0xd3],
            [0xff, 0xff, 0xff],
          ].map((b) => Buffer.from(b)),
          Buffer.from("\r\n--camrelay\r\nContent-Type: image/jpeg\r\nContent-Length: 30\r\n\r\n"),
          Buffer.from("Content-Length: 4\r\n\r\n"),
        ),
      );
      fc.assert(
        fc.property(fc.array(token, { maxLength: 80 }), cuts, options, (tokens, c, opts) => {
          const { whole, split } = wholeAndSplit(Buffer.concat(tokens), c, opts);
          assert.strictEqual(split.frames.length, whole.frames.length);
        }),
        { numRuns: 20000 },
      );
    });
  });
});
