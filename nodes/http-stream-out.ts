import type { Node, NodeAPI, NodeDef, NodeMessageInFlow, NodeStatus } from "node-red";
import type { Camera } from "./lib/camera/camera";
import { cameraIdFromMessage, frameFromMessage, readMp4Info, viewerMessage } from "./lib/messages";
import { cameraMetricRows, findCamera, type CameraRegistry } from "./lib/serve/camera-lookup";
import { decodeKeyframe, Mp4Decoder } from "./lib/codec/mp4-decoder";
import { resolveFfmpegPath } from "./lib/ffmpeg";
import { StreamServer, type MetricRow, type VideoDecoding } from "./lib/serve/stream-server";
import { streamServerOptions } from "./lib/serve/stream-out-settings";
import type { Server } from "http";
import { liveRegistry } from "./lib/serve/live-feed";
import { LiveWsEndpoint, wsPathFor } from "./lib/serve/ws-endpoint";
import { makeGate, type ExpressLike } from "./lib/serve/ws-gate";
import { recordingsFor } from "./lib/serve/recordings-node";
import { dropPlayerRoute, usePlayerRoute } from "./lib/serve/player-route";
import type { CameraSourceNode } from "./support/config-node";
import { HttpMount, nodeRedSetting } from "./support/http-mount";
import { StatusReporter } from "./support/status-reporter";

interface HttpStreamOutDef extends NodeDef {
  path: string;
  maxClients: number | string;
  maxPerAddress?: number | string;
  maxKbps: number | string;
  cors: string;
  offlineAfter: number | string;
  stallTimeout: number | string;
  mjpegFps?: number | string;
}

type HttpStreamOutCredentials = { token: unknown; turnPassword?: unknown };

function isCameraSource(node: Node | null): node is CameraSourceNode {
  return node !== null && node.type === "camera-source" && "camera" in node;
}

/** The running camera-sources, as findCamera asks for them. */
function cameraRegistry(RED: NodeAPI): CameraRegistry<Camera> {
  const byId = (id: string): Camera | undefined => {
    const node = RED.nodes.getNode(id);
    return isCameraSource(node) ? node.camera : undefined;
  };
  const all = (): Camera[] => {
    const cameras: Camera[] = [];
    RED.nodes.eachNode((def) => {
      const camera = def.type === "camera-source" ? byId(def.id) : undefined;
      if (camera) cameras.push(camera);
    });
    return cameras;
  };
  return { byId, all };
}

/**
 * What the node shows under itself for the server's state, as a function that is asked every tick (4 times a
 * second) but translates only when something shown changed: a translation costs more than the rest of a tick.
 */
function statusShower(RED: NodeAPI, server: StreamServer): () => NodeStatus {
  let lastKey = "";
  let last: NodeStatus = {};
  return () => {
    const count = server.viewerCount;
    const fps = Math.round(server.fpsIn);
    const state = !server.hasHadFrames ? "waiting" : server.upstream === "offline" ? "offline" : "on";
    const video = state === "on" && server.videoOnly() ? server.videoInfo() : undefined;
    const shown = video ? `${video.format} ${video.width}x${video.height}` : "";
    const key = `${state}|${count}|${video ? shown : fps}`;
    if (key === lastKey) return last;
    lastKey = key;
    last = statusText(RED, state, count, fps, shown);
    return last;
  };
}

function statusText(
  RED: NodeAPI,
  state: "waiting" | "offline" | "on",
  count: number,
  fps: number,
  video: string,
): NodeStatus {
  const one = count === 1 ? "One" : ""; // "1 viewer", "2 viewers"
  if (state === "waiting")
    return { fill: "yellow", shape: "ring", text: RED._("http-stream-out.status.waiting", { count }) };
  if (state === "offline")
    return { fill: "red", shape: "ring", text: RED._(`http-stream-out.status.offline${one}`, { count }) };
  const fill = count > 0 ? "green" : "grey";
  // A video-only wire has no JPEG rate to show: the codec and size say what is served.
  if (video)
    return { fill, shape: "dot", text: RED._(`http-stream-out.status.videoViewers${one}`, { count, video }) };
  return { fill, shape: "dot", text: RED._(`http-stream-out.status.viewers${one}`, { count, fps }) };
}

/** One input message: offline, an fMP4 part or a JPEG frame; returns the error to report, if any. */
function takeInput(
  RED: NodeAPI,
  server: StreamServer,
  msg: NodeMessageInFlow & { action?: unknown; mp4?: unknown },
  /** Called for a JPEG frame, before it is served. */
  framed: () => void,
): Error | undefined {
  if (msg.action === "offline") {
    server.setOffline();
    return undefined;
  }
  const payload = msg.payload;
  const mp4 = msg.mp4 === undefined ? undefined : readMp4Info(msg.mp4);
  if (mp4 && !("type" in mp4)) {
    const value = typeof mp4.value === "string" ? JSON.stringify(mp4.value) : String(mp4.value);
    const rule = RED._(`http-stream-out.mp4rules.${mp4.rule}`);
    return new Error(
      RED._("http-stream-out.errors.badMp4", { field: mp4.field, value: value.slice(0, 40), rule }),
    );
  }
  if (mp4 && Buffer.isBuffer(payload)) {
    server.pushMp4(payload, mp4, typeof msg.topic === "string" ? msg.topic : "");
    return undefined;
  }
  const frame = frameFromMessage(msg);
  if (!frame || frame.data.length < 4 || frame.data[0] !== 0xff || frame.data[1] !== 0xd8)
    return new Error(RED._("http-stream-out.errors.notJpeg"));
  framed();
  server.pushFrame(frame);
  return undefined;
}

/** The StreamServer options for the node's settings, token, httpNodeCors and translated placeholder texts. */
function serverOptions(RED: NodeAPI, node: Node<HttpStreamOutCredentials>, config: HttpStreamOutDef) {
  return streamServerOptions(config, {
    token: node.credentials?.token,
    turnPassword: node.credentials?.turnPassword,
    httpNodeCors: nodeRedSetting(RED, "httpNodeCors"),
    texts: {
      waiting: RED._("http-stream-out.placeholder.waiting"),
      offline: RED._("http-stream-out.placeholder.offline"),
    },
  });
}

/**
 * JPEG from compressed video with ffmpeg (found when first needed: a node that only ever gets JPEG never
 * looks). Snapshots decode one keyframe; MJPEG viewers get a decoder capped at `fps`.
 */
function videoDecoding(fps: number): VideoDecoding {
  let ffmpegPath: string | undefined;
  const ffmpeg = (): string => (ffmpegPath ??= resolveFfmpegPath());
  return {
    decodeKeyframe: (init, fragments) => {
      try {
        return decodeKeyframe(ffmpeg(), init, fragments, { timeoutMs: 5000 });
      } catch (err) {
        return Promise.reject(err as Error);
      }
    },
    createDecoder: () => new Mp4Decoder({ ffmpegPath: ffmpeg(), fps }),
  };
}

/** The shared WebSocket endpoint of each RED.server and how many http stream out nodes keep it. */
const wsEndpoints = new WeakMap<object, { endpoint: LiveWsEndpoint; users: number }>();

/**
 * Keeps the `<httpNodeRoot>camrelay/ws` upgrade listener on RED.server while at least one http stream
 * out runs (one listener per server, whatever the number of nodes); returns the node's release.
 */
function useWsEndpoint(RED: NodeAPI): () => void {
  const server = (RED as { server?: unknown }).server as Server | undefined;
  const path = wsPathFor(nodeRedSetting(RED, "httpNodeRoot"));
  if (!server || typeof server.on !== "function" || path === undefined) return () => undefined;
  let entry = wsEndpoints.get(server);
  if (!entry) {
    const app: unknown = RED.httpNode;
    const endpoint = new LiveWsEndpoint({
      path,
      paths: liveRegistry,
      gate: makeGate({
        httpNodeAuth: nodeRedSetting(RED, "httpNodeAuth") ?? nodeRedSetting(RED, "httpAuth"),
        httpNodeMiddleware: nodeRedSetting(RED, "httpNodeMiddleware"),
        app:
          typeof app === "function" || (typeof app === "object" && app !== null)
            ? (app as ExpressLike)
            : undefined,
      }),
    });
    server.on("upgrade", endpoint.onUpgrade);
    entry = { endpoint, users: 0 };
    wsEndpoints.set(server, entry);
  }
  const held = entry;
  held.users++;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--held.users > 0) return;
    server.off("upgrade", held.endpoint.onUpgrade);
    held.endpoint.close();
    if (wsEndpoints.get(server) === held) wsEndpoints.delete(server);
  };
}

export = (RED: NodeAPI) => {
  function HttpStreamOut(this: Node<HttpStreamOutCredentials>, config: HttpStreamOutDef) {
    RED.nodes.createNode(this, config);
    const mount = new HttpMount(RED, this, config.path);
    const path = mount.path;
    // At most two status updates per second, however busy the viewers are.
    const reporter = new StatusReporter(this, 500);
    const problem = mount.problem;
    if (problem) {
      reporter.show({ fill: "red", shape: "ring", text: RED._(`http-stream-out.status.${problem.key}`) });
      this.error(problem.message);
    }
    let renderErrorShown = false;
    /** The camera-source id the latest frame named (msg.frame.cameraId). */
    let cameraId: string | undefined;
    const cameras = cameraRegistry(RED);

    let statusOf: (() => NodeStatus) | undefined;
    const showStatus = (): void => {
      if (problem) return;
      if (server.renderError && !renderErrorShown) {
        renderErrorShown = true;
        this.warn(RED._("http-stream-out.errors.placeholder", { error: server.renderError.message }));
      }
      statusOf ??= statusShower(RED, server);
      reporter.show(statusOf());
    };
    const options = serverOptions(RED, this, config);
    for (const error of options.webrtc?.problems ?? [])
      this.warn(RED._("http-stream-out.errors.webrtc", { error }));
    /** Decoding problems already reported (each once, until the node restarts). */
    const problemsShown = new Set<string>();
    const server: StreamServer = new StreamServer({
      ...options,
      videoDecoding: videoDecoding(options.mjpegFps ?? 5),
      onProblem: (message) => {
        const key = message.slice(0, 80);
        if (problemsShown.has(key) || problemsShown.size > 20) return;
        problemsShown.add(key);
        this.warn(RED._("http-stream-out.errors.decode", { error: message }));
      },
      onViewer: ({ event, viewer, count }) => {
        this.send(viewerMessage({ event, viewer, count, path }));
        showStatus();
      },
      onChange: showStatus,
      extraMetrics: (): MetricRow[] => {
        const camera = findCamera(cameraId, server.cameraName, cameras);
        return camera ? cameraMetricRows(camera) : [];
      },
    });

    const recordings = recordingsFor(RED, this, serverOptions(RED, this, config));
    let releaseWs = (): void => undefined;
    if (!problem) {
      // <httpNodeRoot>camrelay/player.js, kept while any http stream out serves.
      usePlayerRoute(RED.httpNode, nodeRedSetting(RED, "httpNodeMiddleware"), (err) =>
        RED.log.warn(RED._("http-stream-out.errors.playerJs", { error: err.message })),
      );
      mount.open((req, res) => recordings.handle(req, res) || server.handle(req, res));
      liveRegistry.set(server);
      releaseWs = useWsEndpoint(RED);
      showStatus();
    }

    this.on("input", (msg, _send, done) => {
      if (recordings.take(msg)) return done();
      const err = takeInput(RED, server, msg, () => (cameraId = cameraIdFromMessage(msg)));
      return err ? done(err) : done();
    });

    this.on("close", (_removed: boolean, done: () => void) => {
      liveRegistry.delete(server);
      server.close();
      releaseWs();
      recordings.close();
      mount.close();
      if (!problem) dropPlayerRoute(RED.httpNode);
      reporter.clear();
      done();
    });
  }

  RED.nodes.registerType("http-stream-out", HttpStreamOut, {
    credentials: { token: { type: "password" }, turnPassword: { type: "password" } },
  });
};
