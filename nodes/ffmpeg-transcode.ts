import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from "node-red";
import { redactCredentials } from "./lib/credentials";
import { resolveFfmpegPath } from "./lib/ffmpeg";
import { frameFromMessage } from "./lib/messages";
import type { ControlMessage } from "./lib/transcode/control";
import { transcodeSecrets } from "./lib/transcode/push-secrets";
import {
  readTranscodeSettings,
  sendsToUrl,
  settingsProblem,
  type SettingsProblem,
  type TranscodeConfig,
  type TranscodeSettings,
} from "./lib/transcode/settings";
import { Transcoder } from "./lib/transcode/transcoder";
import { StatusReporter } from "./support/status-reporter";

type TranscodeDef = NodeDef & TranscodeConfig;
type Credentials = { user: unknown; password: unknown };
type Done = (err?: Error) => void;

/** Node-RED's side of `ffmpeg transcode`: settings in, frames and control messages to the Transcoder, its messages out. */
/** The ffmpeg to run, or why the node cannot run at all (no ffmpeg, settings that cannot work). */
function findFfmpeg(
  settings: TranscodeSettings,
  words: (p: SettingsProblem) => string,
): { ffmpegPath: string; fatal?: { key: string; why: string } } {
  let ffmpegPath = "";
  try {
    ffmpegPath = resolveFfmpegPath(settings.ffmpegPath);
  } catch (err) {
    return { ffmpegPath, fatal: { key: "status.noFfmpeg", why: (err as Error).message } };
  }
  const problem = settingsProblem(settings);
  return { ffmpegPath, fatal: problem && { key: "status.badSettings", why: words(problem) } };
}

/**
 * Closes the core, resolving when it is done or after `guardMs`, whichever comes first: FfmpegProcess
 * escalates to SIGKILL well before, the guard only keeps Node-RED's close within its 15 s.
 */
function closeWithin(core: Transcoder, guardMs: number, warn: (err: Error) => void): Promise<void> {
  return new Promise((resolve) => {
    const guard = setTimeout(resolve, guardMs);
    core
      .close()
      .catch(warn)
      .finally(() => {
        clearTimeout(guard);
        resolve();
      });
  });
}

export = (RED: NodeAPI) => {
  function FfmpegTranscode(this: Node<Credentials>, config: TranscodeDef) {
    RED.nodes.createNode(this, config);
    const settings = readTranscodeSettings(config);
    const cred = (v: unknown): string | undefined => (typeof v === "string" && v ? v : undefined);
    const user = cred(this.credentials?.user);
    const password = cred(this.credentials?.password);
    const url = sendsToUrl(settings.preset) ? settings.url : undefined;
    const secrets = transcodeSecrets({ user, password, url });
    const t = (key: string, params?: Record<string, string | number>) =>
      RED._(`ffmpeg-transcode.${key}`, params);
    /** Words for a problem: translated from its key, or a lower layer's own; never with a secret in them. */
    const words = (p: SettingsProblem) =>
      redactCredentials("text" in p ? p.text : t(p.key, p.params), secrets);

    const { ffmpegPath, fatal } = findFfmpeg(settings, words);

    const core = new Transcoder({
      settings,
      ffmpegPath,
      user,
      password,
      secrets,
      camera: config.name || "camera",
    });
    const status = new StatusReporter(this);
    const showStatus = () => {
      const { fill, shape, key, params } = core.status();
      // Compressed input: the state's own words, then "copy" or "encode (why)".
      const inner = params?.inner;
      const text = typeof inner === "string" ? `${t(inner, params)} · ${params?.mode}` : t(key, params);
      status.show({ fill, shape, text });
    };
    core.on("message", (msg) => this.send(msg));
    core.on("error", (p) => this.error(words(p)));
    core.on("warn", (p) => this.warn(words(p)));
    core.on("log", (p) => this.log(words(p)));
    core.on("status", showStatus);

    if (fatal) {
      core.fatalKey = fatal.key;
      this.error(redactCredentials(fatal.why, secrets));
    } else {
      core.start();
      if (settings.maxSizeWarning) this.warn(words(settings.maxSizeWarning));
    }
    showStatus();

    const tick = setInterval(() => {
      core.tick();
      showStatus();
    }, 1000);
    const sweepTimer = setInterval(() => core.sweep(), 3600 * 1000);

    this.on("input", (msg: NodeMessageInFlow, _send: unknown, done: Done) => {
      const m = msg as NodeMessageInFlow & ControlMessage;
      const isMp4 = typeof (m as { mp4?: unknown }).mp4 === "object" && (m as { mp4?: unknown }).mp4 !== null;
      const refused =
        m.action !== undefined ? core.control(m) : isMp4 ? core.mp4(m) : core.frame(frameFromMessage(m));
      if (!refused) return done();
      done(refused instanceof Error ? refused : new Error(words(refused)));
    });

    this.on("close", (_removed: boolean, done: () => void) => {
      clearInterval(tick);
      clearInterval(sweepTimer);
      closeWithin(core, 14000, (err) => this.warn(err.message)).finally(() => {
        status.clear();
        done();
      });
    });
  }

  RED.nodes.registerType("ffmpeg-transcode", FfmpegTranscode, {
    credentials: { user: { type: "text" }, password: { type: "password" } },
  });
};
