import net from "net";
import { networkError } from "../http-client";
import { MjpegPartParser } from "../mjpeg-parser";
import { RequestPacer } from "./pacer";
import { FrameSource, SourceConfig, SourceError } from "./source";

export const CANON_VB_DEFAULT_PORT = 65310;
const HANDSHAKE = "START\r\n";
/** The PHP client of the seed sends four CRLFs per frame request; cameras answer one JPEG to each. */
const FRAME_REQUEST = "\r\n\r\n\r\n\r\n";

/** Parses `host[:port]` (an optional `tcp://` or `canon://` prefix is tolerated). */
export function parseHostPort(text: string, defaultPort: number): { host: string; port: number } {
  const bare = text
    .trim()
    .replace(/^[a-z]+:\/\//i, "")
    .replace(/\/.*$/, "");
  const m = /^\[?([^\]]*?)\]?(?::(\d+))?$/.exec(bare);
  const host = m?.[1] ?? "";
  const port = m?.[2] ? Number(m[2]) : defaultPort;
  if (!host || !(port > 0 && port < 65536)) throw new SourceError("config", `not a host[:port]: "${text}"`);
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
  private readonly parser: MjpegPartParser;
  private outstanding = false;

  constructor(config: SourceConfig) {
    super(config);
    this.pacer = new RequestPacer(config.fps);
    this.parser = new MjpegPartParser(
      (jpeg, w, h) => this.onFrame(jpeg, w, h),
      (p) => this.emit("warning", p.message),
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
  }

  private onFrame(jpeg: Buffer, width: number, height: number): void {
    this.outstanding = false;
    this.emitFrame(jpeg, width, height);
    this.pacer.schedule(() => this.request());
  }

  protected release(): void {
    this.pacer.cancel();
    this.socket?.destroy();
  }
}
