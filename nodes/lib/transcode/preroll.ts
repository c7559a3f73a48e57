import type { Frame } from "../media";

/**
 * The last few seconds of frames, capped by time (relative to the newest frame) and by bytes, so a recording
 * can start before its trigger. Frames are shared, never copied.
 */
export class PreRollBuffer {
  private frames: Frame[] = [];
  private head = 0;
  private byteCount = 0;

  constructor(
    private readonly maxMs: number,
    private readonly maxBytes: number,
  ) {}

  push(frame: Frame): void {
    this.frames.push(frame);
    this.byteCount += frame.data.length;
    this.trim();
  }

  private trim(): void {
    const newest = this.frames.length > this.head ? this.frames[this.frames.length - 1].time : 0;
    while (
      this.frames.length > this.head &&
      (this.byteCount > this.maxBytes || newest - this.frames[this.head].time > this.maxMs)
    ) {
      this.byteCount -= this.frames[this.head].data.length;
      this.head++;
    }
    // Compact now and then instead of shifting on every frame.
    if (this.head > 256 && this.head * 2 > this.frames.length) {
      this.frames = this.frames.slice(this.head);
      this.head = 0;
    }
  }

  /** Frames with time >= `time` (all held frames when omitted), oldest first. */
  since(time = -Infinity): Frame[] {
    const out: Frame[] = [];
    for (let i = this.head; i < this.frames.length; i++)
      if (this.frames[i].time >= time) out.push(this.frames[i]);
    return out;
  }

  /** The newest frame older than `time`, if held. */
  lastBefore(time: number): Frame | undefined {
    for (let i = this.frames.length - 1; i >= this.head; i--)
      if (this.frames[i].time < time) return this.frames[i];
    return undefined;
  }

  /** A clip from `time` on: the frame on screen at `time` (stamped with that time), then every later frame. */
  clipFrom(time: number): Frame[] {
    const out = this.since(time);
    const before = this.lastBefore(time);
    if (before) out.unshift({ ...before, time });
    return out;
  }

  /** Frames with time > `time`, oldest first. */
  after(time: number): Frame[] {
    return this.since(time + 1e-9);
  }

  get length(): number {
    return this.frames.length - this.head;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** Milliseconds between the oldest and newest held frame. */
  get spanMs(): number {
    return this.length > 1 ? this.frames[this.frames.length - 1].time - this.frames[this.head].time : 0;
  }
}
