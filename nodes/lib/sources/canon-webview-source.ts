import http, { IncomingMessage } from "http";
import { cameraAgent } from "./tls";
import { cameraGet, HttpAuth, networkError } from "./http-client";
import { readJpegSize } from "../codec/jpeg-markers";
import { JpegStreamSplitter } from "../codec/jpeg-stream-splitter";
import { readJpegBody } from "./jpeg-poll-source";
import { readMjpegBody } from "./http-mjpeg-source";
import { RequestPacer } from "./request-pacer";
import { FrameSource, SourceConfig, SourceError } from "./source";

const PREFIX = "/-wvhttp-01-/";

/** Parses WebView `key=value` bodies; newer firmware writes `key:=value` or `key==value`. */
export function parseWebViewBody(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z0-9_.]+)\s*(?::=|==|=)\s*(.*?)\s*$/.exec(line);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

/** `Livescope-Status: 0` is success; anything else is `<code> <reason>`. */
export function webViewStatus(res: IncomingMessage): { code: number; reason: string } {
  const raw = String(res.headers["livescope-status"] ?? "0").trim();
  const m = /^(\d+)\s*(.*)$/.exec(raw);
  return m ? { code: Number(m[1]), reason: m[2] } : { code: -1, reason: raw };
}

function statusError(status: { code: number; reason: string }): SourceError {
  const text = `camera said ${status.code} ${status.reason}`.trim();
  // 503 too many clients / 500 time limit / 501 unknown connection: all worth a reconnect.
  return new SourceError(status.code === 401 ? "auth" : "protocol", text);
}

/**
 * Canon WebView HTTP protocol. Mode `stream` (default): the session-less GetOneShot multipart stream.
 * Mode `session`: OpenCameraServer, then one GetLiveImage per request paced to fps, using
 * Livescope-Frame-Number to skip repeated frames and count gaps, CloseCameraServer on stop.
 */
export class CanonWebViewSource extends FrameSource {
  private readonly parser: JpegStreamSplitter;
  private readonly agent: http.Agent;
  private readonly auth: HttpAuth;
  private readonly pacer: RequestPacer;
  private readonly base: URL;
  private res?: IncomingMessage;
  private connectionId?: string;
  private lastFrameNumber = 0;

  constructor(config: SourceConfig, base: URL) {
    super(config);
    this.base = new URL(base.href.replace(/\/+$/, "").replace(/\/-wvhttp-01-.*$/, "") + "/");
    this.agent = cameraAgent(this.base, config.tls, { keepAlive: true, maxSockets: 2 });
    this.auth = new HttpAuth(config.user, config.password);
    this.pacer = new RequestPacer(config.fps);
    this.parser = new JpegStreamSplitter(
      (jpeg, w, h) => this.emitFrame(jpeg, w, h),
      (p) => this.warn(p.message),
      { maxFrameBytes: config.maxFrameBytes },
    );
  }

  private get imageSize(): string {
    const size = String(this.config.options.imageSize ?? "640x480");
    return /^\d+x\d+$/.test(size) ? size : "640x480";
  }

  private command(name: string, params: Record<string, string | number>): URL {
    const url = new URL(PREFIX.slice(1) + name, this.base);
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, String(v));
    return url;
  }

  private async get(url: URL): Promise<IncomingMessage> {
    const res = await cameraGet({ url, auth: this.auth, timeoutMs: 10000, agent: this.agent });
    const status = webViewStatus(res);
    if (status.code !== 0) {
      res.resume();
      throw statusError(status);
    }
    return res;
  }

  start(): void {
    const run = this.config.options.mode === "session" ? this.runSession() : this.runStream();
    run.then(
      () => this.finish(new SourceError("ended", "camera ended the stream")),
      (err: NodeJS.ErrnoException) =>
        this.finish(err instanceof SourceError ? err : networkError(err, this.base.host)),
    );
  }

  private async runStream(): Promise<void> {
    const params: Record<string, string | number> = { image_size: this.imageSize };
    if (this.config.fps > 0) params.frame_rate = this.config.fps;
    let res = await this.get(this.command("GetOneShot", { ...params, frame_count: "no_limit" }));
    if (String(res.headers["content-type"] ?? "").startsWith("image/jpeg")) {
      // Older firmware answers one image to no_limit and wants a large number instead.
      res.resume();
      res = await this.get(this.command("GetOneShot", { ...params, frame_count: 1000000000 }));
    }
    if (this.stopped) return void res.destroy();
    this.res = res;
    this.emit("connected");
    await readMjpegBody(this.parser, res);
  }

  private async runSession(): Promise<void> {
    const open = await this.get(
      this.command("OpenCameraServer", { client_version: "camrelay", image_size: this.imageSize }),
    );
    const reply = parseWebViewBody((await readText(open)).toString());
    const id = reply.connection_id;
    if (!id) throw new SourceError("protocol", "camera opened no session (no connection_id in its reply)");
    this.connectionId = id;
    if (this.stopped) return;
    this.emit("connected");
    for (;;) {
      await new Promise<void>((resolve) => this.pacer.schedule(resolve));
      if (this.stopped) return;
      const res = await this.get(this.command("GetLiveImage", { connection_id: id }));
      const jpeg = await readJpegBody(res, this.config.maxFrameBytes);
      if (this.stopped) return;
      const number = Number(res.headers["livescope-frame-number"] ?? 0);
      if (number > 0) {
        if (number === this.lastFrameNumber) continue; // polled faster than the camera shoots
        this.lastFrameNumber = number;
      }
      const size = readJpegSize(jpeg);
      this.emitFrame(jpeg, size?.width ?? 0, size?.height ?? 0);
    }
  }

  protected release(): void {
    this.pacer.cancel();
    this.res?.destroy();
    const id = this.connectionId;
    this.connectionId = undefined;
    if (id) {
      // Free the camera's session slot at once instead of waiting for its timeout.
      const url = this.command("CloseCameraServer", { connection_id: id });
      const agent = cameraAgent(url, this.config.tls, { keepAlive: false });
      cameraGet({ url, auth: this.auth, timeoutMs: 3000, agent }).then(
        (res) => {
          res.resume();
          res.on("end", () => agent.destroy());
        },
        () => agent.destroy(),
      );
    }
    this.agent.destroy();
  }
}

async function readText(res: IncomingMessage, limit = 16384): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    chunks.push(chunk);
    size += chunk.length;
    if (size > limit) {
      res.destroy();
      break;
    }
  }
  return Buffer.concat(chunks).subarray(0, limit);
}
