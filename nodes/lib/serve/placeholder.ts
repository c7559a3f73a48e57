import type { Frame } from "../media";
import { renderCard } from "../codec/picture";
import { mjpegPart } from "./mjpeg-fanout";

export interface PlaceholderCard {
  width: number;
  height: number;
  lines: string[];
  time: Date;
}

/** What the card shows: whose stream, in which size, and whether the camera went away or never came. */
export interface PlaceholderLook {
  camera: string;
  width: number;
  height: number;
  /** The camera was live once (the card says "offline", else "waiting"). */
  offline: boolean;
}

export const DEFAULT_TEXTS = { waiting: "waiting for camera", offline: "camera offline" };

/**
 * The card viewers see while there is no live frame: the stream's name, "waiting" or "offline", and the
 * time. Rendered at most once per second (the card shows the time); a failed rendering keeps the last
 * card and is kept in `renderError` for the node to report.
 */
export class Placeholder {
  /** The last rendering error, for the node to report once. */
  renderError: Error | undefined;
  private cached: { second: number; offline: boolean; frame: Frame; part?: Buffer } | undefined;
  private readonly render: (card: PlaceholderCard) => Buffer;

  constructor(
    private readonly title: string,
    private readonly texts: { waiting: string; offline: string } = DEFAULT_TEXTS,
    render?: (card: PlaceholderCard) => Buffer,
  ) {
    this.render =
      render ??
      ((card) => renderCard({ width: card.width, height: card.height, lines: card.lines, time: card.time }));
  }

  /** The card for this second, or undefined when none could ever be rendered. */
  frame(look: PlaceholderLook): Frame | undefined {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    const cached = this.cached;
    if (cached && cached.second === second && cached.offline === look.offline) return cached.frame;
    try {
      const lines = [look.camera || this.title, look.offline ? this.texts.offline : this.texts.waiting];
      const { width, height, camera } = look;
      const data = this.render({ width, height, lines, time: new Date(now) });
      const frame: Frame = { data, seq: 0, time: now, camera, width, height };
      this.cached = { second, offline: look.offline, frame };
      this.renderError = undefined;
      return frame;
    } catch (err) {
      this.renderError = err instanceof Error ? err : new Error(String(err));
      return cached?.frame;
    }
  }

  /** The card as an MJPEG part (built once per card). */
  part(look: PlaceholderLook): Buffer | undefined {
    const frame = this.frame(look);
    const cached = this.cached;
    if (!frame || !cached) return undefined;
    return (cached.part ??= mjpegPart(frame));
  }
}
