/**
 * A minimal streaming Matroska muxer for JPEG frames: one V_MJPEG track, 0.1 ms timestamps.
 *
 * Why: ffmpeg's mjpeg demuxer carries no timestamps, so feeding raw JPEGs needs a fixed `-r`, and a camera
 * that really sends 7 fps then plays at the wrong speed (the seed's "x2 speed" bug). Wrapping each frame in
 * a Matroska block stamped with its receive time (msg.frame.time) lets ffmpeg keep the real times
 * (`-vsync vfr -enc_time_base -1`): playback speed follows the wall clock, pre-roll frames keep their stored
 * times, and no frame is duplicated or decoded twice. Segment and clusters have unknown sizes, as in any
 * live Matroska stream, so nothing has to be known in advance.
 */

/** Timestamps count tenths of milliseconds: fine enough to place sub-millisecond end markers. */
const TICKS_PER_MS = 10;
const UNKNOWN_SIZE = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
/** Start a new cluster well before a block's int16 relative timestamp (in ticks) would overflow. */
const CLUSTER_SPAN_TICKS = 30000;

function vintSize(n: number): Buffer {
  for (let len = 1; len <= 8; len++) {
    if (n < 2 ** (7 * len) - 1) {
      const out = Buffer.alloc(len);
      let v = n;
      for (let i = len - 1; i >= 0; i--) {
        out[i] = v % 256;
        v = Math.floor(v / 256);
      }
      out[0] |= 1 << (8 - len);
      return out;
    }
  }
  throw new RangeError(`EBML size too large: ${n}`);
}

function uintBytes(n: number): Buffer {
  // A non-finite number would loop forever here (and hang Node-RED); callers must never pass one.
  if (!Number.isFinite(n) || n < 0) throw new RangeError(`Matroska: ${n} is not an unsigned integer`);
  const bytes: number[] = [];
  let v = Math.floor(n);
  do {
    bytes.unshift(v % 256);
    v = Math.floor(v / 256);
  } while (v > 0);
  return Buffer.from(bytes);
}

function element(id: number, body: Buffer): Buffer {
  const idBytes = uintBytes(id);
  return Buffer.concat([idBytes, vintSize(body.length), body]);
}

const uint = (id: number, n: number): Buffer => element(id, uintBytes(n));
const str = (id: number, s: string): Buffer => element(id, Buffer.from(s, "latin1"));

const ID = {
  EBML: 0x1a45dfa3,
  EBMLVersion: 0x4286,
  EBMLReadVersion: 0x42f7,
  EBMLMaxIDLength: 0x42f2,
  EBMLMaxSizeLength: 0x42f3,
  DocType: 0x4282,
  DocTypeVersion: 0x4287,
  DocTypeReadVersion: 0x4285,
  Segment: 0x18538067,
  Info: 0x1549a966,
  TimestampScale: 0x2ad7b1,
  MuxingApp: 0x4d80,
  WritingApp: 0x5741,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackUID: 0x73c5,
  TrackType: 0x83,
  FlagLacing: 0x9c,
  CodecID: 0x86,
  Video: 0xe0,
  PixelWidth: 0xb0,
  PixelHeight: 0xba,
  DefaultDuration: 0x23e383,
  Cluster: 0x1f43b675,
  Timestamp: 0xe7,
  SimpleBlock: 0xa3,
};

/** Writes the header once, then one block per frame. Returns buffers to write in order (the JPEG is not copied). */
export class MatroskaFrameWriter {
  private base?: number;
  private last = -1;
  private clusterStart = -Infinity;
  frames = 0;

  /**
   * `frameDurationMs`: the DefaultDuration of every frame. ffmpeg's HLS muxer sums packet durations for a
   * stream's last segment; without one each frame counts 0.1 ms and a last segment of one frame says 0.0001 s.
   */
  constructor(
    private readonly width: number,
    private readonly height: number,
    private readonly frameDurationMs?: number,
  ) {}

  /** EBML header, Segment (unknown size), Info and Tracks. */
  header(): Buffer {
    const ebml = element(
      ID.EBML,
      Buffer.concat([
        uint(ID.EBMLVersion, 1),
        uint(ID.EBMLReadVersion, 1),
        uint(ID.EBMLMaxIDLength, 4),
        uint(ID.EBMLMaxSizeLength, 8),
        str(ID.DocType, "matroska"),
        uint(ID.DocTypeVersion, 4),
        uint(ID.DocTypeReadVersion, 2),
      ]),
    );
    const info = element(
      ID.Info,
      Buffer.concat([
        uint(ID.TimestampScale, 1000000 / TICKS_PER_MS),
        str(ID.MuxingApp, "camrelay"),
        str(ID.WritingApp, "camrelay"),
      ]),
    );
    const video = element(
      ID.Video,
      Buffer.concat([
        uint(ID.PixelWidth, Math.max(1, this.width)),
        uint(ID.PixelHeight, Math.max(1, this.height)),
      ]),
    );
    const track = element(
      ID.TrackEntry,
      Buffer.concat([
        uint(ID.TrackNumber, 1),
        uint(ID.TrackUID, 1),
        uint(ID.TrackType, 1),
        uint(ID.FlagLacing, 0),
        str(ID.CodecID, "V_MJPEG"),
        ...(this.frameDurationMs && this.frameDurationMs > 0
          ? [uint(ID.DefaultDuration, Math.round(this.frameDurationMs * 1e6))]
          : []),
        video,
      ]),
    );
    return Buffer.concat([ebml, uintBytes(ID.Segment), UNKNOWN_SIZE, info, element(ID.Tracks, track)]);
  }

  /** Ticks since the first frame that `epochMs` will be stamped with (strictly increasing). */
  private stamp(epochMs: number): number {
    if (!Number.isFinite(epochMs)) throw new RangeError(`Matroska: frame time ${epochMs} is not finite`);
    if (this.base === undefined) this.base = epochMs;
    let t = Math.round((epochMs - this.base) * TICKS_PER_MS);
    if (t <= this.last) t = this.last + 1;
    this.last = t;
    return t;
  }

  /** The epoch time that maps to timestamp 0 (the first frame's time), once a frame was written. */
  get baseTime(): number | undefined {
    return this.base;
  }

  /** One frame at epoch time `epochMs`: a cluster header when needed, then a SimpleBlock. */
  frame(jpeg: Buffer, epochMs: number): Buffer[] {
    const t = this.stamp(epochMs);
    const out: Buffer[] = [];
    if (t - this.clusterStart > CLUSTER_SPAN_TICKS) {
      this.clusterStart = t;
      out.push(uintBytes(ID.Cluster), UNKNOWN_SIZE, uint(ID.Timestamp, t));
    }
    const blockHead = Buffer.from([0x81, 0, 0, 0x80]); // track 1, relative time, keyframe
    blockHead.writeInt16BE(t - this.clusterStart, 1);
    this.frames++;
    out.push(uintBytes(ID.SimpleBlock), vintSize(blockHead.length + jpeg.length), blockHead, jpeg);
    return out;
  }
}
