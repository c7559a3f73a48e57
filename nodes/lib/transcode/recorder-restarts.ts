/**
 * When a recording whose ffmpeg died carries on: after a backoff of 1 s doubling to 30 s (as for live
 * presets), reset by a run that went well and by each new recording. One restart is pending at most.
 */
import { Backoff } from "../backoff";

export class RecorderRestarts {
  private timer?: NodeJS.Timeout;

  /**
   * @param healthyMs an ffmpeg that ran at least this long before it died resets the backoff.
   * @param backoff the delays (the Recorder keeps it as `backoff`, where tests read it).
   */
  constructor(
    private readonly healthyMs: number,
    private readonly backoff = new Backoff({ firstMs: 1000, maxMs: 30000 }),
  ) {}

  /** True while a restart waits for its backoff (frames stay in the pre-roll ring meanwhile). */
  get pending(): boolean {
    return this.timer !== undefined;
  }

  /** A new recording: its first failure waits the shortest time again. */
  reset(): void {
    this.backoff.reset();
  }

  /** `session` died: a long run resets the backoff. */
  died(session: { startedAt: number }): void {
    if (Date.now() - session.startedAt >= this.healthyMs) this.backoff.reset();
  }

  /** Calls `restart` after the next backoff delay. */
  schedule(restart: () => void): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      restart();
    }, this.backoff.next());
  }

  /** Drops a pending restart. */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
