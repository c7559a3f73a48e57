// The test camera's own delay, for reading the latency bench: one ffmpeg (one decoding thread, no input
// buffering) reads the RTSP relay straight, crops the stamp strip and pipes it raw; each picture's age is
// taken as it arrives here. This is what any viewer pays before camrelay is involved (libx264 encode,
// MPEG-TS, the GStreamer relay, RTSP, a decode).
"use strict";
const { spawn } = require("child_process");
const { readStamp, stampAge, STAMP_X, STAMP_Y, STAMP_BLOCK, STAMP_BLOCKS } = require("./stamp");

function startStampReader(ffmpeg, url) {
  const w = STAMP_BLOCK * STAMP_BLOCKS;
  const frame = w * STAMP_BLOCK * 4;
  const child = spawn(
    ffmpeg,
    [
      ...["-hide_banner", "-nostdin", "-loglevel", "error", "-fflags", "nobuffer", "-flags", "low_delay"],
      ...["-threads", "1", "-rtsp_transport", "tcp", "-i", url],
      ...[
        "-vf",
        `crop=${w}:${STAMP_BLOCK}:${STAMP_X}:${STAMP_Y}`,
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgba",
        "pipe:1",
      ],
    ],
    { stdio: ["ignore", "pipe", "ignore"] },
  );
  const r = { samples: [], bad: 0, measuring: false };
  let pending = Buffer.alloc(0);
  child.stdout.on("data", (d) => {
    pending = pending.length ? Buffer.concat([pending, d]) : d;
    while (pending.length >= frame) {
      const stamp = readStamp(pending.subarray(0, frame), w);
      pending = pending.subarray(frame);
      if (stamp < 0) r.bad++;
      else if (r.measuring) r.samples.push(stampAge(stamp, Date.now()));
    }
  });
  r.stop = async () => {
    if (child.exitCode !== null) return;
    const gone = new Promise((res) => child.once("exit", res));
    child.kill("SIGKILL");
    await gone;
  };
  return r;
}

module.exports = { startStampReader };
