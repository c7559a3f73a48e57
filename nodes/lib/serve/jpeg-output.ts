import type { IncomingMessage, ServerResponse } from "http";
import type { Frame } from "../media";
import { readJpegSize } from "../codec/jpeg-markers";
import type { Admission } from "./access";
import { LatestFrame, writeMjpegHead } from "./mjpeg-fanout";
import type { Placeholder } from "./placeholder";
import { reply } from "./reply";
import { SnapshotWaiters } from "./snapshots";
import type { StreamTotals, StreamViewer, ViewerKind } from "./viewer";
import { ViewerGroup } from "./viewer-group";

/** What the JPEG endpoints need from the server: admission, new viewers and the shared totals. */
export interface JpegHost {
  readonly totals: StreamTotals;
  /** Answers 503 and returns true when a new connection from `group` would pass a limit. */
  busy(res: ServerResponse, head: boolean, group: string): boolean;
  addViewer(req: IncomingMessage, res: ServerResponse, kind: ViewerKind, group: ViewerGroup): StreamViewer;
}

/**
 * The JPEG side of a stream: the latest frame (or the placeholder card while there is none or the
 * camera is offline), fanned out to the MJPEG viewers as one shared part, and answered to snapshots
 * and to snapshot waiters.
 */
export class JpegOutput {
  readonly viewers = new ViewerGroup();
  readonly waiters: SnapshotWaiters;
  readonly latest = new LatestFrame();
  /** The camera name the frames carry (msg.topic / msg.frame.camera). */
  camera = "";
  width = 640;
  height = 480;
  offline = true;
  /** A frame has arrived once (so "offline" means the camera went away, not "not yet"). */
  everLive = false;
  private placeholderSentSecond = -1;

  constructor(
    private readonly host: JpegHost,
    admission: Admission,
    private readonly placeholder: Placeholder,
    snapshotWaitMs: number,
  ) {
    this.waiters = new SnapshotWaiters(admission, snapshotWaitMs, (res, f, head) =>
      this.sendJpeg(res, f, head),
    );
  }

  /** A new frame: to every MJPEG viewer (or pending) and every snapshot waiter. Returns "was offline". */
  push(frame: Frame): boolean {
    if (frame.width > 0 && frame.height > 0) {
      this.width = frame.width;
      this.height = frame.height;
    } else {
      const size = readJpegSize(frame.data);
      if (size) ({ width: this.width, height: this.height } = size);
    }
    if (frame.camera) this.camera = frame.camera;
    const wasOffline = this.offline;
    this.latest.set(frame);
    this.offline = false;
    this.everLive = true;
    if (this.viewers.size > 0) this.viewers.offer(this.currentPart() as Buffer);
    this.waiters.answer(frame);
    return wasOffline;
  }

  /** Compressed video arrived: the stream is live even before a picture does. Returns "was offline". */
  markLive(): boolean {
    const wasOffline = this.offline;
    this.offline = false;
    this.everLive = true;
    return wasOffline;
  }

  /** The camera is gone: the placeholder now, instead of the last frame. */
  setOffline(): void {
    this.offline = true;
    this.broadcastPlaceholder();
  }

  /** While offline, a new card each second (it shows the time). */
  refreshPlaceholder(): void {
    if (this.offline && Math.floor(Date.now() / 1000) !== this.placeholderSentSecond)
      this.broadcastPlaceholder();
  }

  serveMjpeg(req: IncomingMessage, res: ServerResponse, head: boolean, group: string): void {
    if (!head && this.host.busy(res, head, group)) return;
    writeMjpegHead(res);
    if (head) {
      res.end();
      return;
    }
    const viewer = this.host.addViewer(req, res, "mjpeg", this.viewers);
    const part = this.currentPart();
    if (part) {
      // Twice: Chrome shows frame n-1, so the first frame only appears once a second one follows.
      viewer.force(part);
      viewer.force(part);
    } else res.flushHeaders();
  }

  serveSnapshot(res: ServerResponse, head: boolean, wait: string | null, group: string): void {
    if (wait !== null && wait !== "0" && wait !== "false") {
      // A waiter holds a connection like a viewer does, so it counts against the same limits.
      if (!this.host.busy(res, head, group)) this.waiters.add(res, head, group);
      return;
    }
    const frame = this.currentFrame();
    if (!frame) {
      reply(res, 503, "text/plain", "No frame yet\n", head, { "Retry-After": "1" });
      return;
    }
    this.sendJpeg(res, frame, head);
  }

  /** Ends the viewers and answers the waiters 503. */
  close(): void {
    this.viewers.clear();
    this.waiters.close();
  }

  /** Answers one JPEG (a snapshot), with its time and the upstream state. */
  sendJpeg(res: ServerResponse, frame: Frame, head: boolean): void {
    this.host.totals.bytesOut += head ? 0 : frame.data.length;
    reply(res, 200, "image/jpeg", frame.data, head, {
      "X-Timestamp": (frame.time / 1000).toFixed(3),
      "X-Camrelay-Upstream": this.offline ? "offline" : "live",
    });
  }

  private look(): { camera: string; width: number; height: number; offline: boolean } {
    return { camera: this.camera, width: this.width, height: this.height, offline: this.everLive };
  }

  /** The frame a new viewer should see: the latest one, or the placeholder while offline. */
  private currentFrame(): Frame | undefined {
    if (!this.offline && this.latest.frame) return this.latest.frame;
    return this.placeholder.frame(this.look()) ?? this.latest.frame;
  }

  private currentPart(): Buffer | undefined {
    if (!this.offline && this.latest.frame) return this.latest.mjpeg();
    return this.placeholder.part(this.look()) ?? this.latest.mjpeg();
  }

  private broadcastPlaceholder(): void {
    if (this.viewers.size === 0) return;
    this.placeholderSentSecond = Math.floor(Date.now() / 1000);
    const part = this.currentPart();
    if (part) this.viewers.offer(part);
  }
}
