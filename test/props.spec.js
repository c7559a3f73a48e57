// Bad input: property-based tests (fast-check) on every parser camrelay runs on bytes it did not make.
// Generated and mutated streams must never make a parser throw, loop or hold memory without bound, and
// well-formed input must come out exactly. `npm test` runs a few thousand cases; `npm run test:soak`
// (CAMRELAY_SOAK=1) tens of thousands and a much longer stream. A failure prints the seed to replay it.
"use strict";
const assert = require("assert");
const fc = require("fast-check");
const { JpegStreamSplitter } = require("../dist/nodes/lib/codec/jpeg-stream-splitter");
const { readJpegSize, readJpegComment, insertJpegComment } = require("../dist/nodes/lib/codec/jpeg-markers");
const { parseWebViewBody, webViewStatus } = require("../dist/nodes/lib/sources/canon-webview-source");
const { parseHostPort } = require("../dist/nodes/lib/sources/canon-vb-source");
const { parseAuthParams } = require("../dist/nodes/lib/sources/http-client");
const { redactCredentials } = require("../dist/nodes/lib/credentials");
const { parseProgressLine } = require("../dist/nodes/lib/ffmpeg");
const { Mp4FragmentSplitter } = require("../dist/nodes/lib/codec/fmp4-splitter");
const { mp4InfoFromMessage } = require("../dist/nodes/lib/serve/fmp4-store");
const { makeFmp4 } = require("./lib/stream-out-helpers");
const { makeFrames } = require("./lib/fake-cameras");
const { pick, memoryAfterGc, MB } = require("./lib/soak-env");

/** Cases per property: `n` in npm test, 20 n in the soak run. */
const runs = (n) => ({ numRuns: pick(n, n * 20) });

const SMALL = makeFrames(6, "160x120");
const MEDIUM = makeFrames(4, "320x240");
const ALL = [...SMALL, ...MEDIUM];
/** Smaller than the smallest maxFrameBytes (1 KB): fits every cap. */
const TINY = makeFrames(2, "16x16");

// ---- generators ---------------------------------------------------------------------------------

/** Bytes that can never hold a JPEG start (no 0xFF at all). */
const noise = (maxLength) =>
  fc.uint8Array({ maxLength }).map((a) => Buffer.from(a.map((b) => (b === 0xff ? 0xfe : b))));

/** A Canon VB native session as the camera sends it: "100", a handshake blob, then frames with junk between. */
const canonStream = fc
  .record({
    hundred: fc.boolean(),
    blob: noise(400),
    frames: fc.array(fc.record({ jpeg: fc.constantFrom(...ALL), junk: noise(40) }), {
      minLength: 1,
      maxLength: 8,
    }),
  })
  .map(({ hundred, blob, frames }) => {
    const pieces = [hundred ? Buffer.from("100\r\n") : Buffer.alloc(0), blob];
    for (const f of frames) pieces.push(f.junk, f.jpeg);
    return { bytes: Buffer.concat(pieces), jpegs: frames.map((f) => f.jpeg) };
  });

/** The same frames as an HTTP multipart body with the usual quirks (the exact parse is mjpeg-parser.spec.js's). */
const multipartStream = fc
  .record({
    frames: fc.array(fc.constantFrom(...ALL), { minLength: 1, maxLength: 8 }),
    eol: fc.constantFrom("\r\n", "\n"),
    boundary: fc.constantFrom("--myboundary", "frame", "--", "ipcamera"),
    length: fc.constantFrom("exact", "none", "plus2", "wrong"),
    stamp: fc.boolean(),
  })
  .map(({ frames, eol, boundary, length, stamp }) => {
    const pieces = [];
    frames.forEach((jpeg, i) => {
      const lines = [`--${boundary}`, "Content-Type: image/jpeg"];
      if (length !== "none") {
        const n = { exact: jpeg.length, plus2: jpeg.length + 2, wrong: (jpeg.length * 7) % 5000 }[length];
        lines.push(`Content-Length: ${n}`);
      }
      if (stamp) lines.push(`X-Timestamp: ${1764000000 + i}.123`);
      pieces.push(Buffer.from(lines.join(eol) + eol + eol, "latin1"), jpeg, Buffer.from(eol, "latin1"));
    });
    return { bytes: Buffer.concat(pieces), jpegs: frames };
  });

/** Read sizes: the camera's TCP segments, cycled. */
const cuts = fc.array(fc.integer({ min: 1, max: 6000 }), { minLength: 1, maxLength: 24 });

function* pieces(buf, sizes) {
  let pos = 0;
  for (let i = 0; pos < buf.length; i++) {
    const n = sizes[i % sizes.length];
    yield buf.subarray(pos, pos + n);
    pos += n;
  }
}

/** One damage done to a stream; positions are fractions of its length so they fit any stream. */
const MARKERS = [
  [0xff, 0xd8],
  [0xff, 0xd9],
  [0xff, 0xd8, 0xff],
  [0xff, 0xda, 0x00, 0x02],
  [0xff, 0xc0, 0x00, 0x11, 0x08, 0xff, 0xff, 0xff, 0xff],
  [0xff, 0xe1, 0xff, 0xff],
  [0xff, 0xc4, 0x00, 0x00],
  [0xff, 0xff, 0xff],
  [...Buffer.from("\r\nContent-Length: 7\r\n\r\n")],
  [...Buffer.from("\r\nContent-Length: 99999999\r\n\r\n")],
];
const at = fc.double({ min: 0, max: 1, noNaN: true, maxExcluded: true });
const mutation = fc.oneof(
  fc.record({ op: fc.constant("flip"), at, byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant("delete"), at, length: fc.integer({ min: 1, max: 3000 }) }),
  fc.record({ op: fc.constant("insert"), at, bytes: fc.uint8Array({ minLength: 1, maxLength: 300 }) }),
  fc.record({ op: fc.constant("marker"), at, bytes: fc.constantFrom(...MARKERS) }),
  fc.record({ op: fc.constant("duplicate"), at, length: fc.integer({ min: 1, max: 5000 }) }),
  fc.record({ op: fc.constant("truncate"), at }),
);

function mutate(buf, mutations) {
  let b = buf;
  for (const m of mutations) {
    const pos = Math.floor(m.at * b.length);
    switch (m.op) {
      case "flip":
        b = Buffer.from(b);
        if (b.length) b[pos] = m.byte;
        break;
      case "delete":
        b = Buffer.concat([b.subarray(0, pos), b.subarray(pos + m.length)]);
        break;
      case "insert":
      case "marker":
        b = Buffer.concat([b.subarray(0, pos), Buffer.from(m.bytes), b.subarray(pos)]);
        break;
      case "duplicate":
        b = Buffer.concat([b.subarray(0, pos + m.length), b.subarray(pos)]);
        break;
      case "truncate":
        b = b.subarray(0, pos);
        break;
    }
  }
  return b;
}

/** A parser that checks its invariants after every push; throws an AssertionError when one breaks. */
function checkedParser(maxFrameBytes) {
  const state = { frames: [], problems: [] };
  const parser = new JpegStreamSplitter(
    (jpeg, width, height) => state.frames.push({ jpeg, width, height }),
    (problem) => state.problems.push(problem),
    { maxFrameBytes },
  );
  // The internal buffer is private in TypeScript; JS can see it, and it is what bounds memory.
  const cap = parser.maxFrameBytes + 64 * 1024;
  state.parser = parser;
  state.push = (chunk) => {
    parser.push(chunk);
    assert.ok(parser.buf.length <= cap, `parser buffer ${parser.buf.length} > ${cap}`);
    assert.ok(parser.bufferedBytes >= 0 && parser.bufferedBytes <= cap, `buffered ${parser.bufferedBytes}`);
  };
  state.checkFrames = () => {
    for (const { jpeg } of state.frames) {
      assert.ok(jpeg[0] === 0xff && jpeg[1] === 0xd8, "a frame starts with SOI");
      assert.ok(jpeg[jpeg.length - 2] === 0xff && jpeg[jpeg.length - 1] === 0xd9, "a frame ends with EOI");
      assert.ok(jpeg.length <= cap, `frame of ${jpeg.length} bytes`);
    }
    for (const p of state.problems) {
      assert.ok(["oversize", "truncated", "corrupt", "noise"].includes(p.kind), p.kind);
      assert.ok(typeof p.message === "string" && p.message.length < 300, p.message);
      assert.ok(
        [...p.message].every((c) => c >= " " && c <= "~"),
        `message is printable: ${JSON.stringify(p.message)}`,
      );
    }
  };
  return state;
}

// ---- MJPEG / JPEG marker splitter ----------------------------------------------------------------

describe("properties: JpegStreamSplitter on Canon native and mutated streams", function () {
  this.timeout(pick(60000, 1800000));

  it("splits a Canon VB native session (handshake, junk, any read sizes) into exactly the frames sent", () => {
    fc.assert(
      fc.property(canonStream, cuts, ({ bytes, jpegs }, sizes) => {
        const s = checkedParser(1024 * 1024);
        for (const piece of pieces(bytes, sizes)) s.push(piece);
        s.checkFrames();
        assert.strictEqual(s.frames.length, jpegs.length);
        s.frames.forEach((f, i) => {
          assert.ok(f.jpeg.equals(jpegs[i]), `frame ${i} byte-identical`);
          assert.deepStrictEqual(readJpegSize(f.jpeg), { width: f.width, height: f.height });
        });
        assert.deepStrictEqual(
          s.problems.filter((p) => p.kind !== "noise"),
          [],
        );
      }),
      runs(400),
    );
  });

  it("survives mutated Canon and multipart streams: no throw, only whole JPEGs out, buffer within maxFrameBytes + 64 KB", () => {
    fc.assert(
      fc.property(
        fc.oneof(canonStream, multipartStream),
        fc.array(mutation, { minLength: 1, maxLength: 12 }),
        cuts,
        fc.constantFrom(1024, 4096, 16384, 1024 * 1024),
        ({ bytes }, mutations, sizes, maxFrameBytes) => {
          const s = checkedParser(maxFrameBytes);
          for (const piece of pieces(mutate(bytes, mutations), sizes)) s.push(piece);
          s.checkFrames();
          // Whatever came before, a reset (the source reconnecting) gives a clean start.
          s.parser.reset();
          s.frames.length = 0;
          s.push(TINY[0]);
          s.push(TINY[1]);
          assert.strictEqual(s.frames.length, 2);
          assert.ok(s.frames[0].jpeg.equals(TINY[0]) && s.frames[1].jpeg.equals(TINY[1]));
        },
      ),
      runs(1500),
    );
  });

  it("never emits a frame larger than maxFrameBytes", () => {
    // The option's promise: "a frame larger than this is dropped (and said so)".
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom(...ALL), { minLength: 1, maxLength: 6 }),
        cuts,
        fc.integer({ min: 1024, max: 16 * 1024 }),
        (jpegs, sizes, maxFrameBytes) => {
          const s = checkedParser(maxFrameBytes);
          for (const piece of pieces(Buffer.concat(jpegs), sizes)) s.push(piece);
          for (const f of s.frames) {
            assert.ok(
              f.jpeg.length <= maxFrameBytes,
              `emitted a ${f.jpeg.length}-byte frame with maxFrameBytes ${maxFrameBytes}`,
            );
          }
          const over = jpegs.filter((j) => j.length > maxFrameBytes).length;
          assert.strictEqual(s.frames.length, jpegs.length - over, "every frame within the cap comes out");
        },
      ),
      runs(300),
    );
  });

  it(`holds bounded memory over a long mutated stream (${pick("100 MB", "2 GB")})`, () => {
    const total = pick(100, 2048) * MB;
    const maxFrameBytes = 64 * 1024;
    const s = checkedParser(maxFrameBytes);
    const base = Buffer.concat(ALL);
    const rng = fc.sample(fc.array(mutation, { minLength: 1, maxLength: 6 }), { numRuns: 64, seed: 42 });
    // A never-ending frame: SOI, a scan header, then entropy bytes with no EOI, twice the cap.
    const endless = Buffer.concat([
      MEDIUM[0].subarray(0, MEDIUM[0].indexOf(Buffer.from([0xff, 0xda])) + 14),
      Buffer.alloc(2 * maxFrameBytes, 0x55),
    ]);
    const before = memoryAfterGc();
    let fed = 0;
    let round = 0;
    let peakArrayBuffers = 0;
    while (fed < total) {
      const damaged = round % 7 === 3 ? endless : mutate(base, rng[round % rng.length]);
      for (const piece of pieces(damaged, [1 + (round % 9) * 997, 65536, 13])) s.push(piece);
      fed += damaged.length;
      round++;
      if (round % 200 === 0) {
        s.checkFrames();
        s.frames.length = 0;
        s.problems.length = 0;
        peakArrayBuffers = Math.max(peakArrayBuffers, memoryAfterGc().arrayBuffers - before.arrayBuffers);
      }
    }
    s.checkFrames();
    s.frames.length = 0;
    s.problems.length = 0;
    const after = memoryAfterGc();
    const growth = Math.max(peakArrayBuffers, after.arrayBuffers - before.arrayBuffers);
    console.log(
      `      ${(fed / MB).toFixed(0)} MB in ${round} rounds: ${s.parser.frames} frames, ` +
        `${s.parser.droppedFrames} dropped, Buffer memory +${(growth / MB).toFixed(1)} MB`,
    );
    assert.ok(s.parser.frames > 0, "frames still come through the damage");
    assert.ok(s.parser.droppedFrames > 0, "damage was noticed");
    assert.ok(growth < 8 * MB, `Buffer memory grew ${(growth / MB).toFixed(1)} MB over ${total / MB} MB`);
    assert.ok(after.heapUsed - before.heapUsed < 16 * MB, "heap stays flat");
  });
});

// ---- JPEG header readers -------------------------------------------------------------------------

/** A JPEG header: SOI, random APPn / COM / DQT / DHT segments, optional fill bytes, SOF with a size, SOS. */
const jpegHeader = fc
  .record({
    segments: fc.array(
      fc.record({
        marker: fc.oneof(
          fc.integer({ min: 0xe0, max: 0xef }),
          fc.constantFrom(0xfe, 0xdb, 0xc4, 0xdd, 0xcc, 0xc8),
        ),
        body: fc.uint8Array({ maxLength: 300 }),
        fill: fc.integer({ min: 0, max: 3 }),
      }),
      { maxLength: 6 },
    ),
    sof: fc.constantFrom(0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf),
    width: fc.integer({ min: 1, max: 65535 }),
    height: fc.integer({ min: 0, max: 65535 }),
  })
  .map(({ segments, sof, width, height }) => {
    const seg = (m, body, fill = 0) => {
      const head = Buffer.alloc(4 + fill, 0xff);
      head[fill + 1] = m;
      head.writeUInt16BE(body.length + 2, fill + 2);
      return Buffer.concat([head, Buffer.from(body)]);
    };
    const sofBody = Buffer.from([8, height >> 8, height & 255, width >> 8, width & 255, 1, 1, 0x11, 0]);
    return {
      bytes: Buffer.concat([
        Buffer.from([0xff, 0xd8]),
        ...segments.map((s) => seg(s.marker, s.body, s.fill)),
        seg(sof, sofBody),
        seg(0xda, Buffer.from([1, 1, 0, 0, 63, 0])),
        Buffer.from([0x12, 0x34, 0xff, 0xd9]),
      ]),
      width,
      height,
    };
  });

describe("properties: readJpegSize and readJpegComment", function () {
  this.timeout(pick(30000, 900000));

  it("read the size from any well-formed header", () => {
    fc.assert(
      fc.property(jpegHeader, ({ bytes, width, height }) => {
        assert.deepStrictEqual(readJpegSize(bytes), { width, height });
      }),
      runs(1000),
    );
  });

  it("never throw on arbitrary bytes, truncated or mutated JPEGs", () => {
    const inputs = fc.oneof(
      fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
      fc
        .uint8Array({ maxLength: 600 })
        .map((a) => Buffer.concat([Buffer.from([0xff, 0xd8]), Buffer.from(a)])),
      fc.tuple(jpegHeader, fc.array(mutation, { maxLength: 6 })).map(([h, m]) => mutate(h.bytes, m)),
      fc.tuple(fc.constantFrom(...ALL), fc.array(mutation, { maxLength: 6 })).map(([j, m]) => mutate(j, m)),
    );
    fc.assert(
      fc.property(inputs, (buf) => {
        const size = readJpegSize(buf);
        if (size !== undefined) {
          assert.ok(Number.isInteger(size.width) && size.width >= 0 && size.width <= 65535);
          assert.ok(Number.isInteger(size.height) && size.height >= 0 && size.height <= 65535);
        }
        const text = readJpegComment(buf);
        assert.ok(text === undefined || (typeof text === "string" && text.length <= buf.length));
      }),
      runs(2000),
    );
  });

  it("insertJpegComment then readJpegComment gives back any latin1 text, and the size survives", () => {
    const latin1 = fc
      .array(fc.integer({ min: 0, max: 255 }), { maxLength: 400 })
      .map((codes) => String.fromCharCode(...codes));
    fc.assert(
      fc.property(fc.constantFrom(...ALL), latin1, (jpeg, text) => {
        const stamped = insertJpegComment(jpeg, text);
        assert.strictEqual(readJpegComment(stamped), text);
        assert.deepStrictEqual(readJpegSize(stamped), readJpegSize(jpeg));
      }),
      runs(500),
    );
  });
});

// ---- Canon WebView replies -----------------------------------------------------------------------

const wvKey = fc.stringMatching(/^[A-Za-z0-9_.]{1,20}$/).filter((k) => k !== "__proto__");
/** Values as cameras write them: no line break, no surrounding space, not starting with "=" or ":". */
const wvValue = fc
  .string({ maxLength: 40 })
  .map((v) => v.replace(/[\r\n]/g, " ").trim())
  .filter((v) => !/^[=:]/.test(v));

describe("properties: Canon WebView replies", function () {
  this.timeout(pick(30000, 900000));

  it("parseWebViewBody reads key=value, key:=value and key==value lines with any line ends and padding", () => {
    const line = fc.record({
      key: wvKey,
      value: wvValue,
      sep: fc.constantFrom("=", ":=", "=="),
      pad: fc.constantFrom("", " ", "\t", "  "),
    });
    fc.assert(
      fc.property(
        fc.array(line, { maxLength: 12 }),
        fc.constantFrom("\n", "\r\n"),
        fc.array(fc.constantFrom("", "garbage line", "# comment", "=novalue", "  "), { maxLength: 3 }),
        (lines, eol, junk) => {
          const text = [
            ...junk,
            ...lines.map((l) => `${l.pad}${l.key}${l.pad}${l.sep}${l.pad}${l.value}`),
          ].join(eol);
          const parsed = parseWebViewBody(text);
          const expected = {};
          for (const l of lines) expected[l.key] = l.value;
          for (const [k, v] of Object.entries(expected)) assert.strictEqual(parsed[k], v, `key ${k}`);
        },
      ),
      runs(1000),
    );
  });

  it("parseWebViewBody and webViewStatus never throw on anything", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 2000 }), (text) => {
        const parsed = parseWebViewBody(text);
        assert.strictEqual(typeof parsed, "object");
        for (const v of Object.values(parsed)) assert.strictEqual(typeof v, "string");
        const status = webViewStatus({ headers: { "livescope-status": text } });
        assert.ok(Number.isInteger(status.code) && status.code >= -1, `code ${status.code}`);
        assert.strictEqual(typeof status.reason, "string");
      }),
      runs(2000),
    );
  });

  it("webViewStatus reads `<code> <reason>` and treats a missing header as success", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 999 }),
        fc.string({ maxLength: 40 }).map((r) => r.replace(/[\r\n]/g, " ").trim()),
        (code, reason) => {
          const status = webViewStatus({ headers: { "livescope-status": ` ${code} ${reason}` } });
          assert.strictEqual(status.code, code);
          assert.strictEqual(status.reason, reason);
        },
      ),
      runs(500),
    );
    assert.deepStrictEqual(webViewStatus({ headers: {} }), { code: 0, reason: "" });
  });
});

// ---- HTTP auth challenges ------------------------------------------------------------------------

describe("properties: parseAuthParams (WWW-Authenticate)", function () {
  this.timeout(pick(30000, 900000));
  const key = fc.stringMatching(/^[a-zA-Z0-9_-]{1,16}$/).filter((k) => k.toLowerCase() !== "__proto__");

  it("gives back every parameter, quoted (with escapes) or bare, in any spacing", () => {
    const param = fc.record({
      key,
      value: fc.oneof(
        fc.string({ maxLength: 40 }).map((v) => ({ text: v, quoted: true })),
        fc.stringMatching(/^[^,\s"]{0,20}$/).map((v) => ({ text: v, quoted: false })),
      ),
      eq: fc.constantFrom("=", " = ", "=\t"),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(param, { selector: (p) => p.key.toLowerCase(), maxLength: 10 }),
        fc.constantFrom(", ", ",", " , ", ",\t"),
        (params, comma) => {
          const text = params
            .map((p) => {
              const v = p.value.quoted ? `"${p.value.text.replace(/["\\]/g, "\\$&")}"` : p.value.text;
              return `${p.key}${p.eq}${v}`;
            })
            .join(comma);
          const parsed = parseAuthParams(text);
          for (const p of params) assert.strictEqual(parsed[p.key.toLowerCase()], p.value.text, text);
        },
      ),
      runs(1000),
    );
  });

  it("never throws and returns only strings on arbitrary headers", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 2000 }), (text) => {
        const parsed = parseAuthParams(text);
        for (const v of Object.values(parsed)) assert.strictEqual(typeof v, "string");
      }),
      runs(2000),
    );
  });
});

// ---- ffmpeg progress output ----------------------------------------------------------------------

const clock = (ms) => {
  const sign = ms < 0 ? "-" : "";
  const a = Math.abs(ms);
  const h = Math.floor(a / 3600000);
  const m = Math.floor(a / 60000) % 60;
  const s = ((a % 60000) / 1000).toFixed(2).padStart(5, "0");
  return `${sign}${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${s}`;
};
const pad = fc.constantFrom("", " ", "  ", "    ");

describe("properties: ffmpeg progress lines", function () {
  this.timeout(pick(30000, 900000));

  it("reads every field of a classic stats line, however ffmpeg pads it", () => {
    fc.assert(
      fc.property(
        fc.record({
          frame: fc.integer({ min: 0, max: 10_000_000 }),
          fps: fc.integer({ min: 0, max: 9999 }).map((n) => n / 10),
          q: fc.integer({ min: -1, max: 690 }).map((n) => n / 10),
          sizeKb: fc.integer({ min: 0, max: 1e9 }),
          ms: fc.integer({ min: 0, max: 100 * 3600000 }).map((n) => Math.round(n / 10) * 10),
          kbps: fc.integer({ min: 0, max: 999999 }).map((n) => n / 10),
          speed: fc.integer({ min: 1, max: 99999 }).map((n) => n / 1000),
          p: fc.array(pad, { minLength: 7, maxLength: 7 }),
        }),
        (v) => {
          const line =
            `frame=${v.p[0]}${v.frame} fps=${v.p[1]}${v.fps} q=${v.p[2]}${v.q} size=${v.p[3]}${v.sizeKb}kB ` +
            `time=${clock(v.ms)} bitrate=${v.p[4]}${v.kbps}kbits/s speed=${v.p[5]}${v.speed}x${v.p[6]}`;
          const got = parseProgressLine(line);
          assert.ok(got, line);
          assert.strictEqual(got.frame, v.frame);
          assert.strictEqual(got.fps, v.fps);
          assert.strictEqual(got.outTimeMs, v.ms);
          assert.ok(Math.abs(got.kbps - v.kbps) < 1e-9, `${got.kbps} vs ${v.kbps}`);
          assert.strictEqual(got.speed, v.speed);
        },
      ),
      runs(1000),
    );
  });

  it("reads -progress key=value lines (out_time_ms is microseconds) and ignores N/A", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 40 }), pad, (us, p) => {
        assert.deepStrictEqual(parseProgressLine(`out_time_us=${p}${us}`), {
          outTimeMs: Math.round(us / 1000),
        });
        assert.deepStrictEqual(parseProgressLine(`out_time_ms=${us}`), { outTimeMs: Math.round(us / 1000) });
        const ms = Math.floor(us / 10000) * 10;
        assert.deepStrictEqual(parseProgressLine(`out_time=${clock(ms)}`), { outTimeMs: ms });
        assert.deepStrictEqual(parseProgressLine(`bitrate=${p}N/A`), {});
        assert.deepStrictEqual(parseProgressLine(`speed=N/A`), {});
      }),
      runs(500),
    );
  });

  it("never throws on any line and returns only finite numbers", () => {
    const keys = [
      "frame",
      "fps",
      "bitrate",
      "out_time_us",
      "out_time_ms",
      "out_time",
      "time",
      "speed",
      "size",
    ];
    const lines = fc.oneof(
      fc.string({ unit: "binary", maxLength: 1200 }),
      fc
        .array(
          fc.tuple(
            fc.constantFrom(...keys),
            pad,
            fc.oneof(
              fc.string({ maxLength: 12 }),
              fc.constantFrom(
                "N/A",
                "nan",
                "inf",
                "-inf",
                "1e999",
                "99:99:99.99",
                "-00:00:01.00",
                "1e3kbits/s",
              ),
              fc.double().map(String),
            ),
          ),
          { maxLength: 8 },
        )
        .map((pairs) => pairs.map(([k, p, v]) => `${k}=${p}${v}`).join(" ")),
    );
    fc.assert(
      fc.property(lines, (line) => {
        const got = parseProgressLine(line);
        if (got === undefined) return;
        for (const [k, v] of Object.entries(got)) {
          assert.ok(["frame", "fps", "kbps", "outTimeMs", "speed"].includes(k), k);
          assert.ok(Number.isFinite(v), `${k}=${v} from ${JSON.stringify(line)}`);
        }
      }),
      runs(3000),
    );
    assert.strictEqual(
      parseProgressLine("frame=1 " + "x".repeat(1000)),
      undefined,
      "overlong lines are ignored",
    );
    assert.strictEqual(parseProgressLine(undefined), undefined);
  });
});

// ---- ffmpeg's fMP4 output, and fMP4 messages ---------------------------------------------------------

describe("properties: fMP4 splitting (ffmpeg stdout) and msg.mp4", function () {
  this.timeout(pick(60000, 900000));
  let fmp4;
  before(async () => {
    fmp4 = await makeFmp4({ seconds: 3 });
  });

  it("Mp4FragmentSplitter gives back init and every fragment whole, for any read sizes", () => {
    fc.assert(
      fc.property(cuts, (sizes) => {
        const got = [];
        const splitter = new Mp4FragmentSplitter({
          init: (data) => got.push(data),
          fragment: (data, info) => {
            assert.ok(
              Number.isFinite(info.startSec) && Number.isFinite(info.durationSec) && info.samples > 0,
            );
            got.push(data);
          },
        });
        for (const piece of pieces(fmp4.all, sizes)) splitter.push(piece);
        assert.deepStrictEqual(got, [fmp4.init, ...fmp4.fragments]);
      }),
      runs(200),
    );
  });

  it("Mp4FragmentSplitter never throws on damaged output and reports what it gives up on", () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 8 }), cuts, (mutations, sizes) => {
        const problems = [];
        const splitter = new Mp4FragmentSplitter({
          init: (data, info) => assert.ok(Buffer.isBuffer(data) && typeof info.codec === "string"),
          fragment: (data, info) => {
            assert.ok(Buffer.isBuffer(data));
            for (const v of [info.startSec, info.durationSec, info.samples])
              assert.strictEqual(typeof v, "number");
          },
          problem: (message) => problems.push(message),
        });
        for (const piece of pieces(mutate(fmp4.all, mutations), sizes)) splitter.push(piece);
        for (const p of problems) assert.strictEqual(typeof p, "string");
      }),
      runs(1500),
    );
  });

  it("mp4InfoFromMessage reads any msg.mp4 into finite numbers or nothing", () => {
    fc.assert(
      fc.property(fc.anything(), fc.constantFrom("init", "fragment", "other"), (value, type) => {
        for (const v of [value, { ...(typeof value === "object" && value ? value : {}), type }]) {
          const info = mp4InfoFromMessage(v);
          if (info === undefined) continue;
          assert.ok(info.type === "init" || info.type === "fragment");
          for (const k of ["seq", "duration", "time", "width", "height"])
            assert.ok(Number.isFinite(info[k]), k);
          assert.strictEqual(typeof info.codec, "string");
        }
      }),
      runs(1000),
    );
  });
});

// ---- credentials in text, host:port ---------------------------------------------------------------

describe("properties: redaction and Canon host[:port]", function () {
  this.timeout(pick(30000, 900000));

  it("redactCredentials leaves no password, raw or url-encoded, in any text", () => {
    const secret = fc.string({ unit: "binary", minLength: 1, maxLength: 24 }).filter((s) => !s.includes("*"));
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z]{1,8}$/),
        secret,
        fc.string({ maxLength: 40 }),
        fc.string({ maxLength: 40 }),
        fc.constantFrom("rtsp", "http", "https", "rtmp", "srt"),
        (user, password, before, after, scheme) => {
          const url = `${scheme}://${user}:${encodeURIComponent(password)}@cam.local:554/stream`;
          const text = `${before} ${url} ${after} password was ${password} / ${encodeURIComponent(password)}`;
          const out = redactCredentials(text, [password, `${user}:${password}`]);
          assert.ok(!out.includes(password), `${JSON.stringify(password)} left in ${JSON.stringify(out)}`);
          assert.ok(!out.includes(encodeURIComponent(password)), "url-encoded form left");
        },
      ),
      runs(1000),
    );
  });

  it("parseHostPort gives a host and a valid port, or a SourceError, for any text", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 80 }), (text) => {
        let parsed;
        try {
          parsed = parseHostPort(text, 65310);
        } catch (err) {
          assert.strictEqual(err.name, "SourceError", String(err));
          assert.strictEqual(err.kind, "config");
          return;
        }
        assert.ok(parsed.host.length > 0);
        assert.ok(Number.isInteger(parsed.port) && parsed.port > 0 && parsed.port < 65536);
      }),
      runs(1000),
    );
  });

  it("parseHostPort never keeps or echoes a user:password@ prefix", () => {
    assert.deepStrictEqual(parseHostPort("canon://admin:s3cret@cam.local:65311", 65310), {
      host: "cam.local",
      port: 65311,
    });
    assert.throws(
      () => parseHostPort("admin:s3cret@", 65310),
      (err) => err.kind === "config" && !err.message.includes("s3cret"),
    );
  });
});
