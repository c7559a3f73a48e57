import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from "node-red";
import type { CameraState, CameraUser } from "./lib/camera/camera";
import type { Fmp4Fragment, Fmp4Init, JpegFrame } from "./lib/media";
import { frameMessage, stateMessage, statsMessage } from "./lib/messages";
import { mp4Message, type Mp4Message } from "./lib/messages/mp4";
import type { CameraSourceNode } from "./support/config-node";
import { StatusReporter } from "./support/status-reporter";

interface CameraConnectDef extends NodeDef {
  camera: string;
  autoStart: boolean;
  stats: number | string;
  /** "jpeg" (default), "video" (msg.mp4 only), "both". */
  output?: string;
  /** JPEG rate: ""/"all" = every frame, a number = fps cap, "keyframes". */
  jpegRate?: string | number;
  /** JPEG width; 0 = the camera's size. */
  jpegWidth?: string | number;
}

/** What a camera connect asks of its camera, from its settings. */
function connectWants(config: Pick<CameraConnectDef, "output" | "jpegRate" | "jpegWidth">): {
  jpeg: boolean;
  video: boolean;
  user: CameraUser;
} {
  const output = config.output === "video" || config.output === "both" ? config.output : "jpeg";
  const rate = String(config.jpegRate ?? "")
    .trim()
    .toLowerCase();
  const fps = Number(rate);
  const width = Number(config.jpegWidth);
  const user: CameraUser = { jpeg: output !== "video" };
  if (rate === "keyframes") user.keyframesOnly = true;
  else if (Number.isFinite(fps) && fps > 0) user.fps = fps;
  if (Number.isFinite(width) && width > 0) user.width = Math.round(width);
  return { jpeg: output !== "video", video: output !== "jpeg", user };
}

/** An fMP4 message for a camera's init or fragment (msg.mp4, topic = camera name). */
function videoMessage(unit: Fmp4Init | Fmp4Fragment, init: Fmp4Init, cameraId: string): Mp4Message {
  const fragment = unit.kind === "fragment" ? unit : undefined;
  return mp4Message(
    unit.data,
    {
      type: unit.kind,
      seq: fragment ? fragment.seq : 0,
      duration: fragment ? fragment.duration : 0,
      time: fragment ? fragment.time : Date.now(),
      codec: init.codec,
      width: init.width,
      height: init.height,
      keyframe: fragment ? fragment.keyframe : true,
      initId: init.initId,
      cameraId,
    },
    init.camera,
  );
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
    const wants = connectWants(config);
    let running = false;
    // State changes show at once; the fps while streaming at most once a second.
    const status = new StatusReporter(this, 1000);
    let shownState = "";
    // Anything but a new fps reading while streaming is a change of state: shown at once.
    const showStatus = () => {
      const name = running ? camera.state.state : "stopped";
      const shown = statusFor(camera.state, running);
      // A video output on a camera that sends JPEG has nothing to send: say so instead of a silent wire.
      if (running && name === "streaming" && wants.video && !wants.jpeg && !camera.currentInit)
        shown.text = RED._("camera-connect.status.noVideo", { fps: camera.state.fps.toFixed(1) });
      status.show(shown, name !== "streaming" || shownState !== name);
      shownState = name;
    };
    const onState = (state: CameraState) => {
      showStatus();
      if (state.state !== "streaming") this.send([null, stateMessage(camera.name, state, source.redact)]);
    };
    // msg.frame.cameraId: http stream out finds this camera by identity (two cameras may share a name).
    // JPEG rate per node: the camera's decoder runs at the highest rate any node wants.
    const minGapMs = wants.user.fps ? 1000 / wants.user.fps : 0;
    let lastJpegAt = -Infinity;
    let keyframeSeen = false;
    const onFrame = (frame: JpegFrame) => {
      if (!running || !wants.jpeg) return;
      if (wants.user.keyframesOnly && camera.currentInit) {
        if (!keyframeSeen) return; // one picture per keyframe of a compressed camera
        keyframeSeen = false;
      }
      if (minGapMs > 0 && frame.time - lastJpegAt < minGapMs * 0.9) return;
      lastJpegAt = frame.time;
      this.send([frameMessage(frame, source.id), null]);
    };
    // Compressed video: the init first, then fragments from a keyframe on (a late start gets the cached GOP).
    let sentInitId = 0;
    let needKeyframe = true;
    const sendVideo = (unit: Fmp4Init | Fmp4Fragment) => {
      const init = camera.currentInit;
      if (!init) return;
      this.send([videoMessage(unit, init, source.id), null]);
    };
    const catchUp = () => {
      const gop = camera.gop();
      if (!gop) return;
      sendVideo(gop.init);
      sentInitId = gop.init.initId;
      needKeyframe = gop.fragments.length === 0;
      for (const f of gop.fragments) sendVideo(f);
    };
    const onInit = (init: Fmp4Init) => {
      if (!running || !wants.video) return;
      sendVideo(init);
      sentInitId = init.initId;
      needKeyframe = true;
    };
    const onFragment = (fragment: Fmp4Fragment) => {
      if (fragment.keyframe) keyframeSeen = true;
      if (!running || !wants.video) return;
      if (sentInitId !== fragment.initId) return catchUp();
      if (needKeyframe && !fragment.keyframe) return;
      needKeyframe = false;
      sendVideo(fragment);
    };

    const start = () => {
      if (running) return;
      running = true;
      camera.addUser(this.id, wants.user);
      if (wants.video) catchUp();
      showStatus();
    };
    const stop = () => {
      if (!running) return;
      running = false;
      camera.removeUser(this.id);
      sentInitId = 0;
      needKeyframe = true;
      showStatus();
    };

    camera.on("frame", onFrame);
    camera.on("init", onInit);
    camera.on("fragment", onFragment);
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
          // A video-only camera decodes its latest keyframe (cached about a second).
          camera.snapshot().then(
            (frame) => {
              send([Object.assign(msg, frameMessage(frame, source.id)), null]);
              done();
            },
            () => done(new Error(RED._("camera-connect.errors.noFrame"))),
          );
          return;
        default:
          return done(new Error(RED._("camera-connect.errors.badAction", { action: String(msg.action) })));
      }
    });

    this.on("close", (_removed: boolean, done: () => void) => {
      camera.off("frame", onFrame);
      camera.off("init", onInit);
      camera.off("fragment", onFragment);
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
