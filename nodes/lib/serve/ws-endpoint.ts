import type { IncomingMessage } from "http";
import type { Duplex } from "stream";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { clientAddress } from "./access";
import {
  isLiveRefusal,
  type LiveServer,
  type LiveSink,
  type LiveState,
  type LiveVideoEvent,
  type LiveViewer,
} from "./live-feed";
import { normalizePath } from "./stream-out-settings";
import { refuseUpgrade, type GateResult } from "./ws-gate";

/**
 * The shared WebSocket (MSE over WebSocket, many paths per connection): `<httpNodeRoot>camrelay/ws`.
 * The client asks for paths with `{"type":"play",...}`; each play is a live viewer of its path and gets
 * `{"type":"mse",...}` then binary init and fragments, or `{"type":"mjpeg",...}` then binary JPEG frames.
 * A binary frame is 1 byte kind (0 init, 1 fragment, 2 jpeg) + uint32 BE play id + payload.
 */

/** The endpoint below httpNodeRoot. */
export const WS_SUBPATH = "camrelay/ws";
/** Plays one socket may hold at once. */
export const MAX_PLAYS = 64;
/** Ping this often; a socket that did not answer the previous ping is closed. */
export const PING_MS = 15_000;
/** Video: above this many bytes waiting in the socket, whole GOPs are dropped (resume at a keyframe). */
export const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** JPEG: above this many bytes waiting, only the newest frame is kept until the socket drains. */
export const JPEG_BUFFERED_BYTES = 512 * 1024;
/** Text messages from clients are small. */
export const MAX_MESSAGE_BYTES = 64 * 1024;
/** Codec families a play without `codecs` is assumed to play (every MSE browser does). */
export const DEFAULT_CODECS = ["avc1", "mp4a"];

const KIND_INIT = 0;
const KIND_FRAGMENT = 1;
const KIND_JPEG = 2;

/** `<httpNodeRoot>camrelay/ws`, or undefined when Node-RED serves no node endpoints (httpNodeRoot false). */
export function wsPathFor(httpNodeRoot: unknown): string | undefined {
  if (httpNodeRoot === false) return undefined;
  let root = typeof httpNodeRoot === "string" && httpNodeRoot !== "" ? httpNodeRoot : "/";
  if (!root.startsWith("/")) root = `/${root}`;
  if (!root.endsWith("/")) root += "/";
  return root + WS_SUBPATH;
}

/** The codec family a browser names in MediaSource.isTypeSupported terms (avc3 plays as avc1, hev1 as hvc1). */
function family(codec: string): string {
  const f = codec.trim().split(".")[0].toLowerCase();
  if (f === "avc3") return "avc1";
  if (f === "hev1") return "hvc1";
  return f;
}

/** True when every track of `codec` ("avc1.64001f,mp4a.40.2") is of a family the client plays. */
export function playable(codec: string, families: readonly string[]): boolean {
  const can = new Set(families.map((f) => family(f)));
  const tracks = codec.split(",").filter((c) => c.trim() !== "");
  return tracks.length > 0 && tracks.every((c) => can.has(family(c)));
}

/** One binary message: kind, play id, payload. */
function binary(kind: number, id: number, payload: Buffer): Buffer {
  const head = Buffer.allocUnsafe(5);
  head[0] = kind;
  head.writeUInt32BE(id, 1);
  return Buffer.concat([head, payload], 5 + payload.length);
}

/** Where the endpoint finds the paths. */
export interface LivePaths {
  get(path: string): LiveServer | undefined;
}

export interface LiveWsOptions {
  /** The full URL path, e.g. "/camrelay/ws" (see wsPathFor). */
  path: string;
  paths: LivePaths;
  /** httpNodeAuth and httpNodeMiddleware (ws-gate.ts); absent = none. */
  gate?: (req: IncomingMessage, socket: Duplex) => Promise<GateResult>;
  pingMs?: number;
  maxBufferedBytes?: number;
  jpegBufferedBytes?: number;
  maxPlays?: number;
}

/** A play request as the client sends it, read. */
interface PlayRequest {
  id: number;
  path: string;
  token: string | null;
  codecs: string[];
  mjpeg: boolean;
}

type ClientMessage = { type: "play"; play: PlayRequest } | { type: "stop"; id: number };

/** Reads one text message; a string is the error in words. */
export function readClientMessage(text: string): ClientMessage | { error: string; id?: number } {
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch {
    return { error: "the message is not JSON" };
  }
  if (typeof m !== "object" || m === null || Array.isArray(m))
    return { error: "the message is not a JSON object" };
  const o = m as Record<string, unknown>;
  const id = o.id;
  const idOk = typeof id === "number" && Number.isInteger(id) && id >= 0 && id <= 0xffffffff;
  if (o.type !== "play" && o.type !== "stop")
    return { error: 'the message needs "type": "play" or "stop"', id: idOk ? id : undefined };
  if (!idOk) return { error: '"id" must be a whole number from 0 to 4294967295' };
  if (o.type === "stop") return { type: "stop", id };
  if (typeof o.path !== "string" || o.path.length > 512)
    return { error: '"path" must be a stream path like "/camera/front"', id };
  if (o.token !== undefined && o.token !== null && typeof o.token !== "string")
    return { error: '"token" must be a string', id };
  let codecs = DEFAULT_CODECS;
  if (o.codecs !== undefined) {
    if (
      !Array.isArray(o.codecs) ||
      o.codecs.length > 32 ||
      !o.codecs.every((c) => typeof c === "string" && c.length <= 64)
    )
      return { error: '"codecs" must be a list of codec families like ["avc1","mp4a"]', id };
    codecs = o.codecs as string[];
  }
  if (o.mjpeg !== undefined && typeof o.mjpeg !== "boolean")
    return { error: '"mjpeg" must be true or false', id };
  return {
    type: "play",
    play: {
      id,
      path: o.path,
      token: typeof o.token === "string" ? o.token : null,
      codecs,
      mjpeg: o.mjpeg === true,
    },
  };
}

/** What a play sends: MSE (video), MJPEG (JPEG frames), or not decided while the path has no media yet. */
type PlayMode = "mse" | "mjpeg" | "waiting";

/** One play on one socket: a live viewer of its path that writes to the socket, newest wins. */
class Play implements LiveSink {
  private viewer: LiveViewer | undefined;
  /** Sent and skipped before openLive returned the viewer (the init and GOP a joiner gets at once). */
  private early: { sent: number[]; skipped: number } = { sent: [], skipped: 0 };
  private mode: PlayMode = "waiting";
  /** Skip video until a keyframe fragment (a new init, a dropped GOP, a joiner without a GOP). */
  private needKey = true;
  private pendingJpeg: Buffer | undefined;
  /** Token bucket for maxKbps, in bytes (may go one message into debt so a large one still passes). */
  private tokens = 0;
  private refilledAt = performance.now();
  private stopped = false;

  constructor(
    private readonly conn: LiveSocket,
    readonly id: number,
    readonly path: string,
    private readonly codecs: string[],
    private readonly mjpegOk: boolean,
  ) {}

  /**
   * Chooses the first mode from what the path carries now; a string is the 415 error. MJPEG is
   * announced by `announce()` once the viewer is open (a refused open says only its error).
   */
  start(server: LiveServer): string | undefined {
    const codec = server.liveCodec;
    if (codec !== "") {
      if (playable(codec, this.codecs)) this.mode = "mse";
      else if (this.mjpegOk) this.mode = "mjpeg";
      else return this.notPlayable(codec);
    } else if (server.liveJpeg) {
      if (!this.mjpegOk) return `${this.path} carries JPEG frames only, and this play does not accept mjpeg`;
      this.mode = "mjpeg";
    }
    return undefined;
  }

  /** After a successful open: tells the client it gets JPEG frames (MSE said so with its init). */
  announce(): void {
    if (this.mode === "mjpeg" && !this.stopped) this.conn.text({ type: "mjpeg", id: this.id });
  }

  private notPlayable(codec: string): string {
    return `${this.path} carries ${codec}, which this browser cannot play with MSE (it plays ${this.codecs.join(", ") || "nothing"}); ask with "mjpeg": true for JPEG frames`;
  }

  private setMjpeg(): void {
    this.mode = "mjpeg";
    this.conn.text({ type: "mjpeg", id: this.id });
  }

  private get budget(): number {
    return ((this.viewer?.kbpsBudget ?? 0) * 1000) / 8;
  }

  /** Within maxKbps? Refills the bucket first. */
  private withinBudget(): boolean {
    const perSecond = this.budget;
    if (perSecond <= 0) return true;
    const t = performance.now();
    this.tokens = Math.min(perSecond, this.tokens + ((t - this.refilledAt) * perSecond) / 1000);
    this.refilledAt = t;
    return this.tokens >= 0;
  }

  /** The viewer openLive returned; what went out before it did is counted now. */
  attach(viewer: LiveViewer): void {
    this.viewer = viewer;
    for (const bytes of this.early.sent) viewer.countSent(bytes);
    for (let i = 0; i < this.early.skipped; i++) viewer.countSkipped?.();
    this.early = { sent: [], skipped: 0 };
  }

  private send(kind: number, payload: Buffer): void {
    const msg = binary(kind, this.id, payload);
    if (this.budget > 0) this.tokens -= msg.length;
    this.conn.ws.send(msg, { binary: true });
    if (this.viewer) this.viewer.countSent(msg.length);
    else if (!this.stopped) this.early.sent.push(msg.length);
  }

  private skip(): void {
    if (this.viewer) this.viewer.countSkipped?.();
    else if (!this.stopped) this.early.skipped++;
  }

  video(ev: LiveVideoEvent): void {
    if (this.stopped) return;
    if (ev.type === "init") {
      this.needKey = true;
      if (playable(ev.codec, this.codecs)) {
        this.mode = "mse";
        this.pendingJpeg = undefined;
        this.conn.text({
          type: "mse",
          id: this.id,
          mime: `video/mp4; codecs="${ev.codec}"`,
          codec: ev.codec,
          width: ev.width,
          height: ev.height,
          initId: ev.initId,
        });
        this.send(KIND_INIT, ev.data);
      } else if (this.mjpegOk) {
        if (this.mode !== "mjpeg") this.setMjpeg();
      } else this.conn.fail(this, 415, this.notPlayable(ev.codec));
      return;
    }
    if (this.mode !== "mse") return;
    if (this.needKey && !ev.keyframe) {
      this.skip();
      return;
    }
    // Newest wins: a backed-up socket or a spent budget drops the rest of this GOP (and the next ones).
    if (this.conn.ws.bufferedAmount > this.conn.maxBufferedBytes || !this.withinBudget()) {
      this.needKey = true;
      this.skip();
      return;
    }
    this.needKey = false;
    this.send(KIND_FRAGMENT, ev.data);
  }

  /** JPEG frames while in MJPEG mode (or while undecided and MJPEG is accepted); else none. */
  get jpeg(): ((data: Buffer) => void) | undefined {
    if (this.stopped) return undefined;
    return this.mode === "mjpeg" || (this.mode === "waiting" && this.mjpegOk) ? this.onJpeg : undefined;
  }

  private readonly onJpeg = (data: Buffer): void => {
    if (this.stopped) return;
    if (this.mode === "waiting") this.setMjpeg();
    if (this.mode !== "mjpeg") return;
    if (this.pendingJpeg) this.skip();
    this.pendingJpeg = data;
    this.flush();
  };

  /** Sends the pending JPEG if the socket has room (called on new frames and on 'drain'). */
  flush(): void {
    const data = this.pendingJpeg;
    if (!data || this.stopped) return;
    if (this.conn.ws.bufferedAmount > this.conn.jpegBufferedBytes) return;
    this.pendingJpeg = undefined;
    if (!this.withinBudget()) {
      this.skip();
      return;
    }
    this.send(KIND_JPEG, data);
  }

  state(s: LiveState): void {
    if (!this.stopped) this.conn.text({ type: s, id: this.id });
  }

  /** The path's server closed (redeploy): the whole socket closes, the client reconnects. */
  end(reason: string): void {
    this.viewer = undefined;
    this.stopped = true;
    this.conn.serverClosed(reason);
  }

  buffered(): number {
    return this.conn.ws.bufferedAmount + (this.pendingJpeg?.length ?? 0);
  }

  get connection(): string {
    return this.conn.name;
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.pendingJpeg = undefined;
    const v = this.viewer;
    this.viewer = undefined;
    v?.close();
  }
}

/** One accepted WebSocket and its plays. */
let socketsOpened = 0;

class LiveSocket {
  readonly plays = new Map<number, Play>();
  /** "ws-<n>", the socket's name in status.json. */
  readonly name = `ws-${++socketsOpened}`;
  alive = true;
  private closing = false;
  readonly address: string;

  constructor(
    readonly ws: WebSocket,
    private readonly req: IncomingMessage,
    private readonly raw: Duplex,
    private readonly endpoint: LiveWsEndpoint,
    private readonly queryToken: string | null,
  ) {
    this.address = clientAddress(req);
    ws.on("message", (data, isBinary) => this.onMessage(data, isBinary));
    ws.on("pong", () => (this.alive = true));
    ws.on("close", () => this.closed());
    ws.on("error", () => undefined);
    raw.on("drain", this.onDrain);
  }

  get maxBufferedBytes(): number {
    return this.endpoint.maxBufferedBytes;
  }

  get jpegBufferedBytes(): number {
    return this.endpoint.jpegBufferedBytes;
  }

  private readonly onDrain = (): void => {
    for (const p of this.plays.values()) p.flush();
  };

  text(obj: Record<string, unknown>): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(JSON.stringify(obj));
  }

  error(id: number | undefined, status: number, error: string): void {
    this.text(id === undefined ? { type: "error", status, error } : { type: "error", id, status, error });
  }

  /** A play ends with an error (it is stopped). */
  fail(play: Play, status: number, error: string): void {
    this.error(play.id, status, error);
    this.stopPlay(play.id);
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    this.alive = true;
    if (isBinary) {
      this.error(undefined, 400, "binary messages are not understood; send JSON text");
      return;
    }
    const text = Array.isArray(data)
      ? Buffer.concat(data).toString("utf8")
      : Buffer.from(data as ArrayBuffer).toString("utf8");
    const m = readClientMessage(text);
    if ("error" in m) {
      this.error(m.id, 400, m.error);
      return;
    }
    if (m.type === "stop") this.stopPlay(m.id);
    else this.play(m.play);
  }

  private play(p: PlayRequest): void {
    this.stopPlay(p.id);
    if (this.plays.size >= this.endpoint.maxPlays) {
      this.error(
        p.id,
        503,
        `too many plays on one WebSocket (at most ${this.endpoint.maxPlays}); stop one first`,
      );
      return;
    }
    const path = normalizePath(p.path);
    const server = path === undefined ? undefined : this.endpoint.paths.get(path);
    if (!server || path === undefined) {
      this.error(p.id, 404, `no http stream out serves ${JSON.stringify(p.path)}`);
      return;
    }
    const access = server.liveAccess(this.req, p.token ?? this.queryToken);
    if (!access.ok) {
      this.error(p.id, access.status, `${path}: ${access.error}`);
      return;
    }
    const play = new Play(this, p.id, path, p.codecs, p.mjpeg);
    const refused = play.start(server);
    if (refused !== undefined) {
      this.error(p.id, 415, refused);
      return;
    }
    this.plays.set(p.id, play);
    const viewer = server.openLive("ws", this.address, play);
    if (isLiveRefusal(viewer)) {
      this.plays.delete(p.id);
      this.error(p.id, viewer.status, `${path}: ${viewer.error}`);
      return;
    }
    // A sink ended during open (the server closed at that moment) leaves no viewer behind.
    if (!this.plays.has(p.id)) viewer.close();
    else {
      play.attach(viewer);
      play.announce();
    }
  }

  stopPlay(id: number): void {
    const play = this.plays.get(id);
    if (!play) return;
    this.plays.delete(id);
    play.stop();
  }

  /** A path's server closed: close the socket (1012, service restart); the client connects again. */
  serverClosed(reason: string): void {
    this.close(1012, reason);
  }

  close(code: number, reason: string): void {
    if (this.closing) return;
    this.closing = true;
    for (const id of [...this.plays.keys()]) this.stopPlay(id);
    try {
      this.ws.close(code, reason.slice(0, 120));
    } catch {
      this.ws.terminate();
    }
    // A client that does not answer the close frame is not waited for.
    const t = setTimeout(() => this.ws.terminate(), 1000);
    t.unref();
    this.ws.once("close", () => clearTimeout(t));
  }

  /** Ping; a socket that did not answer the last ping is dead. */
  ping(): void {
    if (!this.alive) {
      this.ws.terminate();
      return;
    }
    this.alive = false;
    try {
      this.ws.ping();
    } catch {
      this.ws.terminate();
    }
  }

  private closed(): void {
    this.raw.off("drain", this.onDrain);
    for (const id of [...this.plays.keys()]) this.stopPlay(id);
    this.endpoint.forget(this);
  }
}

/**
 * The WebSocket endpoint: takes upgrades for its path only (others are left to their listeners), checks
 * httpNodeAuth, httpNodeMiddleware and every `?path=` (token, limits) before it accepts, then serves plays.
 */
export class LiveWsEndpoint {
  readonly path: string;
  readonly paths: LivePaths;
  readonly maxBufferedBytes: number;
  readonly jpegBufferedBytes: number;
  readonly maxPlays: number;
  private readonly gate: LiveWsOptions["gate"];
  private readonly wss: WebSocketServer;
  private readonly sockets = new Set<LiveSocket>();
  /** Upgrades being checked (their sockets are closed too when the endpoint closes). */
  private readonly pending = new Set<Duplex>();
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(options: LiveWsOptions) {
    this.path = options.path;
    this.paths = options.paths;
    this.gate = options.gate;
    this.maxBufferedBytes = options.maxBufferedBytes ?? MAX_BUFFERED_BYTES;
    this.jpegBufferedBytes = options.jpegBufferedBytes ?? JPEG_BUFFERED_BYTES;
    this.maxPlays = options.maxPlays ?? MAX_PLAYS;
    this.wss = new WebSocketServer({
      noServer: true,
      clientTracking: false,
      perMessageDeflate: false,
      maxPayload: MAX_MESSAGE_BYTES,
    });
    this.timer = setInterval(() => {
      for (const s of this.sockets) s.ping();
    }, options.pingMs ?? PING_MS);
    this.timer.unref();
  }

  /** Open WebSockets now. */
  get socketCount(): number {
    return this.sockets.size;
  }

  /** What status pages and tests read: per socket, its plays and the bytes waiting in it. */
  info(): { name: string; address: string; plays: number; buffered: number }[] {
    return [...this.sockets].map((s) => ({
      name: s.name,
      address: s.address,
      plays: s.plays.size,
      buffered: s.ws.bufferedAmount,
    }));
  }

  /** The `upgrade` listener for RED.server: returns at once for other paths, leaving them untouched. */
  readonly onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    if (this.closed || !this.matches(req.url)) return;
    void this.upgrade(req, socket, head).catch(() => refuseUpgrade(socket, 500, "Internal Server Error"));
  };

  private matches(url: string | undefined): boolean {
    if (typeof url !== "string") return false;
    const q = url.indexOf("?");
    return (q < 0 ? url : url.slice(0, q)) === this.path;
  }

  private async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    this.pending.add(socket);
    socket.on("error", () => socket.destroy());
    try {
      if (this.gate && (await this.gate(req, socket)) === "answered") return;
      if (this.closed || socket.destroyed) {
        refuseUpgrade(socket, 503, "camrelay is closing");
        return;
      }
      const query = new URLSearchParams((req.url ?? "").split("?")[1] ?? "");
      const token = query.get("token");
      for (const raw of query.getAll("path")) {
        const path = normalizePath(raw);
        const server = path === undefined ? undefined : this.paths.get(path);
        if (!server) {
          refuseUpgrade(socket, 404, `no http stream out serves ${JSON.stringify(raw)}`);
          return;
        }
        const access = server.liveAccess(req, token);
        if (!access.ok) {
          const headers: Record<string, string> =
            access.status === 401 ? { "WWW-Authenticate": 'Bearer realm="camrelay"' } : {};
          if (access.status === 503) headers["Retry-After"] = "2";
          refuseUpgrade(socket, access.status, `${path}: ${access.error}`, headers);
          return;
        }
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        if (this.closed) {
          ws.close(1001, "camrelay is closing");
          ws.terminate();
          return;
        }
        this.sockets.add(new LiveSocket(ws, req, socket, this, token));
      });
    } finally {
      this.pending.delete(socket);
    }
  }

  forget(s: LiveSocket): void {
    this.sockets.delete(s);
  }

  /** Closes every socket (1001, going away) and refuses later upgrades. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const s of [...this.sockets]) s.close(1001, "camrelay stopped (redeploy)");
    for (const socket of this.pending) socket.destroy();
    this.pending.clear();
    this.wss.close();
  }
}
