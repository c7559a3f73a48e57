import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from "node-red";
import type { CameraState } from "./lib/camera/camera";
import type { Frame, FrameInfo } from "./lib/media";
import type { CameraSourceNode } from "./support/config-node";

interface CameraConnectDef extends NodeDef {
  camera: string;
  autoStart: boolean;
  stats: number | string;
}

type Status = { fill: "red" | "green" | "yellow" | "blue" | "grey"; shape: "dot" | "ring"; text: string };

export = (RED: NodeAPI) => {
  /** The one place that maps a camera's state to a node status. */
  function statusFor(state: CameraState, running: boolean): Status {
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

  function CameraConnect(this: Node, config: CameraConnectDef) {
    RED.nodes.createNode(this, config);
    const source = RED.nodes.getNode(config.camera) as CameraSourceNode | null;
    if (!source?.camera) {
      this.status({ fill: "red", shape: "ring", text: RED._("camera-connect.status.noCamera") });
      this.on("input", (_msg: NodeMessageInFlow, _send: unknown, done: (err?: Error) => void) =>
        done(new Error(RED._("camera-connect.errors.noCamera"))),
      );
      return;
    }
    const camera = source.camera;
    let running = false;
    let lastStatus = "";
    let statusTimer: NodeJS.Timeout | undefined;

    const showStatus = () => {
      const status = statusFor(camera.state, running);
      const key = `${status.fill}${status.shape}${status.text}`;
      if (key !== lastStatus) {
        lastStatus = key;
        this.status(status);
      }
    };
    // Status at most once a second while streaming; state changes show at once.
    const onState = (state: CameraState) => {
      if (state.state === "streaming" && lastStatus.startsWith("greendot")) {
        statusTimer ??= setTimeout(() => {
          statusTimer = undefined;
          showStatus();
        }, 1000);
        return;
      }
      showStatus();
      if (state.state !== "streaming") emitState(state);
    };

    const frameMessage = (frame: Frame) => {
      const info: FrameInfo = {
        seq: frame.seq,
        time: frame.time,
        camera: frame.camera,
        width: frame.width,
        height: frame.height,
      };
      return { payload: frame.data, topic: frame.camera, frame: info };
    };
    const onFrame = (frame: Frame) => {
      if (running) this.send([frameMessage(frame) as any, null]);
    };
    const emitState = (state: CameraState) => {
      this.send([
        null,
        {
          topic: `${camera.name}/state`,
          payload: state.state,
          state: { ...state, error: state.error ? source.redact(state.error) : undefined },
        } as any,
      ]);
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

    const statsEvery = Math.max(0, Number(config.stats) || 0);
    const statsTimer =
      statsEvery > 0
        ? setInterval(() => {
            this.send([
              null,
              {
                topic: `${camera.name}/stats`,
                payload: { ...camera.stats, state: camera.state.state, fps: camera.state.fps },
              } as any,
            ]);
          }, statsEvery * 1000)
        : undefined;

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
          send([Object.assign(msg, frameMessage(camera.latest)) as any, null]);
          return done();
        default:
          return done(new Error(RED._("camera-connect.errors.badAction", { action: String(msg.action) })));
      }
    });

    this.on("close", (_removed: boolean, done: () => void) => {
      camera.off("frame", onFrame);
      camera.off("state", onState);
      if (statsTimer) clearInterval(statsTimer);
      if (statusTimer) clearTimeout(statusTimer);
      if (running) camera.removeUser(this.id);
      running = false;
      this.status({});
      done();
    });
  }

  RED.nodes.registerType("camera-connect", CameraConnect);
};
