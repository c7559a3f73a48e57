import type { Node, NodeAPI, NodeDef, NodeMessageInFlow } from "node-red";
import { RateLimiter } from "./lib/camera/rate-limiter";
import { numberSetting } from "./lib/settings";
import { StatusReporter } from "./support/status-reporter";

interface FrameThrottleDef extends NodeDef {
  fps: number | string;
}

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

    this.on("input", (msg, send, done) => {
      limiter.push(typeof msg.topic === "string" ? msg.topic : "", { msg, send, done });
    });

    this.on("close", (_removed: boolean, done: () => void) => {
      clearInterval(statusTimer);
      limiter.close();
      status.clear();
      done();
    });
  }

  RED.nodes.registerType("frame-throttle", FrameThrottle);
};
