/**
 * How fast something happens, measured over a sliding window: frames per second and kilobits per second
 * everywhere in camrelay come from this one meter. Samples older than the window are forgotten, so a
 * stream that stops reads 0 after one window.
 */
export class RateMeter {
  private readonly times: number[] = [];
  private readonly amounts: number[] = [];
  private sum = 0;

  constructor(private readonly windowMs = 5000) {}

  /** One event (a frame) or `amount` of something (bytes) at `now` (performance.now() by default). */
  add(amount = 1, now = performance.now()): void {
    this.times.push(now);
    this.amounts.push(amount);
    this.sum += amount;
    this.forget(now);
  }

  /** Events per second over the window; at least a second of span so one burst does not read as huge. */
  perSecond(now = performance.now()): number {
    this.forget(now);
    const n = this.times.length;
    if (n === 0) return 0;
    if (n === 1) return this.amounts[0];
    const span = Math.max(now - this.times[0], 1000);
    // The first sample opens the window: count what came after it.
    return ((this.sum - this.amounts[0]) * 1000) / span;
  }

  /** Frames per second, one decimal. */
  fps(now = performance.now()): number {
    return Math.round(this.perSecond(now) * 10) / 10;
  }

  /** Bytes added per second read as kilobits per second, whole numbers. */
  kbps(now = performance.now()): number {
    return Math.round((this.perSecond(now) * 8) / 1000);
  }

  reset(): void {
    this.times.length = 0;
    this.amounts.length = 0;
    this.sum = 0;
  }

  private forget(now: number): void {
    let drop = 0;
    while (drop < this.times.length && this.times[drop] < now - this.windowMs) {
      this.sum -= this.amounts[drop];
      drop++;
    }
    if (drop > 0) {
      this.times.splice(0, drop);
      this.amounts.splice(0, drop);
    }
  }
}
