interface Lane<T> {
  /** performance.now() of the next free slot. */
  next: number;
  pending?: T;
  timer?: NodeJS.Timeout;
}

const MAX_IDLE_LANES = 1000;

/**
 * At most `fps` items per second per key, newest wins: an item that arrives before its key's next slot
 * waits there, replacing (and dropping) any older waiting item; never a queue. Slots are kept on an
 * absolute schedule, so timer lateness does not accumulate and the long-run rate is exact.
 */
export class RateLimiter<T> {
  private readonly lanes = new Map<string, Lane<T>>();
  private interval: number;

  constructor(
    fps: number,
    private readonly emit: (item: T) => void,
    private readonly drop: (item: T) => void,
  ) {
    this.interval = fps > 0 ? 1000 / fps : 0;
  }

  push(key: string, item: T): void {
    if (this.interval === 0) {
      this.emit(item);
      return;
    }
    const now = performance.now();
    let lane = this.lanes.get(key);
    if (!lane) {
      if (this.lanes.size >= MAX_IDLE_LANES) this.sweep(now);
      lane = { next: now };
      this.lanes.set(key, lane);
    }
    if (lane.pending === undefined && now >= lane.next) {
      this.advance(lane, now);
      this.emit(item);
      return;
    }
    if (lane.pending !== undefined) this.drop(lane.pending);
    lane.pending = item;
    if (!lane.timer) lane.timer = setTimeout(() => this.release(lane), Math.max(0, lane.next - now));
  }

  /** Drops everything waiting and stops all timers. */
  close(): void {
    for (const lane of this.lanes.values()) {
      if (lane.timer) clearTimeout(lane.timer);
      if (lane.pending !== undefined) this.drop(lane.pending);
    }
    this.lanes.clear();
  }

  private release(lane: Lane<T>): void {
    lane.timer = undefined;
    const item = lane.pending;
    if (item === undefined) return;
    lane.pending = undefined;
    this.advance(lane, performance.now());
    this.emit(item);
  }

  /** Next slot one interval on; after an idle gap the schedule restarts from now instead of bursting. */
  private advance(lane: Lane<T>, now: number): void {
    lane.next += this.interval;
    if (lane.next < now - this.interval) lane.next = now;
    if (lane.next <= now) lane.next += this.interval;
  }

  private sweep(now: number): void {
    for (const [key, lane] of this.lanes) {
      if (lane.pending === undefined && lane.next < now) this.lanes.delete(key);
    }
  }
}
