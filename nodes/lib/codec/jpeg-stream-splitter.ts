import { isSofMarker, readJpegSize } from "./jpeg-markers";

/** Why bytes were thrown away; `message` is for people and never holds credentials. */
export interface ParserProblem {
  kind: "oversize" | "truncated" | "corrupt" | "noise";
  message: string;
}

export interface JpegStreamSplitterOptions {
  /** A frame larger than this is dropped (and said so); also bounds the parser's memory. */
  maxFrameBytes?: number;
  /** Report `noise` after this many bytes arrive without a JPEG in them. */
  maxNoiseBytes?: number;
}

export const DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024;

const enum Phase {
  Seek,
  Segments,
  Entropy,
  /** The marker walk gave up, but Content-Length promised an end: wait for it before calling it corrupt. */
  Sized,
}

const SOI = Buffer.from([0xff, 0xd8, 0xff]);
const HEADER_WINDOW = 2048;
const CONTENT_LENGTH = /content-length[ \t]*:[ \t]*(\d+)/gi;

/**
 * Splits a byte stream into JPEG frames: an HTTP multipart/x-mixed-replace body, the Canon VB native
 * port, or ffmpeg's image2pipe output. Boundaries are never trusted (cameras get them wrong); frames are
 * found by JPEG markers, walking header segments by their lengths and the entropy-coded data by its
 * 0xFF escapes, so an EXIF thumbnail's EOI does not end the frame early. The walk always decides where a
 * frame ends (it is as fast as trusting Content-Length, and a wrong Content-Length can neither hold a frame
 * back nor cut one short); a Content-Length that lands on an EOI only rescues a frame whose inside the walk
 * cannot follow. Everything that is not inside a JPEG is noise. Memory is bounded by maxFrameBytes; the
 * rest of an oversize frame is walked through without being kept.
 */
export class JpegStreamSplitter {
  readonly maxFrameBytes: number;
  readonly maxNoiseBytes: number;
  frames = 0;
  droppedFrames = 0;
  noiseBytes = 0;

  private buf: Buffer;
  private len = 0;
  /** First byte not yet consumed: the frame's SOI once a frame has started. */
  private start = 0;
  private pos = 0;
  private phase = Phase.Seek;
  /** Where Content-Length says the frame ends (buffer index), 0 when there is no usable one. */
  private sizedEnd = 0;
  /** Why the walk gave up on the frame that now waits for sizedEnd. */
  private sizedProblem = "";
  /** Walking through an oversize frame, already reported, keeping none of it. */
  private skipping = false;
  private sawScan = false;
  private width = 0;
  private height = 0;
  private noiseSinceFrame = 0;
  private noiseReported = false;

  constructor(
    private readonly onFrame: (jpeg: Buffer, width: number, height: number) => void,
    private readonly onProblem: (problem: ParserProblem) => void = () => undefined,
    options: JpegStreamSplitterOptions = {},
  ) {
    this.maxFrameBytes = Math.max(1024, options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
    this.maxNoiseBytes = options.maxNoiseBytes ?? 256 * 1024;
    this.buf = Buffer.allocUnsafe(64 * 1024);
  }

  /** Bytes held while waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.len - this.start;
  }

  /** Forget a partial frame, e.g. after the connection dropped. */
  reset(): void {
    if (this.phase !== Phase.Seek && this.len > this.start && !this.skipping) {
      this.droppedFrames++;
      this.onProblem({
        kind: "truncated",
        message: `stream ended inside a frame (${this.len - this.start} bytes lost)`,
      });
    }
    this.len = this.start = this.pos = this.sizedEnd = 0;
    this.phase = Phase.Seek;
    this.skipping = false;
    this.noiseSinceFrame = 0;
    this.noiseReported = false;
  }

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      this.compact();
      const room = this.buf.length - this.len;
      const n = Math.min(room, chunk.length - offset);
      chunk.copy(this.buf, this.len, offset, offset + n);
      this.len += n;
      offset += n;
      this.scan();
    }
  }

  /** Moves unconsumed bytes to the front and grows the buffer while a frame needs it. */
  private compact(): void {
    if (this.start > 0) {
      this.buf.copyWithin(0, this.start, this.len);
      this.len -= this.start;
      this.pos -= this.start;
      if (this.sizedEnd > 0) this.sizedEnd -= this.start;
      this.start = 0;
    }
    if (this.len === this.buf.length) {
      const cap = Math.min(this.buf.length * 2, this.maxFrameBytes + 64 * 1024);
      if (cap > this.buf.length) {
        const next = Buffer.allocUnsafe(cap);
        this.buf.copy(next, 0, 0, this.len);
        this.buf = next;
      } else {
        // Full at the cap (scan() normally catches an oversize frame first): drop all we hold.
        this.oversize();
        this.len = this.start = this.pos = 0;
        this.phase = Phase.Seek;
        this.skipping = false;
      }
    }
  }

  private scan(): void {
    for (;;) {
      const before = this.pos;
      const phase = this.phase;
      switch (this.phase) {
        case Phase.Seek:
          this.seek();
          break;
        case Phase.Sized:
          this.takeSized();
          break;
        case Phase.Segments:
          this.walkSegments();
          break;
        case Phase.Entropy:
          this.walkEntropy();
          break;
      }
      if (this.skipping) {
        // Keep nothing of an oversize frame: the walk only ever needs the bytes from pos on.
        if (this.phase !== Phase.Seek) this.start = Math.min(this.pos, this.len);
      } else if (this.phase !== Phase.Seek && this.pos - this.start > this.maxFrameBytes) {
        this.oversize();
      }
      if (this.pos === before && this.phase === phase) return;
    }
  }

  private seek(): void {
    const soi = this.buf.subarray(0, this.len).indexOf(SOI, this.pos);
    if (soi < 0) {
      // Keep a tail: a split SOI and the part headers that may precede the next frame.
      const keep = Math.max(this.start, this.len - HEADER_WINDOW);
      this.addNoise(keep - this.start, this.len - keep);
      this.start = keep;
      this.pos = Math.max(this.start, this.len - 2);
      return;
    }
    const headerFrom = Math.max(this.start, soi - HEADER_WINDOW);
    this.addNoise(headerFrom - this.start);
    const contentLength = soi > this.start ? this.lastContentLength(headerFrom, soi) : -1;
    this.start = soi;
    this.width = this.height = 0;
    this.sawScan = false;
    this.sizedEnd = contentLength >= 4 && contentLength <= this.maxFrameBytes ? soi + contentLength : 0;
    this.phase = Phase.Segments;
    this.pos = soi + 2;
  }

  private lastContentLength(from: number, to: number): number {
    const text = this.buf.toString("latin1", from, to);
    let value = -1;
    CONTENT_LENGTH.lastIndex = 0;
    for (let m = CONTENT_LENGTH.exec(text); m; m = CONTENT_LENGTH.exec(text)) value = Number(m[1]);
    return value;
  }

  /** The walk gave up on this frame: keep it anyway if the part ends on an EOI where Content-Length says. */
  private takeSized(): void {
    const end = this.sizedEnd;
    if (this.len < end) return;
    this.sizedEnd = 0;
    // Some cameras count a trailing CRLF; never cut before where the walk got to.
    for (let e = end; e >= end - 4 && e - 2 >= this.pos; e--) {
      if (this.buf[e - 2] === 0xff && this.buf[e - 1] === 0xd9) {
        if (this.width === 0) this.readSizeFromHeader();
        this.emit(e);
        return;
      }
    }
    this.corrupt(this.sizedProblem);
  }

  private readSizeFromHeader(): void {
    const size = readJpegSize(this.buf.subarray(this.start, this.len));
    if (size) ({ width: this.width, height: this.height } = size);
  }

  private walkSegments(): void {
    const b = this.buf;
    while (this.pos + 1 < this.len) {
      const p = this.pos;
      if (b[p] !== 0xff) {
        this.corrupt(`bad JPEG marker 0x${b[p].toString(16)} at byte ${p - this.start}`);
        return;
      }
      const m = b[p + 1];
      if (m === 0xff) {
        this.pos++;
        continue;
      }
      if (m === 0xd8) {
        this.truncated(p);
        return;
      }
      if (m === 0xd9) {
        if (this.sawScan) this.emit(p + 2);
        else this.corrupt("JPEG ended before its image data");
        return;
      }
      if ((m >= 0xd0 && m <= 0xd7) || m === 0x01) {
        this.pos += 2;
        continue;
      }
      if (p + 3 >= this.len) return;
      const segLen = b.readUInt16BE(p + 2);
      if (segLen < 2) {
        this.corrupt(`bad JPEG segment length ${segLen}`);
        return;
      }
      if (isSofMarker(m)) {
        if (p + 9 > this.len) return;
        this.height = b.readUInt16BE(p + 5);
        this.width = b.readUInt16BE(p + 7);
      }
      this.pos = p + 2 + segLen;
      if (m === 0xda) {
        this.sawScan = true;
        this.phase = Phase.Entropy;
        return;
      }
    }
  }

  private walkEntropy(): void {
    const view = this.buf.subarray(0, this.len);
    for (;;) {
      if (this.pos >= this.len) return;
      const i = view.indexOf(0xff, this.pos);
      if (i < 0) {
        this.pos = this.len;
        return;
      }
      if (i + 1 >= this.len) {
        this.pos = i;
        return;
      }
      const m = view[i + 1];
      if (m === 0x00 || (m >= 0xd0 && m <= 0xd7)) {
        this.pos = i + 2;
      } else if (m === 0xff) {
        this.pos = i + 1;
      } else if (m === 0xd9) {
        this.emit(i + 2);
        return;
      } else if (m === 0xd8) {
        this.truncated(i);
        return;
      } else {
        // Another table or scan (progressive JPEG): back to walking segments.
        this.pos = i;
        this.phase = Phase.Segments;
        return;
      }
    }
  }

  private emit(end: number): void {
    this.sizedEnd = 0;
    // A frame that arrived whole in one chunk was walked without a size check.
    if (!this.skipping && end - this.start > this.maxFrameBytes) this.oversize();
    if (this.skipping) {
      this.skipping = false;
      this.start = this.pos = end;
      this.phase = Phase.Seek;
      return;
    }
    const jpeg = Buffer.allocUnsafe(end - this.start);
    this.buf.copy(jpeg, 0, this.start, end);
    this.start = this.pos = end;
    this.phase = Phase.Seek;
    this.frames++;
    this.noiseSinceFrame = 0;
    this.noiseReported = false;
    this.onFrame(jpeg, this.width, this.height);
  }

  /** A new SOI inside a frame: the camera cut the previous frame short. */
  private truncated(nextSoi: number): void {
    this.sizedEnd = 0;
    if (!this.skipping) {
      this.droppedFrames++;
      this.onProblem({ kind: "truncated", message: `frame cut short after ${nextSoi - this.start} bytes` });
    }
    this.skipping = false;
    this.start = this.pos = nextSoi;
    this.phase = Phase.Seek;
  }

  private corrupt(message: string): void {
    if (this.sizedEnd > 0) {
      // Content-Length may still frame it whole (decoders forgive what the walk does not).
      this.sizedProblem = message;
      this.phase = Phase.Sized;
      return;
    }
    if (!this.skipping) {
      this.droppedFrames++;
      this.onProblem({ kind: "corrupt", message });
    }
    this.skipping = false;
    this.pos = this.start + 1;
    this.start = this.pos;
    this.phase = Phase.Seek;
  }

  /** The frame in progress passed maxFrameBytes: say so, then walk to its end keeping nothing. */
  private oversize(): void {
    if (!this.skipping) {
      this.droppedFrames++;
      this.onProblem({
        kind: "oversize",
        message: `frame larger than ${Math.round(this.maxFrameBytes / 1024)} KB dropped`,
      });
    }
    this.skipping = true;
    this.sizedEnd = 0;
    this.start = Math.min(this.pos, this.len);
  }

  /**
   * Counts `n` bytes of noise; `pending` more are held as possible part headers, and count towards the
   * report (not the statistic), so a short HTML page is reported too.
   */
  private addNoise(n: number, pending = 0): void {
    if (n < 0 || (n === 0 && pending === 0)) return;
    this.noiseBytes += n;
    this.noiseSinceFrame += n;
    const seen = this.noiseSinceFrame + pending;
    if (!this.noiseReported && seen >= this.maxNoiseBytes) {
      this.noiseReported = true;
      const sample = this.buf
        .toString("latin1", this.start, Math.min(this.len, this.start + 60))
        .replace(/[^\x20-\x7e]+/g, " ")
        .trim();
      this.onProblem({
        kind: "noise",
        message: `${seen} bytes without a JPEG frame${sample ? ` (starts "${sample}")` : ""}`,
      });
    }
  }
}
