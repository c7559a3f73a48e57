/**
 * The in-process media units: what sources emit and `Camera` fans out, one object per event. JPEG cameras
 * yield JPEG frames; an `ffmpeg` camera sending H.264/H.265 yields the fMP4 init and fragments of its own
 * compressed video (see docs/architecture.md, "Media units"). `data` is shared, never copied per consumer.
 */

/** One JPEG picture as it travels between camrelay's parts. */
export interface JpegFrame {
  kind: "jpeg";
  data: Buffer;
  /** Counts from 1 per camera connection lifetime (not reset by reconnects); 0 until `Camera` numbers it. */
  seq: number;
  /** Epoch milliseconds when camrelay received the frame (derived from a monotonic clock). */
  time: number;
  camera: string;
  width: number;
  height: number;
}

/**
 * A JPEG frame whose `kind` may be left out: what the parts that only ever handle JPEG (viewers, transcode
 * queues, frames read back from a message) build and accept. Every `JpegFrame` is a `Frame`.
 */
export type Frame = Omit<JpegFrame, "kind"> & { kind?: "jpeg" };

/** An fMP4 initialisation segment (ftyp+moov): what a decoder needs before the fragments of `initId`. */
export interface Fmp4Init {
  kind: "init";
  data: Buffer;
  /** RFC 6381, e.g. "avc1.640028", "hvc1.1.6.L93.B0", "mp4a.40.2". */
  codec: string;
  width: number;
  height: number;
  /** Ticks per second of the fragments' timestamps. */
  timescale: number;
  /** Changes whenever the stream's parameters (and so this segment) change; 0 until `Camera` numbers it. */
  initId: number;
  /** The camera's name. */
  camera: string;
  /** The video track's codec alone ("avc1.640028"), when there is one. */
  videoCodec?: string;
  /** The audio track's codec ("mp4a.40.2"), when the stream carries audio. */
  audioCodec?: string;
}

/** An fMP4 fragment (moof+mdat) of the stream described by the init with the same `initId`. */
export interface Fmp4Fragment {
  kind: "fragment";
  data: Buffer;
  seq: number;
  /** Epoch milliseconds when camrelay received the fragment's first frame. */
  time: number;
  /** Seconds. */
  duration: number;
  /** Starts with a keyframe (IDR): a consumer that fell behind may resume here. */
  keyframe: boolean;
  /** The init this fragment belongs to; 0 until `Camera` numbers it. */
  initId: number;
  /** The camera's name. */
  camera: string;
  /** Decode time of the fragment's first video sample, seconds from the start of this connection's stream. */
  startSec?: number;
  /** Video frames (samples) in the fragment, when known. */
  frames?: number;
}

/** Everything a source or a camera can emit, told apart by `kind`. */
export type MediaUnit = JpegFrame | Fmp4Init | Fmp4Fragment;

/** The `msg.frame` field of a frame message. */
export type FrameInfo = Omit<JpegFrame, "data" | "kind"> & {
  /** The id of the camera-source node the frame came from (set by camera connect): a camera's identity. */
  cameraId?: string;
};

const origin = Date.now() - performance.now();

/** Epoch milliseconds from the monotonic clock: never jumps back when the wall clock is set. */
export function monotonicEpochMs(): number {
  return Math.round(origin + performance.now());
}
