import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from "node-red";
import { RateLimiter } from "./lib/camera/rate-limiter";
import { readMp4Info } from "./lib/messages/mp4";
import { numberSetting } from "./lib/settings";
import { StatusReporter } from "./support/status-reporter";

interface FrameThrottleDef extends NodeDef {
  fps: number | string;
  /** Compressed video (msg.mp4): "pass" (default) untouched, "gop" whole GOPs at most once per 1/fps. */
  video?: string;
}

/** Per topic in "gop" mode: when the last GOP passed and whether the current GOP is being passed. */
interface GopLane {
  lastStart: number;
  passing: boolean;
}

const MAX_GOP_LANES = 1000;

interface Held {
  msg: NodeMessageInFlow;
  send: (msg: NodeMessageInFlow) => void;
  done: (err?: Error) => void;
}

const STATUS_EVERY_MS = 2000;

export = (RED: NodeAPI) => {
  function FrameThrottle(this: Node, config: FrameThrottleDef) {
    RED.nodes.createNode(this, config);
    const fps = numberSetting(config.fps, 0);
    const status = new StatusReporter(this, 1000);
    if (!(fps > 0)) {
      status.show({ fill: "red", shape: "ring", text: RED._("frame-throttle.status.badFps") });
      this.error(RED._("frame-throttle.errors.badFps", { fps: String(config.fps) }));
    }
    const gopMode = config.video === "gop";
    const gopLanes = new Map<string, GopLane>();
    let passed = 0;
    let dropped = 0;
    const limiter = new RateLimiter<Held>(
      fps > 0 ? fps : 0,
      (held) => {
        passed++;
        held.send(held.msg);
        held.done();
      },
      (held) => {
        dropped++;
        held.done();
      },
    );
    // A small blue status with what passes, refreshed every 2 s while frames flow and once ("0.0 fps")
    // when they stop. With a bad fps setting (frames pass unthrottled) the red status stays.
    let shown = { passed: 0, dropped: 0 };
    let idleShown = true;
    const statusTimer = setInterval(() => {
      if (!(fps > 0)) return;
      const idle = passed === shown.passed && dropped === shown.dropped;
      if (idle && idleShown) return;
      idleShown = idle;
      // What passed since the last refresh, exactly (a sliding meter would blur the count).
      const passing = (passed - shown.passed) / (STATUS_EVERY_MS / 1000);
      shown = { passed, dropped };
      status.show({
        fill: "blue",
        shape: "dot",
        text: RED._("frame-throttle.status.rate", { fps: passing.toFixed(1) }),
      });
    }, STATUS_EVERY_MS);

    // Compressed video never loses a single fragment: in "pass" mode it goes through untouched (in order,
    // at once), in "gop" mode a GOP (a keyframe fragment and the fragments after it) passes whole or not
    // at all, at most one GOP start per 1/fps. Inits always pass: a consumer needs them to decode.
    const video = (msg: NodeMessageInFlow, send: (m: NodeMessageInFlow) => void): void => {
      const info = readMp4Info((msg as { mp4?: unknown }).mp4);
      if (!gopMode || !(fps > 0) || !info || !("type" in info) || info.type === "init") {
        passed++;
        send(msg);
        return;
      }
      const topic = typeof msg.topic === "string" ? msg.topic : "";
      let lane = gopLanes.get(topic);
      if (!lane) {
        if (gopLanes.size >= MAX_GOP_LANES) gopLanes.clear();
        lane = { lastStart: -Infinity, passing: false };
        gopLanes.set(topic, lane);
      }
      if (info.keyframe !== false) {
        const now = performance.now();
        // A little slack (5 %) so that a camera GOP exactly at the rate is not cut to every other one.
        lane.passing = now - lane.lastStart >= (1000 / fps) * 0.95;
        if (lane.passing) lane.lastStart = now;
      }
      if (lane.passing) {
        passed++;
        send(msg);
      } else dropped++;
    };

    this.on("input", (msg, send, done) => {
      if (readMp4Info((msg as { mp4?: unknown }).mp4) !== undefined) {
        video(msg, send);
        done();
        return;
      }
      limiter.push(typeof msg.topic === "string" ? msg.topic : "", { msg, send, done });
    });

    this.on("close", (_removed: boolean, done: () => void) => {
      clearInterval(statusTimer);
      limiter.close();
      gopLanes.clear();
      status.clear();
      done();
    });
  }

  RED.nodes.registerType("frame-throttle", FrameThrottle);
};
