import type { IncomingMessage, ServerResponse } from "http";
import type { Frame } from "../media";
import { RateMeter } from "../meters";
import { Access, Admission, addressGroup, clientAddress } from "./access";
import { Fmp4Output, type Fmp4Input } from "./fmp4-output";
import { HlsSessions } from "./hls-sessions";
import { renderMetrics, streamMetricRows, type MetricRow, type StreamStats, type Upstream } from "./metrics";
import { JpegOutput } from "./jpeg-output";
import { DEFAULT_TEXTS, Placeholder, type PlaceholderCard } from "./placeholder";
import { reply, replyBusy } from "./reply";
import { answerMethod, matchRoute, parseRequestUrl, type RouteName } from "./routes";
import { renderStatusPage } from "./status-page";
import { StreamViewer, type StreamTotals, type ViewerKind } from "./viewer";
import type { ViewerGroup } from "./viewer-group";

// The names the server always exported, from the parts that hold them now.
export { addressGroup } from "./access";
export { HLS_SESSIONS_PER_ADDRESS } from "./hls-sessions";
export { MJPEG_BOUNDARY, mjpegPart } from "./mjpeg-fanout";
export type { MetricRow, StreamStats, Upstream } from "./metrics";
export type { PlaceholderCard } from "./placeholder";

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
  /** Something a status line shows has changed (called at most once per tick plus on events). */
  onChange?: () => void;
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
export class StreamServer {
  readonly path: string;
  /** Counters shared by every viewer, so totals survive viewers that leave. */
  readonly totals: StreamTotals = { framesSent: 0, framesSkipped: 0, bytesOut: 0 };
  private readonly maxKbps: number;
  private readonly access: Access;
  private readonly admission: Admission;
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
    this.handlers = this.routeHandlers();
    this.timer = setInterval(() => this.tick(), options.tickMs ?? 250);
    this.timer.unref();
  }

  get viewerCount(): number {
    return this.jpeg.viewers.size + this.fmp4.viewers.size + this.fmp4.hls.size;
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
    if (this.jpeg.push(frame)) this.options.onChange?.();
  }

  /** Upstream says the camera is gone: show the placeholder now instead of the last frame. */
  setOffline(): void {
    if (this.closed || this.jpeg.offline) return;
    this.jpeg.setOffline();
    this.options.onChange?.();
  }

  /** An fMP4 init segment or fragment (from `ffmpeg transcode`). */
  pushMp4(data: Buffer, info: Fmp4Input): void {
    if (!this.closed) this.fmp4.push(data, info);
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
      snapshot: ({ req, res, head, query }) =>
        this.jpeg.serveSnapshot(res, head, query.get("wait"), group(req)),
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
      this.options.onViewer?.({ event: "disconnect", viewer: { address, kind }, count: this.viewerCount });
    });
    this.admission.hold(group, false);
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
    if (t - this.lastKbpsSample >= 1000) {
      this.lastKbpsSample = t;
      this.jpeg.viewers.sampleKbps();
      this.fmp4.viewers.sampleKbps();
      for (const s of this.fmp4.hls.values()) s.sampleKbps();
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
      viewers: [...mjpeg.viewers, ...mp4.viewers, ...hls],
      fmp4: {
        init: store.init !== undefined,
        segments: store.segments.length,
        bytes: store.byteLength,
        mediaSequence: store.latest ? store.latest.seq : null,
        restarts: this.fmp4.restarts,
      },
    };
  }

  metrics(): string {
    return renderMetrics(this.path, [
      ...streamMetricRows(this.stats()),
      ...(this.options.extraMetrics?.() ?? []),
    ]);
  }

  private statusPage(): string {
    const name = this.jpeg.camera || this.title;
    return renderStatusPage(name === this.path ? name : `${name} (${this.path})`);
  }

  /** Ends every open response and stops the timers; later requests get 503. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.jpeg.close();
    this.fmp4.clear();
    this.admission.clear();
  }
}
