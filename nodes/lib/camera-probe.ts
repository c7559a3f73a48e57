import { CameraOptions } from "./camera";
import { createSource } from "./sources";
import { SourceError } from "./sources/source";

export interface ProbeResult {
  /** The first frame as a data: URL, for an <img> in the editor. */
  image: string;
  width: number;
  height: number;
  bytes: number;
  /** Frames per second measured over the probe window (0 when only one frame came). */
  fps: number;
  frames: number;
  protocol: string;
}

/**
 * Connects once with the given settings, takes the first frame and counts frames for up to
 * `measureMs` more, then disconnects. Rejects with the camera's error in words.
 */
export function probeCamera(
  options: CameraOptions,
  timeoutMs: number,
  measureMs = 2000,
): Promise<ProbeResult> {
  return new Promise((resolve, reject) => {
    let source: ReturnType<typeof createSource>;
    try {
      source = createSource(options);
    } catch (err) {
      reject(err);
      return;
    }
    let first: { jpeg: Buffer; width: number; height: number; at: number } | undefined;
    let frames = 0;
    let lastAt = 0;
    const finish = (err?: Error) => {
      clearTimeout(timeout);
      clearTimeout(measure);
      source.stop();
      if (!first) {
        reject(err ?? new Error(`no frame within ${Math.round(timeoutMs / 1000)} s`));
        return;
      }
      const span = lastAt - first.at;
      resolve({
        image: "data:image/jpeg;base64," + first.jpeg.toString("base64"),
        width: first.width,
        height: first.height,
        bytes: first.jpeg.length,
        fps: frames > 1 && span > 0 ? Math.round(((frames - 1) * 10000) / span) / 10 : 0,
        frames,
        protocol: options.protocol,
      });
    };
    let measure: NodeJS.Timeout | undefined;
    const timeout = setTimeout(() => finish(), timeoutMs);
    source.on("frame", (jpeg: Buffer, width: number, height: number) => {
      frames++;
      lastAt = performance.now();
      if (!first) {
        first = { jpeg, width, height, at: lastAt };
        measure = setTimeout(() => finish(), measureMs);
      }
    });
    source.on("close", (err?: SourceError) => finish(err));
    source.start();
  });
}
