/**
 * What WHEP needs to read from a browser's SDP offer before werift sees it: which H.264 variants it
 * receives (so the answer names one the camera's stream fits), and whether it wants audio as Opus.
 */
import { profileIdc } from "../codec/h264-rtp";

export interface OfferedH264 {
  payloadType: number;
  /** Lower-case six hex digits; "42001f" when the offer names none (RFC 6184's default). */
  profileLevelId: string;
  packetizationMode: number;
  /** The whole fmtp line's parameters, e.g. "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f". */
  parameters: string;
}

export interface OfferSummary {
  h264: OfferedH264[];
  /** The offer has an audio m-line that receives Opus. */
  opus: boolean;
  /** The offer has a video m-line at all. */
  video: boolean;
}

/** The m-lines of the offer with their rtpmap and fmtp attributes. */
export function readOffer(sdp: string): OfferSummary {
  const summary: OfferSummary = { h264: [], opus: false, video: false };
  let kind = "";
  let names = new Map<number, string>();
  let fmtp = new Map<number, string>();
  const flush = (): void => {
    if (kind === "video") {
      for (const [pt, name] of names) {
        if (name !== "h264/90000") continue;
        const parameters = fmtp.get(pt) ?? "";
        const params = new Map(
          parameters
            .split(";")
            .map((kv) => kv.trim().split("="))
            .filter((kv) => kv.length === 2)
            .map(([k, v]) => [k.trim().toLowerCase(), v.trim()]),
        );
        summary.h264.push({
          payloadType: pt,
          profileLevelId: (params.get("profile-level-id") ?? "42001f").toLowerCase(),
          packetizationMode: Number(params.get("packetization-mode") ?? 0),
          parameters,
        });
      }
    } else if (kind === "audio") {
      for (const name of names.values()) if (name.startsWith("opus/48000")) summary.opus = true;
    }
    names = new Map();
    fmtp = new Map();
  };
  for (const raw of sdp.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith("m=")) {
      flush();
      kind = line.slice(2).split(" ")[0];
      const port = line.split(" ")[1];
      if (kind === "video" && port !== "0") summary.video = true;
    }
    const rtpmap = /^a=rtpmap:(\d+) (\S+)/.exec(line);
    if (rtpmap) names.set(Number(rtpmap[1]), rtpmap[2].toLowerCase());
    const f = /^a=fmtp:(\d+) (.*)$/.exec(line);
    if (f) fmtp.set(Number(f[1]), f[2]);
  }
  flush();
  return summary;
}

/**
 * The offered H.264 variant the stream is sent as: packetization-mode 1 only (FU-A), the camera's own
 * profile-level-id when offered, else one of the same profile, else constrained baseline 42e01f (every
 * Chromium decodes any profile whatever the answer names), else the first mode-1 entry.
 */
export function chooseH264(
  offered: OfferedH264[],
  cameraProfileLevelId: string | undefined,
): OfferedH264 | undefined {
  const mode1 = offered.filter((o) => o.packetizationMode === 1);
  const camera = cameraProfileLevelId?.toLowerCase();
  const idc = profileIdc(camera);
  return (
    mode1.find((o) => o.profileLevelId === camera) ??
    mode1.find((o) => idc !== undefined && profileIdc(o.profileLevelId) === idc) ??
    mode1.find((o) => o.profileLevelId === "42e01f") ??
    mode1[0]
  );
}

/** An RFC 6381 codec string's H.264 profile-level-id ("avc1.64001f" -> "64001f"), if it is H.264. */
export function h264ProfileOf(codec: string): string | undefined {
  const video = codec.split(",")[0].trim();
  const m = /^avc[13]\.([0-9a-f]{6})$/i.exec(video);
  if (m) return m[1].toLowerCase();
  return /^avc[13]$/i.test(video) ? "42e01f" : undefined;
}
