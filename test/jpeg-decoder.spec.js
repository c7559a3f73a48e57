// The JPEG decoder of compressed video (lib/codec/mp4-decoder.ts), where its CPU goes:
// - a capped decoder is fed only the part of each GOP its pictures need (GopFeed): from the keyframe up to
//   the last picture that becomes a JPEG. The rule on its own with made-up timings, then real ffmpeg decoding
//   a real fMP4 (a fragment a picture, as the camera's copying ffmpeg cuts it) fed both ways: the same number
//   of JPEGs come out of fewer pictures;
// - H.264 in limited range (the SPS's VUI says so) is stretched to the JPEG range by a look-up table instead
//   of ffmpeg's conversion: the same pictures (PSNR against ffmpeg's own conversion), full-range and H.265
//   streams keep ffmpeg's way.
"use strict";
const assert = require("assert");
const {
  GopFeed,
  Mp4Decoder,
  FEED_LEAVE,
  FEED_LATER,
  FEED_NOW,
} = require("../dist/nodes/lib/codec/mp4-decoder");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { Mp4FragmentSplitter, parseMoov } = require("../dist/nodes/lib/codec/fmp4-splitter");
const h = require("./lib/stream-out-helpers");

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-jpegdec-"));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/**
 * A clip of the test picture at 15 fps, a keyframe a second, written to `<tmp>/<name>.mp4` as fMP4 (a fragment
 * a picture with `fragUs` 1000, else one a GOP) and split: { file, init, fragments: [{ data, keyframe,
 * startSec, frames }] }. `full`: full-range H.264 (yuvj420p); codec libx265: H.265 tagged hvc1.
 */
async function clip(name, { seconds = 2, codec = "libx264", full = false, bframes, fragUs } = {}) {
  const file = path.join(tmp, `${name}.mp4`);
  const args = [
    "-v",
    "error",
    "-y",
    "-f",
    "lavfi",
    "-i",
    "testsrc2=size=320x240:rate=15",
    "-t",
    String(seconds),
  ];
  args.push("-c:v", codec, "-g", "15", "-keyint_min", "15", "-pix_fmt", full ? "yuvj420p" : "yuv420p");
  if (full) args.push("-color_range", "pc");
  if (codec === "libx265") args.push("-tag:v", "hvc1", "-x265-params", "log-level=error");
  else if (bframes !== undefined) args.push("-sc_threshold", "0", "-bf", String(bframes));
  args.push("-movflags", "empty_moov+default_base_moof+frag_keyframe");
  if (fragUs) args.push("-frag_duration", String(fragUs));
  args.push(file);
  const r = await h.run(h.ffmpegPath, args, { timeout: 60000 });
  if (r.code !== 0) throw new Error(r.stderr);
  const out = { file, fragments: [] };
  const splitter = new Mp4FragmentSplitter({
    init: (data) => (out.init = data),
    fragment: (data, info) =>
      out.fragments.push({ data, keyframe: info.keyframe, startSec: info.startSec, frames: info.samples }),
    problem: (m) => {
      throw new Error(m);
    },
  });
  splitter.push(fs.readFileSync(file));
  return out;
}

/** Timings of `gops` GOPs of `n` pictures at `fps` (one fragment a picture). */
function timings({ gops = 4, n = 15, fps = 15 } = {}) {
  const out = [];
  for (let g = 0; g < gops; g++)
    for (let i = 0; i < n; i++) out.push({ keyframe: i === 0, startSec: (g * n + i) / fps, frames: 1 });
  return out;
}

/** Per GOP: how many of its pictures were fed, and whether they were its first ones (a prefix). */
function fedPerGop(feed, list) {
  const gops = [];
  for (const t of list) {
    if (t.keyframe) gops.push({ fed: 0, prefix: true, gap: false });
    const g = gops[gops.length - 1];
    if (feed.take(t)) {
      if (g.gap) g.prefix = false;
      g.fed++;
    } else g.gap = true;
  }
  return gops;
}

describe("GopFeed: the pictures a capped decoder needs", function () {
  it("at 2 fps from 15 fps with a keyframe a second: the first GOP whole, then 10 of 15, always from the keyframe", function () {
    const gops = fedPerGop(new GopFeed(2), timings({ gops: 5 }));
    assert.deepStrictEqual(
      gops.map((g) => g.fed),
      [15, 10, 10, 10, 10],
      "the first GOP is fed whole (its length is not known yet); later ones up to the 0.5 s picture and one more",
    );
    assert.ok(
      gops.every((g) => g.prefix),
      "never a picture after a left-out one: a P-frame needs all before it",
    );
  });

  it("says which fed pictures must reach ffmpeg at once: the keyframe, each that becomes a JPEG, and the margin", function () {
    const feed = new GopFeed(2);
    const list = timings({ gops: 3 });
    const decisions = list.map((t) => feed.take(t));
    // The third GOP (t = 2 s): keyframe and its margin picture now, 2-7 later, 8 (0.53 s: the 2 fps
    // boundary) and its margin now, the rest left out.
    const third = decisions.slice(30, 45);
    assert.deepStrictEqual(third, [
      FEED_NOW,
      FEED_NOW,
      ...Array(6).fill(FEED_LATER),
      FEED_NOW,
      FEED_NOW,
      ...Array(5).fill(FEED_LEAVE),
    ]);
    assert.strictEqual(feed.take({ keyframe: false, frames: 0 }), FEED_LEAVE, "audio after the fed part");
  });

  it("feeds everything uncapped, or when the fragments carry no time; only keyframes when that is all that is wanted", function () {
    assert.ok(timings().every((t) => new GopFeed(0).take(t)));
    const untimed = new GopFeed(2);
    assert.ok(timings().every((t) => untimed.take({ keyframe: t.keyframe })));
    const keys = new GopFeed(0, true);
    const fed = timings().filter((t) => keys.take(t));
    assert.strictEqual(fed.length, 4);
    assert.ok(fed.every((t) => t.keyframe));
  });

  it("at 1 fps or less a GOP of a second needs its keyframe and the margin picture only; at the camera's rate it needs all", function () {
    assert.deepStrictEqual(
      fedPerGop(new GopFeed(1), timings()).map((g) => g.fed),
      [15, 2, 2, 2],
    );
    assert.deepStrictEqual(
      fedPerGop(new GopFeed(15), timings()).map((g) => g.fed),
      [15, 15, 15, 15],
    );
  });

  it("an audio-only fragment goes with its GOP's fed part and is left out with the rest", function () {
    const feed = new GopFeed(2);
    const list = timings({ gops: 3 });
    const results = [];
    for (const t of list) {
      results.push(!!feed.take(t));
      results.push(!!feed.take({ keyframe: false, startSec: 0, frames: 0 })); // audio held by the splitter
    }
    // Audio after a left-out picture is left out too; inside the fed part it is fed (the GOP's last fed
    // picture ends the part, so the audio right after it is not).
    let fedAudio = 0;
    for (let i = 0; i < results.length; i += 2) {
      if (!results[i]) assert.strictEqual(results[i + 1], false, `audio after left-out picture ${i / 2}`);
      if (results[i + 1]) fedAudio++;
    }
    const fedPictures = results.filter((r, i) => i % 2 === 0 && r).length;
    assert.strictEqual(
      fedAudio,
      fedPictures - 2,
      "all but the audio after the last fed picture of GOPs 2 and 3",
    );
  });

  it("a GOP longer than the ones before loses its late pictures only: the next keyframe is fed again", function () {
    const feed = new GopFeed(2);
    const list = [...timings({ gops: 2 })];
    // A third GOP of 3 s (a camera that stretched its GOP), then a normal one.
    for (let i = 0; i < 45; i++) list.push({ keyframe: i === 0, startSec: 2 + i / 15, frames: 1 });
    for (let i = 0; i < 15; i++) list.push({ keyframe: i === 0, startSec: 5 + i / 15, frames: 1 });
    const gops = fedPerGop(feed, list);
    assert.strictEqual(gops.length, 4);
    assert.strictEqual(gops[2].fed, 10, "foreseen as 1 s long");
    assert.strictEqual(gops[3].fed, 15, "the 3 s GOP is now the longest remembered: fed whole");
    assert.ok(gops.every((g) => g.prefix));
  });

  it("time going back (a new stream) forgets the GOP lengths", function () {
    const feed = new GopFeed(2);
    fedPerGop(feed, timings({ gops: 3 }));
    const again = fedPerGop(feed, timings({ gops: 2 }));
    assert.deepStrictEqual(
      again.map((g) => g.fed),
      [15, 10],
    );
  });
});

describe("Mp4Decoder fed part of each GOP (real ffmpeg)", function () {
  this.timeout(120000);

  /** JPEGs out of a 2 fps decoder fed the clip live; `timed` = with the fragments' times (GopFeed at work). */
  async function decode(c, timed, decoder) {
    const d = decoder ?? new Mp4Decoder({ ffmpegPath: h.ffmpegPath, fps: 2 });
    const jpegs = [];
    d.on("frame", (p) => jpegs.push(p));
    const problems = [];
    d.on("problem", (m) => problems.push(m));
    d.start(c.init, []);
    for (const f of c.fragments) d.push(f.data, timed ? f : f.keyframe);
    // The last picture leaves ffmpeg when its input ends.
    const proc = d.proc;
    await new Promise((resolve) => {
      proc.once("exit", resolve);
      proc.stdin.end();
    });
    return { jpegs, range: d.range, problems: problems.filter((p) => !/ended \(code 0\)/.test(p)) };
  }

  for (const bframes of [0, 2]) {
    it(`gives the same JPEGs from fewer pictures (${bframes ? "with B-frames" : "no B-frames, as cameras send"})`, async function () {
      const c = await clip(`gop-${bframes}`, { seconds: 8, bframes, fragUs: 1000 });
      assert.ok(c.fragments.length >= 110, `a fragment a picture (${c.fragments.length})`);
      const feed = new GopFeed(2);
      const fed = c.fragments.filter((f) => feed.take(f)).length;
      assert.ok(fed < c.fragments.length * 0.8, `fed ${fed} of ${c.fragments.length} pictures`);
      const all = await decode(c, false);
      const part = await decode(c, true);
      assert.deepStrictEqual(part.problems, [], "ffmpeg decoded the cut GOPs without complaint");
      assert.ok(all.jpegs.length >= 15, `2 fps over 8 s: ${all.jpegs.length} from every picture`);
      assert.strictEqual(part.jpegs.length, all.jpegs.length, "as many JPEGs from part of each GOP");
      for (const p of part.jpegs) assert.deepStrictEqual([p.width, p.height], [320, 240]);
    });
  }
});

describe("Mp4Decoder: the JPEG range", function () {
  this.timeout(120000);

  /** The first picture through the decoder (every frame, so the keyframe) and through plain ffmpeg to JPEG. */
  async function firstPictures(c, name) {
    const d = new Mp4Decoder({ ffmpegPath: h.ffmpegPath, quality: 2 });
    const got = new Promise((resolve, reject) => {
      d.once("frame", resolve);
      d.once("problem", (m) => reject(new Error(m)));
    });
    d.start(
      c.init,
      c.fragments.slice(0, 2).map((f) => f.data),
    );
    const picture = await got;
    const range = d.range;
    d.stop();
    const mine = path.join(tmp, `${name}-decoder.jpg`);
    const ref = path.join(tmp, `${name}-ffmpeg.jpg`);
    fs.writeFileSync(mine, picture.data);
    const r = await h.run(h.ffmpegPath, [
      "-v",
      "error",
      "-y",
      "-i",
      c.file,
      "-frames:v",
      "1",
      "-q:v",
      "2",
      ref,
    ]);
    if (r.code !== 0) throw new Error(r.stderr);
    return { mine, ref, range };
  }

  /** PSNR of two JPEGs compared as full-range RGB (what a browser shows). */
  async function psnr(a, b) {
    const r = await h.run(h.ffmpegPath, [
      ...["-hide_banner", "-i", a, "-i", b, "-lavfi", "[0]format=rgb24[x];[1]format=rgb24[y];[x][y]psnr"],
      ...["-f", "null", "-"],
    ]);
    const m = /average:([\d.]+|inf)/.exec(r.stderr);
    if (!m) throw new Error(`no PSNR: ${r.stderr.slice(-500)}`);
    return m[1] === "inf" ? Infinity : Number(m[1]);
  }

  /** [darkest, brightest] luma of the first picture of a file, as stored (no range conversion). */
  async function lumaRange(file) {
    const r = await h.run(h.ffmpegPath, [
      ...["-hide_banner", "-i", file, "-frames:v", "1", "-vf", "signalstats,metadata=print:file=-"],
      ...["-f", "null", "-"],
    ]);
    return [Number(/YMIN=(\d+)/.exec(r.stdout)?.[1]), Number(/YMAX=(\d+)/.exec(r.stdout)?.[1])];
  }

  it("reads the range from the SPS: limited for a camera's usual H.264, full when its VUI says so", async function () {
    const limited = await clip("limited");
    const full = await clip("full", { full: true });
    assert.strictEqual(parseMoov(limited.init).sps.fullRange, false);
    assert.strictEqual(parseMoov(full.init).sps.fullRange, true);
  });

  it("limited-range H.264 goes through the table and looks as ffmpeg's own conversion makes it", async function () {
    const c = await clip("limited");
    const { mine, ref, range } = await firstPictures(c, "limited");
    assert.strictEqual(range, "limited", "the look-up table, not swscale");
    const db = await psnr(mine, ref);
    assert.ok(db > 40, `the same picture as ffmpeg's conversion (PSNR ${db} dB)`);
    // Not washed out: the darkest and brightest luma of the JPEG are where ffmpeg's conversion puts them, and
    // away from where they are in the stream itself (16-235 shown as 0-255 would look grey).
    const [mineY, refY, streamY] = [await lumaRange(mine), await lumaRange(ref), await lumaRange(c.file)];
    assert.ok(
      Math.abs(mineY[0] - refY[0]) <= 3 && Math.abs(mineY[1] - refY[1]) <= 3,
      `luma ${mineY} as ffmpeg's ${refY}`,
    );
    assert.ok(
      streamY[0] - mineY[0] >= 5 || mineY[1] - streamY[1] >= 5,
      `stretched from the stream's ${streamY}`,
    );
  });

  it("full-range H.264 and H.265 keep ffmpeg's conversion, with the same pictures", async function () {
    for (const [name, opts] of [
      ["full", { full: true }],
      ["h265", { codec: "libx265" }],
    ]) {
      const c = await clip(name, opts);
      const { mine, ref, range } = await firstPictures(c, name);
      assert.strictEqual(range, "ffmpeg", name);
      const db = await psnr(mine, ref);
      assert.ok(db > 40, `${name}: PSNR ${db} dB`);
    }
  });
});
