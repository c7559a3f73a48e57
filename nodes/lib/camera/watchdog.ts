/**
 * "No frame for `silenceMs` means the connection is dead": `feed()` on every frame, `start()` per
 * connection attempt, `stop()` when it ends. Checks a few times per silence window (at most once a second,
 * at least every 100 ms) on a monotonic clock, and calls `onSilent` once per start.
 */
export class Watchdog {
  private timer?: NodeJS.Timeout;
  private lastFed = 0;

  constructor(
    private readonly silenceMs: number,
    private readonly onSilent: () => void,
  ) {}

  feed(now = performance.now()): void {
    this.lastFed = now;
  }

  start(): void {
    this.stop();
    this.feed();
    const period = Math.min(1000, Math.max(100, this.silenceMs / 4));
    this.timer = setInterval(() => {
      if (performance.now() - this.lastFed < this.silenceMs) return;
      this.stop();
      this.onSilent();
    }, period);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
