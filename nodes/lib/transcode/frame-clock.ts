/** How far a frame time may lie ahead of the clock, or go back, before it counts as a jump. */
const CLOCK_JUMP_MS = 1000;

/**
 * Maps frame times (msg.frame.time, anyone's clock) onto one timeline that never goes back and never runs ahead
 * of the monotonic clock, so a frame stamped hours ahead or behind cannot freeze ffmpeg's output. Times that
 * move with the clock keep their offset (pre-roll frames keep their spacing); a jump forward past the clock, or
 * back by more than CLOCK_JUMP_MS, is re-anchored where the clock says the frame belongs.
 */
export class FrameClock {
  private offset = 0;
  private last?: number;
  private lastArrival = 0;
  /** Jumps corrected so far. */
  jumps = 0;

  /** The corrected time of a frame stamped `time` arriving at `arrival` (monotonic epoch ms). */
  correct(time: number, arrival: number): number {
    let t = time + this.offset;
    if (t > arrival + CLOCK_JUMP_MS) {
      // Ahead of the clock: the frame arrived now.
      t = Math.max(arrival, this.last === undefined ? arrival : this.last + 1);
      this.reanchor(time, t);
    } else if (this.last !== undefined && t < this.last - CLOCK_JUMP_MS) {
      // Back in time: as long after the previous frame as the clock moved on since it came.
      t = Math.max(this.last + 1, Math.min(arrival, this.last + (arrival - this.lastArrival)));
      this.reanchor(time, t);
    }
    if (this.last === undefined || t > this.last) this.last = t;
    this.lastArrival = arrival;
    return t;
  }

  private reanchor(time: number, corrected: number): void {
    this.offset = corrected - time;
    this.jumps++;
  }
}
