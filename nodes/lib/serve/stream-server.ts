import type { IncomingMessage, ServerResponse } from "http";
import type { Frame } from "../media";
import { liveDemand } from "../camera/live-demand";
import { RateMeter } from "../meters";
import { Access, Admission, addressGroup, clientAddress } from "./access";
import { Fmp4Output, type Fmp4Input } from "./fmp4-output";
import { HlsSessions } from "./hls-sessions";
import {
  renderMetrics,
  streamMetricRows,
  viewerKindRows,
  videoFormat,
  type MetricRow,
  type StreamStats,
  type Upstream,
  type VideoStats,
} from "./metrics";
import { JpegOutput } from "./jpeg-output";
import {
  LiveFeed,
  liveOriginAllowed,
  type LiveAccess,
  type LiveKind,
  type LiveRefusal,
  type LiveServer,
  type LiveSink,
  type LiveViewer,
} from "./live-feed";
import { DEFAULT_TEXTS, Placeholder, type PlaceholderCard } from "./placeholder";
import { reply, replyBusy } from "./reply";
import { answerMethod, matchRoute, parseRequestUrl, whepRoute, type RouteName } from "./routes";
import { renderStatusPage } from "./status-page";
import { VideoJpeg, type VideoDecoding } from "./video-jpeg";
import { StreamViewer, type StreamTotals, type ViewerKind } from "./viewer";
import { WhepEndpoint, type WhepConfig } from "./whep";
import type { ViewerGroup } from "./viewer-group";

// The names the server always exported, from the parts that hold them now.
export { addressGroup } from "./access";
export { HLS_SESSIONS_PER_ADDRESS } from "./hls-sessions";
export { MJPEG_BOUNDARY, mjpegPart } from "./mjpeg-fanout";
export type { MetricRow, StreamStats, Upstream, VideoStats } from "./metrics";
export type { PlaceholderCard } from "./placeholder";
export type { VideoDecoding, LiveDecoder, DecodedPicture } from "./video-jpeg";
export type { LiveAccess, LiveKind, LiveRefusal, LiveSink, LiveVideoEvent, LiveViewer } from "./live-feed";

/** JPEG frames seen on the wire this recently: snapshots and MJPEG use them, not decoded video. */
export const JPEG_FRESH_MS = 5000;

export interface StreamServerOptions {
  /** The path the server is mounted on, for status.json, metrics labels and the page title. */
  path: string;
  /** Streaming viewers (MJPEG, stream.mp4, HLS sessions) and snapshot waiters at most; 0 = unlimited. */
  maxClients?: number;
  /** The same, from one client address (an IPv6 /64 counts as one); 0 = unlimited. */
  maxPerAddress?: number;
  /** Per viewer, kilobits per second; 0 = unlimited. */
  maxKbps?: number;
  /** Required as `?token=` or `Authorization: Bearer` when set. */
  token?: string;
  /** Access-Control-Allow-Origin on every response; empty = none; a list echoes a listed Origin. */
  cors?: string | string[];
  /** Names the stream until frames say which camera they come from (default: path). */
  title?: string;
  /** No frame for this long: upstream is offline and viewers get the placeholder; 0 = never. */
  offlineAfterMs?: number;
  /** A viewer whose socket stays busy for this long is dropped. */
  stallTimeoutMs?: number;
  /** `snapshot.jpg?wait=1` answers 504 after this long without a frame. */
  snapshotWaitMs?: number;
  /** An HLS client that requests nothing for this long has left. */
  hlsIdleMs?: number;
  /** Placeholder texts (translated by the node). */
  texts?: { waiting: string; offline: string };
  /** Renders the placeholder JPEG; defaults to renderCard. */
  renderPlaceholder?: (card: PlaceholderCard) => Buffer;
  /** fMP4 fragments kept for HLS, by count and bytes. */
  maxSegments?: number;
  maxSegmentBytes?: number;
  tickMs?: number;
  /** A viewer came or went; `count` is the number of viewers afterwards. */
  onViewer?: (change: ViewerChange) => void;
  /** More samples for `<path>/metrics` (e.g. the camera's reconnects, which only the node can find). */
  extraMetrics?: () => MetricRow[];
  /**
   * Turns compressed video into JPEG for snapshots and MJPEG viewers on a wire that carries only
   * `msg.mp4`; without it such a wire serves only HLS and stream.mp4.
   */
  videoDecoding?: VideoDecoding;
  /** Pictures per second the MJPEG decoder makes on a video-only wire (0 = every frame); the node reads it. */
  mjpegFps?: number;
  /** A decoding problem, in words (the node shows it once). */
  onProblem?: (message: string) => void;
  /** Something a status line shows has changed (called at most once per tick plus on events). */
  onChange?: () => void;
  /** WebRTC (WHEP at `<path>/whep`): ICE servers, UDP ports, ICE-TCP, and what was wrong with the settings. */
  webrtc?: { config: WhepConfig; problems: string[] };
}

/** What `onViewer` is told: one object per viewer that came or went. */
export interface ViewerChange {
  event: "connect" | "disconnect";
  viewer: { address: string; kind: ViewerKind };
  /** Viewers after the change. */
  count: number;
}

/** What a request handler gets: the request, its answer, whether it is HEAD, and the query. */
interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  head: boolean;
  query: URLSearchParams;
  seq: number;
}

/**
 * Serves one camera's frames over HTTP to many viewers, given plain Node `http` request/response
 * objects (Node-RED mounts `handle` under the node's path). Endpoints below the mount point (see
 * routes.ts): `/` MJPEG, `/snapshot.jpg`, `/status.json`, `/status`, `/metrics`, `/stream.mp4`,
 * `/index.m3u8`, `/init.mp4`, `/seg-<n>.m4s`. A facade: access, admission, the MJPEG viewers, snapshot
 * waiters, the placeholder, the fMP4 output and the metrics are parts of their own.
 */
export class StreamServer implements LiveServer {
  readonly path: string;
  /** Counters shared by every viewer, so totals survive viewers that leave. */
  readonly totals: StreamTotals = { framesSent: 0, framesSkipped: 0, bytesOut: 0 };
  private readonly maxKbps: number;
  private readonly access: Access;
  private readonly admission: Admission;
  /** WebSocket and WHEP viewers (live-feed.ts). */
  private readonly live: LiveFeed;
  /** `<path>/whep`: WebRTC viewers, fed by the live feed. */
  readonly whep: WhepEndpoint;
  private readonly title: string;
  private readonly offlineAfterMs: number;
  private readonly stallTimeoutMs: number;
  private readonly options: StreamServerOptions;
  private readonly placeholder: Placeholder;
  private readonly jpeg: JpegOutput;
  private readonly fmp4: Fmp4Output;
  private readonly fps = new RateMeter(2000);
  private readonly timer: NodeJS.Timeout;
  private readonly handlers: Record<RouteName, (c: RequestContext) => void>;
  private framesIn = 0;
  private viewersDropped = 0;
  private lastFrameAt = 0;
  /** Monotonic ms of the latest JPEG frame from the wire (not decoded ones); 0 = none yet. */
  private lastWireJpegAt = 0;
  private readonly videoJpeg: VideoJpeg | undefined;
  /** The fMP4 input carried a camera-source id (camera connect sends compressed video as it came). */
  private mp4FromCamera = false;
  /** A keyframe is being decoded for `snapshot.jpg?wait=1` waiters. */
  private waiterDecoding = false;
  private lastKbpsSample = performance.now();
  private closed = false;

  constructor(options: StreamServerOptions) {
    this.options = options;
    this.path = options.path;
    this.maxKbps = Math.max(0, options.maxKbps ?? 0);
    this.access = new Access(options.token, options.cors ?? "");
    this.admission = new Admission(
      Math.max(0, options.maxClients ?? 0),
      Math.max(0, options.maxPerAddress ?? 0),
    );
    this.title = options.title || options.path;
    this.offlineAfterMs = options.offlineAfterMs ?? 10_000;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 10_000;
    this.placeholder = new Placeholder(this.title, options.texts ?? DEFAULT_TEXTS, options.renderPlaceholder);
    this.jpeg = new JpegOutput(this, this.admission, this.placeholder, options.snapshotWaitMs ?? 10_000);
    const hls = new HlsSessions(this.admission, options.hlsIdleMs ?? 15_000);
    this.fmp4 = new Fmp4Output(
      {
        busy: (res, head, group) => this.busy(res, head, group),
        addViewer: (req, res, group) => this.addViewer(req, res, "mp4", group),
        hlsJoined: (s) =>
          this.options.onViewer?.({
            event: "connect",
            viewer: { address: s.address, kind: "hls" },
            count: this.viewerCount,
          }),
        countSent: (bytes) => {
          this.totals.framesSent++;
          this.totals.bytesOut += bytes;
        },
      },
      hls,
      options,
    );
    this.videoJpeg = options.videoDecoding
      ? new VideoJpeg(options.videoDecoding, {
          init: () => this.fmp4.store.init?.data,
          gop: () => this.fmp4.store.gop,
          picture: (frame) => {
            if (this.closed || !this.videoOnly()) return;
            this.fps.add(1, performance.now());
            this.jpeg.push(frame);
            this.live.jpeg(frame.data);
          },
          problem: (message) => this.options.onProblem?.(message),
        })
      : undefined;
    this.live = new LiveFeed({
      totals: this.totals,
      admission: this.admission,
      maxKbps: this.maxKbps,
      currentInit: () => {
        const init = this.fmp4.store.init;
        if (!init) return undefined;
        const { codec, width, height } = this.fmp4.video;
        return { data: init.data, codec, width, height, initId: init.id };
      },
      currentGop: () => this.fmp4.store.gop,
      offline: () => this.jpeg.offline,
      held: () => this.viewerCount + this.jpeg.waiters.size,
      closed: () => this.closed,
      joined: (address, kind) =>
        this.options.onViewer?.({ event: "connect", viewer: { address, kind }, count: this.viewerCount }),
      left: (address, kind) =>
        this.options.onViewer?.({ event: "disconnect", viewer: { address, kind }, count: this.viewerCount }),
      jpegWantChanged: () => {
        this.updateDecoder();
        this.updateLiveDemand();
      },
    });
    this.whep = new WhepEndpoint(
      {
        authorized: (req, token) => this.access.authorized(req, token),
        liveAccess: (req, token) => this.liveAccess(req, token),
        openLive: (kind, address, sink) => this.openLive(kind, address, sink),
        videoCodec: () => this.liveCodec || undefined,
        hasHadFrames: () => this.hasHadFrames,
        closed: () => this.closed,
      },
      { config: options.webrtc?.config ?? { iceServers: [], iceTcp: false } },
    );
    this.handlers = this.routeHandlers();
    this.timer = setInterval(() => this.tick(), options.tickMs ?? 250);
    this.timer.unref();
  }

  get viewerCount(): number {
    return this.jpeg.viewers.size + this.fmp4.viewers.size + this.fmp4.hls.size + this.live.size;
  }

  /** The camera name the frames carry (empty until one says). */
  get cameraName(): string {
    return this.jpeg.camera;
  }

  get upstream(): Upstream {
    return this.jpeg.offline ? "offline" : "live";
  }

  /** True once a frame has arrived (so "offline" means the camera went away, not "not yet"). */
  get hasHadFrames(): boolean {
    return this.jpeg.everLive;
  }

  /** The last placeholder rendering error, for the node to report once. */
  get renderError(): Error | undefined {
    return this.placeholder.renderError;
  }

  /** Frames per second over the last two seconds. */
  get fpsIn(): number {
    return this.fps.fps();
  }

  // ---- input ----------------------------------------------------------------------------------

  /** A new JPEG frame: every MJPEG viewer gets it (or keeps it pending), snapshot waiters get it. */
  pushFrame(frame: Frame): void {
    if (this.closed) return;
    const t = performance.now();
    this.framesIn++;
    this.fps.add(1, t);
    this.lastFrameAt = t;
    this.lastWireJpegAt = t;
    this.updateDecoder();
    const wasOffline = this.jpeg.push(frame);
    this.live.jpeg(frame.data);
    if (wasOffline) {
      this.live.state("online");
      this.options.onChange?.();
    }
  }

  /** Upstream says the camera is gone: show the placeholder now instead of the last frame. */
  setOffline(): void {
    if (this.closed || this.jpeg.offline) return;
    this.jpeg.setOffline();
    this.live.state("offline");
    this.options.onChange?.();
  }

  /**
   * An fMP4 init segment or fragment (from `ffmpeg transcode`, or compressed video straight from
   * `camera connect`). `camera` names the stream until JPEG frames do.
   */
  pushMp4(data: Buffer, info: Fmp4Input & { cameraId?: string }, camera = ""): void {
    if (this.closed) return;
    if (camera && !this.jpeg.camera) this.jpeg.camera = camera;
    if (info.cameraId !== undefined) {
      this.mp4FromCamera = true;
      if (info.cameraId !== this.videoCameraId) {
        this.videoCameraId = info.cameraId;
        this.updateLiveDemand();
      }
    }
    const result = this.fmp4.push(data, info);
    if (result === "no init") return;
    this.lastFrameAt = performance.now();
    const wasOffline = this.jpeg.markLive();
    if (wasOffline) this.live.state("online");
    if (result === "init") {
      const init = this.live.host.currentInit();
      if (init) this.live.init(init);
    } else if (result === "keyframe" || result === "fragment")
      this.live.fragment(data, result === "keyframe", info.time, info.duration);
    const video = this.videoJpeg;
    if (video) {
      if (camera) video.camera = camera;
      if (result === "init") video.newInit();
      else if (result === "keyframe" || result === "fragment") {
        video.fragment(data, result === "keyframe");
        this.answerWaitersFromVideo(data, result === "keyframe");
      }
    }
    this.updateDecoder();
    if (wasOffline) this.options.onChange?.();
  }

  /** True when snapshots and MJPEG must come from the compressed video: it flows and JPEG frames do not. */
  videoOnly(): boolean {
    if (this.fmp4.store.init === undefined) return false;
    return this.lastWireJpegAt === 0 || performance.now() - this.lastWireJpegAt > JPEG_FRESH_MS;
  }

  /** The live decoder runs while an MJPEG viewer or a JPEG live sink watches a video-only wire, and never otherwise. */
  private updateDecoder(): void {
    const wanted = this.jpeg.viewers.size > 0 || this.live.jpegSinks > 0;
    this.videoJpeg?.setWanted(!this.closed && wanted && this.videoOnly());
  }

  // ---- live viewers (WebSocket, WHEP) ---------------------------------------------------------

  /** The current video's codec string (all tracks), or "" before the first init. */
  get liveCodec(): string {
    return this.fmp4.store.init === undefined ? "" : this.fmp4.video.codec;
  }

  /** JPEG frames arrive on the wire now (fresh), not only decoded from video. */
  get liveJpeg(): boolean {
    return this.lastWireJpegAt > 0 && performance.now() - this.lastWireJpegAt <= JPEG_FRESH_MS;
  }

  /**
   * May this request open a live viewer? The token (as `?token=` or `Authorization: Bearer`; `token`
   * is the one the transport was given), the Origin against the CORS setting, closed, the limits.
   */
  liveAccess(req: IncomingMessage, token: string | null): LiveAccess {
    if (!this.access.authorized(req, token))
      return { ok: false, status: 401, error: "a valid token is required" };
    if (!liveOriginAllowed(req, this.options.cors ?? ""))
      return {
        ok: false,
        status: 403,
        error: `pages from ${String(req.headers.origin)} may not open this stream`,
      };
    if (this.closed) return { ok: false, status: 503, error: "the stream is closed" };
    const refusal = this.admission.refusal(
      this.viewerCount + this.jpeg.waiters.size,
      addressGroup(clientAddress(req)),
    );
    if (refusal !== undefined) return { ok: false, status: 503, error: refusal.trim() };
    return { ok: true };
  }

  /**
   * A WebSocket or WHEP viewer: counted in the limits, status.json and the viewer messages until its
   * `close()`; a video sink gets the current init and GOP at once. Refused when over a limit or closed.
   */
  openLive(kind: LiveKind, address: string, sink: LiveSink): LiveViewer | LiveRefusal {
    const viewer = this.live.open(kind, address, sink);
    this.options.onChange?.();
    return viewer;
  }

  /** `snapshot.jpg?wait=1` on a video-only wire: the next keyframe, decoded, answers the waiters. */
  private answerWaitersFromVideo(data: Buffer, key: boolean): void {
    const video = this.videoJpeg;
    const init = this.fmp4.store.init;
    if (!video || !init || !key || this.jpeg.waiters.size === 0 || !this.videoOnly()) return;
    // The live decoder's pictures answer them; one decode at a time (the next keyframe tries again).
    if (video.decoderRunning || this.waiterDecoding) return;
    this.waiterDecoding = true;
    video.decodeOne(init.data, data).then(
      (frame) => {
        this.waiterDecoding = false;
        if (!this.closed) this.jpeg.waiters.answer(frame);
      },
      (err: Error) => {
        this.waiterDecoding = false;
        this.options.onProblem?.(`snapshot: ${err.message}`);
      },
    );
  }

  /** `snapshot.jpg` on a video-only wire: the latest keyframe decoded (cached about a second). */
  private serveVideoSnapshot(res: ServerResponse, head: boolean): void {
    const video = this.videoJpeg as VideoJpeg;
    video.snapshot().then(
      (frame) => {
        if (!res.headersSent && !res.destroyed) this.jpeg.sendJpeg(res, frame, head);
      },
      (err: Error) => {
        if (res.headersSent || res.destroyed) return;
        reply(res, 503, "text/plain", `No picture: ${err.message}\n`, head, { "Retry-After": "1" });
      },
    );
  }

  // ---- HTTP -------------------------------------------------------------------------------------

  /** Answers one request; `url` is relative to the mount point (defaults to req.url). */
  handle(req: IncomingMessage, res: ServerResponse, url: string = req.url ?? "/"): void {
    this.access.setCors(req, res);
    const parsed = parseRequestUrl(url);
    if (!parsed) {
      reply(res, 400, "text/plain", "Bad Request: the path could not be read\n", false);
      return;
    }
    // WHEP takes POST, DELETE and its own CORS preflight, and checks the token itself.
    if (whepRoute(parsed.pathname)) return this.whep.handle(req, res, parsed);
    const head = answerMethod(req, res);
    if (head === undefined) return;
    if (!this.access.authorized(req, parsed.searchParams.get("token"))) {
      reply(res, 401, "text/plain", "Unauthorized\n", head, {
        "WWW-Authenticate": 'Bearer realm="camrelay"',
      });
      return;
    }
    if (this.closed) {
      reply(res, 503, "text/plain", "Stream closed\n", head, { "Retry-After": "2" });
      return;
    }
    const route = matchRoute(parsed.pathname);
    if (!route) reply(res, 404, "text/plain", "Not Found\n", head);
    else this.handlers[route.name]({ req, res, head, query: parsed.searchParams, seq: route.seq ?? 0 });
  }

  /** The route table's handlers (routes.ts names the paths). */
  private routeHandlers(): Record<RouteName, (c: RequestContext) => void> {
    const group = (req: IncomingMessage): string => addressGroup(clientAddress(req));
    return {
      mjpeg: ({ req, res, head }) => this.jpeg.serveMjpeg(req, res, head, group(req)),
      snapshot: ({ req, res, head, query }) => {
        const wait = query.get("wait");
        const waits = wait !== null && wait !== "0" && wait !== "false";
        if (!waits && this.videoJpeg && !this.jpeg.offline && this.videoOnly())
          this.serveVideoSnapshot(res, head);
        else this.jpeg.serveSnapshot(res, head, wait, group(req));
      },
      statusJson: ({ res, head }) => reply(res, 200, "application/json", JSON.stringify(this.stats()), head),
      statusPage: ({ res, head }) => reply(res, 200, "text/html; charset=utf-8", this.statusPage(), head),
      metrics: ({ res, head }) =>
        reply(res, 200, "text/plain; version=0.0.4; charset=utf-8", this.metrics(), head),
      mp4: ({ req, res, head }) => this.fmp4.serveMp4(req, res, head, group(req)),
      playlist: ({ req, res, head, query }) => this.fmp4.servePlaylist(req, res, head, query.get("token")),
      init: ({ req, res, head, query }) => this.fmp4.serveInit(req, res, head, query.get("v")),
      segment: ({ req, res, head, seq }) => this.fmp4.serveSegment(req, res, head, seq),
    };
  }

  /** Answers 503 when a new viewer or waiter from `group` would pass maxClients or maxPerAddress. */
  busy(res: ServerResponse, head: boolean, group: string): boolean {
    const text = this.admission.refusal(this.viewerCount + this.jpeg.waiters.size, group);
    if (text !== undefined) replyBusy(res, head, text);
    return text !== undefined;
  }

  /** A new streaming viewer (MJPEG or stream.mp4) in `set`, held in the admission counts until it leaves. */
  addViewer(req: IncomingMessage, res: ServerResponse, kind: ViewerKind, set: ViewerGroup): StreamViewer {
    res.socket?.setNoDelay(true);
    const bytesPerSecond = (this.maxKbps * 1000) / 8;
    const address = clientAddress(req);
    const group = addressGroup(address);
    const viewer = new StreamViewer(res, kind, address, Date.now(), this.totals, bytesPerSecond, () =>
      performance.now(),
    );
    set.add(viewer, () => {
      this.admission.release(group, false);
      this.updateDecoder();
      this.options.onViewer?.({ event: "disconnect", viewer: { address, kind }, count: this.viewerCount });
    });
    this.admission.hold(group, false);
    this.updateDecoder();
    this.options.onViewer?.({ event: "connect", viewer: { address, kind }, count: this.viewerCount });
    return viewer;
  }

  // ---- housekeeping ---------------------------------------------------------------------------

  private tick(): void {
    const t = performance.now();
    this.viewersDropped += this.jpeg.viewers.dropStalled(this.stallTimeoutMs);
    this.viewersDropped += this.fmp4.viewers.dropStalled(this.stallTimeoutMs);
    this.fmp4.hls.expire((s) =>
      this.options.onViewer?.({
        event: "disconnect",
        viewer: { address: s.address, kind: "hls" },
        count: this.viewerCount,
      }),
    );
    if (!this.jpeg.offline && this.offlineAfterMs > 0 && t - this.lastFrameAt > this.offlineAfterMs)
      this.setOffline();
    this.jpeg.refreshPlaceholder();
    this.updateDecoder();
    if (t - this.lastKbpsSample >= 1000) {
      this.lastKbpsSample = t;
      this.jpeg.viewers.sampleKbps();
      this.fmp4.viewers.sampleKbps();
      for (const s of this.fmp4.hls.values()) s.sampleKbps();
      this.live.sampleKbps(t);
    }
    this.options.onChange?.();
  }

  stats(): StreamStats {
    const mjpeg = this.jpeg.viewers.infos();
    const mp4 = this.fmp4.viewers.infos();
    const hls = [...this.fmp4.hls.values()].map((s) => s.info());
    const { frame: f } = this.jpeg.latest;
    const { width, height } = this.jpeg;
    const store = this.fmp4.store;
    return {
      path: this.path,
      camera: this.jpeg.camera,
      upstream: this.upstream,
      lastFrame: f ? { seq: f.seq, time: f.time, width, height, bytes: f.data.length } : null,
      framesIn: this.framesIn,
      fpsIn: this.fpsIn,
      ...this.totals,
      viewerCount: this.viewerCount,
      viewersDropped: this.viewersDropped,
      maxClients: this.admission.maxClients,
      maxPerAddress: this.admission.maxPerAddress,
      snapshotWaiters: this.jpeg.waiters.size,
      maxKbps: this.maxKbps,
      pendingFrames: mjpeg.pending + mp4.pending,
      viewers: [...mjpeg.viewers, ...mp4.viewers, ...hls, ...this.live.infos()],
      fmp4: {
        init: store.init !== undefined,
        segments: store.segments.length,
        bytes: store.byteLength,
        mediaSequence: store.latest ? store.latest.seq : null,
        restarts: this.fmp4.restarts,
      },
      video: this.videoStats(),
    };
  }

  /** What the node's status says of the compressed video (cheaper than stats()); undefined before its init. */
  videoInfo(): { format: string; width: number; height: number } | undefined {
    if (this.fmp4.store.init === undefined) return undefined;
    const { codec, width, height } = this.fmp4.video;
    return { format: videoFormat(codec), width, height };
  }

  /** The compressed video as status.json shows it; null before its first init. */
  private videoStats(): VideoStats | null {
    const info = this.videoInfo();
    if (!info) return null;
    const decoded = this.videoOnly();
    return {
      codec: this.fmp4.video.codec,
      ...info,
      passthrough: this.mp4FromCamera,
      fragmentsIn: this.fmp4.fragmentsIn,
      keyframesIn: this.fmp4.keyframesIn,
      gopFragments: this.fmp4.store.gop.length,
      jpegSource: !decoded ? "frames" : this.videoJpeg ? "decoded" : "none",
      decoderRunning: this.videoJpeg?.decoderRunning ?? false,
    };
  }

  metrics(): string {
    const stats = this.stats();
    return renderMetrics(this.path, [
      ...streamMetricRows(stats),
      ...viewerKindRows(stats.viewers),
      ...(this.options.extraMetrics?.() ?? []),
    ]);
  }

  private statusPage(): string {
    const name = this.jpeg.camera || this.title;
    return renderStatusPage(name === this.path ? name : `${name} (${this.path})`);
  }

  /** The camera whose msg.mp4 this path serves (camera connect's cameraId), for the live-demand hint. */
  private videoCameraId?: string;
  private demandCameraId?: string;

  /** Tells the camera whether this path has WebSocket/WebRTC viewers (then it sends every picture at once). */
  private updateLiveDemand(): void {
    const cam = this.closed ? undefined : this.videoCameraId;
    if (this.demandCameraId !== undefined && this.demandCameraId !== cam)
      liveDemand.set(this.demandCameraId, this, false);
    this.demandCameraId = cam;
    if (cam !== undefined) liveDemand.set(cam, this, this.live.videoSinks > 0);
  }

  /** Ends every open response and stops the timers; later requests get 503. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    liveDemand.release(this);
    clearInterval(this.timer);
    this.whep.close();
    this.live.close("the stream closed (redeploy)");
    this.videoJpeg?.close();
    this.jpeg.close();
    this.fmp4.clear();
    this.admission.clear();
  }
}
