// JpegStreamSplitter throughput on a recorded stream (300 real 640x480 frames from the bundled ffmpeg, as
// multipart with and without Content-Length), fed in 64 KiB chunks and in 1460-byte TCP-segment-sized
// chunks, next to a naive splitter that concatenates every chunk onto a pending buffer and looks for
// FFD8/FFD9 with indexOf. Prints one table; run() returns its rows. Needs `npm run build` first.
"use strict";
const { JpegStreamSplitter } = require("../dist/nodes/lib/codec/jpeg-stream-splitter");
const { makeFrames, multipart, chunk } = require("../test/lib/mjpeg-corpus");

const SOI = Buffer.from([0xff, 0xd8]);
const EOI = Buffer.from([0xff, 0xd9]);

/** What a first attempt usually looks like (and breaks on EXIF thumbnails, whose EOI ends the frame). */
class NaiveSplitter {
  constructor(onFrame) {
    this.onFrame = onFrame;
    this.pending = Buffer.alloc(0);
  }

  push(data) {
    this.pending = Buffer.concat([this.pending, data]);
    for (;;) {
      const start = this.pending.indexOf(SOI);
      if (start < 0) {
        this.pending = this.pending.subarray(Math.max(0, this.pending.length - 1));
        return;
      }
      const end = this.pending.indexOf(EOI, start + 2);
      if (end < 0) {
        this.pending = this.pending.subarray(start);
        return;
      }
      this.onFrame(this.pending.subarray(start, end + 2));
      this.pending = this.pending.subarray(end + 2);
    }
  }
}

const SPLITTERS = {
  JpegStreamSplitter: (onFrame) => new JpegStreamSplitter(onFrame),
  "naive concat+indexOf": (onFrame) => new NaiveSplitter(onFrame),
};

/** Feeds all chunks to a fresh splitter; returns the frame count. */
function feed(make, chunks) {
  let frames = 0;
  const splitter = make(() => frames++);
  for (const c of chunks) splitter.push(c);
  return frames;
}

const REPEAT = 15;

/** Median and best wall time of REPEAT runs, in ms (best is the one least disturbed by other load). */
function time(fn) {
  const times = [];
  for (let i = 0; i < REPEAT; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)], best: times[0] };
}

function run({ frameCount = 300, size = "640x480" } = {}) {
  const frames = makeFrames(frameCount, size);
  const streams = {
    "multipart + Content-Length": multipart(frames).body,
    "multipart, no Content-Length": multipart(frames, { contentLength: false }).body,
  };
  const cases = [];
  for (const [stream, body] of Object.entries(streams)) {
    for (const chunkBytes of [65536, 1460]) {
      const chunks = chunk(body, chunkBytes);
      for (const [splitter, make] of Object.entries(SPLITTERS))
        cases.push({ stream, body, chunkBytes, chunks, splitter, make });
    }
  }
  // Warm every case up first: otherwise whichever runs first pays for the JIT.
  for (let i = 0; i < 3; i++) for (const c of cases) feed(c.make, c.chunks);
  const rows = [];
  for (const { stream, body, chunkBytes, chunks, splitter, make } of cases) {
    const count = feed(make, chunks);
    const ms = time(() => feed(make, chunks));
    const mbps = (t) => Math.round(body.length / 1e6 / (t / 1000));
    rows.push({
      splitter,
      frameSize: size,
      stream,
      chunkBytes,
      frames: count,
      MB: +(body.length / 1e6).toFixed(2),
      ms: +ms.median.toFixed(2),
      MBps: mbps(ms.median),
      fps: Math.round(count / (ms.median / 1000)),
      bestMBps: mbps(ms.best),
    });
  }
  return rows;
}

function print(rows) {
  console.log(
    `MJPEG splitting, ${rows[0].frames} frames of ${rows[0].frameSize} (median of ${REPEAT} runs, and the best run)`,
  );
  console.table(
    rows.map((r) => ({
      splitter: r.splitter,
      stream: r.stream,
      chunk: r.chunkBytes,
      frames: r.frames,
      "MB/s": r.MBps,
      "frames/s": r.fps,
      "best MB/s": r.bestMBps,
    })),
  );
}

module.exports = { run, print };

if (require.main === module) print(run());
