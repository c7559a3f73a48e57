import { EventEmitter } from "events";
import { monotonicEpochMs, type Fmp4Fragment, type Fmp4Init, type JpegFrame } from "../media";
import { decodeKeyframe, Mp4Decoder } from "../codec/mp4-decoder";
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
  /** fMP4 fragments received (compressed video passed through) and their bytes. */
  fragmentsIn: number;
  fragmentBytes: number;
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

/** What a camera emits, one object per event: JPEG frames, or the init and fragments of compressed video. */
export interface CameraEvents {
  frame: [JpegFrame];
  init: [Fmp4Init];
  fragment: [Fmp4Fragment];
  state: [CameraState];
  warning: [SourceWarning];
}

/** What one user of a camera wants. `jpeg` (default true): pictures; a compressed camera decodes only for them. */
export interface CameraUser {
  jpeg?: boolean;
  /** JPEG pictures per second wanted; 0 or missing = every frame. */
  fps?: number;
  keyframesOnly?: boolean;
  /** JPEG width wanted; 0 or missing = the camera's size. */
  width?: number;
}

/** The current init and the fragments since the latest keyframe: what a late joiner starts with. */
export interface Gop {
  init: Fmp4Init;
  fragments: Fmp4Fragment[];
}

/** Bytes the GOP cache may hold; a longer GOP is not cached (late joiners then wait for the next keyframe). */
export const GOP_CACHE_BYTES = 16 * 1024 * 1024;

/** While no live viewer wants every picture (`Camera.liveWanted`), fragments go out grouped this long (s). */
export const GROUP_SECONDS = 0.25;
/** A JPEG user wanting more pictures a second than this keeps the source reading as it comes. */
const READ_BATCH_MAX_FPS = 4;

/** Consecutive fragments of one init as one: their moof+mdat pairs back to back, times of the first. */
function joinFragments(parts: Fmp4Fragment[]): Fmp4Fragment {
  if (parts.length === 1) return parts[0];
  const first = parts[0];
  let duration = 0;
  let frames = 0;
  for (const p of parts) {
    duration += p.duration;
    frames += p.frames && p.frames > 0 ? p.frames : 1;
  }
  return { ...first, data: Buffer.concat(parts.map((p) => p.data)), duration, frames };
}
/** A snapshot of a compressed camera younger than this is served again instead of decoding once more. */
const SNAPSHOT_FRESH_MS = 1000;
/** A decoder that died is restarted at the next keyframe, at most this often. */
const DECODER_RESTART_MS = 5000;

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
    fragmentsIn: 0,
    fragmentBytes: 0,
    reconnects: 0,
    warnings: 0,
    users: 0,
  };
  latest?: JpegFrame;
  private current: CameraState = { state: "idle", fps: 0, since: Date.now() };
  private readonly users = new Map<string, CameraUser>();
  private init?: Fmp4Init;
  private initCount = 0;
  private fragmentSeq = 0;
  /** Fragments held to go out as one unit (no live viewer wants them one by one). */
  private group: Fmp4Fragment[] = [];
  private groupDuration = 0;

  /**
   * Whether someone wants each fragment as it comes (camera-source asks the live-demand registry: WebSocket
   * and WebRTC viewers of an http stream out fed by this camera). Otherwise fragments shorter than
   * GROUP_SECONDS are grouped up to that long: a keyframe always starts a new unit.
   */
  liveWanted: () => boolean = () => true;
  private gopFragments: Fmp4Fragment[] = [];
  private gopBytes = 0;
  /** The current connection sends compressed video (an init came). */
  private compressed = false;
  private decoder?: Mp4Decoder;
  /** The source's read batching as last asked (ms; 0 = as it comes). */
  private readBatchMs = 0;
  /** What the running decoder delivers (decoderWants when it started); undefined while none runs. */
  private decoderRuns?: { fps: number; keyframesOnly: boolean; width: number };
  private decoderNeedsStart = false;
  private decoderStartedAt = 0;
  private snapshotCache?: { frame: JpegFrame; at: number; keyframeSeq: number };
  private snapshotPending?: Promise<JpegFrame>;
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

  /**
   * A consumer wants the camera: connect if this is the first one. `wants.jpeg` (default true) says it needs
   * pictures: a compressed camera runs one decoder while at least one such user is there. Adding the same id
   * again updates what it wants.
   */
  addUser(id: string, wants: CameraUser = {}): void {
    if (this.closed) return;
    this.users.set(id, { ...wants, jpeg: wants.jpeg !== false });
    this.stats.users = this.users.size;
    this.clearLinger();
    this.ensureRunning();
    this.updateDecoder();
  }

  /** Users that want JPEG pictures. */
  get jpegUsers(): number {
    let n = 0;
    for (const u of this.users.values()) if (u.jpeg !== false) n++;
    return n;
  }

  /** The current init and the fragments since the latest keyframe, for a late joiner; undefined when none. */
  gop(): Gop | undefined {
    if (!this.init || !this.compressed) return undefined;
    return { init: this.init, fragments: [...this.gopFragments] };
  }

  /** The current init segment of a compressed camera. */
  get currentInit(): Fmp4Init | undefined {
    return this.compressed ? this.init : undefined;
  }

  /** The running JPEG decoder's pid (compressed camera with JPEG users), for tests and diagnostics. */
  get decoderPid(): number | undefined {
    return this.decoder?.pid;
  }

  /**
   * A JPEG picture now: the latest frame when fresh (< 1 s), else the cached GOP's keyframe decoded (cached
   * about a second), else the latest frame however old. Rejects in words when there is no picture.
   */
  snapshot(): Promise<JpegFrame> {
    const now = monotonicEpochMs();
    if (this.latest && now - this.latest.time < SNAPSHOT_FRESH_MS) return Promise.resolve(this.latest);
    const gop = this.gop();
    const key = gop?.fragments[0];
    if (!gop || !key || !key.keyframe || !this.options.ffmpegPath) {
      if (this.latest) return Promise.resolve(this.latest);
      return Promise.reject(new Error("no picture from the camera yet"));
    }
    const cached = this.snapshotCache;
    if (cached && (now - cached.at < SNAPSHOT_FRESH_MS || cached.keyframeSeq === key.seq))
      return Promise.resolve(cached.frame);
    if (this.snapshotPending) return this.snapshotPending;
    const pending = decodeKeyframe(this.options.ffmpegPath, gop.init.data, [key.data], { timeoutMs: 5000 })
      .then((picture) => {
        const frame: JpegFrame = {
          kind: "jpeg",
          data: picture.data,
          seq: this.seq,
          time: key.time,
          camera: this.name,
          width: picture.width,
          height: picture.height,
        };
        this.snapshotCache = { frame, at: monotonicEpochMs(), keyframeSeq: key.seq };
        return frame;
      })
      .finally(() => {
        if (this.snapshotPending === pending) this.snapshotPending = undefined;
      });
    this.snapshotPending = pending;
    return pending;
  }

  /** A consumer is done: disconnect after the linger time when it was the last one. */
  removeUser(id: string): void {
    if (!this.users.delete(id)) return;
    this.stats.users = this.users.size;
    this.updateDecoder();
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
    this.stopDecoder();
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
    this.readBatchMs = 0; // a new source reads as it comes until told otherwise
    source.on("connected", () => {
      this.stats.connectedSince = Date.now();
    });
    source.on("frame", (frame) => this.onFrame(frame));
    source.on("init", (init) => this.onInit(init));
    source.on("fragment", (fragment) => this.onFragment(fragment));
    source.on("warning", (warning) => {
      this.stats.warnings++;
      this.emit("warning", warning);
    });
    source.on("close", (err) => {
      if (this.source !== source) return;
      this.flushGroup(); // the last pictures before the camera went away
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

  private onInit(init: Fmp4Init): void {
    this.flushGroup(); // the old init's last pictures, before the new init
    this.watchdog.feed();
    this.stats.bytesIn += init.data.length;
    // A reconnect that brings the same init keeps its id: consumers need not start over.
    const same = this.init !== undefined && this.init.data.equals(init.data);
    init.initId = same && this.init ? this.init.initId : ++this.initCount;
    this.init = init;
    this.compressed = true;
    this.gopFragments = [];
    this.gopBytes = 0;
    this.emit("init", init);
    if (this.decoder) this.decoderNeedsStart = true; // restart on this init at its first keyframe
    this.updateDecoder();
  }

  private onFragment(fragment: Fmp4Fragment): void {
    if (!this.init) return; // a fragment without its init cannot be decoded by anyone
    this.watchdog.feed();
    this.stats.fragmentsIn++;
    this.stats.fragmentBytes += fragment.data.length;
    this.stats.bytesIn += fragment.data.length;
    this.stats.lastFrameAt = Date.now();
    if (this.backoff.attempt > 0 || this.authFailures > 0) {
      this.backoff.reset();
      this.authFailures = 0;
    }
    // The decoder gets every picture as it comes, before grouping, so a capped one can stop mid-GOP.
    this.feedDecoder(fragment);
    const live = this.liveWanted();
    this.updateReadBatching(live);
    if (live) {
      this.flushGroup();
      this.emitFragment(fragment);
      return;
    }
    if (fragment.keyframe) this.flushGroup();
    this.group.push(fragment);
    this.groupDuration += fragment.duration;
    if (this.groupDuration >= GROUP_SECONDS - 0.005) this.flushGroup();
  }

  /**
   * While nobody needs each picture at once (no live viewer, no JPEG user wanting more than READ_BATCH_MAX_FPS),
   * the source reads the camera's video in bursts every GROUP_SECONDS: a unit goes out that often anyway, and
   * each wake-up of Node-RED costs more than the bytes it reads.
   */
  private updateReadBatching(live: boolean): void {
    const d = this.decoderRuns;
    const jpegOk = !d || d.keyframesOnly || (d.fps > 0 && d.fps <= READ_BATCH_MAX_FPS);
    const ms = !live && jpegOk ? Math.round(GROUP_SECONDS * 1000) : 0;
    if (ms === this.readBatchMs) return;
    this.readBatchMs = ms;
    this.source?.setReadBatching(ms);
  }

  /** The held fragments go out as one unit (nothing when none are held). */
  private flushGroup(): void {
    if (this.group.length === 0) return;
    const unit = joinFragments(this.group);
    this.group = [];
    this.groupDuration = 0;
    this.emitFragment(unit);
  }

  private emitFragment(fragment: Fmp4Fragment): void {
    if (!this.init) return;
    fragment.seq = ++this.fragmentSeq;
    fragment.initId = this.init.initId;
    if (fragment.keyframe) {
      this.gopFragments = [fragment];
      this.gopBytes = fragment.data.length;
    } else if (this.gopFragments.length > 0) {
      if (this.gopBytes + fragment.data.length > GOP_CACHE_BYTES) {
        this.gopFragments = []; // too long a GOP to hold: late joiners wait for the next keyframe
        this.gopBytes = 0;
      } else {
        this.gopFragments.push(fragment);
        this.gopBytes += fragment.data.length;
      }
    }
    this.rate.add(fragment.frames && fragment.frames > 0 ? fragment.frames : 1);
    const fps = this.rate.fps();
    if (this.current.state !== "streaming" || Math.abs(fps - this.current.fps) >= STATE_FPS_STEP) {
      this.setState({ state: "streaming", fps });
    }
    this.emit("fragment", fragment);
  }

  /** What the one decoder must deliver for the JPEG users: the highest rate and size any of them wants. */
  private decoderWants(): { fps: number; keyframesOnly: boolean; width: number } | undefined {
    let any = false;
    let fps = -1;
    let width = -1;
    let keyframesOnly = true;
    for (const u of this.users.values()) {
      if (u.jpeg === false) continue;
      any = true;
      const f = Number(u.fps) > 0 ? Number(u.fps) : 0;
      if (!u.keyframesOnly) {
        keyframesOnly = false;
        fps = fps === 0 || f === 0 ? 0 : Math.max(fps, f);
      }
      const w = Number(u.width) > 0 ? Math.round(Number(u.width)) : 0;
      width = width === 0 || w === 0 ? 0 : Math.max(width, w);
    }
    if (!any) return undefined;
    // The camera's own fps cap still holds for its pictures.
    const cap = this.options.fps > 0 ? this.options.fps : 0;
    if (fps < 0) fps = 0;
    if (cap > 0) fps = fps === 0 ? cap : Math.min(fps, cap);
    return { fps, keyframesOnly, width: Math.max(0, width) };
  }

  /** Starts, restarts or stops the JPEG decoder of a compressed camera to match its users. */
  private updateDecoder(): void {
    const wants = this.compressed && this.source ? this.decoderWants() : undefined;
    if (!wants || !this.options.ffmpegPath) {
      this.stopDecoder();
      return;
    }
    const key = JSON.stringify(wants);
    if (this.decoder && this.decoderRuns && key === JSON.stringify(this.decoderRuns)) return;
    this.stopDecoder();
    this.decoderRuns = wants;
    const decoder = new Mp4Decoder({
      ffmpegPath: this.options.ffmpegPath,
      fps: wants.fps,
      keyframesOnly: wants.keyframesOnly,
      width: wants.width,
      maxFrameBytes: this.options.maxFrameBytes,
    });
    this.decoder = decoder;
    decoder.on("frame", (picture) => {
      if (this.decoder !== decoder) return;
      this.stats.framesIn++;
      this.limiter.push("", {
        kind: "jpeg",
        data: picture.data,
        seq: 0,
        time: monotonicEpochMs(),
        camera: this.name,
        width: picture.width,
        height: picture.height,
      });
    });
    decoder.on("problem", (message) => {
      if (this.decoder !== decoder) return;
      this.stats.warnings++;
      this.emit("warning", new SourceWarning(message));
      if (!decoder.running) this.decoderNeedsStart = true;
    });
    const gop = this.gop();
    // The GOP so far: what went out, and the pictures held for the next unit (the decoder is fed ungrouped).
    const held = this.group;
    let fragments: Fmp4Fragment[] = [];
    if (held[0]?.keyframe) fragments = [...held];
    else if (gop && gop.fragments.length > 0) fragments = [...gop.fragments, ...held];
    if (gop && fragments.length > 0) {
      this.decoderStartedAt = Date.now();
      decoder.start(
        gop.init.data,
        fragments.map((f) => f.data),
      );
      this.decoderNeedsStart = false;
    } else {
      this.decoderNeedsStart = true; // starts at the next keyframe
    }
  }

  private feedDecoder(fragment: Fmp4Fragment): void {
    const decoder = this.decoder;
    if (!decoder || !this.init) return;
    if (this.decoderNeedsStart) {
      if (!fragment.keyframe) return;
      // A decoder that died is not restarted more often than every few seconds (a stream it cannot decode).
      if (!decoder.running && Date.now() - this.decoderStartedAt < DECODER_RESTART_MS) return;
      this.decoderStartedAt = Date.now();
      this.decoderNeedsStart = false;
      decoder.start(this.init.data, [fragment.data]);
      return;
    }
    decoder.push(fragment.data, fragment);
  }

  private stopDecoder(): void {
    const decoder = this.decoder;
    this.decoder = undefined;
    this.decoderRuns = undefined;
    this.decoderNeedsStart = false;
    if (!decoder) return;
    decoder.removeAllListeners();
    decoder.stop();
  }

  private deliver(frame: JpegFrame): void {
    frame.seq = ++this.seq;
    this.latest = frame;
    this.stats.framesEmitted++;
    if (this.compressed) {
      // The state's fps counts the camera's video frames (fragments), not the decoded pictures.
      this.emit("frame", frame);
      return;
    }
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
    this.stopDecoder();
    this.compressed = false;
    this.gopFragments = [];
    this.gopBytes = 0;
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
