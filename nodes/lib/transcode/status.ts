/**
 * The one mapping from what an `ffmpeg transcode` node is doing to its status: a pure function, so every
 * state's colour, shape and words are tested without Node-RED. The text is an i18n key under
 * `ffmpeg-transcode.` with its parameters; the adapter translates it.
 */
import type { LiveState } from "./live";

export interface TranscodeStatus {
  fill: "red" | "green" | "yellow" | "blue" | "grey";
  shape: "ring" | "dot";
  key: string;
  params?: Record<string, string | number>;
}

export interface TranscodeView {
  /** A setup failure that stops the node for good (no ffmpeg, bad settings): its status key. */
  fatalKey?: string;
  /** A recent error's status key, shown until `errorUntil` (epoch ms). */
  errorKey?: string;
  errorUntil?: number;
  now: number;
  /** The mp4 preset, once set up. */
  recorder?: { recording: boolean; elapsedSec: number; preRollSpanMs: number; preRollBytes?: number };
  /** The pre-roll the node is set to keep, in seconds. */
  preRollSec: number;
  /** The live presets, once set up. */
  live?: LiveState;
  /** Compressed input: "copy", or why it is encoded (a size or bitrate set). */
  copy?: string;
  /** Frames per second coming in, and kb/s going out. */
  fps: number;
  kbps: number;
}

/** Seconds as mm:ss, or h:mm:ss from an hour on. */
export function mmss(sec: number): string {
  const s = Math.max(0, Math.floor(sec));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/** Bytes in few characters: 640kB, 1.4MB. */
export function size(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)}MB` : `${Math.round(bytes / 1000)}kB`;
}

/** A bit rate in few characters: 800kb/s, 2.5Mb/s. */
export function rate(kbps: number): string {
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(1)}Mb/s` : `${Math.round(kbps)}kb/s`;
}

const LIVE: Record<Exclude<LiveState, "live">, Omit<TranscodeStatus, "params">> = {
  starting: { fill: "yellow", shape: "ring", key: "status.starting" },
  retrying: { fill: "red", shape: "ring", key: "status.retrying" },
  paused: { fill: "grey", shape: "ring", key: "status.stopped" },
  idle: { fill: "grey", shape: "ring", key: "status.waiting" },
};

export function transcodeStatus(v: TranscodeView): TranscodeStatus {
  const st = statusOf(v);
  if (!v.copy || st.fill === "red") return st;
  // Compressed input: say whether it is copied or encoded (and why).
  const mode = v.copy === "copy" ? "copy" : `encode (${v.copy})`;
  return { ...st, key: "status.withMode", params: { ...st.params, inner: st.key, mode } };
}

function statusOf(v: TranscodeView): TranscodeStatus {
  if (v.fatalKey) return { fill: "red", shape: "ring", key: v.fatalKey };
  if (v.errorKey && v.now < (v.errorUntil ?? 0)) return { fill: "red", shape: "ring", key: v.errorKey };
  if (v.recorder) {
    if (v.recorder.recording) {
      const params = { time: mmss(v.recorder.elapsedSec), rate: rate(v.kbps) };
      return { fill: "blue", shape: "dot", key: "status.recording", params };
    }
    if (v.fps === 0) return { fill: "grey", shape: "ring", key: "status.waiting" };
    const s = Math.floor(Math.min(v.preRollSec, v.recorder.preRollSpanMs / 1000));
    // What the pre-roll holds in memory, beside how far back it reaches.
    const mem = size(v.recorder.preRollBytes ?? 0);
    return { fill: "green", shape: "ring", key: "status.idle", params: { s, mem } };
  }
  if (v.live === "live") {
    const params = { fps: Math.round(v.fps), rate: rate(v.kbps) };
    return { fill: "green", shape: "dot", key: "status.live", params };
  }
  if (v.live) return { ...LIVE[v.live] };
  return { fill: "yellow", shape: "ring", key: "status.starting" };
}
