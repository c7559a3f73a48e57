import {
  concatHasOptionDirective,
  credentialSecrets,
  FfmpegProcess,
  redactCredentials,
  resolveFfmpegPath,
  rtspTimeoutOption,
} from "../ffmpeg/ffmpeg";
import { JpegStreamSplitter } from "../codec/jpeg-stream-splitter";
import { CertificateError, ffmpegTlsArgs } from "./tls";
import { FrameSource, SourceConfig, SourceError, SourceErrorKind, SourceErrorReason } from "./source";

/** Socket I/O timeout for network inputs: a dead camera ends ffmpeg instead of hanging it. */
const IO_TIMEOUT_US = "5000000";
const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;

/** Puts url-encoded credentials into a URL (replacing any it had); only ever used for ffmpeg's arguments. */
export function urlWithCredentials(url: string, user?: string, password?: string): string {
  if (!user && !password) return url;
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(?:[^/?#]*@)?/i.exec(url);
  if (!m) return url;
  const userinfo = encodeURIComponent(user ?? "") + (password ? `:${encodeURIComponent(password)}` : "");
  return m[1] + userinfo + "@" + url.slice(m[0].length);
}

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

const USERINFO = /^([a-z][a-z0-9+.-]*:\/\/)([^/?#]*)@/i;

/** Splits `user:pass@` out of a URL; values are url-decoded (a malformed escape stays as typed). */
export function splitUserinfo(url: string): { url: string; user?: string; password?: string } {
  const m = USERINFO.exec(url);
  if (!m) return { url };
  const decode = (v: string) => {
    try {
      return decodeURIComponent(v);
    } catch {
      return v;
    }
  };
  const colon = m[2].indexOf(":");
  const user = decode(colon < 0 ? m[2] : m[2].slice(0, colon));
  const password = colon < 0 ? undefined : decode(m[2].slice(colon + 1));
  return { url: m[1] + url.slice(m[0].length), user: user || undefined, password: password || undefined };
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
  if (await concatHasOptionDirective(binaryPath)) {
    for (const [k, v] of inputOpts) lines.push(`option ${k} ${concatQuote(v)}`);
  } else if (tls.length > 0) {
    // Verification must not be lost silently: this binary cannot take input options behind the script.
    throw new Error(
      "this ffmpeg cannot verify the camera's certificate while keeping its password off the command line " +
        "(it is older than ffmpeg 5): install ffmpeg 5 or later, or put the camera in a local network and " +
        "turn Verify certificate off",
    );
  }
  // concat hands its whitelist on to the URL it opens; `pipe` is only for reading the script from stdin.
  const whitelist = ["pipe", ...protocolWhitelist(scheme)].join(",");
  const args = ["-protocol_whitelist", whitelist, "-f", "concat", "-safe", "0", "-i", "pipe:0"];
  return { args, stdin: lines.join("\n") + "\n", scheme, isFile, isDevice };
}

/** True when ffmpeg's stderr says the server refused the RTSP transport (VLC answers 461 to TCP). */
export function isTransportRefusal(stderr: string[]): boolean {
  return /461 Unsupported transport|Nonmatching transport/i.test(stderr.join("\n"));
}

/** The short reason for the node status of a refusal that retrying cannot fix, if stderr names one. */
export function failureReason(stderr: string[]): SourceErrorReason | undefined {
  const text = stderr.join("\n");
  if (/401 Unauthorized|403 Forbidden|authorization failed/i.test(text)) return "auth";
  if (/404 Not Found|No such file or directory/i.test(text)) return "notFound";
  if (isTransportRefusal(stderr)) return "transport";
  if (/Protocol not on whitelist|not on (the )?whitelist/i.test(text)) return "protocol";
  return undefined;
}

/** What ffmpeg's stderr says about a failed input, as a source error kind. */
export function classifyFfmpegFailure(
  stderr: string[],
  code: number | null,
  isFile: boolean,
): SourceErrorKind {
  const text = stderr.join("\n");
  if (/401 Unauthorized|403 Forbidden|authorization failed/i.test(text)) return "auth";
  if (isTransportRefusal(stderr)) return "config";
  // Retrying cannot fix a wrong path, scheme, format or option.
  if (
    /No such file or directory|Protocol not found|Unknown input format|Unrecognized option|Option not found|404 Not Found|Permission denied|Error opening filters|No such device|Peer certificate failed verification|certificate's owner does not match/i.test(
      text,
    )
  ) {
    return "config";
  }
  if (/Invalid data found when processing input|does not contain any stream|Invalid argument/i.test(text)) {
    // A bad file stays bad; a camera sending garbage may recover after a restart.
    return isFile ? "config" : "protocol";
  }
  if (code === 0) return "ended";
  if (isFile && !/Connection|timed out|network/i.test(text)) return "ended";
  return "network";
}

/**
 * The `ffmpeg` camera protocol: anything ffmpeg opens (RTSP, RTMP, HLS, http, files, V4L2 devices) decoded
 * once and re-encoded to JPEG frames on stdout, split by the MJPEG parser.
 */
export class FfmpegSource extends FrameSource {
  private proc?: FfmpegProcess;
  private parser?: JpegStreamSplitter;
  private gotBytes = false;
  /** The RTSP transport of this attempt; `auto` starts with TCP and falls back to UDP on a refusal. */
  private transport: string;

  constructor(config: SourceConfig) {
    super(config);
    const wanted = config.options?.rtspTransport;
    this.transport = typeof wanted === "string" && wanted && wanted !== "auto" ? wanted : "tcp";
  }

  private get autoTransport(): boolean {
    const wanted = this.config.options?.rtspTransport;
    return wanted === undefined || wanted === "" || wanted === "auto";
  }

  private get secrets(): string[] {
    const inUrl = splitUserinfo(this.config.url.trim());
    return [
      ...credentialSecrets(this.config.user, this.config.password),
      ...credentialSecrets(inUrl.user, inUrl.password),
    ];
  }

  /** The input as people may see it: no credentials. */
  private get displayInput(): string {
    return redactCredentials(this.config.url, this.secrets);
  }

  start(): void {
    let ffmpegPath: string;
    try {
      ffmpegPath = this.config.ffmpegPath || resolveFfmpegPath();
    } catch (err) {
      setImmediate(() => this.finish(new SourceError("config", (err as Error).message)));
      return;
    }
    this.launch(ffmpegPath);
  }

  private launch(ffmpegPath: string): void {
    this.buildCommand(ffmpegPath).then(
      (command) => {
        if (!this.stopped) this.spawn(ffmpegPath, command.args, command.stdin);
      },
      (err: Error) =>
        this.finish(
          err instanceof CertificateError
            ? err
            : new SourceError(
                err instanceof SourceError ? err.kind : "config",
                redactCredentials(err.message, this.secrets),
              ),
        ),
    );
  }

  /** ffmpeg arguments (no credentials in them); exported shape for tests. */
  async buildArgs(ffmpegPath: string): Promise<string[]> {
    return (await this.buildCommand(ffmpegPath)).args;
  }

  /** ffmpeg arguments and what to write to its stdin (the input URL when it carries credentials). */
  async buildCommand(ffmpegPath: string): Promise<{ args: string[]; stdin?: string }> {
    const opts = this.config.options ?? {};
    const input = await ffmpegInput(ffmpegPath, this.config.url, {
      user: this.config.user,
      password: this.config.password,
      rtspTransport: this.transport,
      ioTimeout: true,
      // https/rtmps: ffmpeg verifies the certificate (or the pinned one) itself.
      tlsArgs: await ffmpegTlsArgs(this.config.url, this.config.tls),
    });
    const args = ["-hide_banner", "-nostdin", "-loglevel", "error", "-nostats"];
    if (input.isFile && !input.isDevice) {
      args.push("-re"); // a file plays at its real speed, like a camera
      if (opts.loop === true) args.push("-stream_loop", "-1");
    }
    if (opts.keyframesOnly === true) args.push("-skip_frame", "nokey");
    args.push(...input.args);
    const quality =
      typeof opts.quality === "number" && opts.quality >= 1 && opts.quality <= 31 ? opts.quality : 5;
    args.push("-an", "-sn", "-dn");
    const fps = this.config.fps;
    if (fps > 0) {
      // At most one frame per 1/fps slot of stream time; unlike the fps filter it never duplicates frames
      // when the input is slower than the cap.
      args.push(
        "-vf",
        `select='isnan(prev_selected_t)+gte(floor(t*${fps})-floor(prev_selected_t*${fps}),1)'`,
      );
      args.push("-vsync", "vfr");
    }
    args.push("-f", "image2pipe", "-c:v", "mjpeg", "-q:v", String(Math.round(quality)), "pipe:1");
    return { args, stdin: input.stdin };
  }

  private spawn(ffmpegPath: string, args: string[], stdin?: string): void {
    const isFile = !SCHEME.test(this.config.url.trim()) || /^file:/i.test(this.config.url.trim());
    const parser = new JpegStreamSplitter(
      (jpeg, width, height) => this.emitFrame(jpeg, width, height),
      (problem) => this.warn(problem.message),
      { maxFrameBytes: this.config.maxFrameBytes },
    );
    this.parser = parser;
    const proc = new FfmpegProcess({
      ffmpegPath,
      args,
      secrets: this.secrets,
      stderrLines: 12,
      stdin: stdin !== undefined,
    });
    this.proc = proc;
    proc.on("exit", (code: number | null, signal: string | null) => {
      if (this.stopped) return;
      parser.reset();
      const lines = proc.lastStderr();
      if (isTransportRefusal(lines) && this.autoTransport && this.transport === "tcp" && !this.gotBytes) {
        // `auto`: the server refused RTP over TCP (VLC speaks only UDP); try UDP at once, as ffmpeg would.
        this.transport = "udp";
        this.proc = undefined;
        this.launch(ffmpegPath);
        return;
      }
      const detail = lines.length ? `: ${lines.slice(-4).join(" | ")}` : "";
      if (proc.spawnError) {
        this.finish(new SourceError("config", `ffmpeg could not be started${detail}`));
        return;
      }
      const kind = classifyFfmpegFailure(lines, code, isFile);
      const reason = failureReason(lines);
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const what = kind === "ended" && code === 0 ? "input ended" : `ffmpeg ${how}`;
      this.finish(
        new SourceError(
          kind,
          redactCredentials(`${what} (${this.displayInput})${detail}`, this.secrets),
          reason,
        ),
      );
    });
    proc.start();
    if (stdin !== undefined) proc.stdin?.end(stdin);
    proc.stdout?.on("data", (chunk: Buffer) => {
      if (!this.gotBytes) {
        this.gotBytes = true;
        this.emit("connected");
      }
      parser.push(chunk);
    });
  }

  /** The running ffmpeg's pid, for tests and diagnostics. */
  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** The ffmpeg command, credentials redacted. */
  commandLine(): string | undefined {
    return this.proc?.commandLine();
  }

  protected release(): void {
    const proc = this.proc;
    this.proc = undefined;
    if (proc) void proc.stop(3000);
  }
}
