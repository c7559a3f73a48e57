import type { NodeAPI, NodeDef } from "node-red";
import { Camera } from "./lib/camera/camera";
import { liveDemand } from "./lib/camera/live-demand";
import {
  cameraOptions,
  CameraCredentials,
  CameraSourceSettings,
  mayLendCredentials,
} from "./lib/camera/options";
import { credentialSecrets, redactCredentials } from "./lib/credentials";
import type { CameraSourceNode } from "./support/config-node";
import { createSource } from "./lib/sources";
import { probeCamera } from "./lib/camera/probe";
import { CertificateError, uncheckedTls, watchPeerCertificate } from "./lib/sources/tls";

export = (RED: NodeAPI) => {
  function CameraSource(this: CameraSourceNode, config: CameraSourceSettings & NodeDef) {
    RED.nodes.createNode(this, config);
    const options = cameraOptions(config, this.credentials);
    const secrets = credentialSecrets(options.user, options.password);
    this.redact = (text: string) => redactCredentials(text, secrets);
    this.camera = new Camera(options, createSource);
    // Every picture at once while an http stream out of this camera has WebSocket/WebRTC viewers; grouped
    // into ~0.25 s units otherwise (fewer messages on the wires).
    this.camera.liveWanted = () => liveDemand.wanted(config.id);
    const unchecked = uncheckedTls(options.protocol, options.url, options.tls);
    if (unchecked) this.warn(RED._(`camera-source.warn.${unchecked}`)); // never silently

    let lastLogged = "";
    this.camera.on("state", (state) => {
      // One log line per distinct problem, on the config node, not one per consumer.
      if (state.error && state.error !== lastLogged) {
        lastLogged = state.error;
        this.warn(this.redact(state.error));
      }
      if (state.state === "streaming") lastLogged = "";
    });
    // Damaged or dropped data is worth a warning, but not one per frame: each kind once a minute.
    const warnedAt = new Map<string, number>();
    this.camera.on("warning", ({ message }) => {
      const kind = message.replace(/[\d.]+/g, "#");
      const now = Date.now();
      if (now - (warnedAt.get(kind) ?? 0) < 60000) return this.debug(this.redact(message));
      // Messages carry camera bytes (a noise sample): forget old kinds so the map stays small.
      if (warnedAt.size >= 32) {
        for (const [k, at] of warnedAt) if (now - at >= 60000) warnedAt.delete(k);
        if (warnedAt.size >= 32) return this.debug(this.redact(message));
      }
      warnedAt.set(kind, now);
      this.warn(this.redact(message));
    });

    this.on("close", (_removed: boolean, done: () => void) => {
      this.camera.close();
      done();
    });
  }

  RED.nodes.registerType<CameraSourceNode, CameraSourceSettings & NodeDef, unknown, CameraCredentials>(
    "camera-source",
    CameraSource,
    {
      credentials: { user: { type: "text" }, password: { type: "password" } },
    },
  );

  /** The dialog's settings as the Test button posts them, as a camera-source's settings. */
  function probeSettings(body: Record<string, unknown>): CameraSourceSettings {
    const text = (key: string) => (typeof body[key] === "string" ? (body[key] as string) : "");
    return {
      name: text("name") || "test",
      protocol: text("protocol") || "test",
      url: text("url"),
      fps: text("fps"),
      linger: 0,
      alwaysOn: false,
      watchdog: "",
      maxFrameKB: text("maxFrameKB"),
      mode: text("mode"),
      imageSize: text("imageSize"),
      ffmpegPath: "",
      rtspTransport: text("rtspTransport"),
      tlsVerify: body.tlsVerify !== false && body.tlsVerify !== "false",
      tlsFingerprint: text("tlsFingerprint"),
      video: text("video") || "auto",
      audio: body.audio !== false && body.audio !== "false",
    };
  }

  // The editor's "test" button: one frame, the measured rate and what the camera speaks, through the
  // settings as they stand in the dialog (saved credentials fill in for the password placeholder).
  const probing = new Set<string>();
  RED.httpAdmin.post(
    "/camrelay/camera-source/test",
    RED.auth.needsPermission("camera-source.write"),
    (req, res) => {
      const body = (req.body ?? {}) as Record<string, unknown>;
      const text = (key: string) => (typeof body[key] === "string" ? (body[key] as string) : "");
      const id = text("id");
      // Stored credentials and the ffmpeg binary come only from a deployed camera node with this id, and
      // the credentials only for that camera's own host: the request names neither a binary nor a host to lend to.
      const deployed = id ? (RED.nodes.getNode(id) as CameraSourceNode | null) : null;
      const camera = deployed?.type === "camera-source" ? deployed.camera : undefined;
      const lend = camera !== undefined && mayLendCredentials(camera.options.url, text("url"));
      const stored = lend ? (RED.nodes.getCredentials(id) as CameraCredentials | undefined) : undefined;
      const placeholder = body.password === "__PWRD__" || body.password === undefined;
      if (placeholder && camera && !lend && (RED.nodes.getCredentials(id) as CameraCredentials)?.password) {
        res.json({ error: RED._("camera-source.test.otherHost") });
        return;
      }
      const password = placeholder ? stored?.password : text("password");
      const user = text("user") || stored?.user;
      const settings = probeSettings(body);
      const secrets = credentialSecrets(user, password);
      // One probe per dialog at a time: a double click must not open two connections to the camera.
      const key = id || "new";
      if (probing.has(key)) {
        res.json({ error: RED._("camera-source.test.busy") });
        return;
      }
      probing.add(key);
      const options = cameraOptions(settings, { user, password });
      if (options.protocol === "ffmpeg" && camera?.options.ffmpegPath)
        options.ffmpegPath = camera.options.ffmpegPath;
      // https: the certificate the camera presented, so the dialog can offer to trust (pin) it.
      const certificate = watchPeerCertificate(settings.url);
      probeCamera(options, 10000)
        .then(
          (result) => res.json({ ...result, certificate: certificate?.get() }),
          (err: Error) =>
            res.json({
              error: redactCredentials(err.message, secrets),
              certificate: err instanceof CertificateError ? err.certificate : undefined,
            }),
        )
        .finally(() => {
          certificate?.stop();
          probing.delete(key);
        });
    },
  );
};
