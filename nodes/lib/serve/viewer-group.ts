import type { StreamViewer, ViewerInfo } from "./viewer";

/**
 * The open streaming responses of one kind (MJPEG or progressive fMP4): one packet offered to all,
 * stalled ones dropped, kbps sampled. A viewer leaves the group when its response closes.
 */
export class ViewerGroup {
  private readonly viewers = new Set<StreamViewer>();

  get size(): number {
    return this.viewers.size;
  }

  /** Adds a viewer; `left` runs once when its response closes (not after `clear`). */
  add(viewer: StreamViewer, left: () => void): void {
    this.viewers.add(viewer);
    viewer.res.on("close", () => {
      viewer.close(true);
      if (this.viewers.delete(viewer)) left();
    });
  }

  /** One packet to every viewer; `key` = a player can start with it (see StreamViewer.offer). */
  offer(packet: Buffer, key = true): void {
    for (const v of this.viewers) v.offer(packet, key);
  }

  /** Drops the viewers whose sockets stayed busy for `timeoutMs`; returns how many. */
  dropStalled(timeoutMs: number): number {
    let dropped = 0;
    for (const v of this.viewers) {
      if (v.isStalled(timeoutMs)) {
        dropped++;
        v.close(true);
      }
    }
    return dropped;
  }

  sampleKbps(): void {
    for (const v of this.viewers) v.sampleKbps();
  }

  /** Ends every response (they leave the group when their sockets close). */
  endAll(): void {
    for (const v of [...this.viewers]) v.close(false);
  }

  /** What status.json shows of each, and how many hold a pending packet. */
  infos(): { viewers: ViewerInfo[]; pending: number } {
    const viewers: ViewerInfo[] = [];
    let pending = 0;
    for (const v of this.viewers) {
      viewers.push(v.info());
      if (v.hasPending) pending++;
    }
    return { viewers, pending };
  }

  /** Ends every response and forgets them without calling their `left`. */
  clear(): void {
    this.endAll();
    this.viewers.clear();
  }
}
