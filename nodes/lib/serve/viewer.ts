import type { ServerResponse } from "http";

export type ViewerKind = "mjpeg" | "mp4" | "hls";

/** Counters shared by every viewer of one server, so totals survive viewers that leave. */
export interface StreamTotals {
  framesSent: number;
  framesSkipped: number;
  bytesOut: number;
}

/** One viewer as status.json shows it. */
export interface ViewerInfo {
  address: string;
  since: number;
  kind: ViewerKind;
  framesSent: number;
  framesSkipped: number;
  bytesSent: number;
  kbps: number;
  /** A packet waits for the socket to drain (there is never more than one). */
  pending: boolean;
  /** Bytes written but not yet taken by the kernel (Node's socket queue). */
  buffered: number;
}

/**
 * One streaming response (MJPEG or progressive fMP4). Packets are shared Buffers, written as they are:
 * never copied per viewer. While the socket is busy (write returned false, no 'drain' yet) the viewer
 * keeps one pending packet, newest wins, and counts the ones it replaced as skipped. With a bandwidth
 * cap, a token bucket decides: packets over budget are skipped, never queued.
 */
export class StreamViewer {
  framesSent = 0;
  framesSkipped = 0;
  bytesSent = 0;
  kbps = 0;
  closed = false;

  /** Write returned false and no 'drain' came yet. */
  private busy = false;
  /** Monotonic ms when the socket became busy. */
  private busySince = 0;
  private pending: Buffer | undefined;
  /** Token bucket in bytes; may go negative (one packet of debt) so a large frame still passes. */
  private tokens: number;
  private refilledAt: number;
  private kbpsBytes = 0;
  private kbpsAt: number;

  constructor(
    readonly res: ServerResponse,
    readonly kind: ViewerKind,
    readonly address: string,
    readonly since: number,
    private readonly totals: StreamTotals,
    private readonly bytesPerSecond: number,
    private readonly now: () => number,
  ) {
    this.refilledAt = now();
    this.kbpsAt = this.refilledAt;
    this.tokens = bytesPerSecond;
    res.on("drain", this.onDrain);
  }

  /** True when a packet waits for the socket to drain. */
  get hasPending(): boolean {
    return this.pending !== undefined;
  }

  /** Offers the newest packet: sent now, kept as the one pending packet, or skipped over budget. */
  offer(packet: Buffer): void {
    if (this.closed) return;
    if (this.busy) {
      if (this.pending !== undefined) this.skip();
      this.pending = packet;
      return;
    }
    this.sendWithinBudget(packet);
  }

  /** Writes regardless of busy state or budget (the first packets of a new response). */
  force(packet: Buffer): void {
    if (this.closed) return;
    if (this.bytesPerSecond > 0) {
      this.refill();
      this.tokens -= packet.length;
    }
    this.write(packet);
  }

  /** Busy for longer than `timeoutMs`: the viewer does not read. */
  isStalled(timeoutMs: number): boolean {
    return this.busy && this.now() - this.busySince > timeoutMs;
  }

  /** Recomputes the kbps figure from the bytes sent since the last call. */
  sampleKbps(): void {
    const t = this.now();
    const dt = t - this.kbpsAt;
    if (dt <= 0) return;
    this.kbps = Math.round(((this.bytesSent - this.kbpsBytes) * 8) / dt);
    this.kbpsBytes = this.bytesSent;
    this.kbpsAt = t;
  }

  info(): ViewerInfo {
    return {
      address: this.address,
      since: this.since,
      kind: this.kind,
      framesSent: this.framesSent,
      framesSkipped: this.framesSkipped,
      bytesSent: this.bytesSent,
      kbps: this.kbps,
      pending: this.pending !== undefined,
      buffered: this.res.writableLength,
    };
  }

  /** Ends the response; `destroy` drops a stuck socket instead of waiting for it to flush. */
  close(destroy: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.pending = undefined;
    this.res.off("drain", this.onDrain);
    if (destroy || this.busy) this.res.destroy();
    else this.res.end();
  }

  private readonly onDrain = (): void => {
    this.busy = false;
    const packet = this.pending;
    if (packet === undefined) return;
    this.pending = undefined;
    this.sendWithinBudget(packet);
  };

  private sendWithinBudget(packet: Buffer): void {
    if (this.bytesPerSecond > 0) {
      this.refill();
      if (this.tokens < 0) {
        this.skip();
        return;
      }
      this.tokens -= packet.length;
    }
    this.write(packet);
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(
      this.bytesPerSecond,
      this.tokens + ((t - this.refilledAt) * this.bytesPerSecond) / 1000,
    );
    this.refilledAt = t;
  }

  private skip(): void {
    this.framesSkipped++;
    this.totals.framesSkipped++;
  }

  private write(packet: Buffer): void {
    this.framesSent++;
    this.bytesSent += packet.length;
    this.totals.framesSent++;
    this.totals.bytesOut += packet.length;
    if (!this.res.write(packet) && !this.busy) {
      this.busy = true;
      this.busySince = this.now();
    }
  }
}
