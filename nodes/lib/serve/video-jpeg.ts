import type { Frame } from "../media";

/** A decoded picture as the codec layer hands it over. */
export interface DecodedPicture {
  data: Buffer;
  width: number;
  height: number;
}

/** A running decoder (codec/mp4-decoder.ts's Mp4Decoder, or a test's stand-in). */
export interface LiveDecoder {
  start(init: Buffer, gop: Buffer[]): void;
  push(fragment: Buffer, keyframe?: boolean): void;
  stop(): void;
  on(event: "frame", listener: (picture: DecodedPicture) => void): unknown;
  on(event: "problem", listener: (message: string) => void): unknown;
}

/** How the server turns compressed video into JPEG: given by the node (it knows ffmpeg and the settings). */
export interface VideoDecoding {
  /** The keyframe at the start of `fragments` as one JPEG. */
  decodeKeyframe(init: Buffer, fragments: Buffer[]): Promise<DecodedPicture>;
  /** A decoder for the MJPEG viewers, at the rate the node caps. */
  createDecoder(): LiveDecoder;
}

/** What the decoding needs from the stream: the current init and GOP, and where decoded pictures go. */
export interface VideoJpegHost {
  init(): Buffer | undefined;
  gop(): readonly Buffer[];
  /** A picture the live decoder made, for the MJPEG viewers and snapshot waiters. */
  picture(frame: Frame): void;
  /** Something went wrong, in words (shown once per problem by the node). */
  problem(message: string): void;
}

/** A live decoder that failed starts again on a keyframe at most this often. */
export const RESTART_MS = 2000;

/** A decoded snapshot is reused for this long: many requests in a second share one decode. */
export const SNAPSHOT_CACHE_MS = 1000;

/**
 * JPEG from compressed video, for a wire that carries only `msg.mp4`: snapshots decode the latest
 * keyframe on demand (cached about a second; concurrent requests share one decode), and MJPEG viewers
 * get a live decoder that runs only while at least one watches (`setWanted`), started on the current
 * GOP and fed every fragment after it.
 */
export class VideoJpeg {
  private cached: { at: number; initSeen: number; frame: Frame } | undefined;
  /** The live decoder's latest picture: a snapshot while it runs costs no decode of its own. */
  private live: { at: number; initSeen: number; frame: Frame } | undefined;
  private inflight: Promise<Frame> | undefined;
  private decoder: LiveDecoder | undefined;
  private running = false;
  /** A new init came while running: restart on the next keyframe fragment. */
  private restartOnKey = false;
  /** Counts inits, so a cached picture of an old init is not reused. */
  private inits = 0;
  private seq = 0;
  private closed = false;
  /** Monotonic ms before which a failed decoder is not started again. */
  private notBefore = 0;
  camera = "";

  constructor(
    private readonly decoding: VideoDecoding,
    private readonly host: VideoJpegHost,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** True while the live decoder runs. */
  get decoderRunning(): boolean {
    return this.running;
  }

  /** The latest keyframe as a JPEG frame (a cached one when it is fresh); rejects in words. */
  snapshot(): Promise<Frame> {
    const c = this.cached;
    if (c && c.initSeen === this.inits && this.now() - c.at < SNAPSHOT_CACHE_MS)
      return Promise.resolve(c.frame);
    // The MJPEG viewers' decoder is running: its latest picture is newer than the GOP's keyframe anyway.
    const l = this.live;
    if (this.running && l && l.initSeen === this.inits && this.now() - l.at < SNAPSHOT_CACHE_MS * 2)
      return Promise.resolve(l.frame);
    if (this.inflight) return this.inflight;
    const init = this.host.init();
    const key = this.host.gop()[0];
    if (!init || !key) return Promise.reject(new Error("no keyframe yet"));
    const initSeen = this.inits;
    const p = this.decodeOne(init, key).then(
      (frame) => {
        this.inflight = undefined;
        this.cached = { at: this.now(), initSeen, frame };
        return frame;
      },
      (err: Error) => {
        this.inflight = undefined;
        throw err;
      },
    );
    this.inflight = p;
    return p;
  }

  /** One keyframe fragment decoded to a frame (for snapshot waiters on the next keyframe). */
  decodeOne(init: Buffer, keyFragment: Buffer): Promise<Frame> {
    return this.decoding.decodeKeyframe(init, [keyFragment]).then((pic) => this.frameOf(pic, Date.now()));
  }

  /** The stream has a new init: cached pictures are stale, a running decoder restarts at the next keyframe. */
  newInit(): void {
    this.inits++;
    this.cached = undefined;
    this.live = undefined;
    if (this.running) {
      this.decoder?.stop();
      this.running = false;
      this.restartOnKey = true;
    }
  }

  /** A fragment arrived (after the store took it); `key` = it starts a GOP. */
  fragment(data: Buffer, key: boolean): void {
    if (this.running) this.decoder?.push(data, key);
    else if (this.restartOnKey && key && this.now() >= this.notBefore) {
      const init = this.host.init();
      if (init) this.start(init, [data]);
    }
  }

  /** Runs the live decoder while `wanted` (at least one MJPEG viewer on a video-only wire). */
  setWanted(wanted: boolean): void {
    if (!wanted || this.closed) {
      this.restartOnKey = false;
      if (this.running) {
        this.running = false;
        this.decoder?.stop();
      }
      return;
    }
    if (this.running || this.restartOnKey) return;
    const init = this.host.init();
    const gop = this.host.gop();
    if (init && gop.length > 0) this.start(init, [...gop]);
    else this.restartOnKey = true;
  }

  close(): void {
    this.closed = true;
    this.setWanted(false);
    this.cached = undefined;
    this.live = undefined;
  }

  private start(init: Buffer, gop: Buffer[]): void {
    this.restartOnKey = false;
    if (!this.decoder) {
      const d = this.decoding.createDecoder();
      d.on("frame", (pic) => {
        if (!this.running) return;
        const frame = this.frameOf(pic, Date.now());
        this.live = { at: this.now(), initSeen: this.inits, frame };
        this.host.picture(frame);
      });
      d.on("problem", (message) => {
        this.host.problem(message);
        // ffmpeg ended: start it again on a later keyframe, at most every RESTART_MS.
        if (this.running) {
          this.running = false;
          this.restartOnKey = true;
          this.notBefore = this.now() + RESTART_MS;
        }
      });
      this.decoder = d;
    }
    this.running = true;
    this.decoder.start(init, gop);
  }

  private frameOf(pic: DecodedPicture, time: number): Frame {
    return {
      data: pic.data,
      seq: ++this.seq,
      time,
      camera: this.camera,
      width: pic.width,
      height: pic.height,
    };
  }
}
