import { EventEmitter } from "events";
import { monotonicEpochMs, type Fmp4Fragment, type Fmp4Init, type JpegFrame } from "../media";
import type { TlsSettings } from "./tls";

/** What every protocol is given; credentials come from Node-RED's credential store. */
export interface SourceConfig {
  /** Camera name, for messages and errors. */
  name: string;
  url: string;
  /** Requested frames per second; 0 = as fast as the camera sends. Request-driven sources pace to it. */
  fps: number;
  user?: string;
  password?: string;
  maxFrameBytes: number;
  /** Path or name of the ffmpeg binary (already resolved), for sources that need it. */
  ffmpegPath?: string;
  /** How https:// certificates are checked (verified by default). */
  tls?: TlsSettings;
  /** Protocol-specific options (e.g. Canon WebView `mode`, `imageSize`; ffmpeg `rtspTransport`). */
  options: Record<string, string | number | boolean | undefined>;
}

/**
 * Why a connection attempt ended. `auth` stops retrying after a few in a row (cameras lock accounts);
 * `config` means a quick retry cannot help (bad URL, missing binary): the camera shows "failed" and tries
 * again only every `backoffMaxMs` (the user may fix it, e.g. install ffmpeg, without a redeploy).
 */
export type SourceErrorKind = "auth" | "config" | "network" | "protocol" | "ended";

/** Why a camera refused, for the node status: `auth` failed, `notFound`, `transport` refused, `protocol`. */
export type SourceErrorReason = "auth" | "notFound" | "transport" | "protocol";

export class SourceError extends Error {
  constructor(
    readonly kind: SourceErrorKind,
    message: string,
    readonly reason?: SourceErrorReason,
  ) {
    super(message);
    this.name = "SourceError";
  }
}

/**
 * Damaged or dropped data that does not end the connection; `message` never holds credentials. It reads
 * as its message where text is expected (a log line, a template).
 */
export class SourceWarning {
  constructor(readonly message: string) {}

  toString(): string {
    return this.message;
  }
}

/**
 * What a source emits, one object per event:
 * - `connected` once the camera answered (before the first frame);
 * - `frame` for each complete JPEG (seq 0: the camera numbers the frames it delivers);
 * - `warning` for dropped or damaged data that does not end the connection;
 * - `close` (error?: SourceError) exactly once when the attempt is over, whatever the reason,
 *    and never after stop() was called.
 * - `init` / `fragment` for compressed video (fMP4: ftyp+moov, then moof+mdat), instead of `frame`.
 */
export interface SourceEvents {
  connected: [];
  frame: [JpegFrame];
  init: [Fmp4Init];
  fragment: [Fmp4Fragment];
  warning: [SourceWarning];
  close: [SourceError | undefined];
}

/**
 * One connection attempt to a camera (events: SourceEvents). The supervisor (Camera) creates a new source
 * for each attempt; a source never reconnects by itself.
 */
export abstract class FrameSource extends EventEmitter<SourceEvents> {
  protected stopped = false;
  private closed = false;

  constructor(protected readonly config: SourceConfig) {
    super();
  }

  abstract start(): void;

  /** Releases sockets, timers and processes at once. No event fires afterwards. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.closed = true;
    this.release();
    this.removeAllListeners();
  }

  protected abstract release(): void;

  /**
   * Compressed video may be read in bursts every `ms` (0 = as it comes): the Camera asks for it while nobody
   * needs each picture at once. Sources that cannot, ignore it.
   */
  setReadBatching(ms: number): void {
    void ms;
  }

  /** Ends the attempt once: releases everything and reports why. */
  protected finish(error?: SourceError): void {
    if (this.closed) return;
    this.closed = true;
    this.release();
    if (!this.stopped) this.emit("close", error);
  }

  /** One complete JPEG arrived: stamped with the receive time and the camera's name. */
  protected emitFrame(data: Buffer, width: number, height: number): void {
    if (this.closed) return;
    const frame: JpegFrame = {
      kind: "jpeg",
      data,
      seq: 0,
      time: monotonicEpochMs(),
      camera: this.config.name,
      width,
      height,
    };
    this.emit("frame", frame);
  }

  /** An fMP4 init segment arrived (numbered by Camera). */
  protected emitInit(init: Omit<Fmp4Init, "kind" | "initId" | "camera">): void {
    if (this.closed) return;
    this.emit("init", { kind: "init", initId: 0, camera: this.config.name, ...init });
  }

  /** An fMP4 fragment arrived: stamped with the receive time (numbered by Camera). */
  protected emitFragment(fragment: Omit<Fmp4Fragment, "kind" | "initId" | "camera" | "seq" | "time">): void {
    if (this.closed) return;
    this.emit("fragment", {
      kind: "fragment",
      seq: 0,
      time: monotonicEpochMs(),
      initId: 0,
      camera: this.config.name,
      ...fragment,
    });
  }

  protected warn(message: string): void {
    this.emit("warning", new SourceWarning(message));
  }
}
