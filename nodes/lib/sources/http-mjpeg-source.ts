import http, { IncomingMessage } from "http";
import { cameraAgent } from "./tls";
import { cameraGet, describeTextBody, describeUrl, HttpAuth, networkError } from "./http-client";
import { JpegStreamSplitter } from "../codec/jpeg-stream-splitter";
import { FrameSource, SourceConfig, SourceError } from "./source";

/** Reads a multipart JPEG body (and tells an HTML page from video) until it ends or fails. */
export async function readMjpegBody(parser: JpegStreamSplitter, res: IncomingMessage): Promise<void> {
  const type = String(res.headers["content-type"] ?? "").toLowerCase();
  if (type.startsWith("text/")) {
    const what = await describeTextBody(res);
    throw new SourceError(
      "protocol",
      `camera sent a ${type.split(";")[0]} page instead of video${what ? `: "${what}"` : ""}`,
    );
  }
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) parser.push(chunk);
  } finally {
    parser.reset(); // a frame cut off by the end of the body is reported, and the next body starts clean
  }
}

/** HTTP MJPEG (multipart/x-mixed-replace) from Axis, Panasonic, mjpg-streamer, go2rtc and the rest. */
export class HttpMjpegSource extends FrameSource {
  private readonly parser: JpegStreamSplitter;
  private res?: IncomingMessage;
  private readonly agent: http.Agent;

  constructor(
    config: SourceConfig,
    private readonly url: URL,
  ) {
    super(config);
    this.agent = cameraAgent(url, config.tls, { keepAlive: false });
    this.parser = new JpegStreamSplitter(
      (jpeg, w, h) => this.emitFrame(jpeg, w, h),
      (p) => this.warn(p.message),
      { maxFrameBytes: config.maxFrameBytes },
    );
  }

  start(): void {
    this.run().then(
      () => this.finish(new SourceError("ended", `camera ended the stream (${describeUrl(this.url)})`)),
      (err: NodeJS.ErrnoException) =>
        this.finish(err instanceof SourceError ? err : networkError(err, this.url.host)),
    );
  }

  private async run(): Promise<void> {
    const auth = new HttpAuth(this.config.user, this.config.password);
    const res = await cameraGet({ url: this.url, auth, timeoutMs: 10000, agent: this.agent });
    if (this.stopped) {
      res.destroy();
      return;
    }
    this.res = res;
    this.emit("connected");
    await readMjpegBody(this.parser, res);
  }

  protected release(): void {
    this.res?.destroy();
    this.agent.destroy();
  }
}
