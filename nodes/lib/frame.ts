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

/** Reads a frame message back into a Frame, or undefined when msg is not one. */
export function frameFromMessage(msg: {
  payload?: unknown;
  frame?: unknown;
  topic?: unknown;
}): Frame | undefined {
  if (!Buffer.isBuffer(msg.payload)) return undefined;
  const info = (typeof msg.frame === "object" && msg.frame !== null ? msg.frame : {}) as Partial<FrameInfo>;
  return {
    data: msg.payload,
    seq: typeof info.seq === "number" ? info.seq : 0,
    time: typeof info.time === "number" ? info.time : Date.now(),
    camera: typeof info.camera === "string" ? info.camera : typeof msg.topic === "string" ? msg.topic : "",
    width: typeof info.width === "number" ? info.width : 0,
    height: typeof info.height === "number" ? info.height : 0,
  };
}
