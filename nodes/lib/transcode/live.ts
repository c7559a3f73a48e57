import { EventEmitter } from "events";
import { promises as fsp } from "fs";
import path from "path";
import type { FfmpegProgress } from "../ffmpeg";
import type { Frame } from "../media";
import { Backoff as SharedBackoff } from "../backoff";
import type { Mp4Info } from "../messages/mp4";
import { HLS_PLAYLIST_FILE, HLS_SEGMENT_FILE, estimateFps } from "./args";
import { describeExit, frameSize, TranscodeSession, type Mp4Piece } from "./session";

/** Restart delays of a transcode ffmpeg: 1 s doubling to 30 s, no jitter; reset after a run that went well. */
export class Backoff extends SharedBackoff {
  constructor(firstMs = 1000, maxMs = 30000) {
    super({ firstMs, maxMs });
  }
}

/** The `msg.mp4` field of an fMP4 message, as http stream out reads it. */
export type Mp4MessageInfo = Mp4Info;

export interface LiveOutput {
  args: string[];
  stdout: "fmp4" | "raw" | "none";
}

export interface LiveTranscoderOptions {
  ffmpegPath: string;
  /** Builds the full argument list for frames of this size and rate (called at each (re)start). */
  output: (width: number, height: number, fps: number) => LiveOutput;
  secrets?: (string | undefined)[];
  /** Stop ffmpeg when no frame came for this long; it starts again with the next frame. */
  idleMs?: number;
  /** A run at least this long resets the restart backoff. */
  healthyMs?: number;
  backoff?: Backoff;
  maxQueueMs?: number;
  /** Seconds between forced keyframes: a run's end is kept before the next one (no one-frame last segment). */
  keyframeInterval?: number;
}

export type LiveState = "idle" | "starting" | "live" | "retrying" | "paused";

/**
 * A supervised ffmpeg for the live presets (hls, fmp4, flv, push, custom): starts with the first frame,
 * restarts with backoff when ffmpeg dies (a media server went away, a crash), stops after a silence.
 * Events: `init` ({ data, info: Mp4MessageInfo }), `fragment` ({ data, info: Mp4MessageInfo }), `data` (Buffer),
 * `progress` (FfmpegProgress), `failure` (message), `state` (LiveState), `dropped` (count: frames ffmpeg did
 * not keep up with; frames that arrive while waiting to retry are counted in `skipped` instead).
 */
export interface LiveTranscoderEvents {
  init: [piece: Mp4Piece<Mp4MessageInfo>];
  fragment: [piece: Mp4Piece<Mp4MessageInfo>];
  data: [data: Buffer];
  progress: [progress: FfmpegProgress];
  failure: [message: string];
  state: [state: LiveState];
  dropped: [count: number];
}

export class LiveTranscoder extends EventEmitter<LiveTranscoderEvents> {
  private session?: TranscodeSession;
  private readonly stopping = new Set<Promise<void>>();
  private readonly backoff: Backoff;
  private retryUntil = 0;
  private retryTimer?: NodeJS.Timeout;
  private idleTimer?: NodeJS.Timeout;
  private lastFrameAt = 0;
  private latest?: Frame;
  private readonly recentTimes: number[] = [];
  private init?: { codec: string; width: number; height: number };
  private seq = 0;
  private paused = false;
  private closed = false;
  state: LiveState = "idle";
  dropped = 0;
  /** Frames that came while ffmpeg was down, waiting for the retry (not ffmpeg's fault: no `dropped`). */
  skipped = 0;
  restarts = 0;

  constructor(private readonly opts: LiveTranscoderOptions) {
    super();
    this.backoff = opts.backoff ?? new Backoff();
  }

  get pid(): number | undefined {
    return this.session?.proc.pid;
  }

  push(frame: Frame): void {
    if (this.closed) return;
    this.lastFrameAt = Date.now();
    this.latest = frame;
    this.recentTimes.push(frame.time);
    if (this.recentTimes.length > 50) this.recentTimes.shift();
    if (this.paused) return;
    if (!this.session) {
      if (Date.now() < this.retryUntil) {
        this.skipped++;
        return;
      }
      this.startSession(frame);
    }
    this.session?.write(frame);
    this.armIdle();
  }

  /** `msg.action = "stop"`: ffmpeg ends and frames are ignored until resume(). */
  pause(): Promise<void> {
    this.paused = true;
    this.clearRetry();
    this.setState("paused");
    return this.stopSession();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.retryUntil = 0; // a stop and start by hand is a fresh start, not a retry
    this.setState("idle");
  }

  private startSession(frame: Frame): void {
    const { width, height } = frameSize(frame);
    let output: LiveOutput;
    try {
      output = this.opts.output(width, height, estimateFps(this.recentTimes));
    } catch (err) {
      this.emit("failure", (err as Error).message);
      this.scheduleRetry();
      return;
    }
    const fps = estimateFps(this.recentTimes);
    const session = new TranscodeSession({
      ffmpegPath: this.opts.ffmpegPath,
      args: output.args,
      width,
      height,
      secrets: this.opts.secrets,
      stdout: output.stdout,
      maxQueueMs: this.opts.maxQueueMs,
      // A last HLS segment of one frame then lasts one frame interval, not 0.1 ms.
      frameDurationMs: 1000 / fps,
    });
    this.session = session;
    this.setState("starting");
    session.on("init", ({ data, info }) => {
      this.init = { codec: info.codec, width: info.width, height: info.height };
      this.emit("init", {
        data,
        info: { type: "init", seq: this.seq, duration: 0, time: frame.time, ...this.init },
      });
    });
    session.on("fragment", ({ data, info }) => {
      const init = this.init ?? { codec: "avc1.640028", width, height };
      this.emit("fragment", {
        data,
        info: {
          type: "fragment",
          seq: this.seq++,
          duration: info.durationSec,
          time: Math.round(info.time),
          // Fragments inside a GOP (LIVE_PART_US) say so: a store groups them into one segment per GOP.
          keyframe: info.keyframe,
          ...init,
        },
      });
    });
    session.on("data", (chunk: Buffer) => this.emit("data", chunk));
    session.on("progress", (p: FfmpegProgress) => {
      if (this.session !== session) return;
      if (this.state !== "live") this.setState("live");
      this.emit("progress", p);
    });
    session.on("dropped", () => this.emit("dropped", ++this.dropped));
    session.on("exit", ({ code, signal, stderr, expected }) => {
      if (this.session === session) this.session = undefined;
      if (expected || this.closed || this.paused) return;
      const how = describeExit(session, code, signal);
      this.failed(session, `ffmpeg ${how}${stderr.length ? `: ${stderr.slice(-3).join(" | ")}` : ""}`);
    });
    // ffmpeg's output cannot be split any more: end this run, and the restart gives viewers a fresh init.
    session.on("warning", (message: string) => {
      if (this.session !== session || this.closed || this.paused) return;
      void this.stopSession();
      this.failed(session, message);
    });
    session.start();
  }

  /** A run ended badly: report it and restart after the backoff (reset first when the run went well). */
  private failed(session: TranscodeSession, message: string): void {
    this.emit("failure", message);
    if (Date.now() - session.startedAt >= (this.opts.healthyMs ?? 10000)) this.backoff.reset();
    this.scheduleRetry();
  }

  private scheduleRetry(): void {
    const wait = this.backoff.next();
    this.restarts++;
    this.retryUntil = Date.now() + wait;
    this.setState("retrying");
    this.clearRetry();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closed || this.paused || this.session) return;
      // Restart at once when frames are still coming; otherwise the next frame starts it.
      if (this.latest && Date.now() - this.lastFrameAt < 2000) this.push(this.latest);
      else this.setState("idle");
    }, wait);
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private armIdle(): void {
    if (this.idleTimer) return;
    const idleMs = this.opts.idleMs ?? 10000;
    this.idleTimer = setInterval(
      () => {
        if (!this.session || Date.now() - this.lastFrameAt < idleMs) return;
        if (this.idleTimer) clearInterval(this.idleTimer);
        this.idleTimer = undefined;
        void this.stopSession().then(() => {
          if (!this.paused && !this.closed) this.setState("idle");
        });
      },
      Math.min(1000, idleMs),
    );
  }

  private stopSession(): Promise<void> {
    const session = this.session;
    this.session = undefined;
    if (!session) return Promise.resolve();
    const done = session.finish(this.endTime(session), 5000, 1);
    this.stopping.add(done);
    void done.finally(() => this.stopping.delete(done));
    return done;
  }

  /**
   * Where a run ends: one frame interval after its last frame, so that the last HLS segment lasts at least a
   * frame (ffmpeg 4.x measures a stream's last segment by its frame times, 5.x sums the frames' durations),
   * but before the next forced keyframe, which would open a last segment of a single frame.
   */
  private endTime(session: TranscodeSession): number | undefined {
    const last = session.lastTime;
    const base = session.baseTime;
    if (last === undefined || base === undefined) return undefined;
    const k = Math.max(0.2, this.opts.keyframeInterval ?? 1) * 1000;
    const nextKeyframe = base + (Math.floor((last - base) / k) + 1) * k;
    return Math.min(last + Math.min(1000, 1000 / estimateFps(this.recentTimes)), nextKeyframe - 1);
  }

  private setState(state: LiveState): void {
    if (state === this.state) return;
    this.state = state;
    this.emit("state", state);
  }

  /** Ends ffmpeg (EOF, then SIGTERM, then SIGKILL) and waits until it is gone. */
  async close(): Promise<void> {
    this.closed = true;
    this.clearRetry();
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.idleTimer = undefined;
    await this.stopSession();
    await Promise.all([...this.stopping]);
  }

  /** Kills the running ffmpeg at once (tests: supervision must restart it). */
  killFfmpeg(): number | undefined {
    const pid = this.session?.proc.pid;
    this.session?.kill();
    return pid;
  }
}

/** Segment names an HLS playlist lists (its URI lines, by base name). */
export function playlistSegments(playlist: string): Set<string> {
  const out = new Set<string>();
  for (const raw of playlist.split(/\r?\n/)) {
    const line = raw.trim();
    if (line && !line.startsWith("#")) out.add(path.posix.basename(line.split(/[?#]/)[0]));
  }
  return out;
}

/**
 * Deletes the HLS segments in `dir` that camrelay's muxer wrote (HLS_SEGMENT_FILE, nothing else) and that
 * index.m3u8 no longer lists, once they are `minAgeMs` old: earlier runs' segments, which ffmpeg's own
 * delete_segments never removes, pile up otherwise. The age spares the segment being written and segments a
 * player may still fetch from the playlist before. Resolves the number of files deleted; never rejects.
 */
export async function sweepHlsDirectory(dir: string, minAgeMs: number, now = Date.now()): Promise<number> {
  let listed = new Set<string>();
  try {
    listed = playlistSegments(await fsp.readFile(path.join(dir, HLS_PLAYLIST_FILE), "utf8"));
  } catch {
    // no playlist (yet): nothing is listed
  }
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch {
    return 0;
  }
  let deleted = 0;
  for (const name of names) {
    if (!HLS_SEGMENT_FILE.test(name) || listed.has(name)) continue;
    const file = path.join(dir, name);
    try {
      const st = await fsp.lstat(file);
      if (!st.isFile() || now - st.mtimeMs < minAgeMs) continue;
      await fsp.unlink(file);
      deleted++;
    } catch {
      // deleted meanwhile (by ffmpeg itself) or not ours to delete
    }
  }
  return deleted;
}

const FAILURE_CAUSES: [RegExp, string][] = [
  [/connection refused/i, "connection refused"],
  [/timed out|timeout/i, "no answer (timed out)"],
  [/no route to host/i, "no route to host"],
  [/network is unreachable/i, "network unreachable"],
  [/name or service not known|failed to resolve|could not resolve|name resolution/i, "host name not found"],
  [/connection reset/i, "connection reset by the server"],
  [/broken pipe|end of file/i, "the server closed the connection"],
  [/\b401\b|unauthori[sz]ed|authentication/i, "the server refused the login"],
  [/server returned 40[34]|\b403 forbidden|\b404 not found/i, "the server refused the stream"],
];

/**
 * The cause of a failed ffmpeg run in a few words ("connection refused"), for a log line that says what is
 * wrong; the same cause on every retry gives the same words (pointers like `[tcp @ 0x55d0...]` removed).
 */
export function failureCause(message: string): string {
  for (const [pattern, cause] of FAILURE_CAUSES) if (pattern.test(message)) return cause;
  return message.replace(/\s*@\s*0x[0-9a-f]+/gi, "").trim();
}

/**
 * sweepHlsDirectory for a node's HLS directory, at most once every 10 s and one sweep at a time: call it
 * as often as you like (the node does every second). Earlier runs' segments go once 3 keyframe intervals
 * (at least 30 s) old.
 */
export function hlsSweeper(dir: string, keyframeInterval: number): () => void {
  let sweeping = false;
  let last = 0;
  const minAgeMs = Math.max(30000, keyframeInterval * 3000);
  return () => {
    if (sweeping || Date.now() - last < 10000) return;
    sweeping = true;
    last = Date.now();
    void sweepHlsDirectory(dir, minAgeMs).finally(() => (sweeping = false));
  };
}
