import { EventEmitter } from "events";
import { Frame, monotonicEpochMs } from "../media";
import { RateLimiter } from "./rate-limiter";
import { FrameSource, SourceConfig, SourceError, SourceErrorReason } from "../sources/source";

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

const FPS_WINDOW_MS = 5000;
const STATE_FPS_STEP = 0.5;

/**
 * One camera, one upstream connection, however many users. Users register and deregister; the first
 * connects, the last disconnects after a linger. A supervisor restarts the source with capped
 * exponential backoff and jitter, treats a silent camera as dead, and stops after repeated auth
 * refusals. Emits `frame` (Frame), `state` (CameraState) and `warning` (string).
 */
export class Camera extends EventEmitter {
  readonly stats: CameraStats = {
    framesIn: 0,
    framesEmitted: 0,
    framesDropped: 0,
    bytesIn: 0,
    reconnects: 0,
    warnings: 0,
    users: 0,
  };
  latest?: Frame;
  private current: CameraState = { state: "idle", fps: 0, since: Date.now() };
  private readonly users = new Set<string>();
  private source?: FrameSource;
  private attempt = 0;
  private authFailures = 0;
  private retryTimer?: NodeJS.Timeout;
  private lingerTimer?: NodeJS.Timeout;
  private watchdog?: NodeJS.Timeout;
  private lastFrameMono = 0;
  private readonly frameTimes: number[] = [];
  private seq = 0;
  private readonly limiter: RateLimiter<Frame>;
  private closed = false;
  /** The reason the last attempt ended with, if the source named one. */
  private refusal?: SourceErrorReason;

  constructor(
    readonly options: CameraOptions,
    private readonly createSource: SourceFactory,
  ) {
    super();
    this.setMaxListeners(0);
    this.limiter = new RateLimiter<Frame>(
      options.fps,
      (frame) => this.deliver(frame),
      () => this.stats.framesDropped++,
    );
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
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    this.ensureRunning();
  }

  /** A consumer is done: disconnect after the linger time when it was the last one. */
  removeUser(id: string): void {
    if (!this.users.delete(id)) return;
    this.stats.users = this.users.size;
    if (this.users.size > 0 || this.options.alwaysOn || this.closed) return;
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
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
    this.attempt = 0;
    if (this.current.state === "streaming" || this.current.state === "connecting") return;
    this.clearRetry();
    this.connect();
  }

  close(): void {
    this.closed = true;
    this.disconnect();
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = undefined;
    this.users.clear();
    this.removeAllListeners();
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
    source.on("frame", (jpeg: Buffer, width: number, height: number) => this.onFrame(jpeg, width, height));
    source.on("warning", (message: string) => {
      this.stats.warnings++;
      this.emit("warning", message);
    });
    source.on("close", (err?: SourceError) => {
      if (this.source !== source) return;
      this.source = undefined;
      this.onClose(err ?? new SourceError("ended", "camera ended the stream"));
    });
    this.lastFrameMono = performance.now();
    this.startWatchdog();
    try {
      source.start();
    } catch (err) {
      this.source = undefined;
      source.stop();
      this.onClose(new SourceError("config", (err as Error).message));
    }
  }

  private onFrame(jpeg: Buffer, width: number, height: number): void {
    const now = performance.now();
    this.lastFrameMono = now;
    this.stats.framesIn++;
    this.stats.bytesIn += jpeg.length;
    this.stats.lastFrameAt = Date.now();
    if (this.attempt > 0 || this.authFailures > 0) {
      this.attempt = 0;
      this.authFailures = 0;
    }
    const frame: Frame = {
      data: jpeg,
      seq: 0,
      time: monotonicEpochMs(),
      camera: this.options.name,
      width,
      height,
    };
    this.limiter.push("", frame);
  }

  private deliver(frame: Frame): void {
    frame.seq = ++this.seq;
    this.latest = frame;
    this.stats.framesEmitted++;
    const now = performance.now();
    this.frameTimes.push(now);
    while (this.frameTimes.length > 0 && this.frameTimes[0] < now - FPS_WINDOW_MS) this.frameTimes.shift();
    const fps = this.measuredFps(now);
    if (this.current.state !== "streaming" || Math.abs(fps - this.current.fps) >= STATE_FPS_STEP) {
      this.setState({ state: "streaming", fps });
    }
    this.emit("frame", frame);
  }

  private measuredFps(now: number): number {
    const times = this.frameTimes;
    if (times.length < 2) return times.length;
    const span = Math.max(now - times[0], 1000);
    return Math.round(((times.length - 1) * 1000 * 10) / span) / 10;
  }

  private startWatchdog(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    const period = Math.min(1000, Math.max(100, this.options.watchdogMs / 4));
    this.watchdog = setInterval(() => {
      if (!this.source) return;
      const silent = performance.now() - this.lastFrameMono;
      if (silent >= this.options.watchdogMs) {
        this.stopSource();
        const seconds = Math.round(this.options.watchdogMs / 1000);
        this.scheduleRetry("stalled", `no frame for ${seconds} s`);
      }
    }, period);
    this.watchdog.unref?.();
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

  /** Exponential backoff with +-20% jitter, capped after the jitter (never above backoffMaxMs); the first retry comes within a second. */
  backoffMs(attempt: number): number {
    const base = Math.min(this.options.backoffMaxMs, this.options.backoffFirstMs * 2 ** attempt);
    return Math.min(this.options.backoffMaxMs, Math.round(base * (0.8 + Math.random() * 0.4)));
  }

  private scheduleRetry(state: CameraStateName, error: string, delay?: number): void {
    this.clearRetry();
    if (!this.wanted()) {
      this.setState({ state: "idle", fps: 0, error });
      return;
    }
    const wait = delay ?? this.backoffMs(this.attempt);
    this.attempt++;
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

  private stopSource(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
    const source = this.source;
    this.source = undefined;
    source?.stop();
    this.limiter.close(); // a frame waiting for its fps slot belongs to the connection that ended
    this.frameTimes.length = 0;
  }

  private disconnect(): void {
    this.clearRetry();
    this.stopSource();
    this.attempt = 0;
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
