import path from "path";
import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from "node-red";
import { redactCredentials } from "./lib/credentials";
import { resolveFfmpegPath, rtspTimeoutOption, type FfmpegProgress } from "./lib/ffmpeg";
import { monotonicEpochMs, type Frame } from "./lib/media";
import { frameFromMessage } from "./lib/messages";
import {
  Recorder,
  RecorderError,
  ensureWritableDirectory,
  sanitizeCameraName,
  stamp,
  type RecordingInfo,
} from "./lib/transcode/recorder";
import { RetentionSweeper } from "./lib/transcode/retention";
import {
  DEFAULT_MAX_SIZE,
  PRESETS,
  chooseEncoder,
  flvArgs,
  fmp4PipeArgs,
  inputArgs,
  parseSize,
  pushArgs,
  splitArgs,
  urlWithCredentials,
  videoArgs,
  type EncoderProfile,
  type Preset,
  type VideoSettings,
} from "./lib/transcode/args";
import {
  LiveTranscoder,
  failureCause,
  sweepHlsDirectory,
  type LiveOutput,
  type LiveState,
  type Mp4MessageInfo,
} from "./lib/transcode/live";
import { FrameClock, MAX_FRAME_SIDE, oversizeFrame } from "./lib/transcode/session";

interface TranscodeDef extends NodeDef {
  preset: string;
  directory: string;
  url: string;
  size: string;
  maxSize: string;
  quality: number | string;
  bitrate: number | string;
  keyframeInterval: number | string;
  encoder: string;
  preRoll: number | string;
  postRoll: number | string;
  duration: number | string;
  maxDuration: number | string;
  keepDays: number | string;
  keepGB: number | string;
  preRollMaxMB: number | string;
  customArgs: string;
  ffmpegPath: string;
}

type Credentials = { user: unknown; password: unknown };
type Done = (err?: Error) => void;
type ControlMessage = NodeMessageInFlow & { action?: unknown; duration?: unknown; filename?: unknown };

function num(v: unknown, fallback: number, min = 0, max = Infinity): number {
  const n = typeof v === "string" && v.trim() === "" ? NaN : Number(v);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : fallback;
}

function mmss(sec: number): string {
  const s = Math.max(0, Math.floor(sec));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, "0");
  const ss = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

/**
 * Parts of a media server URL that are secret without being `user:pass@`: the stream key (the last path
 * segment of rtmp://host/app/KEY) and query values (srt://host?streamid=..&passphrase=..), raw and decoded,
 * as ffmpeg echoes the URL it was given.
 */
function urlSecrets(url: string): string[] {
  const out = new Set<string>();
  const add = (v: string) => {
    if (v.length < 3) return; // masking "1" or "on" everywhere would garble every message
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

function rate(kbps: number): string {
  return kbps >= 1000 ? `${(kbps / 1000).toFixed(1)}Mb/s` : `${Math.round(kbps)}kb/s`;
}

export = (RED: NodeAPI) => {
  function FfmpegTranscode(this: Node<Credentials>, config: TranscodeDef) {
    RED.nodes.createNode(this, config);
    const t = (key: string, params?: Record<string, string | number>) =>
      RED._(`ffmpeg-transcode.${key}`, params);
    const preset: Preset = (PRESETS as readonly string[]).includes(config.preset)
      ? (config.preset as Preset)
      : "mp4";
    const cred = (v: unknown): string | undefined => (typeof v === "string" && v ? v : undefined);
    const user = cred(this.credentials?.user);
    const password = cred(this.credentials?.password);
    const secrets = [
      password,
      user && user.length >= 3 ? user : undefined,
      ...(preset === "push" || preset === "flv" ? urlSecrets((config.url ?? "").trim()) : []),
    ];
    const redact = (text: string) => redactCredentials(text, secrets);
    const directory = (config.directory ?? "").trim() ? path.resolve(config.directory.trim()) : "";
    // Defaults as in the editor (ffmpeg-transcode.html), for flows written by hand.
    const preRollSec = num(config.preRoll, 5, 0, 600);
    const size = parseSize(config.size);
    // The cap on a frame's own size (a camera or message cannot make ffmpeg encode 8000x8000).
    const maxSizeText = (config.maxSize ?? "").trim();
    const maxSize = parseSize(maxSizeText) ?? DEFAULT_MAX_SIZE;
    const videoBase = {
      width: size?.width,
      height: size?.height,
      maxSize,
      quality: num(config.quality, 23, 0, 51),
      bitrate: num(config.bitrate, 0, 0, 100000),
      keyframeInterval: num(config.keyframeInterval, 1, 0.2, 60),
    };

    let recorder: Recorder | undefined;
    let live: LiveTranscoder | undefined;
    let closed = false;
    let fatal: string | undefined;
    let lastProgress: FfmpegProgress | undefined;
    let lastStatus = "";
    let errorUntil = 0;
    let errorText = "";
    let camera = config.name || "camera";
    let lastDropWarn = 0;
    /** The cause of the failure last logged; cleared when ffmpeg runs again (one log line per outage). */
    let reportedCause: string | undefined;
    let oversizeReported = false;
    const frameTimes: number[] = [];
    const clock = new FrameClock();
    /** Bytes of fMP4 sent in the last seconds: the rate ffmpeg cannot report for its tee output. */
    const sentBytes: { at: number; bytes: number }[] = [];
    const hlsDirectory = preset === "hls" && directory ? directory : undefined;
    let hlsSweeping = false;
    let lastHlsSweep = 0;

    const setStatus = (status: NodeStatus) => {
      const key = JSON.stringify(status);
      if (key === lastStatus) return;
      lastStatus = key;
      this.status(status);
    };

    const inputFps = (): number => {
      const now = Date.now();
      while (frameTimes.length && frameTimes[0] < now - 5000) frameTimes.shift();
      if (frameTimes.length < 2) return frameTimes.length;
      return ((frameTimes.length - 1) * 1000) / Math.max(1000, now - frameTimes[0]);
    };

    /** ffmpeg's own bitrate, or for fMP4 on stdout (hls, fmp4: with a directory ffmpeg reports 0) what we sent. */
    const outputKbps = (): number => {
      if (preset !== "hls" && preset !== "fmp4") return lastProgress?.kbps ?? 0;
      const now = Date.now();
      while (sentBytes.length && sentBytes[0].at < now - 5000) sentBytes.shift();
      if (!sentBytes.length) return 0;
      const bytes = sentBytes.reduce((n, s) => n + s.bytes, 0);
      return (bytes * 8) / Math.max(1000, now - sentBytes[0].at);
    };

    /** The one place that maps what the node is doing to its status. */
    const showStatus = () => {
      if (fatal) return setStatus({ fill: "red", shape: "ring", text: fatal });
      if (Date.now() < errorUntil) return setStatus({ fill: "red", shape: "ring", text: errorText });
      const kbps = outputKbps();
      if (recorder) {
        if (recorder.recording) {
          return setStatus({
            fill: "blue",
            shape: "dot",
            text: t("status.recording", { time: mmss(recorder.elapsedSec), rate: rate(kbps) }),
          });
        }
        if (inputFps() === 0) return setStatus({ fill: "grey", shape: "ring", text: t("status.waiting") });
        return setStatus({
          fill: "green",
          shape: "ring",
          text: t("status.idle", { s: Math.floor(Math.min(preRollSec, recorder.preRoll.spanMs / 1000)) }),
        });
      }
      if (live) {
        const state: LiveState = live.state;
        switch (state) {
          case "live":
            return setStatus({
              fill: "green",
              shape: "dot",
              text: t("status.live", { fps: Math.round(inputFps()), rate: rate(kbps) }),
            });
          case "starting":
            return setStatus({ fill: "yellow", shape: "ring", text: t("status.starting") });
          case "retrying":
            return setStatus({ fill: "red", shape: "ring", text: t("status.retrying") });
          case "paused":
            return setStatus({ fill: "grey", shape: "ring", text: t("status.stopped") });
          default:
            return setStatus({ fill: "grey", shape: "ring", text: t("status.waiting") });
        }
      }
      setStatus({ fill: "yellow", shape: "ring", text: t("status.starting") });
    };

    const failure = (message: string, statusKey = "status.error") => {
      const text = redact(message);
      errorText = t(statusKey);
      errorUntil = Date.now() + 5000;
      this.error(text);
      showStatus();
    };

    /** A live run failed: log its cause once per outage (every retry failing the same way stays quiet). */
    const liveFailure = (message: string) => {
      const cause = failureCause(message);
      if (cause === reportedCause) {
        errorText = t("status.error");
        errorUntil = Date.now() + 5000;
        return showStatus();
      }
      reportedCause = cause;
      failure(t("errors.failedRetrying", { cause, detail: message }));
    };

    const onLiveState = (state: LiveState) => {
      if (state === "live" && reportedCause !== undefined) {
        reportedCause = undefined;
        this.log(t("errors.recovered"));
      }
      showStatus();
    };

    const onDropped = (count: number) => {
      if (Date.now() - lastDropWarn < 10000) return;
      lastDropWarn = Date.now();
      this.warn(t("errors.dropping", { count }));
    };

    const onProgress = (p: FfmpegProgress) => {
      lastProgress = p;
    };

    let ffmpegPath = "";
    try {
      ffmpegPath = resolveFfmpegPath(config.ffmpegPath);
    } catch (err) {
      fatal = t("status.noFfmpeg");
      this.error(redact((err as Error).message));
    }

    const liveOutput = (
      encoder: EncoderProfile,
      rtspTimeout: string | undefined,
    ): ((width: number, height: number, fps: number) => LiveOutput) => {
      const video: VideoSettings = { ...videoBase, encoder };
      const encode = (w: number, h: number, fps: number) => [
        ...inputArgs(encoder),
        ...videoArgs(video, w, h, true, fps),
      ];
      switch (preset) {
        case "hls":
        case "fmp4": {
          const hlsDir = preset === "hls" && directory ? directory : undefined;
          return (w, h, fps) => {
            let dir = hlsDir;
            if (dir) {
              try {
                ensureWritableDirectory(dir);
              } catch (err) {
                // The live fMP4 output does not need the directory: keep it running and say why HLS files are missing.
                failure((err as Error).message);
                dir = undefined;
              }
            }
            return {
              args: [...encode(w, h, fps), ...fmp4PipeArgs(dir, videoBase.keyframeInterval)],
              stdout: "fmp4",
            };
          };
        }
        case "flv":
          return (w, h, fps) => {
            const target = (config.url ?? "").trim()
              ? urlWithCredentials(config.url.trim(), user, password)
              : uniqueFlv();
            return { args: [...encode(w, h, fps), ...flvArgs(target)], stdout: "none" };
          };
        case "push":
          return (w, h, fps) => ({
            args: [
              ...encode(w, h, fps),
              ...pushArgs(urlWithCredentials((config.url ?? "").trim(), user, password), rtspTimeout),
            ],
            stdout: "none",
          });
        default: {
          const custom = splitArgs(config.customArgs ?? "");
          const last = custom[custom.length - 1];
          const stdout = last === "-" || last === "pipe:1" || last === "pipe:" ? "raw" : "none";
          return () => ({ args: [...inputArgs(encoder), ...custom], stdout });
        }
      }
    };

    const uniqueFlv = (): string => {
      ensureWritableDirectory(directory);
      const now = Date.now();
      return path.join(directory, `${sanitizeCameraName(camera)}-${stamp(now)}-${now % 1000}.flv`);
    };

    /** Settings that cannot work are reported at deploy, not at the first frame. */
    const checkSettings = (): string | undefined => {
      switch (preset) {
        case "mp4":
          return directory ? undefined : t("errors.noDirectory");
        case "flv":
          return directory || (config.url ?? "").trim() ? undefined : t("errors.noTarget");
        case "push":
          try {
            pushArgs((config.url ?? "").trim());
            return undefined;
          } catch (err) {
            return (err as Error).message;
          }
        case "custom":
          try {
            return splitArgs(config.customArgs ?? "").length ? undefined : t("errors.noCustomArgs");
          } catch (err) {
            return (err as Error).message;
          }
        default:
          return undefined;
      }
    };

    const sendRecording = (info: RecordingInfo) => {
      lastProgress = undefined;
      this.send({ payload: info.file, topic: info.camera, recording: info } as any);
    };

    const setup = ([encoder, rtspTimeout]: [EncoderProfile, string | undefined]) => {
      if (closed) return;
      if (preset === "mp4") {
        const retention = new RetentionSweeper({
          directory,
          keepDays: num(config.keepDays, 0, 0),
          keepGB: num(config.keepGB, 0, 0),
          isProtected: (file) => recorder?.isInProgress(file) ?? false,
          // Recordings are stamped with frame times, which come from the monotonic clock.
          now: monotonicEpochMs,
          warn: (m) => this.warn(m),
        });
        recorder = new Recorder({
          ffmpegPath,
          directory,
          camera,
          preRollSec,
          preRollMaxBytes: num(config.preRollMaxMB, 64, 1, 4096) * 1024 * 1024,
          postRollSec: num(config.postRoll, 5, 0, 3600),
          defaultDurationSec: num(config.duration, 0, 0, 86400),
          maxDurationSec: num(config.maxDuration, 300, 0, 86400),
          video: { ...videoBase, encoder },
          secrets,
          retention,
        });
        recorder.on("recording", sendRecording);
        recorder.on("progress", onProgress);
        recorder.on("failure", (m: string) => failure(m));
        recorder.on("dropped", onDropped);
        if (retention.enabled) {
          retention.sweep().catch((err: Error) => this.warn(err.message));
        }
      } else {
        live = new LiveTranscoder({
          ffmpegPath,
          output: liveOutput(encoder, rtspTimeout),
          secrets,
          keyframeInterval: videoBase.keyframeInterval,
        });
        live.on("init", (data: Buffer, info: Mp4MessageInfo) =>
          this.send({ payload: data, topic: camera, mp4: info } as any),
        );
        live.on("fragment", (data: Buffer, info: Mp4MessageInfo) => {
          sentBytes.push({ at: Date.now(), bytes: data.length });
          if (sentBytes.length > 1000) sentBytes.shift();
          this.send({ payload: data, topic: camera, mp4: info } as any);
        });
        live.on("data", (data: Buffer) => this.send({ payload: data, topic: camera } as any));
        live.on("progress", onProgress);
        live.on("failure", liveFailure);
        live.on("state", onLiveState);
        live.on("dropped", onDropped);
      }
      showStatus();
    };

    const settingsError = fatal ? undefined : checkSettings();
    if (settingsError) {
      fatal = t("status.badSettings");
      this.error(redact(settingsError));
    }
    if (!fatal) {
      Promise.all([
        chooseEncoder(ffmpegPath, config.encoder),
        preset === "push" ? rtspTimeoutOption(ffmpegPath) : undefined,
      ]).then(setup, (err: Error) => failure(err.message));
      if (maxSizeText && !parseSize(maxSizeText)) {
        this.warn(t("errors.badMaxSize", { size: maxSizeText, max: `${maxSize.width}x${maxSize.height}` }));
      }
    }
    showStatus();

    /** Earlier runs' segments the playlist no longer lists (ffmpeg deletes only its own run's). */
    const sweepHls = () => {
      if (!hlsDirectory || hlsSweeping || Date.now() - lastHlsSweep < 10000) return;
      hlsSweeping = true;
      lastHlsSweep = Date.now();
      const minAgeMs = Math.max(30000, videoBase.keyframeInterval * 3000);
      void sweepHlsDirectory(hlsDirectory, minAgeMs).finally(() => (hlsSweeping = false));
    };
    sweepHls();

    const tick = setInterval(() => {
      recorder?.tick(monotonicEpochMs());
      sweepHls();
      showStatus();
    }, 1000);
    // Hourly retention even when nothing is recorded.
    const sweepTimer = setInterval(() => {
      if (recorder && !closed) recorder.sweep().catch((err: Error) => this.warn(err.message));
    }, 3600 * 1000);

    const control = (msg: ControlMessage, done: Done) => {
      const action = msg.action;
      if (action !== "start" && action !== "stop") {
        return done(new Error(t("errors.badAction", { action: String(action) })));
      }
      if (fatal) return done(new Error(fatal));
      if (live) {
        if (action === "stop") void live.pause();
        else live.resume();
        showStatus();
        return done();
      }
      if (!recorder) return done(new Error(t("errors.notReady")));
      const now = monotonicEpochMs();
      if (action === "stop") {
        recorder.stop(now);
        return done();
      }
      let duration: number | undefined;
      if (msg.duration !== undefined && msg.duration !== null && msg.duration !== "") {
        duration = Number(msg.duration);
        if (!Number.isFinite(duration) || duration <= 0 || duration > 86400) {
          return done(new Error(t("errors.badDuration")));
        }
      }
      try {
        recorder.start({
          time: now,
          duration,
          filename: msg.filename === undefined ? undefined : (msg.filename as string),
          trigger: { topic: msg.topic, payload: msg.payload },
        });
      } catch (err) {
        if (err instanceof RecorderError) {
          errorText = t("status.refused");
          errorUntil = Date.now() + 5000;
          showStatus();
          return done(err);
        }
        throw err;
      }
      showStatus();
      done();
    };

    this.on("input", (msg: NodeMessageInFlow, _send: unknown, done: Done) => {
      const m = msg as ControlMessage;
      if (m.action !== undefined) return control(m, done);
      const frame: Frame | undefined = frameFromMessage(m);
      if (!frame) return done(new Error(t("errors.notFrame")));
      const tooBig = oversizeFrame(frame);
      if (tooBig) {
        // One error per run of oversized frames, not one per frame.
        if (oversizeReported) return done();
        oversizeReported = true;
        const max = `${MAX_FRAME_SIDE}x${MAX_FRAME_SIDE}`;
        return done(new Error(t("errors.frameTooBig", { size: `${tooBig.width}x${tooBig.height}`, max })));
      }
      oversizeReported = false;
      // Frame times from a clock that jumps (hours ahead or back) must not stop ffmpeg's output.
      frame.time = clock.correct(frame.time, monotonicEpochMs());
      if (frame.camera) camera = frame.camera;
      frameTimes.push(Date.now());
      if (frameTimes.length > 600) frameTimes.shift();
      if (recorder) recorder.push(frame);
      else live?.push(frame);
      done();
    });

    this.on("close", (_removed: boolean, done: () => void) => {
      closed = true;
      clearInterval(tick);
      clearInterval(sweepTimer);
      let finished = false;
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(guard);
        this.status({});
        done();
      };
      // FfmpegProcess escalates to SIGKILL well before this; the guard only keeps close() within 15 s.
      const guard = setTimeout(finish, 14000);
      Promise.all([recorder?.close(monotonicEpochMs()), live?.close()])
        .catch((err: Error) => this.warn(err.message))
        .finally(finish);
    });
  }

  RED.nodes.registerType("ffmpeg-transcode", FfmpegTranscode, {
    credentials: { user: { type: "text" }, password: { type: "password" } },
  });
};
