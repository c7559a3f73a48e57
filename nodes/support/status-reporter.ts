import type { NodeStatus } from "node-red";

/** What a node shows under itself: the one status setter every camrelay node uses. */
export interface StatusTarget {
  status(status: NodeStatus | Record<string, never>): void;
}

/**
 * De-duplicates and throttles a node's status: the same status twice is shown once; a change of colour
 * or shape (a state change) is shown at once; a change of text alone (a counter, a rate) at most once per
 * `intervalMs`, the newest text winning. `clear()` on close removes the status and the pending timer.
 */
export class StatusReporter {
  private lastKey = "";
  private lastLook = "";
  private lastShownAt = 0;
  private pending?: NodeStatus;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly node: StatusTarget,
    private readonly intervalMs = 1000,
  ) {}

  /** `immediate`: a change of state the caller knows of (same colour, new meaning): shown at once too. */
  show(status: NodeStatus, immediate = false): void {
    const key = JSON.stringify([status.fill, status.shape, status.text]);
    if (key === this.lastKey) {
      // Already shown: a text waiting to replace it is older than this, so it must not come back.
      this.dropPending();
      return;
    }
    const look = `${status.fill}/${status.shape}`;
    const now = Date.now();
    if (immediate || look !== this.lastLook || now - this.lastShownAt >= this.intervalMs) {
      this.apply(status, key, look, now);
      return;
    }
    this.pending = status;
    this.timer ??= setTimeout(
      () => {
        this.timer = undefined;
        const next = this.pending;
        this.pending = undefined;
        if (next)
          this.apply(
            next,
            JSON.stringify([next.fill, next.shape, next.text]),
            `${next.fill}/${next.shape}`,
            Date.now(),
          );
      },
      this.intervalMs - (now - this.lastShownAt),
    );
    this.timer.unref?.();
  }

  clear(): void {
    this.dropPending();
    this.lastKey = "";
    this.lastLook = "";
    this.node.status({});
  }

  private dropPending(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.pending = undefined;
  }

  private apply(status: NodeStatus, key: string, look: string, now: number): void {
    this.dropPending();
    this.lastKey = key;
    this.lastLook = look;
    this.lastShownAt = now;
    this.node.status(status);
  }
}
