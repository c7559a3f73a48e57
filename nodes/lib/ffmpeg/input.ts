/**
 * The input half of an ffmpeg or ffprobe command line for a camera: scheme checks, the protocol whitelist,
 * RTSP transport and socket timeouts, and keeping a URL with credentials out of argv (an ffconcat script on
 * stdin instead).
 */
import { splitUserinfo, urlWithCredentials } from "../credentials";
import { concatHasOptionDirective, rtspTimeoutOption } from "./capabilities";

/** Socket I/O timeout for network inputs: a dead camera ends ffmpeg instead of hanging it. */
const IO_TIMEOUT_US = "5000000";
const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/**
 * The protocols ffmpeg may use for each network scheme (`-protocol_whitelist`): nested opens (HLS segments,
 * redirects, RTSP's RTP) stay on the network and never reach `file:`, `concat:`, `subfile:` or `data:`.
 */
const NETWORK_PROTOCOLS: Record<string, string[]> = {
  rtsp: ["rtsp", "rtsps", "rtp", "srtp", "tcp", "udp", "tls", "http", "https", "httpproxy"],
  http: ["http", "https", "tcp", "tls", "httpproxy", "crypto"],
  rtmp: ["rtmp", "rtmps", "rtmpt", "rtmpts", "rtmpe", "rtmpte", "ffrtmphttp", "ffrtmpcrypt", "tcp", "tls"],
  srt: ["srt", "udp"],
  rtp: ["rtp", "srtp", "udp"],
};
const SCHEME_FAMILY: Record<string, string> = {
  rtsps: "rtsp",
  https: "http",
  hls: "http",
  rtmps: "rtmp",
  rtmpt: "rtmp",
  rtmpts: "rtmp",
  rtmpe: "rtmp",
  rtmpte: "rtmp",
  srtp: "rtp",
};

/** `-protocol_whitelist` for a network URL's scheme; any other scheme gets itself and plain sockets. */
export function protocolWhitelist(scheme: string): string[] {
  const s = scheme.toLowerCase();
  return NETWORK_PROTOCOLS[SCHEME_FAMILY[s] ?? s] ?? [s, "tcp", "udp", "tls"];
}

/** How one input reaches ffmpeg: options and `-i ...`, and a concat script for stdin when it holds a secret. */
export interface FfmpegInput {
  args: string[];
  /** Write this to ffmpeg's stdin and close it (the ffconcat script naming the URL with its credentials). */
  stdin?: string;
  scheme?: string;
  isFile: boolean;
  isDevice: boolean;
  /**
   * The certificate was checked by camrelay just before (ffmpegTlsArgs: the CA chain or the pin), but this
   * ffmpeg cannot check it again itself behind the credentials script (older than ffmpeg 5: no `option`
   * lines). The caller says so once.
   */
  tlsCheckedOnlyBefore?: boolean;
}

export interface FfmpegInputOptions {
  user?: string;
  password?: string;
  /** "tcp", "udp", "http", "udp_multicast": one RTSP lower transport (the `auto` choice is made by the caller). */
  rtspTransport?: string;
  /** Socket timeouts for network inputs (the running camera; the probe has its own kill timer). */
  ioTimeout?: boolean;
  /** Certificate options for https/rtmps inputs (`-tls_verify 1 -ca_file ...`, from ffmpegTlsArgs). */
  tlsArgs?: string[];
}

/** One ffconcat token, quoted by av_get_token's rules: a backslash is literal inside quotes, `'` is `'\''`. */
function concatQuote(value: string): string {
  return `'${value.replace(/'/g, "'\\''")}'`;
}

/**
 * The input half of an ffmpeg or ffprobe command line. A URL with credentials never goes into argv (every
 * local user reads argv with `ps`): it goes into an ffconcat script that ffmpeg reads from stdin
 * (`-f concat -i pipe:0`). Input options then travel as the script's `option` lines where the binary knows
 * them (ffmpeg 5 and later); a binary without them loses the RTSP transport choice and the socket timeout
 * (the camera's watchdog ends a silent connection instead).
 */
export async function ffmpegInput(
  binaryPath: string,
  rawUrl: string,
  opts: FfmpegInputOptions = {},
): Promise<FfmpegInput> {
  const trimmed = rawUrl.trim();
  const scheme = SCHEME.exec(trimmed)?.[1].toLowerCase();
  const isFile = !scheme || scheme === "file";
  const isDevice = !scheme && trimmed.startsWith("/dev/");
  if (!scheme && /^[a-z][a-z0-9+.-]+:/i.test(trimmed)) {
    // concat:, subfile:, data:, pipe:... are ffmpeg protocols, not files: they could read any local file.
    throw new Error(
      `"${trimmed.split(":")[0]}:" inputs are not supported: use a network URL (rtsp://, http://...), ` +
        `a file path, a file: URL or a device`,
    );
  }
  if (/\p{Cc}/u.test(trimmed)) throw new Error("the input contains control characters");
  const parts = scheme ? splitUserinfo(trimmed) : { url: trimmed };
  const user = opts.user || parts.user;
  const password = opts.password || parts.password;
  const inputOpts: Array<[string, string]> = [];
  const isRtsp = scheme === "rtsp" || scheme === "rtsps";
  if (isRtsp) {
    inputOpts.push(["rtsp_transport", opts.rtspTransport || "tcp"]);
    if (opts.ioTimeout) inputOpts.push([(await rtspTimeoutOption(binaryPath)).slice(1), IO_TIMEOUT_US]);
  } else if (opts.ioTimeout && scheme && ["rtmp", "rtmps", "http", "https"].includes(scheme)) {
    inputOpts.push(["rw_timeout", IO_TIMEOUT_US]);
  }
  if (!scheme || (!user && !password)) {
    // A deliberate local file keeps ffmpeg's own defaults (a local playlist or SDP may name network parts).
    const args = scheme && !isFile ? ["-protocol_whitelist", protocolWhitelist(scheme).join(",")] : [];
    for (const [k, v] of inputOpts) args.push(`-${k}`, v);
    args.push(...(opts.tlsArgs ?? []), "-i", parts.url);
    return { args, scheme, isFile, isDevice };
  }
  const url = urlWithCredentials(parts.url, user, password);
  const lines = ["ffconcat version 1.0", `file ${concatQuote(url)}`];
  // Without `option` lines (ffmpeg 4.x) no input option reaches the URL: ffmpeg then picks the RTSP transport
  // itself (UDP, then TCP on a refusal or after 10 s without packets) and has no socket timeout.
  const tls = opts.tlsArgs ?? [];
  for (let i = 0; i + 1 < tls.length; i += 2) inputOpts.push([tls[i].replace(/^-/, ""), tls[i + 1]]);
  const withOptions = await concatHasOptionDirective(binaryPath);
  if (withOptions) {
    for (const [k, v] of inputOpts) lines.push(`option ${k} ${concatQuote(v)}`);
  }
  // concat hands its whitelist on to the URL it opens; `pipe` is only for reading the script from stdin.
  const whitelist = ["pipe", ...protocolWhitelist(scheme)].join(",");
  const args = ["-protocol_whitelist", whitelist, "-f", "concat", "-safe", "0", "-i", "pipe:0"];
  // Without option lines the password still stays off argv; the certificate is then checked by camrelay
  // alone, right before ffmpeg starts (ffmpegTlsArgs), not a second time by ffmpeg.
  const tlsCheckedOnlyBefore = !withOptions && tls.length > 0 ? true : undefined;
  return { args, stdin: lines.join("\n") + "\n", scheme, isFile, isDevice, tlsCheckedOnlyBefore };
}
