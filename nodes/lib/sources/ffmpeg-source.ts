import {
  credentialSecrets,
  FfmpegProcess,
  redactCredentials,
  resolveFfmpegPath,
  rtspTimeoutOption,
} from "../ffmpeg";
import { MjpegPartParser } from "../mjpeg-parser";
import { CertificateError, ffmpegTlsArgs } from "../tls";
import { FrameSource, SourceConfig, SourceError, SourceErrorKind } from "./source";

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

/** What ffmpeg's stderr says about a failed input, as a source error kind. */
export function classifyFfmpegFailure(
  stderr: string[],
  code: number | null,
  isFile: boolean,
): SourceErrorKind {
  const text = stderr.join("\n");
  if (/401 Unauthorized|403 Forbidden|authorization failed/i.test(text)) return "auth";
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
  private parser?: MjpegPartParser;
  private gotBytes = false;

  constructor(config: SourceConfig) {
    super(config);
  }

  private get secrets(): string[] {
    return credentialSecrets(this.config.user, this.config.password);
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
    this.buildArgs(ffmpegPath).then(
      (args) => {
        if (!this.stopped) this.spawn(ffmpegPath, args);
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

  /** ffmpeg arguments; exported shape for tests through `FfmpegSource.buildArgs`. */
  async buildArgs(ffmpegPath: string): Promise<string[]> {
    const url = this.config.url.trim();
    const opts = this.config.options ?? {};
    const scheme = SCHEME.exec(url)?.[1].toLowerCase();
    const isFile = !scheme || scheme === "file";
    const isDevice = !scheme && url.startsWith("/dev/");
    const args = ["-hide_banner", "-nostdin", "-loglevel", "error", "-nostats"];
    if (scheme === "rtsp" || scheme === "rtsps") {
      const transport =
        typeof opts.rtspTransport === "string" && opts.rtspTransport ? opts.rtspTransport : "tcp";
      args.push("-rtsp_transport", transport, await rtspTimeoutOption(ffmpegPath), IO_TIMEOUT_US);
    } else if (scheme === "rtmp" || scheme === "rtmps" || scheme === "http" || scheme === "https") {
      args.push("-rw_timeout", IO_TIMEOUT_US);
    }
    if (isFile && !isDevice) {
      args.push("-re"); // a file plays at its real speed, like a camera
      if (opts.loop === true) args.push("-stream_loop", "-1");
    }
    if (opts.keyframesOnly === true) args.push("-skip_frame", "nokey");
    args.push(...(await ffmpegTlsArgs(url, this.config.tls)));
    args.push("-i", urlWithCredentials(url, this.config.user, this.config.password));
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
    return args;
  }

  private spawn(ffmpegPath: string, args: string[]): void {
    const isFile = !SCHEME.test(this.config.url.trim()) || /^file:/i.test(this.config.url.trim());
    const parser = new MjpegPartParser(
      (jpeg, width, height) => this.emitFrame(jpeg, width, height),
      (problem) => this.emit("warning", problem.message),
      { maxFrameBytes: this.config.maxFrameBytes },
    );
    this.parser = parser;
    const proc = new FfmpegProcess({ ffmpegPath, args, secrets: this.secrets, stderrLines: 12 });
    this.proc = proc;
    proc.on("exit", (code: number | null, signal: string | null) => {
      if (this.stopped) return;
      parser.reset();
      const lines = proc.lastStderr();
      const detail = lines.length ? `: ${lines.slice(-4).join(" | ")}` : "";
      if (proc.spawnError) {
        this.finish(new SourceError("config", `ffmpeg could not be started${detail}`));
        return;
      }
      const kind = classifyFfmpegFailure(lines, code, isFile);
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const what = kind === "ended" && code === 0 ? "input ended" : `ffmpeg ${how}`;
      this.finish(
        new SourceError(kind, redactCredentials(`${what} (${this.displayInput})${detail}`, this.secrets)),
      );
    });
    proc.start();
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
