import { pictureSize, renderTestPattern } from "../codec/picture";
import { readSizeText, type Size } from "../settings";
import { FrameSource, SourceConfig } from "./source";

export const TEST_PATTERN_DEFAULT_FPS = 10;
const DEFAULT_SIZE: Size = { width: 640, height: 480 };

/**
 * The test pattern's size from its `url` ("640x480"; "×" too): `fallback` when it is not a size, and
 * clamped to what can be drawn (16..3840 x 16..2160, even) rather than refused.
 */
export function testPatternSize(text: string | undefined, fallback: Size = DEFAULT_SIZE): Size {
  return pictureSize(readSizeText(text) ?? fallback);
}

/** The built-in camera: a moving, timestamped picture at `fps` (10 when 0), sized by `url` ("640x480"). */
export class TestPatternSource extends FrameSource {
  private timer?: NodeJS.Timeout;
  private seq = 0;

  constructor(config: SourceConfig) {
    super(config);
  }

  start(): void {
    const { width, height } = testPatternSize(this.config.url);
    const interval = 1000 / (this.config.fps > 0 ? Math.min(this.config.fps, 60) : TEST_PATTERN_DEFAULT_FPS);
    const t0 = performance.now();
    const tick = () => {
      this.seq++;
      const jpeg = renderTestPattern({
        width,
        height,
        label: this.config.name || "test pattern",
        time: new Date(),
        seq: this.seq,
      });
      this.emitFrame(jpeg, width, height);
      // Scheduled against the start time, so rendering time does not slow the rate down.
      const next = t0 + (this.seq + 1) * interval - performance.now();
      this.timer = setTimeout(tick, Math.max(0, next));
    };
    setImmediate(() => {
      if (this.stopped) return;
      this.emit("connected");
      tick();
    });
  }

  protected release(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
