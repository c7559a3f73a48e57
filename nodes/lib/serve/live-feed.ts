import type { IncomingMessage } from "http";
import type { Admission } from "./access";
import { addressGroup } from "./access";
import type { StreamTotals, ViewerInfo } from "./viewer";

/**
 * The per-path live feed that transports outside HTTP responses (the shared WebSocket, WHEP) use: a
 * viewer is a sink of typed events (video init and fragments, JPEG frames, online/offline), counted like
 * every other viewer of the path (maxClients, maxPerAddress, status.json, the node's viewer messages).
 */

/** The transports that read the live feed. */
export type LiveKind = "ws" | "webrtc";

/** One event of compressed video: an init (ftyp+moov), then fragments (moof+mdat) of that init. */
export type LiveVideoEvent =
  | { type: "init"; data: Buffer; codec: string; width: number; height: number; initId: number }
  | { type: "fragment"; data: Buffer; keyframe: boolean; time: number; duration: number };

export type LiveState = "online" | "offline";

/** What a transport gives the feed: the kinds of media it takes, and how to end it. */
export interface LiveSink {
  /** Compressed video: the current init and the current GOP at once, then every new fragment. */
  video?(ev: LiveVideoEvent): void;
  /**
   * JPEG frames: from a JPEG wire, or decoded from the video while any JPEG sink or MJPEG viewer wants it.
   * May be a getter: the feed asks each time, so a sink can stop wanting JPEG (the decoder then stops).
   */
  jpeg?(data: Buffer): void;
  /** The upstream went away or came back ("offline" also at once when the path is offline on open). */
  state?(s: LiveState): void;
  /** The server closed the viewer (redeploy): end the transport. Not called after LiveViewer.close(). */
  end?(reason: string): void;
  /** Bytes the transport holds but has not sent (status.json's `buffered`). */
  buffered?(): number;
  /** Names the transport's connection in status.json (plays sharing one WebSocket show the same). */
  readonly connection?: string;
}

/** A transport's handle on its viewer. */
export interface LiveViewer {
  /** The transport ended: the viewer leaves (idempotent). */
  close(): void;
  /** The transport sent this many bytes of media (status.json, metrics, kbps). */
  countSent(bytes: number): void;
  /** The transport dropped one unit of media (a fragment, a JPEG) to keep up. */
  countSkipped?(): void;
  /** maxKbps of the path, the transport's bandwidth cap; 0 = none. */
  readonly kbpsBudget: number;
}

/** Why a live viewer may not come in. */
export type LiveAccess = { ok: true } | { ok: false; status: 401 | 403 | 503; error: string };

/** openLive's refusal. */
export interface LiveRefusal {
  error: string;
  status: number;
}

/** What a StreamServer offers its transports; the WebSocket endpoint finds servers by path. */
export interface LiveServer {
  readonly path: string;
  liveAccess(req: IncomingMessage, token: string | null): LiveAccess;
  openLive(kind: LiveKind, address: string, sink: LiveSink): LiveViewer | LiveRefusal;
  /** The current video's codec string ("avc1.64001f,mp4a.40.2"), or "" while none has come. */
  readonly liveCodec: string;
  /** JPEG frames arrive on the wire now (not only decoded from video). */
  readonly liveJpeg: boolean;
}

/** True when openLive refused. */
export function isLiveRefusal(v: LiveViewer | LiveRefusal): v is LiveRefusal {
  return typeof (v as LiveRefusal).error === "string";
}

/**
 * Running http-stream-out paths: set by the node on start, removed on close (only by the server that
 * set it, so a redeploy's new node is not removed by the old one closing after it).
 */
export class LiveRegistry<S extends { readonly path: string } = LiveServer> {
  private readonly servers = new Map<string, S>();

  set(server: S): void {
    this.servers.set(server.path, server);
  }

  get(path: string): S | undefined {
    return this.servers.get(path);
  }

  delete(server: S): void {
    if (this.servers.get(server.path) === server) this.servers.delete(server.path);
  }

  get size(): number {
    return this.servers.size;
  }

  paths(): string[] {
    return [...this.servers.keys()];
  }
}

/** The one registry of the process (every http-stream-out of every flow). */
export const liveRegistry = new LiveRegistry<LiveServer>();

/** What the feed needs from its server: current video, the shared totals and admission, viewer events. */
export interface LiveFeedHost {
  readonly totals: StreamTotals;
  readonly admission: Admission;
  /** The current init (undefined before one came) and the fragments of the current GOP. */
  currentInit(): { data: Buffer; codec: string; width: number; height: number; initId: number } | undefined;
  currentGop(): readonly Buffer[];
  offline(): boolean;
  maxKbps: number;
  /** Viewers and waiters held now (for maxClients). */
  held(): number;
  closed(): boolean;
  joined(address: string, kind: LiveKind): void;
  left(address: string, kind: LiveKind): void;
  /** JPEG sinks came or went (the server starts or stops its decoder). */
  jpegWantChanged(): void;
}

/** One live viewer: its sink, counters, and whether it may take a non-key fragment. */
class LiveEntry implements LiveViewer {
  framesSent = 0;
  framesSkipped = 0;
  bytesSent = 0;
  kbps = 0;
  closedFlag = false;
  /** No GOP start seen since the current init: skip fragments up to the next keyframe. */
  needKey = true;
  private kbpsBytes = 0;
  private kbpsAt = performance.now();
  readonly since = Date.now();

  constructor(
    private readonly feed: LiveFeed,
    readonly kind: LiveKind,
    readonly address: string,
    readonly group: string,
    readonly sink: LiveSink,
    readonly kbpsBudget: number,
  ) {}

  close(): void {
    this.feed.remove(this, false);
  }

  countSent(bytes: number): void {
    if (this.closedFlag || !(bytes > 0)) return;
    this.framesSent++;
    this.bytesSent += bytes;
    this.feed.host.totals.framesSent++;
    this.feed.host.totals.bytesOut += bytes;
  }

  countSkipped(): void {
    if (this.closedFlag) return;
    this.framesSkipped++;
    this.feed.host.totals.framesSkipped++;
  }

  sampleKbps(t: number): void {
    const dt = t - this.kbpsAt;
    if (dt <= 0) return;
    this.kbps = Math.round(((this.bytesSent - this.kbpsBytes) * 8) / dt);
    this.kbpsBytes = this.bytesSent;
    this.kbpsAt = t;
  }

  info(): ViewerInfo {
    let buffered = 0;
    try {
      buffered = this.sink.buffered?.() ?? 0;
    } catch {
      buffered = 0;
    }
    return {
      address: this.address,
      since: this.since,
      kind: this.kind,
      framesSent: this.framesSent,
      framesSkipped: this.framesSkipped,
      bytesSent: this.bytesSent,
      kbps: this.kbps,
      pending: buffered > 0,
      buffered,
      ...(typeof this.sink.connection === "string" ? { connection: this.sink.connection } : {}),
    };
  }
}

/** Calls a sink without letting a transport's exception reach the server's input path. */
function safely(fn: () => void): void {
  try {
    fn();
  } catch {
    // A transport that throws is its own problem; the other viewers carry on.
  }
}

/**
 * The live viewers of one StreamServer: the server hands it every init, fragment, JPEG and state
 * change; a new video sink gets the current init and GOP at once (or waits for the next keyframe).
 */
export class LiveFeed {
  private readonly viewers = new Set<LiveEntry>();

  constructor(readonly host: LiveFeedHost) {}

  get size(): number {
    return this.viewers.size;
  }

  /** Sinks that take video (WebSocket MSE, WebRTC): they want every picture as it comes. */
  get videoSinks(): number {
    let n = 0;
    for (const v of this.viewers) if (v.sink.video) n++;
    return n;
  }

  /** Sinks that take JPEG (the decoder of a video-only wire runs while this is above 0). */
  get jpegSinks(): number {
    let n = 0;
    for (const v of this.viewers) if (v.sink.jpeg) n++;
    return n;
  }

  /** Admission and registration of a new viewer; see LiveServer.openLive. */
  open(kind: LiveKind, address: string, sink: LiveSink): LiveViewer | LiveRefusal {
    if (this.host.closed()) return { status: 503, error: "the stream is closed" };
    if (!sink.video && !sink.jpeg) return { status: 415, error: "the viewer takes neither video nor JPEG" };
    const group = addressGroup(address);
    const refusal = this.host.admission.refusal(this.host.held(), group);
    if (refusal !== undefined) return { status: 503, error: refusal.trim() };
    const kbps = Math.max(0, this.host.maxKbps);
    const entry = new LiveEntry(this, kind, address, group, sink, kbps);
    this.viewers.add(entry);
    this.host.admission.hold(group, false);
    this.host.joined(address, kind);
    if (sink.video) this.startVideo(entry);
    if (this.host.offline()) safely(() => sink.state?.("offline"));
    this.host.jpegWantChanged();
    return entry;
  }

  /** The current init and GOP to a new video sink; without a GOP it waits for the next keyframe. */
  private startVideo(entry: LiveEntry): void {
    const init = this.host.currentInit();
    if (!init) return;
    const sink = entry.sink;
    const send = (ev: LiveVideoEvent): void => sink.video?.(ev);
    safely(() => send({ type: "init", ...init }));
    const gop = this.host.currentGop();
    entry.needKey = gop.length === 0;
    gop.forEach((data, i) => {
      if (!entry.closedFlag)
        safely(() => send({ type: "fragment", data, keyframe: i === 0, time: Date.now(), duration: 0 }));
    });
  }

  remove(entry: LiveEntry, byServer: boolean, reason = ""): void {
    if (!this.viewers.delete(entry)) return;
    entry.closedFlag = true;
    this.host.admission.release(entry.group, false);
    if (byServer) safely(() => entry.sink.end?.(reason));
    this.host.left(entry.address, entry.kind);
    // Always: a sink whose jpeg() is a getter may have stopped wanting JPEG before it left.
    this.host.jpegWantChanged();
  }

  /** A new init (not the same one announced again): every video sink starts over at the next keyframe. */
  init(init: { data: Buffer; codec: string; width: number; height: number; initId: number }): void {
    for (const v of this.viewers) {
      if (!v.sink.video) continue;
      v.needKey = true;
      const sink = v.sink;
      safely(() => sink.video?.({ type: "init", ...init }));
    }
  }

  /** A fragment of the current init; a sink that waits for a GOP start skips it unless it is one. */
  fragment(data: Buffer, keyframe: boolean, time: number, duration: number): void {
    for (const v of this.viewers) {
      if (!v.sink.video || v.closedFlag) continue;
      if (v.needKey) {
        if (!keyframe) continue;
        v.needKey = false;
      }
      const sink = v.sink;
      safely(() => sink.video?.({ type: "fragment", data, keyframe, time, duration }));
    }
  }

  /** A JPEG frame (from the wire or decoded): to every JPEG sink. */
  jpeg(data: Buffer): void {
    for (const v of this.viewers) {
      const sink = v.sink;
      if (sink.jpeg && !v.closedFlag) safely(() => sink.jpeg?.(data));
    }
  }

  state(s: LiveState): void {
    for (const v of this.viewers) {
      const sink = v.sink;
      if (!v.closedFlag) safely(() => sink.state?.(s));
    }
  }

  sampleKbps(t: number): void {
    for (const v of this.viewers) v.sampleKbps(t);
  }

  infos(): ViewerInfo[] {
    return [...this.viewers].map((v) => v.info());
  }

  /** The server closes: every viewer ends (its transport's `end` is called). */
  close(reason: string): void {
    for (const v of [...this.viewers]) this.remove(v, true, reason);
  }
}

/**
 * Whether a browser page from the request's Origin may open a live viewer: no Origin (not a browser
 * page), the same host, or an origin the path's CORS setting allows ("*", the origin, or a list with it).
 * WebSocket upgrades are not covered by CORS in browsers, so the server checks it (cross-site hijacking).
 */
export function liveOriginAllowed(req: IncomingMessage, cors: string | string[]): boolean {
  const origin = req.headers.origin;
  if (typeof origin !== "string" || origin === "") return true;
  if (Array.isArray(cors) ? cors.includes(origin) : cors === "*" || cors === origin) return true;
  if (origin === "null") return false;
  try {
    return new URL(origin).host.toLowerCase() === String(req.headers.host ?? "").toLowerCase();
  } catch {
    return false;
  }
}
