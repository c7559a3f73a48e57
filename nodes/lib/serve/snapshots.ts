import type { ServerResponse } from "http";
import type { Frame } from "../media";
import type { Admission } from "./access";
import { reply } from "./reply";

interface SnapshotWaiter {
  res: ServerResponse;
  head: boolean;
  group: string;
  timer: NodeJS.Timeout;
}

/** Writes a JPEG answer (the snapshot): the server's job, since it knows the upstream state and totals. */
export type SendJpeg = (res: ServerResponse, frame: Frame, head: boolean) => void;

/**
 * `snapshot.jpg?wait=1` requests waiting for the next frame. A waiter holds a connection like a viewer
 * does, so it is held in the admission counts until answered (the next frame), timed out (504 after
 * `waitMs`), gone (the client closed) or the server closes (503).
 */
export class SnapshotWaiters {
  private readonly waiters = new Set<SnapshotWaiter>();

  constructor(
    private readonly admission: Admission,
    private readonly waitMs: number,
    private readonly send: SendJpeg,
  ) {}

  get size(): number {
    return this.waiters.size;
  }

  /** Waits for the next frame; the caller has checked admission. */
  add(res: ServerResponse, head: boolean, group: string): void {
    const waiter: SnapshotWaiter = {
      res,
      head,
      group,
      timer: setTimeout(() => {
        this.drop(waiter);
        reply(res, 504, "text/plain", "No frame arrived in time\n", head);
      }, this.waitMs),
    };
    this.waiters.add(waiter);
    this.admission.hold(group, false);
    res.on("close", () => this.drop(waiter));
  }

  /** The frame every waiter waited for. */
  answer(frame: Frame): void {
    for (const w of this.waiters) {
      this.drop(w);
      this.send(w.res, frame, w.head);
    }
  }

  /** 503 to every waiter. */
  close(): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      reply(w.res, 503, "text/plain", "Stream closed\n", w.head, { "Retry-After": "2" });
    }
    this.waiters.clear();
  }

  private drop(w: SnapshotWaiter): void {
    clearTimeout(w.timer);
    if (this.waiters.delete(w)) this.admission.release(w.group, false);
  }
}
