/**
 * Retry delays: `firstMs`, doubling up to `maxMs`, with optional +-`jitter` (0.2 = +-20 %) so many
 * cameras that failed together do not retry together. The cap applies after the jitter: no delay is ever
 * above `maxMs`. `reset()` after a run that went well.
 */
export interface BackoffOptions {
  firstMs: number;
  maxMs: number;
  /** Fraction of the delay to spread by, both ways. 0 = exact. */
  jitter?: number;
  factor?: number;
}

export function backoffDelay(
  attempt: number,
  options: BackoffOptions,
  random: () => number = Math.random,
): number {
  const base = Math.min(options.maxMs, options.firstMs * (options.factor ?? 2) ** Math.max(0, attempt));
  const jitter = options.jitter ?? 0;
  const spread = jitter > 0 ? base * jitter * (random() * 2 - 1) : 0;
  return Math.round(Math.min(options.maxMs, Math.max(0, base + spread)));
}

export class Backoff {
  private attempts = 0;

  constructor(private readonly options: BackoffOptions) {}

  /** The delay before the next attempt; counts the attempt. */
  next(): number {
    return backoffDelay(this.attempts++, this.options);
  }

  get attempt(): number {
    return this.attempts;
  }

  reset(): void {
    this.attempts = 0;
  }
}
