import { EventEmitter } from "events";
import type { JpegFrame } from "../media";
import { Backoff, backoffDelay, type BackoffOptions } from "../backoff";
import { RateMeter } from "../meters";
import { RateLimiter } from "./rate-limiter";
import { Watchdog } from "./watchdog";
import { FrameSource, SourceConfig, SourceError, SourceErrorReason, SourceWarning } from "../sources/source";

export type CameraStateName =
  "idle" | "connecting" | "streaming" | "stalled" | "retrying" | "auth-failed" | "failed";

export interface CameraState {
  state: CameraStateName;
  /** Frames per second emitted, measured over the last few seconds (streaming only). */
  fps: number;
  /** When the next attempt starts (retrying / stalled / failed). */
  retryInMs?: number;
  /** The last error in words, without credentials. */
  error?: string;
  /** Why the camera refused, when it said (retrying / failed / auth-failed): for the node status. */
  reason?: SourceErrorReason;
  since: number;
}

export interface CameraStats {
  framesIn: number;
  framesEmitted: number;
  framesDropped: number;
  bytesIn: number;
  reconnects: number;
  warnings: number;
  connectedSince?: number;
  lastFrameAt?: number;
  users: number;
}

export interface CameraOptions extends SourceConfig {
  protocol: string;
  /** Keep the connection this long after the last user leaves (a redeploy of consumers keeps it). */
  lingerMs: number;
  /** Connect at once and stay connected without users. */
  alwaysOn: boolean;
  /** "No frame for this long" means the connection is dead. */
  watchdogMs: number;
  /** Consecutive auth refusals before giving up (cameras lock accounts). */
  maxAuthFailures: number;
  backoffFirstMs: number;
  backoffMaxMs: number;
}

export const CAMERA_DEFAULTS = {
  lingerMs: 10000,
  watchdogMs: 10000,
  maxAuthFailures: 3,
  backoffFirstMs: 500,
  backoffMaxMs: 30000,
  maxFrameBytes: 4 * 1024 * 1024,
};

export type SourceFactory = (options: CameraOptions) => FrameSource;

/** Damaged or dropped data a camera's source reported; reads as its message where text is expected. */
export { SourceWarning as CameraWarning };

/** What a camera emits, one object per event. Compressed video will add `init` and `fragment` (media.ts). */
export interface CameraEvents {
  frame: [JpegFrame];
  state: [CameraState];
  warning: [SourceWarning];
}

const FPS_WINDOW_MS = 5000;
const STATE_FPS_STEP = 0.5;
/** Retry delays spread +-20 % so cameras that failed together do not retry together. */
const BACKOFF_JITTER = 0.2;

/**
 * One camera, one upstream connection, however many users. Users register and deregister; the first
 * connects, the last disconnects after a linger. A supervisor restarts the source with capped
 * exponential backoff and jitter, treats a silent camera as dead (Watchdog), and stops after repeated
 * auth refusals. Events: CameraEvents.
 */
export class Camera extends EventEmitter<CameraEvents> {
  readonly stats: CameraStats = {
    framesIn: 0,
    framesEmitted: 0,
    framesDropped: 0,
    bytesIn: 0,
    reconnects: 0,
    warnings: 0,
    users: 0,
  };
  latest?: JpegFrame;
  private current: CameraState = { state: "idle", fps: 0, since: Date.now() };
  private readonly users = new Set<string>();
  private source?: FrameSource;
  private readonly backoff: Backoff;
  private authFailures = 0;
  private retryTimer?: NodeJS.Timeout;
  private lingerTimer?: NodeJS.Timeout;
  private readonly watchdog: Watchdog;
  private readonly rate = new RateMeter(FPS_WINDOW_MS);
  private seq = 0;
  private readonly limiter: RateLimiter<JpegFrame>;
  private closed = false;
  /** The reason the last attempt ended with, if the source named one. */
  private refusal?: SourceErrorReason;

  constructor(
    readonly options: CameraOptions,
    private readonly createSource: SourceFactory,
  ) {
    super();
    this.setMaxListeners(0);
    this.backoff = new Backoff(this.backoffOptions);
    this.limiter = new RateLimiter<JpegFrame>(
      options.fps,
      (frame) => this.deliver(frame),
      () => this.stats.framesDropped++,
    );
    this.watchdog = new Watchdog(options.watchdogMs, () => this.onSilent());
    if (options.alwaysOn) setImmediate(() => this.ensureRunning());
  }

  get name(): string {
    return this.options.name;
  }

  get state(): CameraState {
    return this.current;
  }

  /** A consumer wants frames: connect if this is the first one. */
  addUser(id: string): void {
    if (this.closed) return;
    this.users.add(id);
    this.stats.users = this.users.size;
    this.clearLinger();
    this.ensureRunning();
  }

  /** A consumer is done: disconnect after the linger time when it was the last one. */
  removeUser(id: string): void {
    if (!this.users.delete(id)) return;
    this.stats.users = this.users.size;
    if (this.users.size > 0 || this.options.alwaysOn || this.closed) return;
    this.clearLinger();
    this.lingerTimer = setTimeout(
      () => {
        this.lingerTimer = undefined;
        if (this.users.size === 0) this.disconnect();
      },
      Math.max(0, this.options.lingerMs),
    );
  }

  /** Retry now, even after the auth breaker tripped (the user fixed the password, or pressed start). */
  retryNow(): void {
    if (this.closed || !this.wanted()) return;
    this.authFailures = 0;
    this.backoff.reset();
    if (this.current.state === "streaming" || this.current.state === "connecting") return;
    this.clearRetry();
    this.connect();
  }

  close(): void {
    this.closed = true;
    this.disconnect();
    this.clearLinger();
    this.users.clear();
    this.removeAllListeners();
  }

  /** The delay before retry number `attempt` (0 = the first): capped after the jitter, never above backoffMaxMs. */
  backoffMs(attempt: number): number {
    return backoffDelay(attempt, this.backoffOptions);
  }

  private get backoffOptions(): BackoffOptions {
    const { backoffFirstMs: firstMs, backoffMaxMs: maxMs } = this.options;
    return { firstMs, maxMs, jitter: BACKOFF_JITTER };
  }

  private wanted(): boolean {
    return !this.closed && (this.users.size > 0 || this.options.alwaysOn || this.lingerTimer !== undefined);
  }

  private ensureRunning(): void {
    if (this.closed || this.source || this.retryTimer) return;
    if (this.current.state === "auth-failed") return;
    this.connect();
  }

  private connect(): void {
    this.stopSource();
    this.setState({ state: "connecting", fps: 0 });
    let source: FrameSource;
    try {
      source = this.createSource(this.options);
    } catch (err) {
      this.onClose(err instanceof SourceError ? err : new SourceError("config", (err as Error).message));
      return;
    }
    this.source = source;
    source.on("connected", () => {
      this.stats.connectedSince = Date.now();
    });
    source.on("frame", (frame) => this.onFrame(frame));
    source.on("warning", (warning) => {
      this.stats.warnings++;
      this.emit("warning", warning);
    });
    source.on("close", (err) => {
      if (this.source !== source) return;
      this.source = undefined;
      this.onClose(err ?? new SourceError("ended", "camera ended the stream"));
    });
    this.watchdog.start();
    try {
      source.start();
    } catch (err) {
      this.source = undefined;
      source.stop();
      this.onClose(new SourceError("config", (err as Error).message));
    }
  }

  private onFrame(frame: JpegFrame): void {
    this.watchdog.feed();
    this.stats.framesIn++;
    this.stats.bytesIn += frame.data.length;
    this.stats.lastFrameAt = Date.now();
    if (this.backoff.attempt > 0 || this.authFailures > 0) {
      this.backoff.reset();
      this.authFailures = 0;
    }
    this.limiter.push("", frame);
  }

  private deliver(frame: JpegFrame): void {
    frame.seq = ++this.seq;
    this.latest = frame;
    this.stats.framesEmitted++;
    this.rate.add();
    const fps = this.rate.fps();
    if (this.current.state !== "streaming" || Math.abs(fps - this.current.fps) >= STATE_FPS_STEP) {
      this.setState({ state: "streaming", fps });
    }
    this.emit("frame", frame);
  }

  private onSilent(): void {
    if (!this.source) return;
    this.stopSource();
    this.scheduleRetry("stalled", `no frame for ${Math.round(this.options.watchdogMs / 1000)} s`);
  }

  private onClose(err: SourceError): void {
    if (this.closed) return;
    this.refusal = err.reason ?? (err.kind === "auth" ? "auth" : undefined);
    this.stopSource();
    if (err.kind === "auth") {
      this.authFailures++;
      if (this.authFailures >= this.options.maxAuthFailures) {
        this.setState({
          state: "auth-failed",
          fps: 0,
          error: `${err.message}; stopped retrying after ${this.authFailures} refusals`,
        });
        return;
      }
    }
    if (err.kind === "config") {
      this.scheduleRetry("failed", err.message, this.options.backoffMaxMs);
      return;
    }
    this.scheduleRetry("retrying", err.message);
  }

  private scheduleRetry(state: CameraStateName, error: string, delay?: number): void {
    this.clearRetry();
    if (!this.wanted()) {
      this.setState({ state: "idle", fps: 0, error });
      return;
    }
    const backoff = this.backoff.next(); // counts the attempt even when the delay is given
    const wait = delay ?? backoff;
    this.setState({ state, fps: 0, error, retryInMs: wait });
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (!this.wanted()) return;
      this.stats.reconnects++;
      this.connect();
    }, wait);
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private clearLinger(): void {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
  }

  private stopSource(): void {
    this.watchdog.stop();
    const source = this.source;
    this.source = undefined;
    source?.stop();
    this.limiter.close(); // a frame waiting for its fps slot belongs to the connection that ended
    this.rate.reset();
  }

  private disconnect(): void {
    this.clearRetry();
    this.stopSource();
    this.backoff.reset();
    this.stats.connectedSince = undefined;
    if (!this.closed) this.setState({ state: "idle", fps: 0 });
  }

  private setState(next: Omit<CameraState, "since">): void {
    const refused = next.state === "retrying" || next.state === "failed" || next.state === "auth-failed";
    const reason = refused ? this.refusal : undefined;
    this.current = { ...next, ...(reason ? { reason } : {}), since: Date.now() };
    this.emit("state", this.current);
  }
}
