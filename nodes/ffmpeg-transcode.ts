import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from "node-red";
import {
  redactCredentials,
  resolveFfmpegPath,
  rtspTimeoutOption,
  type FfmpegProgress,
} from "./lib/ffmpeg/ffmpeg";
import { monotonicEpochMs } from "./lib/media";
import { frameFromMessage, mp4Message, recordingMessage, type RecordingInfo } from "./lib/messages";
import { RateMeter } from "./lib/meters";
import { ENCODERS, chooseEncoder, type EncoderProfile } from "./lib/transcode/args";
import { readAction, readStart, type ControlMessage } from "./lib/transcode/control";
import { FrameClock } from "./lib/transcode/frame-clock";
import { LiveTranscoder, failureCause, hlsSweeper, type LiveState } from "./lib/transcode/live";
import { liveOutput } from "./lib/transcode/outputs";
import { transcodeSecrets } from "./lib/transcode/push-secrets";
import { Recorder, RecorderError } from "./lib/transcode/recorder";
import { RetentionSweeper } from "./lib/transcode/retention";
import { MAX_FRAME_SIDE, oversizeFrame } from "./lib/transcode/session";
import {
  readTranscodeSettings,
  sendsToUrl,
  settingsProblem,
  type Message,
  type TranscodeConfig,
} from "./lib/transcode/settings";
import { transcodeStatus } from "./lib/transcode/status";
import { StatusReporter } from "./support/status-reporter";

type TranscodeDef = NodeDef & TranscodeConfig;
type Credentials = { user: unknown; password: unknown };
type Done = (err?: Error) => void;

/** How long an error shows in the status, and how often "not keeping up" is logged at most. */
const ERROR_SHOWN_MS = 5000;
const DROP_WARN_MS = 10000;

export = (RED: NodeAPI) => {
  function FfmpegTranscode(this: Node<Credentials>, config: TranscodeDef) {
    RED.nodes.createNode(this, config);
    const t = (m: Message) => RED._(`ffmpeg-transcode.${m.key}`, m.params);
    const tk = (key: string, params?: Message["params"]) => t({ key, params });
    const s = readTranscodeSettings(config);
    const cred = (v: unknown): string | undefined => (typeof v === "string" && v ? v : undefined);
    const user = cred(this.credentials?.user);
    const password = cred(this.credentials?.password);
    const secrets = transcodeSecrets({ user, password, url: sendsToUrl(s.preset) ? s.url : undefined });
    const redact = (text: string) => redactCredentials(text, secrets);
    const status = new StatusReporter(this);

    let recorder: Recorder | undefined;
    let live: LiveTranscoder | undefined;
    let closed = false;
    let fatalKey: string | undefined;
    let lastProgress: FfmpegProgress | undefined;
    let error = { key: "", until: 0 };
    let camera = config.name || "camera";
    let lastDropWarn = 0;
    /** The cause of the failure last logged; cleared when ffmpeg runs again (one log line per outage). */
    let reportedCause: string | undefined;
    let oversizeReported = false;
    const inputRate = new RateMeter(5000);
    /** Bytes of fMP4 sent: the rate ffmpeg cannot report for its tee output. */
    const sentRate = new RateMeter(5000);
    const clock = new FrameClock();

    /** ffmpeg's own bitrate, or for fMP4 on stdout (hls, fmp4: with a directory ffmpeg reports 0) what we sent. */
    const outputKbps = (): number =>
      s.preset === "hls" || s.preset === "fmp4"
        ? (sentRate.perSecond() * 8) / 1000
        : (lastProgress?.kbps ?? 0);

    const showStatus = () => {
      const { key, params, fill, shape } = transcodeStatus({
        fatalKey,
        errorKey: error.key,
        errorUntil: error.until,
        now: Date.now(),
        recorder: recorder && {
          recording: recorder.recording,
          elapsedSec: recorder.elapsedSec,
          preRollSpanMs: recorder.preRoll.spanMs,
        },
        preRollSec: s.preRollSec,
        live: live?.state,
        fps: inputRate.perSecond(),
        kbps: outputKbps(),
      });
      status.show({ fill, shape, text: tk(key, params) });
    };

    const showError = (key: string) => {
      error = { key, until: Date.now() + ERROR_SHOWN_MS };
      showStatus();
    };

    const failure = (message: string) => {
      this.error(redact(message));
      showError("status.error");
    };

    /** A live run failed: log its cause once per outage (every retry failing the same way stays quiet). */
    const liveFailure = (message: string) => {
      const cause = failureCause(message);
      if (cause === reportedCause) return showError("status.error");
      reportedCause = cause;
      failure(tk("errors.failedRetrying", { cause, detail: message }));
    };

    const onLiveState = (state: LiveState) => {
      if (state === "live" && reportedCause !== undefined) {
        reportedCause = undefined;
        this.log(tk("errors.recovered"));
      }
      showStatus();
    };

    const onDropped = (count: number) => {
      if (Date.now() - lastDropWarn < DROP_WARN_MS) return;
      lastDropWarn = Date.now();
      this.warn(tk("errors.dropping", { count }));
    };

    const onProgress = (p: FfmpegProgress) => (lastProgress = p);

    let ffmpegPath = "";
    try {
      ffmpegPath = resolveFfmpegPath(s.ffmpegPath);
    } catch (err) {
      fatalKey = "status.noFfmpeg";
      this.error(redact((err as Error).message));
    }

    const setupRecorder = (encoder: EncoderProfile) => {
      const retention = new RetentionSweeper({
        directory: s.directory,
        keepDays: s.keepDays,
        keepGB: s.keepGB,
        isProtected: (file) => recorder?.isInProgress(file) ?? false,
        // Recordings are stamped with frame times, which come from the monotonic clock.
        now: monotonicEpochMs,
        warn: (m) => this.warn(m),
      });
      recorder = new Recorder({
        ffmpegPath,
        directory: s.directory,
        camera,
        preRollSec: s.preRollSec,
        preRollMaxBytes: s.preRollMaxBytes,
        postRollSec: s.postRollSec,
        defaultDurationSec: s.durationSec,
        maxDurationSec: s.maxDurationSec,
        video: { ...s.video, encoder },
        secrets,
        retention,
      });
      recorder.on("recording", (info: RecordingInfo) => {
        lastProgress = undefined;
        this.send(recordingMessage(info));
      });
      recorder.on("progress", onProgress);
      recorder.on("failure", failure);
      recorder.on("dropped", onDropped);
      if (retention.enabled) retention.sweep().catch((err: Error) => this.warn(err.message));
    };

    const setupLive = (encoder: EncoderProfile, rtspTimeout: string | undefined) => {
      const output = liveOutput(s, {
        encoder,
        rtspTimeout,
        user,
        password,
        camera: () => camera,
        // The live fMP4 output does not need the directory: keep it running and say why HLS files are missing.
        onDirectoryError: (err) => failure(err.message),
      });
      live = new LiveTranscoder({ ffmpegPath, output, secrets, keyframeInterval: s.video.keyframeInterval });
      live.on("init", (data: Buffer, info) => this.send(mp4Message(data, info, camera)));
      live.on("fragment", (data: Buffer, info) => {
        sentRate.add(data.length);
        this.send(mp4Message(data, info, camera));
      });
      live.on("data", (data: Buffer) => this.send({ payload: data, topic: camera }));
      live.on("progress", onProgress);
      live.on("failure", liveFailure);
      live.on("state", onLiveState);
      live.on("dropped", onDropped);
    };

    const problem = fatalKey ? undefined : settingsProblem(s);
    if (problem) {
      fatalKey = "status.badSettings";
      this.error(redact("text" in problem ? problem.text : t(problem)));
    }
    if (!fatalKey) {
      Promise.all([
        // The custom preset's arguments are the user's own: no encoder is chosen (or tried) for them.
        s.preset === "custom" ? ENCODERS.libx264 : chooseEncoder(ffmpegPath, s.encoder),
        s.preset === "push" ? rtspTimeoutOption(ffmpegPath) : undefined,
      ]).then(
        ([encoder, rtspTimeout]) => {
          if (closed) return;
          if (s.preset === "mp4") setupRecorder(encoder);
          else setupLive(encoder, rtspTimeout);
          showStatus();
        },
        (err: Error) => failure(err.message),
      );
      if (s.maxSizeWarning) this.warn(t(s.maxSizeWarning));
    }
    showStatus();

    /** Earlier runs' segments the playlist no longer lists (ffmpeg deletes only its own run's). */
    const sweepHls =
      s.preset === "hls" && s.directory ? hlsSweeper(s.directory, s.video.keyframeInterval) : undefined;
    sweepHls?.();

    const tick = setInterval(() => {
      recorder?.tick(monotonicEpochMs());
      sweepHls?.();
      showStatus();
    }, 1000);
    // Hourly retention even when nothing is recorded.
    const sweepTimer = setInterval(() => {
      if (recorder && !closed) recorder.sweep().catch((err: Error) => this.warn(err.message));
    }, 3600 * 1000);

    const control = (msg: ControlMessage, done: Done) => {
      const action = readAction(msg);
      if (typeof action !== "string") return done(new Error(t(action.error)));
      if (fatalKey) return done(new Error(tk(fatalKey)));
      if (live) {
        if (action === "stop") void live.pause();
        else live.resume();
        showStatus();
        return done();
      }
      if (!recorder) return done(new Error(tk("errors.notReady")));
      const now = monotonicEpochMs();
      if (action === "stop") {
        recorder.stop(now);
        return done();
      }
      const start = readStart(msg);
      if ("error" in start) return done(new Error(t(start.error)));
      try {
        recorder.start({ time: now, ...start });
      } catch (err) {
        if (!(err instanceof RecorderError)) throw err;
        showError("status.refused");
        return done(err);
      }
      showStatus();
      done();
    };

    this.on("input", (msg: NodeMessageInFlow, _send: unknown, done: Done) => {
      const m = msg as NodeMessageInFlow & ControlMessage;
      if (m.action !== undefined) return control(m, done);
      const frame = frameFromMessage(m);
      if (!frame) return done(new Error(tk("errors.notFrame")));
      const tooBig = oversizeFrame(frame);
      if (tooBig) {
        // One error per run of oversized frames, not one per frame.
        if (oversizeReported) return done();
        oversizeReported = true;
        const size = `${tooBig.width}x${tooBig.height}`;
        return done(
          new Error(tk("errors.frameTooBig", { size, max: `${MAX_FRAME_SIDE}x${MAX_FRAME_SIDE}` })),
        );
      }
      oversizeReported = false;
      // Frame times from a clock that jumps (hours ahead or back) must not stop ffmpeg's output.
      frame.time = clock.correct(frame.time, monotonicEpochMs());
      if (frame.camera) camera = frame.camera;
      inputRate.add();
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
        status.clear();
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
