import http, { IncomingMessage } from "http";
import { cameraAgent } from "./tls";
import { cameraGet, describeTextBody, describeUrl, HttpAuth, networkError } from "./http-client";
import { readJpegSize } from "../codec/jpeg-markers";
import { RequestPacer } from "./request-pacer";
import { FrameSource, SourceConfig, SourceError } from "./source";

/** Reads one whole JPEG answer, bounded by maxBytes. */
export async function readJpegBody(res: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const type = String(res.headers["content-type"] ?? "").toLowerCase();
  if (type.startsWith("text/")) {
    const what = await describeTextBody(res);
    throw new SourceError(
      "protocol",
      `camera sent a ${type.split(";")[0]} page instead of a JPEG${what ? `: "${what}"` : ""}`,
    );
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      res.destroy();
      throw new SourceError("protocol", `snapshot larger than ${Math.round(maxBytes / 1024)} KB`);
    }
    chunks.push(chunk);
  }
  const jpeg = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size);
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) {
    throw new SourceError("protocol", `camera answered ${jpeg.length} bytes that are not a JPEG`);
  }
  return jpeg;
}

/** JPEG snapshot polling, paced to fps over one keep-alive connection, one request at a time. */
export class JpegPollSource extends FrameSource {
  private readonly agent: http.Agent;
  private readonly pacer: RequestPacer;
  private readonly auth: HttpAuth;

  constructor(
    config: SourceConfig,
    private readonly url: URL,
  ) {
    super(config);
    this.agent = cameraAgent(url, config.tls, { keepAlive: true, maxSockets: 1 });
    this.pacer = new RequestPacer(config.fps > 0 ? config.fps : 0);
    this.auth = new HttpAuth(config.user, config.password);
  }

  start(): void {
    this.pacer.schedule(() => this.poll());
  }

  private poll(): void {
    if (this.stopped) return;
    this.fetchOne().then(
      (jpeg) => {
        if (this.stopped) return;
        const size = readJpegSize(jpeg);
        if (!size) this.warn("snapshot has no readable JPEG size");
        this.emitFrame(jpeg, size?.width ?? 0, size?.height ?? 0);
        this.pacer.schedule(() => this.poll());
      },
      (err: NodeJS.ErrnoException) =>
        this.finish(err instanceof SourceError ? err : networkError(err, this.url.host)),
    );
  }

  private first = true;

  private async fetchOne(): Promise<Buffer> {
    const res = await cameraGet({ url: this.url, auth: this.auth, timeoutMs: 10000, agent: this.agent });
    if (this.first) {
      this.first = false;
      this.emit("connected");
    }
    try {
      return await readJpegBody(res, this.config.maxFrameBytes);
    } catch (err) {
      if (err instanceof SourceError) throw err;
      throw new SourceError("network", `snapshot from ${describeUrl(this.url)} cut short`);
    }
  }

  protected release(): void {
    this.pacer.cancel();
    this.agent.destroy();
  }
}
