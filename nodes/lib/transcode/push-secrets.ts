/**
 * The secrets of a transcode node that must never reach a log line or a status: the password, the user
 * (when long enough to mask safely) and, for the presets that send to a media server, the secret parts of
 * its URL.
 */

/** Shorter values are not masked: masking "1" or "on" everywhere would garble every message. */
const MIN_SECRET_LENGTH = 3;

/**
 * Parts of a media server URL that are secret without being `user:pass@`: the stream key (the last path
 * segment of rtmp://host/app/KEY) and query values (srt://host?streamid=..&passphrase=..), raw and decoded,
 * as ffmpeg echoes the URL it was given.
 */
export function urlSecrets(url: string): string[] {
  const out = new Set<string>();
  const add = (v: string) => {
    if (v.length < MIN_SECRET_LENGTH) return;
    out.add(v);
    try {
      out.add(decodeURIComponent(v));
    } catch {
      // not percent-encoded
    }
  };
  const rest = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, "");
  const [pathPart, query = ""] = rest.split(/[?#]/, 2);
  const segments = pathPart.split("/").filter(Boolean);
  if (segments.length >= 2) add(segments[segments.length - 1]);
  for (const pair of query.split("&")) {
    const eq = pair.indexOf("=");
    if (eq >= 0) add(pair.slice(eq + 1));
  }
  return [...out];
}

/** Every secret of a node: its credentials, plus the URL's secrets when the preset sends to `url`. */
export function transcodeSecrets(opts: {
  user?: string;
  password?: string;
  /** The target URL when the preset sends to one (flv, push); undefined otherwise. */
  url?: string;
}): (string | undefined)[] {
  const { user, password, url } = opts;
  return [
    password,
    user && user.length >= MIN_SECRET_LENGTH ? user : undefined,
    ...(url !== undefined ? urlSecrets(url) : []),
  ];
}
