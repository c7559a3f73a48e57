import { createHash, timingSafeEqual } from "crypto";
import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from "http";
import type { Frame } from "../media";
import { Fmp4Store, type Mp4Info } from "./fmp4-store";
import { readJpegSize } from "../codec/jpeg-markers";
import { renderCard } from "../codec/picture";
import { renderStatusPage } from "./status-page";
import { StreamViewer, type StreamTotals, type ViewerInfo, type ViewerKind } from "./viewer";

export const MJPEG_BOUNDARY = "camrelay";

export interface PlaceholderCard {
  width: number;
  height: number;
  lines: string[];
  time: Date;
}

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
  onViewer?: (
    event: "connect" | "disconnect",
    viewer: { address: string; kind: ViewerKind },
    count: number,
  ) => void;
  /** More samples for `<path>/metrics` (e.g. the camera's reconnects, which only the node can find). */
  extraMetrics?: () => MetricRow[];
  /** Something a status line shows has changed (called at most once per tick plus on events). */
  onChange?: () => void;
}

export type Upstream = "live" | "offline";

/** One sample for `<path>/metrics`; the `path` label is added. */
export interface MetricRow {
  name: string;
  type: "gauge" | "counter";
  help: string;
  value: number;
  labels?: Record<string, string>;
}

export interface StreamStats {
  path: string;
  camera: string;
  upstream: Upstream;
  lastFrame: { seq: number; time: number; width: number; height: number; bytes: number } | null;
  framesIn: number;
  fpsIn: number;
  framesSent: number;
  framesSkipped: number;
  bytesOut: number;
  viewerCount: number;
  viewersDropped: number;
  maxClients: number;
  maxPerAddress: number;
  /** `snapshot.jpg?wait=1` requests waiting for the next frame (they count against maxClients). */
  snapshotWaiters: number;
  maxKbps: number;
  pendingFrames: number;
  viewers: ViewerInfo[];
  fmp4: { init: boolean; segments: number; bytes: number; mediaSequence: number | null; restarts: number };
}

interface Placeholder {
  second: number;
  offline: boolean;
  frame: Frame;
}

interface SnapshotWaiter {
  res: ServerResponse;
  head: boolean;
  group: string;
  timer: NodeJS.Timeout;
}

/** Distinct User-Agents one address may turn into HLS sessions; more share one session of that address. */
export const HLS_SESSIONS_PER_ADDRESS = 16;

/** An HLS client, known by address and user agent, alive while it keeps requesting. */
class HlsSession {
  framesSent = 0;
  bytesSent = 0;
  kbps = 0;
  private kbpsBytes = 0;
  private kbpsAt = performance.now();
  lastSeen = performance.now();
  constructor(
    readonly address: string,
    readonly group: string,
    readonly since: number,
  ) {}

  sampleKbps(): void {
    const t = performance.now();
    if (t <= this.kbpsAt) return;
    this.kbps = Math.round(((this.bytesSent - this.kbpsBytes) * 8) / (t - this.kbpsAt));
    this.kbpsBytes = this.bytesSent;
    this.kbpsAt = t;
  }

  info(): ViewerInfo {
    const { address, since, framesSent, bytesSent, kbps } = this;
    return {
      address,
      since,
      kind: "hls",
      framesSent,
      framesSkipped: 0,
      bytesSent,
      kbps,
      pending: false,
      buffered: 0,
    };
  }
}

const CRLF = Buffer.from("\r\n");
const NO_STORE = "no-store, no-cache, must-revalidate, max-age=0";
const FPS_WINDOW_MS = 2000;

function sha256(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

function clientAddress(req: IncomingMessage): string {
  const ip = (req as IncomingMessage & { ip?: unknown }).ip;
  const addr = typeof ip === "string" && ip !== "" ? ip : (req.socket.remoteAddress ?? "");
  return addr.startsWith("::ffff:") ? addr.slice(7) : addr;
}

/**
 * The client an address stands for, for per-address limits: an IPv4 address itself, an IPv6 address by
 * its /64 (a host picks addresses inside its /64 at will).
 */
export function addressGroup(address: string): string {
  if (!address.includes(":")) return address;
  const a = address.split("%")[0].toLowerCase();
  const halves = a.split("::");
  if (halves.length > 2) return a;
  const left = halves[0] ? halves[0].split(":") : [];
  const right = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  // A trailing dotted IPv4 part fills two groups.
  const rightGroups = right.length + (right.length > 0 && right[right.length - 1].includes(".") ? 1 : 0);
  const zeros =
    halves.length === 2 ? Array<string>(Math.max(0, 8 - left.length - rightGroups)).fill("0") : [];
  const groups = [...left, ...zeros, ...right].slice(0, 4);
  if (groups.length < 4 || groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return a;
  return `${groups.map((g) => parseInt(g, 16).toString(16)).join(":")}::/64`;
}

function promLabel(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Builds the MJPEG part for one frame: boundary, headers, JPEG and CRLF in one shared Buffer. */
export function mjpegPart(frame: Frame): Buffer {
  const header = Buffer.from(
    `--${MJPEG_BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: ${frame.data.length}\r\n` +
      `X-Timestamp: ${(frame.time / 1000).toFixed(3)}\r\n\r\n`,
    "latin1",
  );
  return Buffer.concat([header, frame.data, CRLF], header.length + frame.data.length + 2);
}

/**
 * Serves one camera's frames over HTTP to many viewers, given plain Node `http` request/response
 * objects (Node-RED mounts `handle` under the node's path). Endpoints below the mount point:
 * `/` MJPEG, `/snapshot.jpg`, `/status.json`, `/status`, `/metrics`, `/stream.mp4`, `/index.m3u8`,
 * `/init.mp4`, `/seg-<n>.m4s`. Holds the latest frame, the viewers, the fMP4 ring and the counters.
 */
export class StreamServer {
  readonly path: string;
  /** The camera name the frames carry (msg.topic / msg.frame.camera). */
  private camera: string;
  private readonly maxClients: number;
  private readonly maxPerAddress: number;
  private readonly maxKbps: number;
  private readonly tokenHash: Buffer | undefined;
  private readonly cors: string | string[];
  private readonly title: string;
  private readonly offlineAfterMs: number;
  private readonly stallTimeoutMs: number;
  private readonly snapshotWaitMs: number;
  private readonly hlsIdleMs: number;
  private readonly texts: { waiting: string; offline: string };
  private readonly renderPlaceholder: (card: PlaceholderCard) => Buffer;
  private readonly onViewer: StreamServerOptions["onViewer"];
  private readonly onChange: StreamServerOptions["onChange"];
  private readonly extraMetrics: StreamServerOptions["extraMetrics"];

  private readonly totals: StreamTotals = { framesSent: 0, framesSkipped: 0, bytesOut: 0 };
  private readonly mjpeg = new Set<StreamViewer>();
  private readonly mp4 = new Set<StreamViewer>();
  private readonly hls = new Map<string, HlsSession>();
  private readonly waiters = new Set<SnapshotWaiter>();
  /** Per address group: viewers, HLS sessions and waiters held now (all), and HLS sessions (hls). */
  private readonly perAddress = new Map<string, { all: number; hls: number }>();
  private readonly fmp4: Fmp4Store;
  private readonly frameTimes: number[] = [];
  private readonly timer: NodeJS.Timeout;

  private framesIn = 0;
  private viewersDropped = 0;
  /** Inits that replaced an earlier one: the encoder feeding this stream restarted. */
  private encoderRestarts = 0;
  private lastFrame: Frame | undefined;
  private lastPart: Buffer | undefined;
  private lastFrameAt = 0;
  private lastFragmentTime: number | undefined;
  private width = 640;
  private height = 480;
  private offline = true;
  private everLive = false;
  private placeholder: Placeholder | undefined;
  private placeholderPart: Buffer | undefined;
  private placeholderSentSecond = -1;
  private lastKbpsSample = performance.now();
  private closed = false;
  /** The last placeholder rendering error, for the node to report once. */
  renderError: Error | undefined;

  constructor(options: StreamServerOptions) {
    this.path = options.path;
    this.camera = "";
    this.maxClients = Math.max(0, options.maxClients ?? 0);
    this.maxPerAddress = Math.max(0, options.maxPerAddress ?? 0);
    this.maxKbps = Math.max(0, options.maxKbps ?? 0);
    this.tokenHash = options.token ? sha256(options.token) : undefined;
    this.cors = options.cors ?? "";
    this.title = options.title || options.path;
    this.offlineAfterMs = options.offlineAfterMs ?? 10_000;
    this.stallTimeoutMs = options.stallTimeoutMs ?? 10_000;
    this.snapshotWaitMs = options.snapshotWaitMs ?? 10_000;
    this.hlsIdleMs = options.hlsIdleMs ?? 15_000;
    this.texts = options.texts ?? { waiting: "waiting for camera", offline: "camera offline" };
    this.renderPlaceholder =
      options.renderPlaceholder ??
      ((card) => renderCard({ width: card.width, height: card.height, lines: card.lines, time: card.time }));
    this.onViewer = options.onViewer;
    this.onChange = options.onChange;
    this.extraMetrics = options.extraMetrics;
    this.fmp4 = new Fmp4Store({ maxSegments: options.maxSegments, maxBytes: options.maxSegmentBytes });
    this.timer = setInterval(() => this.tick(), options.tickMs ?? 250);
    this.timer.unref();
  }

  get viewerCount(): number {
    return this.mjpeg.size + this.mp4.size + this.hls.size;
  }

  /** The camera name the frames carry (empty until one says). */
  get cameraName(): string {
    return this.camera;
  }

  get upstream(): Upstream {
    return this.offline ? "offline" : "live";
  }

  /** True once a frame has arrived (so "offline" means the camera went away, not "not yet"). */
  get hasHadFrames(): boolean {
    return this.everLive;
  }

  // ---- input ----------------------------------------------------------------------------------

  /** A new JPEG frame: every MJPEG viewer gets it (or keeps it pending), snapshot waiters get it. */
  pushFrame(frame: Frame): void {
    if (this.closed) return;
    const t = performance.now();
    this.framesIn++;
    this.frameTimes.push(t);
    if (this.frameTimes.length > 64) this.frameTimes.shift();
    if (frame.width > 0 && frame.height > 0) {
      this.width = frame.width;
      this.height = frame.height;
    } else {
      const size = readJpegSize(frame.data);
      if (size) ({ width: this.width, height: this.height } = size);
    }
    if (frame.camera) this.camera = frame.camera;
    const wasOffline = this.offline;
    this.lastFrame = frame;
    this.lastFrameAt = t;
    this.lastPart = undefined;
    this.offline = false;
    this.everLive = true;
    if (this.mjpeg.size > 0) {
      const part = this.currentPart() as Buffer;
      for (const v of this.mjpeg) v.offer(part);
    }
    for (const w of this.waiters) this.answerWaiter(w, frame);
    if (wasOffline) this.onChange?.();
  }

  /** Upstream says the camera is gone: show the placeholder now instead of the last frame. */
  setOffline(): void {
    if (this.closed || this.offline) return;
    this.offline = true;
    this.broadcastPlaceholder();
    this.onChange?.();
  }

  /** An fMP4 init segment or fragment (from `ffmpeg transcode`). */
  pushMp4(data: Buffer, info: Mp4Info): void {
    if (this.closed) return;
    if (info.type === "init") {
      const replaced = this.fmp4.init !== undefined;
      if (replaced) this.encoderRestarts++;
      this.fmp4.pushInit(data, info);
      this.lastFragmentTime = undefined;
      // A progressive MP4 cannot switch init mid-stream: end it, the player reconnects to the new one.
      if (replaced) for (const v of [...this.mp4]) v.close(false);
      return;
    }
    const seg = this.fmp4.pushFragment(data, info, this.lastFragmentTime);
    if (!seg) return;
    this.lastFragmentTime = info.time;
    for (const v of this.mp4) v.offer(seg.data);
  }

  // ---- HTTP -------------------------------------------------------------------------------------

  /** Answers one request; `url` is relative to the mount point (defaults to req.url). */
  handle(req: IncomingMessage, res: ServerResponse, url: string = req.url ?? "/"): void {
    this.setCors(req, res);
    let parsed: URL;
    try {
      // A path such as "//[" reads as a host to URL: answer it, never throw out of a request handler.
      parsed = new URL(
        url.startsWith("/") ? `http://camrelay.invalid${url}` : url,
        "http://camrelay.invalid",
      );
    } catch {
      this.reply(res, 400, "text/plain", "Bad Request: the path could not be read\n", false);
      return;
    }
    let route = parsed.pathname;
    if (route.length > 1 && route.endsWith("/")) route = route.slice(0, -1);
    const method = req.method ?? "GET";
    if (method === "OPTIONS") {
      this.reply(res, 204, undefined, "", false, {
        Allow: "GET, HEAD, OPTIONS",
        "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        "Access-Control-Allow-Headers": "Authorization",
        "Access-Control-Max-Age": "600",
      });
      return;
    }
    if (method !== "GET" && method !== "HEAD") {
      this.reply(res, 405, "text/plain", "Method Not Allowed\n", false, { Allow: "GET, HEAD, OPTIONS" });
      return;
    }
    const head = method === "HEAD";
    const queryToken = parsed.searchParams.get("token");
    if (!this.authorized(req, queryToken)) {
      this.reply(res, 401, "text/plain", "Unauthorized\n", head, {
        "WWW-Authenticate": 'Bearer realm="camrelay"',
      });
      return;
    }
    if (this.closed) {
      this.reply(res, 503, "text/plain", "Stream closed\n", head, { "Retry-After": "2" });
      return;
    }
    const seg = /^\/seg-(\d+)\.m4s$/.exec(route);
    if (route === "/") this.serveMjpeg(req, res, head);
    else if (route === "/snapshot.jpg") this.serveSnapshot(req, res, head, parsed.searchParams.get("wait"));
    else if (route === "/status.json")
      this.reply(res, 200, "application/json", JSON.stringify(this.stats()), head);
    else if (route === "/status") this.reply(res, 200, "text/html; charset=utf-8", this.statusPage(), head);
    else if (route === "/metrics")
      this.reply(res, 200, "text/plain; version=0.0.4; charset=utf-8", this.metrics(), head);
    else if (route === "/stream.mp4") this.serveMp4(req, res, head);
    else if (route === "/index.m3u8") this.servePlaylist(req, res, head, queryToken);
    else if (route === "/init.mp4") this.serveInit(req, res, head, parsed.searchParams.get("v"));
    else if (seg) this.serveSegment(req, res, head, Number(seg[1]));
    else this.reply(res, 404, "text/plain", "Not Found\n", head);
  }

  private setCors(req: IncomingMessage, res: ServerResponse): void {
    const origin = req.headers.origin;
    const allow = Array.isArray(this.cors) ? (origin && this.cors.includes(origin) ? origin : "") : this.cors;
    if (allow === "") return;
    res.setHeader("Access-Control-Allow-Origin", allow);
    if (allow !== "*") res.setHeader("Vary", "Origin");
  }

  private authorized(req: IncomingMessage, queryToken: string | null): boolean {
    if (!this.tokenHash) return true;
    let given = queryToken;
    const auth = req.headers.authorization;
    if (given === null && typeof auth === "string") {
      const m = /^Bearer\s+(.+)$/i.exec(auth.trim());
      if (m) given = m[1];
    }
    // Hashing first makes both sides the same length, so the comparison time says nothing.
    return given !== null && timingSafeEqual(sha256(given), this.tokenHash);
  }

  private reply(
    res: ServerResponse,
    status: number,
    type: string | undefined,
    body: string | Buffer,
    head: boolean,
    headers: OutgoingHttpHeaders = {},
  ): void {
    const data = typeof body === "string" ? Buffer.from(body, "utf8") : body;
    const h: OutgoingHttpHeaders = { "Cache-Control": NO_STORE, ...headers };
    if (type !== undefined) {
      h["Content-Type"] = type;
      h["Content-Length"] = data.length;
    }
    res.writeHead(status, h);
    res.end(head ? undefined : data);
  }

  /** Answers 503 when a new viewer or waiter from `group` would pass maxClients or maxPerAddress. */
  private busy(res: ServerResponse, head: boolean, group: string): boolean {
    let text: string | undefined;
    if (this.maxClients > 0 && this.viewerCount + this.waiters.size >= this.maxClients)
      text = "Too many viewers\n";
    else if (this.maxPerAddress > 0 && (this.perAddress.get(group)?.all ?? 0) >= this.maxPerAddress)
      text = "Too many viewers from your address\n";
    if (text === undefined) return false;
    // Closing the refused connection gives its file descriptor back at once (no idle keep-alive).
    this.reply(res, 503, "text/plain", text, head, { "Retry-After": "10", Connection: "close" });
    return true;
  }

  private hold(group: string, hls: boolean): void {
    const held = this.perAddress.get(group) ?? { all: 0, hls: 0 };
    held.all++;
    if (hls) held.hls++;
    this.perAddress.set(group, held);
  }

  private release(group: string, hls: boolean): void {
    const held = this.perAddress.get(group);
    if (!held) return;
    held.all--;
    if (hls) held.hls--;
    if (held.all <= 0) this.perAddress.delete(group);
  }

  private serveMjpeg(req: IncomingMessage, res: ServerResponse, head: boolean): void {
    if (!head && this.busy(res, head, addressGroup(clientAddress(req)))) return;
    // Without chunked encoding the body is the raw multipart stream, ended by closing the connection.
    res.useChunkedEncodingByDefault = false;
    res.writeHead(200, {
      "Content-Type": `multipart/x-mixed-replace; boundary=${MJPEG_BOUNDARY}`,
      "Cache-Control": NO_STORE,
      Pragma: "no-cache",
      Connection: "close",
      "X-Content-Type-Options": "nosniff",
    });
    if (head) {
      res.end();
      return;
    }
    const viewer = this.addViewer(req, res, "mjpeg", this.mjpeg);
    const part = this.currentPart();
    if (part) {
      // Twice: Chrome shows frame n-1, so the first frame only appears once a second one follows.
      viewer.force(part);
      viewer.force(part);
    } else res.flushHeaders();
  }

  private serveMp4(req: IncomingMessage, res: ServerResponse, head: boolean): void {
    const init = this.fmp4.init;
    if (!init) {
      this.reply(res, 503, "text/plain", "No fMP4 input yet\n", head, { "Retry-After": "2" });
      return;
    }
    if (!head && this.busy(res, head, addressGroup(clientAddress(req)))) return;
    res.useChunkedEncodingByDefault = false;
    res.writeHead(200, { "Content-Type": "video/mp4", "Cache-Control": NO_STORE, Connection: "close" });
    if (head) {
      res.end();
      return;
    }
    const viewer = this.addViewer(req, res, "mp4", this.mp4);
    viewer.force(init.data);
    const latest = this.fmp4.latest;
    if (latest && latest.initId === init.id) viewer.force(latest.data);
  }

  private servePlaylist(
    req: IncomingMessage,
    res: ServerResponse,
    head: boolean,
    queryToken: string | null,
  ): void {
    if (!this.fmp4.init || this.fmp4.segments.length === 0) {
      this.reply(res, 503, "text/plain", "No fMP4 input yet\n", head, { "Retry-After": "2" });
      return;
    }
    if (!head && !this.touchHls(req, res)) return;
    const query = queryToken === null ? "" : `token=${encodeURIComponent(queryToken)}`;
    this.reply(res, 200, "application/vnd.apple.mpegurl", this.fmp4.playlist(query), head);
  }

  private serveInit(req: IncomingMessage, res: ServerResponse, head: boolean, version: string | null): void {
    const init = this.fmp4.initById(version === null ? undefined : Number(version));
    if (!init) {
      this.reply(res, 404, "text/plain", "Not Found\n", head);
      return;
    }
    if (!head && !this.touchHls(req, res)) return;
    this.reply(res, 200, "video/mp4", init.data, head, { "Cache-Control": "no-cache" });
  }

  private serveSegment(req: IncomingMessage, res: ServerResponse, head: boolean, seq: number): void {
    const seg = this.fmp4.segment(seq);
    if (!seg) {
      this.reply(res, 404, "text/plain", "Segment expired\n", head);
      return;
    }
    if (!head) {
      const session = this.touchHls(req, res);
      if (!session) return;
      session.framesSent++;
      session.bytesSent += seg.data.length;
      this.totals.framesSent++;
      this.totals.bytesOut += seg.data.length;
    }
    this.reply(res, 200, "video/iso.segment", seg.data, head, { "Cache-Control": "no-cache" });
  }

  /** Finds or starts the HLS session of this client; answers 503 and returns undefined when full. */
  private touchHls(req: IncomingMessage, res: ServerResponse): HlsSession | undefined {
    const address = clientAddress(req);
    const group = addressGroup(address);
    // Players behind one address (a household's NAT) told apart by User-Agent, of which 64 characters do:
    // a client cannot make the key (kept 15 s) as large as its header.
    let key = `${address}|${String(req.headers["user-agent"] ?? "").slice(0, 64)}`;
    let session = this.hls.get(key);
    if (!session && (this.perAddress.get(group)?.hls ?? 0) >= HLS_SESSIONS_PER_ADDRESS) {
      // Made-up User-Agents must not turn one address into thousands of viewers: the rest share one.
      key = `${group}|*`;
      session = this.hls.get(key);
    }
    if (!session) {
      if (this.busy(res, false, group)) return undefined;
      session = new HlsSession(address, group, Date.now());
      this.hls.set(key, session);
      this.hold(group, true);
      this.onViewer?.("connect", { address, kind: "hls" }, this.viewerCount);
    }
    session.lastSeen = performance.now();
    return session;
  }

  private addViewer(
    req: IncomingMessage,
    res: ServerResponse,
    kind: ViewerKind,
    set: Set<StreamViewer>,
  ): StreamViewer {
    res.socket?.setNoDelay(true);
    const bytesPerSecond = (this.maxKbps * 1000) / 8;
    const address = clientAddress(req);
    const group = addressGroup(address);
    const viewer = new StreamViewer(res, kind, address, Date.now(), this.totals, bytesPerSecond, () =>
      performance.now(),
    );
    set.add(viewer);
    this.hold(group, false);
    res.on("close", () => {
      viewer.close(true);
      if (set.delete(viewer)) {
        this.release(group, false);
        this.onViewer?.("disconnect", { address, kind }, this.viewerCount);
      }
    });
    this.onViewer?.("connect", { address, kind }, this.viewerCount);
    return viewer;
  }

  // ---- snapshot and placeholder ---------------------------------------------------------------

  private serveSnapshot(req: IncomingMessage, res: ServerResponse, head: boolean, wait: string | null): void {
    if (wait !== null && wait !== "0" && wait !== "false") {
      // A waiter holds a connection like a viewer does, so it counts against the same limits.
      const group = addressGroup(clientAddress(req));
      if (this.busy(res, head, group)) return;
      const waiter: SnapshotWaiter = {
        res,
        head,
        group,
        timer: setTimeout(() => {
          this.dropWaiter(waiter);
          this.reply(res, 504, "text/plain", "No frame arrived in time\n", head);
        }, this.snapshotWaitMs),
      };
      this.waiters.add(waiter);
      this.hold(group, false);
      res.on("close", () => this.dropWaiter(waiter));
      return;
    }
    const frame = this.currentFrame();
    if (!frame) {
      this.reply(res, 503, "text/plain", "No frame yet\n", head, { "Retry-After": "1" });
      return;
    }
    this.sendJpeg(res, frame, head);
  }

  private answerWaiter(w: SnapshotWaiter, frame: Frame): void {
    this.dropWaiter(w);
    this.sendJpeg(w.res, frame, w.head);
  }

  private dropWaiter(w: SnapshotWaiter): void {
    clearTimeout(w.timer);
    if (this.waiters.delete(w)) this.release(w.group, false);
  }

  private sendJpeg(res: ServerResponse, frame: Frame, head: boolean): void {
    this.totals.bytesOut += head ? 0 : frame.data.length;
    this.reply(res, 200, "image/jpeg", frame.data, head, {
      "X-Timestamp": (frame.time / 1000).toFixed(3),
      "X-Camrelay-Upstream": this.upstream,
    });
  }

  /** The frame a new viewer should see: the latest one, or the placeholder while offline. */
  private currentFrame(): Frame | undefined {
    if (!this.offline && this.lastFrame) return this.lastFrame;
    return this.placeholderFrame() ?? this.lastFrame;
  }

  private currentPart(): Buffer | undefined {
    if (!this.offline && this.lastFrame) {
      this.lastPart ??= mjpegPart(this.lastFrame);
      return this.lastPart;
    }
    const ph = this.placeholderFrame();
    if (ph) return (this.placeholderPart ??= mjpegPart(ph));
    return this.lastFrame ? (this.lastPart ??= mjpegPart(this.lastFrame)) : undefined;
  }

  /** Rendered at most once per second (the card shows the time), in the last known frame size. */
  private placeholderFrame(): Frame | undefined {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    const offline = this.everLive;
    const cached = this.placeholder;
    if (cached && cached.second === second && cached.offline === offline) return cached.frame;
    try {
      const lines = [this.camera || this.title, offline ? this.texts.offline : this.texts.waiting];
      const data = this.renderPlaceholder({
        width: this.width,
        height: this.height,
        lines,
        time: new Date(now),
      });
      const frame: Frame = {
        data,
        seq: 0,
        time: now,
        camera: this.camera,
        width: this.width,
        height: this.height,
      };
      this.placeholder = { second, offline, frame };
      this.placeholderPart = undefined;
      this.renderError = undefined;
      return frame;
    } catch (err) {
      this.renderError = err instanceof Error ? err : new Error(String(err));
      return cached?.frame;
    }
  }

  private broadcastPlaceholder(): void {
    if (this.mjpeg.size === 0) return;
    this.placeholderSentSecond = Math.floor(Date.now() / 1000);
    const part = this.currentPart();
    if (part) for (const v of this.mjpeg) v.offer(part);
  }

  // ---- housekeeping ---------------------------------------------------------------------------

  private tick(): void {
    const t = performance.now();
    for (const set of [this.mjpeg, this.mp4]) {
      for (const v of set) {
        if (v.isStalled(this.stallTimeoutMs)) {
          this.viewersDropped++;
          v.close(true);
        }
      }
    }
    for (const [key, s] of this.hls) {
      if (t - s.lastSeen > this.hlsIdleMs) {
        this.hls.delete(key);
        this.release(s.group, true);
        this.onViewer?.("disconnect", { address: s.address, kind: "hls" }, this.viewerCount);
      }
    }
    if (!this.offline && this.offlineAfterMs > 0 && t - this.lastFrameAt > this.offlineAfterMs)
      this.setOffline();
    if (this.offline && Math.floor(Date.now() / 1000) !== this.placeholderSentSecond)
      this.broadcastPlaceholder();
    if (t - this.lastKbpsSample >= 1000) {
      this.lastKbpsSample = t;
      for (const v of this.mjpeg) v.sampleKbps();
      for (const v of this.mp4) v.sampleKbps();
      for (const s of this.hls.values()) s.sampleKbps();
    }
    this.onChange?.();
  }

  /** Frames per second over the last two seconds. */
  get fpsIn(): number {
    const t = performance.now();
    const times = this.frameTimes;
    let i = times.length;
    while (i > 0 && t - times[i - 1] <= FPS_WINDOW_MS) i--;
    const n = times.length - i;
    const span = n < 2 ? 0 : times[times.length - 1] - times[i];
    return span > 0 ? Math.round(((n - 1) * 10_000) / span) / 10 : 0;
  }

  stats(): StreamStats {
    const viewers: ViewerInfo[] = [];
    let pendingFrames = 0;
    for (const set of [this.mjpeg, this.mp4]) {
      for (const v of set) {
        viewers.push(v.info());
        if (v.hasPending) pendingFrames++;
      }
    }
    for (const s of this.hls.values()) viewers.push(s.info());
    const f = this.lastFrame;
    const latest = this.fmp4.latest;
    return {
      path: this.path,
      camera: this.camera,
      upstream: this.upstream,
      lastFrame: f
        ? { seq: f.seq, time: f.time, width: this.width, height: this.height, bytes: f.data.length }
        : null,
      framesIn: this.framesIn,
      fpsIn: this.fpsIn,
      framesSent: this.totals.framesSent,
      framesSkipped: this.totals.framesSkipped,
      bytesOut: this.totals.bytesOut,
      viewerCount: this.viewerCount,
      viewersDropped: this.viewersDropped,
      maxClients: this.maxClients,
      maxPerAddress: this.maxPerAddress,
      snapshotWaiters: this.waiters.size,
      maxKbps: this.maxKbps,
      pendingFrames,
      viewers,
      fmp4: {
        init: this.fmp4.init !== undefined,
        segments: this.fmp4.segments.length,
        bytes: this.fmp4.byteLength,
        mediaSequence: latest ? latest.seq : null,
        restarts: this.encoderRestarts,
      },
    };
  }

  metrics(): string {
    const m = (name: string, type: MetricRow["type"], help: string, value: number): MetricRow => ({
      name,
      type,
      help,
      value,
    });
    const rows: MetricRow[] = [
      m("camrelay_viewers", "gauge", "Viewers connected now.", this.viewerCount),
      m(
        "camrelay_upstream_up",
        "gauge",
        "1 while frames arrive, 0 while the placeholder shows.",
        this.offline ? 0 : 1,
      ),
      m("camrelay_frames_in_total", "counter", "Frames received from the flow.", this.framesIn),
      m(
        "camrelay_frames_sent_total",
        "counter",
        "Frames (or fMP4 parts) written to viewers.",
        this.totals.framesSent,
      ),
      m(
        "camrelay_frames_skipped_total",
        "counter",
        "Frames skipped for slow or capped viewers.",
        this.totals.framesSkipped,
      ),
      m("camrelay_bytes_out_total", "counter", "Bytes written to viewers.", this.totals.bytesOut),
      m("camrelay_viewers_dropped_total", "counter", "Viewers dropped for not reading.", this.viewersDropped),
      m(
        "camrelay_ffmpeg_restarts_total",
        "counter",
        "New fMP4 init segments after the first one.",
        this.encoderRestarts,
      ),
      ...(this.extraMetrics?.() ?? []),
    ];
    const path = `path="${promLabel(this.path)}"`;
    return rows
      .map((r) => {
        const labels = [path, ...Object.entries(r.labels ?? {}).map(([k, v]) => `${k}="${promLabel(v)}"`)];
        return `# HELP ${r.name} ${r.help}\n# TYPE ${r.name} ${r.type}\n${r.name}{${labels.join(",")}} ${r.value}\n`;
      })
      .join("");
  }

  private statusPage(): string {
    const name = this.camera || this.title;
    return renderStatusPage(name === this.path ? name : `${name} (${this.path})`);
  }

  /** Ends every open response and stops the timers; later requests get 503. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const v of [...this.mjpeg, ...this.mp4]) v.close(false);
    this.mjpeg.clear();
    this.mp4.clear();
    this.hls.clear();
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      this.reply(w.res, 503, "text/plain", "Stream closed\n", w.head, { "Retry-After": "2" });
    }
    this.waiters.clear();
    this.perAddress.clear();
    this.fmp4.clear();
  }
}
