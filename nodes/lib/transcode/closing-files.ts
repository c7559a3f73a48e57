/**
 * The recordings whose ffmpeg is still finishing them: retention must leave them alone, they are
 * reported in the order they were closed (even when an earlier ffmpeg takes longer), and closing the
 * recorder waits for all of them.
 */
/**
 * How long a finished recording waits for an earlier one to be reported first. Order matters when two
 * ffmpegs finish moments apart; an earlier ffmpeg that hangs (a full disk) must not hold later reports.
 */
const ORDER_WAIT_MS = 5000;

function waitAtMost(promise: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref?.();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class ClosingFiles {
  private readonly pending = new Set<Promise<void>>();
  private last: Promise<void> = Promise.resolve();
  private readonly files = new Set<string>();

  has(file: string): boolean {
    return this.files.has(file);
  }

  /**
   * `file` is closing: once `finished` and every file closed before it are done, `report(release)` runs
   * (`release()` takes the file off the list before its end). A failure goes to `onError`.
   */
  add(
    file: string,
    finished: Promise<void>,
    report: (release: () => void) => Promise<void> | void,
    onError: (err: Error) => void,
  ): void {
    this.files.add(file);
    const previous = this.last;
    const done = finished
      .then(() => waitAtMost(previous, ORDER_WAIT_MS))
      .then(() => report(() => this.files.delete(file)))
      .catch(onError);
    this.pending.add(done);
    this.last = done;
    void done.finally(() => {
      this.pending.delete(done);
      this.files.delete(file);
    });
  }

  /** Resolves when every file closing now is closed. */
  all(): Promise<void> {
    return Promise.all([...this.pending]).then(() => undefined);
  }
}
