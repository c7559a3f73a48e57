import { CameraOptions } from "../camera/camera";
import { splitUrlCredentials } from "../credentials";
import { CanonVbSource } from "./canon-vb-source";
import { CanonWebViewSource } from "./canon-webview-source";
import { FfmpegSource } from "./ffmpeg-source";
import { HttpMjpegSource } from "./http-mjpeg-source";
import { JpegPollSource } from "./jpeg-poll-source";
import { FrameSource, SourceError } from "./source";
import { TestPatternSource } from "./test-pattern-source";

export const PROTOCOLS = ["mjpeg", "jpeg", "canon-vb", "canon-webview", "ffmpeg", "test"] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** Credentials typed into an http URL move out of it; the credential store's take precedence. */
function httpTarget(options: CameraOptions): { url: URL; config: CameraOptions } {
  if (!options.url) throw new SourceError("config", "no camera URL set");
  let parts;
  try {
    parts = splitUrlCredentials(
      /^[a-z][a-z0-9+.-]*:\/\//i.test(options.url) ? options.url : `http://${options.url}`,
    );
  } catch {
    throw new SourceError("config", "the camera URL is not a valid URL");
  }
  return {
    url: parts.url,
    config: { ...options, user: options.user || parts.user, password: options.password || parts.password },
  };
}

/** Makes the source for one connection attempt. Throws a SourceError for settings that cannot work. */
export function createSource(options: CameraOptions): FrameSource {
  switch (options.protocol as Protocol) {
    case "mjpeg": {
      const t = httpTarget(options);
      return new HttpMjpegSource(t.config, t.url);
    }
    case "jpeg": {
      const t = httpTarget(options);
      return new JpegPollSource(t.config, t.url);
    }
    case "canon-webview": {
      const t = httpTarget(options);
      return new CanonWebViewSource(t.config, t.url);
    }
    case "canon-vb":
      return new CanonVbSource(options);
    case "ffmpeg":
      if (!options.url) throw new SourceError("config", "no input set for ffmpeg");
      return new FfmpegSource(options);
    case "test":
      return new TestPatternSource(options);
    default:
      throw new SourceError("config", `unknown protocol "${options.protocol}"`);
  }
}
