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

/** How far msg.frame.time may be from now before it is taken for a lie (a bad clock, a hand-made message). */
const MAX_TIME_SKEW_MS = 86400000;
/** The largest frame side believed from msg.frame; anything else is read from the JPEG. */
const MAX_SIDE = 16384;

const side = (v: unknown): number =>
  Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_SIDE ? (v as number) : 0;

/** Reads a frame message back into a Frame, or undefined when msg is not one. Fields that lie are replaced. */
export function frameFromMessage(msg: {
  payload?: unknown;
  frame?: unknown;
  topic?: unknown;
}): Frame | undefined {
  if (!Buffer.isBuffer(msg.payload)) return undefined;
  const info = (typeof msg.frame === "object" && msg.frame !== null ? msg.frame : {}) as Partial<FrameInfo>;
  const now = monotonicEpochMs();
  const time = info.time;
  return {
    data: msg.payload,
    seq: typeof info.seq === "number" ? info.seq : 0,
    time:
      typeof time === "number" && Number.isFinite(time) && Math.abs(time - now) <= MAX_TIME_SKEW_MS
        ? time
        : now,
    camera: typeof info.camera === "string" ? info.camera : typeof msg.topic === "string" ? msg.topic : "",
    width: side(info.width),
    height: side(info.height),
  };
}
