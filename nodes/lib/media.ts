/** One JPEG frame as it travels between camrelay's parts. `data` is shared, never copied per consumer. */
export interface Frame {
  data: Buffer;
  /** Counts from 1 per camera connection lifetime (not reset by reconnects). */
  seq: number;
  /** Epoch milliseconds when camrelay received the frame (derived from a monotonic clock). */
  time: number;
  camera: string;
  width: number;
  height: number;
}

/** The `msg.frame` field of a frame message. */
export type FrameInfo = Omit<Frame, "data">;

const origin = Date.now() - performance.now();

/** Epoch milliseconds from the monotonic clock: never jumps back when the wall clock is set. */
export function monotonicEpochMs(): number {
  return Math.round(origin + performance.now());
}
