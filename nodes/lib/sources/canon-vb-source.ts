import net from "net";
import { networkError } from "./http-client";
import { JpegStreamSplitter } from "../codec/jpeg-stream-splitter";
import { RequestPacer } from "./request-pacer";
import { FrameSource, SourceConfig, SourceError } from "./source";

export const CANON_VB_DEFAULT_PORT = 65310;
const HANDSHAKE = "START\r\n";
/** The PHP client of the seed sends four CRLFs per frame request; cameras answer one JPEG to each. */
const FRAME_REQUEST = "\r\n\r\n\r\n\r\n";
/** A camera answers a frame request in milliseconds; an answer not whole after this was cut short. */
const REQUEST_TIMEOUT_MS = 3000;

/** Parses `host[:port]` (an optional `tcp://` or `canon://` prefix is tolerated). */
export function parseHostPort(text: string, defaultPort: number): { host: string; port: number } {
  const bare = text
    .trim()
    .replace(/^[a-z]+:\/\//i, "")
    .replace(/\/.*$/, "")
    .replace(/^[^@]*@/, ""); // the native port has no login: user:pass@ is ignored, never echoed
  const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(bare);
  const host = m?.[1] ?? "";
  const port = m?.[2] ? Number(m[2]) : defaultPort;
  if (!host || !(port > 0 && port < 65536)) {
    throw new SourceError("config", `not a host[:port]: "${bare.slice(0, 80)}" (e.g. camera.local:65310)`);
  }
  return { host, port };
}

/**
 * Canon VB-C10/C50 native video port: "START\r\n", an ignored handshake, then one JPEG per request.
 * Requests are paced to fps with never more than one outstanding; frames are found by JPEG markers,
 * since the camera neither prefixes lengths nor fits a frame in one read.
 */
export class CanonVbSource extends FrameSource {
  private socket?: net.Socket;
  private readonly pacer: RequestPacer;
  private readonly parser: JpegStreamSplitter;
  private outstanding = false;
  private requestTimer?: NodeJS.Timeout;

  constructor(config: SourceConfig) {
    super(config);
    this.pacer = new RequestPacer(config.fps);
    this.parser = new JpegStreamSplitter(
      (jpeg, w, h) => this.onFrame(jpeg, w, h),
      (p) => {
        this.warn(p.message);
        // A damaged answer still answered the request: ask for the next frame instead of waiting for one.
        if (p.kind !== "noise") this.answered();
      },
      { maxFrameBytes: config.maxFrameBytes },
    );
  }

  start(): void {
    let target: { host: string; port: number };
    try {
      target = parseHostPort(this.config.url, CANON_VB_DEFAULT_PORT);
    } catch (err) {
      setImmediate(() => this.finish(err as SourceError));
      return;
    }
    const where = `${target.host}:${target.port}`;
    const socket = net.connect({ host: target.host, port: target.port });
    this.socket = socket;
    socket.setNoDelay(true);
    socket.setTimeout(10000, () =>
      socket.destroy(new SourceError("network", `no answer from ${where} within 10 s`)),
    );
    socket.once("connect", () => {
      socket.setTimeout(0);
      this.emit("connected");
      socket.write(HANDSHAKE);
      this.pacer.schedule(() => this.request());
    });
    socket.on("data", (chunk: Buffer) => this.parser.push(chunk));
    socket.on("error", (err: NodeJS.ErrnoException) => this.finish(networkError(err, where)));
    socket.on("close", () => {
      this.parser.reset();
      this.finish(new SourceError("ended", `camera closed the video port (${where})`));
    });
  }

  private request(): void {
    if (this.outstanding || this.stopped) return;
    this.outstanding = true;
    this.socket?.write(FRAME_REQUEST);
    // An answer that ends without its EOI would otherwise wait for bytes that never come: after
    // REQUEST_TIMEOUT_MS ask again (the next frame's SOI then ends the broken one).
    clearTimeout(this.requestTimer);
    this.requestTimer = setTimeout(() => this.answered(), REQUEST_TIMEOUT_MS);
  }

  private answered(): void {
    clearTimeout(this.requestTimer);
    this.requestTimer = undefined;
    if (!this.outstanding || this.stopped) return;
    this.outstanding = false;
    this.pacer.schedule(() => this.request());
  }

  private onFrame(jpeg: Buffer, width: number, height: number): void {
    this.answered();
    this.emitFrame(jpeg, width, height);
  }

  protected release(): void {
    clearTimeout(this.requestTimer);
    this.pacer.cancel();
    this.socket?.destroy();
  }
}
