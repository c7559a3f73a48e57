/**
 * The live presets that need an ffmpeg of their own for compressed input (msg.mp4): flv (a file or URL),
 * push (rtmp/rtsp/srt) and hls with a directory (segments on disk). ffmpeg reads the camera's fMP4 on stdin
 * and copies; it encodes only when the target cannot carry the camera's codec (H.265 into FLV/RTMP) or the
 * node asks for another size or bitrate, and says why (`encode`). Supervised like LiveTranscoder: a run that
 * dies is retried with backoff (1 s doubling to 30 s, reset after a run that went well) at the next keyframe,
 * a new init (camera restart, resolution change) ends the run and the next keyframe starts a new one, a
 * silence ends it, msg.action stop/start pause and resume it.
 */
import { EventEmitter } from "events";
import { Backoff } from "../backoff";
import type { FfmpegProgress } from "../ffmpeg";
import type { LiveState } from "./live";
import { Mp4InputSession, type Mp4Unit } from "./mp4-input";

export interface CopyLiveOutput {
  /** Everything after `-f mp4 -i pipe:0`. */
  args: string[];
  /** Why the video is encoded; undefined = copied. */
  encode?: string;
}

export interface CopyLiveOptions {
  ffmpegPath: string;
  /** The output arguments for a run of this init (called at each start; may throw: retried with backoff). */
  output: (init: Mp4Unit) => CopyLiveOutput;
  secrets?: (string | undefined)[];
  /** A run ends when no fragment came for this long; the next keyframe starts it again. */
  idleMs?: number;
  /** A run at least this long resets the backoff. */
  healthyMs?: number;
  backoff?: Backoff;
  /** Bytes waiting for ffmpeg's stdin before whole GOPs are dropped. */
  maxQueueBytes?: number;
}

export interface CopyLiveEvents {
  progress: [progress: FfmpegProgress];
  failure: [message: string];
  state: [state: LiveState];
  dropped: [count: number];
}

export class CopyLive extends EventEmitter<CopyLiveEvents> {
  private session?: Mp4InputSession;
  private init?: Mp4Unit;
  private readonly backoff: Backoff;
  private readonly stopping = new Set<Promise<void>>();
  private retryUntil = 0;
  private idleTimer?: NodeJS.Timeout;
  private paused = false;
  private closed = false;
  state: LiveState = "idle";
  /** Why the current run encodes (undefined: it copies). */
  encode?: string;
  restarts = 0;

  constructor(private readonly opts: CopyLiveOptions) {
    super();
    this.backoff = opts.backoff ?? new Backoff({ firstMs: 1000, maxMs: 30000 });
  }

  get pid(): number | undefined {
    return this.session?.proc.pid;
  }

  /** An init or fragment of compressed input. */
  push(unit: Mp4Unit): void {
    if (this.closed) return;
    if (unit.info.type === "init") {
      this.init = unit;
      // Another stream: this run cannot take its fragments; the next keyframe starts one that can.
      if (this.session && this.session.initId !== unit.initId) this.endSession();
      return;
    }
    if (this.paused) return;
    this.armIdle();
    const init = this.init;
    if (!this.session) {
      if (!init || unit.initId !== init.initId || !unit.keyframe || Date.now() < this.retryUntil) return;
      this.startSession(init);
    }
    this.session?.write(unit);
  }

  private startSession(init: Mp4Unit): void {
    let out: CopyLiveOutput;
    try {
      out = this.opts.output(init);
    } catch (err) {
      this.emit("failure", (err as Error).message);
      this.retryUntil = Date.now() + this.backoff.next();
      this.setState("retrying");
      return;
    }
    this.encode = out.encode;
    const s = new Mp4InputSession({
      ffmpegPath: this.opts.ffmpegPath,
      outputArgs: out.args,
      secrets: this.opts.secrets,
      maxQueueBytes: this.opts.maxQueueBytes ?? 32 * 1024 * 1024,
    });
    this.session = s;
    this.setState("starting");
    s.on("progress", (p) => {
      if (this.session !== s) return;
      this.setState("live");
      this.emit("progress", p);
    });
    s.on("dropped", (n) => this.emit("dropped", n));
    s.on("exit", ({ code, signal, stderr, expected }) => {
      if (this.session === s) this.session = undefined;
      if (expected || this.closed) return;
      if (Date.now() - s.startedAt >= (this.opts.healthyMs ?? 10000)) this.backoff.reset();
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      this.restarts++;
      this.retryUntil = Date.now() + this.backoff.next();
      this.setState("retrying");
      this.emit("failure", `ffmpeg ${how}${stderr.length ? `: ${stderr.slice(-3).join(" | ")}` : ""}`);
    });
    s.start(init);
  }

  /** Ends the running ffmpeg gracefully (EOF: it finishes its file or stream). */
  private endSession(): void {
    const s = this.session;
    if (!s) return;
    this.session = undefined;
    const done: Promise<void> = s.finish().finally(() => this.stopping.delete(done));
    this.stopping.add(done);
  }

  private armIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      this.endSession();
      if (!this.paused && !this.closed) this.setState("idle");
    }, this.opts.idleMs ?? 10000);
  }

  private setState(state: LiveState): void {
    if (state === this.state) return;
    this.state = state;
    this.emit("state", state);
  }

  /** `msg.action = "stop"`: ffmpeg ends and input is ignored until resume(). */
  pause(): Promise<void> {
    this.paused = true;
    this.endSession();
    this.setState("paused");
    return Promise.all([...this.stopping]).then(() => undefined);
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.retryUntil = 0;
    this.setState("idle");
  }

  /** Kills the running ffmpeg (tests: a crash). */
  kill(): number | undefined {
    const pid = this.session?.proc.pid;
    this.session?.kill();
    return pid;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.endSession();
    await Promise.all([...this.stopping]);
  }
}
