/** Reading ffmpeg's progress output: `-progress` key=value blocks and classic stats lines. */

export interface FfmpegProgress {
  frame: number;
  fps: number;
  kbps: number;
  outTimeMs: number;
  speed: number;
}

const PROGRESS_KEYS = new Set([
  "frame",
  "fps",
  "bitrate",
  "total_size",
  "out_time_us",
  "out_time_ms",
  "out_time",
  "dup_frames",
  "drop_frames",
  "speed",
  "progress",
  "size",
  "time",
  "q",
  "dup",
  "drop",
  "Lsize",
]);
const PAIR = /([A-Za-z_][A-Za-z0-9_]*)=\s*(\S+)/g;
/** One `-progress` line: `key=value` (values may be padded, e.g. `bitrate= 800.0kbits/s`). */
const KV_LINE = /^\s*[A-Za-z_][A-Za-z0-9_]*=\s*\S*\s*$/;

/** True for a line that is one `key=value` pair and nothing else (a line of a `-progress` block). */
export function isProgressPairLine(line: string): boolean {
  return KV_LINE.test(line);
}

function clockToMs(value: string): number | undefined {
  const m = /^(-?)(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(value);
  if (!m) return undefined;
  const ms = (Number(m[2]) * 3600 + Number(m[3]) * 60 + Number(m[4])) * 1000;
  return m[1] ? -ms : ms;
}

function finite(value: number): number | undefined {
  return Number.isFinite(value) ? value : undefined;
}

/**
 * Reads one line of ffmpeg progress: a `-progress` key=value line (`out_time_ms` is in microseconds, an
 * ffmpeg quirk) or a classic stats line `frame= 12 fps=10 ... time=00:00:01.20 bitrate= 800.0kbits/s
 * speed=1x`. Returns undefined for anything else. Never throws.
 */
export function parseProgressLine(line: string): Partial<FfmpegProgress> | undefined {
  if (typeof line !== "string" || line.length > 1000) return undefined;
  const out: Partial<FfmpegProgress> = {};
  let known = 0;
  PAIR.lastIndex = 0;
  for (let m = PAIR.exec(line); m; m = PAIR.exec(line)) {
    const key = m[1];
    const value = m[2];
    if (!PROGRESS_KEYS.has(key)) continue;
    known++;
    let v: number | undefined;
    switch (key) {
      case "frame":
        v = finite(parseInt(value, 10));
        if (v !== undefined) out.frame = v;
        break;
      case "fps":
        v = finite(parseFloat(value));
        if (v !== undefined) out.fps = v;
        break;
      case "bitrate": {
        const b = /^([\d.]+)(k|M)?bits\/s$/.exec(value);
        if (b) {
          v = finite(parseFloat(b[1]) * (b[2] === "M" ? 1000 : b[2] === "k" ? 1 : 0.001));
          if (v !== undefined) out.kbps = v;
        }
        break;
      }
      case "out_time_us":
      case "out_time_ms":
        v = finite(parseInt(value, 10) / 1000);
        if (v !== undefined) out.outTimeMs = Math.round(v);
        break;
      case "out_time":
      case "time":
        v = clockToMs(value);
        if (v !== undefined) out.outTimeMs = Math.round(v);
        break;
      case "speed": {
        const s = /^([\d.]+)x$/.exec(value);
        if (s) {
          v = finite(parseFloat(s[1]));
          if (v !== undefined) out.speed = v;
        }
        break;
      }
    }
  }
  if (known === 0) return undefined;
  // A lone key=value line is only progress output when the whole line is that pair.
  if (known === 1 && !KV_LINE.test(line)) return undefined;
  return out;
}
