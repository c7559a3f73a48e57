/**
 * Paces request-driven sources: the next request starts one interval after the previous one started,
 * so a slow rate costs the camera nothing and request time does not lower the rate.
 */
export class RequestPacer {
  private last = -Infinity;
  private timer?: NodeJS.Timeout;

  constructor(private readonly fps: number) {}

  /** Calls `fn` when the next request is due (at once when fps is 0 or the slot has passed). */
  schedule(fn: () => void): void {
    const interval = this.fps > 0 ? 1000 / this.fps : 0;
    const now = performance.now();
    const due = this.last + interval;
    const run = () => {
      this.timer = undefined;
      // Stay on the fixed schedule unless a whole slot was missed, then restart it from now.
      const t = performance.now();
      this.last = t - due < interval ? due : t;
      fn();
    };
    this.cancel(); // one request scheduled at a time
    if (due <= now) run();
    else this.timer = setTimeout(run, due - now);
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
