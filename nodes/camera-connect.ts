import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from "node-red";
import type { CameraState } from "./lib/camera/camera";
import type { JpegFrame } from "./lib/media";
import { frameMessage, stateMessage, statsMessage } from "./lib/messages";
import type { CameraSourceNode } from "./support/config-node";
import { StatusReporter } from "./support/status-reporter";

interface CameraConnectDef extends NodeDef {
  camera: string;
  autoStart: boolean;
  stats: number | string;
}

export = (RED: NodeAPI) => {
  /** The one place that maps a camera's state to a node status. */
  function statusFor(state: CameraState, running: boolean): NodeStatus {
    const t = (key: string, params?: Record<string, string | number>) =>
      RED._(`camera-connect.status.${key}`, params);
    if (!running) return { fill: "grey", shape: "ring", text: t("stopped") };
    // A refusal with a known reason says it ("auth failed", "not found") rather than a bare retry countdown.
    if (state.reason) return { fill: "red", shape: "ring", text: t(`reason.${state.reason}`) };
    switch (state.state) {
      case "streaming":
        return { fill: "green", shape: "dot", text: t("streaming", { fps: state.fps.toFixed(1) }) };
      case "connecting":
        return { fill: "yellow", shape: "ring", text: t("connecting") };
      case "stalled":
        return { fill: "yellow", shape: "ring", text: t("stalled") };
      case "retrying":
        return {
          fill: "red",
          shape: "ring",
          text: t("retrying", { s: Math.ceil((state.retryInMs ?? 0) / 1000) }),
        };
      case "auth-failed":
        return { fill: "red", shape: "ring", text: t("authFailed") };
      case "failed":
        return { fill: "red", shape: "ring", text: t("failed") };
      default:
        return { fill: "grey", shape: "ring", text: t("idle") };
    }
  }

  /** Without a camera-source: a red status, and every message fails saying so. */
  function refuse(node: Node): void {
    node.status({ fill: "red", shape: "ring", text: RED._("camera-connect.status.noCamera") });
    node.on("input", (_msg: NodeMessageInFlow, _send: unknown, done: (err?: Error) => void) =>
      done(new Error(RED._("camera-connect.errors.noCamera"))),
    );
  }

  /** The stats message every `seconds` on the second output (none for 0). */
  function sendStats(node: Node, source: CameraSourceNode, seconds: number): NodeJS.Timeout | undefined {
    const camera = source.camera;
    if (!(seconds > 0)) return undefined;
    return setInterval(
      () => node.send([null, statsMessage(camera.name, camera.stats, camera.state)]),
      seconds * 1000,
    );
  }

  function CameraConnect(this: Node, config: CameraConnectDef) {
    RED.nodes.createNode(this, config);
    const source = RED.nodes.getNode(config.camera) as CameraSourceNode | null;
    if (!source?.camera) return refuse(this);
    const camera = source.camera;
    let running = false;
    // State changes show at once; the fps while streaming at most once a second.
    const status = new StatusReporter(this, 1000);
    let shownState = "";
    // Anything but a new fps reading while streaming is a change of state: shown at once.
    const showStatus = () => {
      const name = running ? camera.state.state : "stopped";
      status.show(statusFor(camera.state, running), name !== "streaming" || shownState !== name);
      shownState = name;
    };
    const onState = (state: CameraState) => {
      showStatus();
      if (state.state !== "streaming") this.send([null, stateMessage(camera.name, state, source.redact)]);
    };
    // msg.frame.cameraId: http stream out finds this camera by identity (two cameras may share a name).
    const onFrame = (frame: JpegFrame) => {
      if (running) this.send([frameMessage(frame, source.id), null]);
    };

    const start = () => {
      if (running) return;
      running = true;
      camera.addUser(this.id);
      showStatus();
    };
    const stop = () => {
      if (!running) return;
      running = false;
      camera.removeUser(this.id);
      showStatus();
    };

    camera.on("frame", onFrame);
    camera.on("state", onState);
    if (config.autoStart !== false) start();
    else showStatus();

    // (The editor spec reads this line: a missing or bad value means no stats.)
    const statsTimer = sendStats(this, source, Math.max(0, Number(config.stats) || 0));

    this.on("input", (msg: NodeMessageInFlow & { action?: unknown }, send, done) => {
      switch (msg.action) {
        case "start":
          start();
          camera.retryNow();
          return done();
        case "stop":
          stop();
          return done();
        case "snapshot":
          if (!camera.latest) return done(new Error(RED._("camera-connect.errors.noFrame")));
          send([Object.assign(msg, frameMessage(camera.latest, source.id)), null]);
          return done();
        default:
          return done(new Error(RED._("camera-connect.errors.badAction", { action: String(msg.action) })));
      }
    });

    this.on("close", (_removed: boolean, done: () => void) => {
      camera.off("frame", onFrame);
      camera.off("state", onState);
      if (statsTimer) clearInterval(statsTimer);
      if (running) camera.removeUser(this.id);
      running = false;
      status.clear();
      done();
    });
  }

  RED.nodes.registerType("camera-connect", CameraConnect);
};
