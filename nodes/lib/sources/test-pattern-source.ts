import { parseSize, renderTestPattern } from "../codec/picture";
import { FrameSource, SourceConfig } from "./source";

export const TEST_PATTERN_DEFAULT_FPS = 10;

/** The built-in camera: a moving, timestamped picture at `fps` (10 when 0), sized by `url` ("640x480"). */
export class TestPatternSource extends FrameSource {
  private timer?: NodeJS.Timeout;
  private seq = 0;

  constructor(config: SourceConfig) {
    super(config);
  }

  start(): void {
    const { width, height } = parseSize(this.config.url, { width: 640, height: 480 });
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
