import { EventEmitter } from "events";
import type { FfmpegProgress } from "./ffmpeg";
import type { Frame } from "./frame";
import type { Mp4Info } from "./hls-playlist";
import type { Mp4InitInfo } from "./mp4-fragments";
import { estimateFps } from "./transcode-args";
import { describeExit, frameSize, TranscodeSession, type SessionFragment } from "./transcode-session";

/** Restart delays: 1 s doubling to 30 s; reset after a run that went well. */
export class Backoff {
  private current: number;

  constructor(
    private readonly firstMs = 1000,
    private readonly maxMs = 30000,
  ) {
    this.current = firstMs;
  }

  next(): number {
    const wait = this.current;
    this.current = Math.min(this.current * 2, this.maxMs);
    return wait;
  }

  reset(): void {
    this.current = this.firstMs;
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
}

export type LiveState = "idle" | "starting" | "live" | "retrying" | "paused";

/**
 * A supervised ffmpeg for the live presets (hls, fmp4, flv, push, custom): starts with the first frame,
 * restarts with backoff when ffmpeg dies (a media server went away, a crash), stops after a silence.
 * Events: `init` (Buffer, Mp4MessageInfo), `fragment` (Buffer, Mp4MessageInfo), `data` (Buffer),
 * `progress` (FfmpegProgress), `failure` (message), `state` (LiveState), `dropped` (count).
 */
export class LiveTranscoder extends EventEmitter {
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
        this.emit("dropped", ++this.dropped);
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
    const session = new TranscodeSession({
      ffmpegPath: this.opts.ffmpegPath,
      args: output.args,
      width,
      height,
      secrets: this.opts.secrets,
      stdout: output.stdout,
      maxQueueMs: this.opts.maxQueueMs,
    });
    this.session = session;
    this.setState("starting");
    session.on("init", (data: Buffer, info: Mp4InitInfo) => {
      this.init = { codec: info.codec, width: info.width, height: info.height };
      this.emit("init", data, { type: "init", seq: this.seq, duration: 0, time: frame.time, ...this.init });
    });
    session.on("fragment", (data: Buffer, info: SessionFragment) => {
      const init = this.init ?? { codec: "avc1.640028", width, height };
      this.emit("fragment", data, {
        type: "fragment",
        seq: this.seq++,
        duration: info.durationSec,
        time: Math.round(info.time),
        ...init,
      });
    });
    session.on("data", (chunk: Buffer) => this.emit("data", chunk));
    session.on("progress", (p: FfmpegProgress) => {
      if (this.session !== session) return;
      if (this.state !== "live") this.setState("live");
      this.emit("progress", p);
    });
    session.on("dropped", () => this.emit("dropped", ++this.dropped));
    session.on("exit", (code: number | null, signal: string | null, stderr: string[], expected: boolean) => {
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
    const done = session.finish();
    this.stopping.add(done);
    void done.finally(() => this.stopping.delete(done));
    return done;
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
