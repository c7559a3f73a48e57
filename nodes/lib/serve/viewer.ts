import type { ServerResponse } from "http";

/** What a viewer may queue while its socket is busy (fMP4 fragments of one GOP); JPEG parts queue one. */
export const DEFAULT_MAX_QUEUE_BYTES = 8 * 1024 * 1024;

export type ViewerKind = "mjpeg" | "mp4" | "hls" | "ws" | "webrtc";

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
  /** WebSocket and WebRTC viewers: their connection's name (plays sharing one WebSocket show the same). */
  connection?: string;
}

/**
 * One streaming response (MJPEG or progressive fMP4). Packets are shared Buffers, written as they are:
 * never copied per viewer. Each packet says whether a player can start with it (`key`: every JPEG part,
 * an fMP4 fragment that starts with a keyframe). While the socket is busy (write returned false, no
 * 'drain' yet) packets wait in a short queue: a new key packet replaces a queue that already holds one
 * (the viewer is a whole GOP behind: newest GOP wins; for JPEG parts, which are all keys, this is "one
 * pending part, newest wins"), and a queue over `maxQueueBytes` is dropped. A packet that cannot be sent
 * (queue full, over the bandwidth cap) is skipped together with every packet up to the next key packet,
 * so an fMP4 viewer never loses a single fragment and carries on: it resumes on a keyframe.
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
  /** Packets waiting for 'drain', oldest first (one, unless non-key packets follow a key one). */
  private queue: { packet: Buffer; key: boolean }[] = [];
  private queueBytes = 0;
  /** A packet was skipped: skip the rest until the next key packet. */
  private waitingForKey = false;
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
    /** Bytes the queue may hold while the socket is busy; a fuller queue is dropped (to the next key). */
    private readonly maxQueueBytes = DEFAULT_MAX_QUEUE_BYTES,
  ) {
    this.refilledAt = now();
    this.kbpsAt = this.refilledAt;
    this.tokens = bytesPerSecond;
    res.on("drain", this.onDrain);
  }

  /** True when a packet waits for the socket to drain. */
  get hasPending(): boolean {
    return this.queue.length > 0;
  }

  /**
   * Offers the newest packet: sent now, queued while the socket is busy, or skipped (with the packets
   * after it up to the next key packet). `key` = a player can start here (default: every packet is).
   */
  offer(packet: Buffer, key = true): void {
    if (this.closed) return;
    if (this.waitingForKey) {
      if (!key) {
        this.skip();
        return;
      }
      this.waitingForKey = false;
    }
    if (this.busy) {
      this.enqueue(packet, key);
      return;
    }
    this.sendWithinBudget(packet);
  }

  /** Skips everything up to the next key packet (a joiner that got no GOP to start with). */
  waitForKey(): void {
    this.waitingForKey = true;
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
      pending: this.queue.length > 0,
      buffered: this.res.writableLength,
    };
  }

  /** Ends the response; `destroy` drops a stuck socket instead of waiting for it to flush. */
  close(destroy: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.queue = [];
    this.queueBytes = 0;
    this.res.off("drain", this.onDrain);
    if (destroy || this.busy) this.res.destroy();
    else this.res.end();
  }

  private readonly onDrain = (): void => {
    this.busy = false;
    while (!this.busy && !this.closed && this.queue.length > 0) {
      const next = this.queue.shift() as { packet: Buffer; key: boolean };
      this.queueBytes -= next.packet.length;
      if (this.waitingForKey && !next.key) this.skip();
      else {
        this.waitingForKey = false;
        this.sendWithinBudget(next.packet);
      }
    }
  };

  /** Queues a packet while the socket is busy (see the class comment for what is dropped). */
  private enqueue(packet: Buffer, key: boolean): void {
    if (key && this.queue.some((q) => q.key)) this.dropQueue();
    if (this.queueBytes + packet.length > this.maxQueueBytes && this.queue.length > 0) {
      this.dropQueue();
      if (!key) {
        this.skip();
        this.waitingForKey = true;
        return;
      }
    }
    this.queue.push({ packet, key });
    this.queueBytes += packet.length;
  }

  private dropQueue(): void {
    for (let i = 0; i < this.queue.length; i++) this.skip();
    this.queue = [];
    this.queueBytes = 0;
  }

  private sendWithinBudget(packet: Buffer): void {
    if (this.bytesPerSecond > 0) {
      this.refill();
      if (this.tokens < 0) {
        this.skip();
        // The packets after a skipped one cannot be played without it: wait for the next key packet.
        this.waitingForKey = true;
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
