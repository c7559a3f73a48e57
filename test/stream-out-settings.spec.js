// Unit specs (no Node-RED) for what http-stream-out hands the core: its settings as StreamServerOptions
// (lib/serve/stream-out-settings), the camera behind its frames (lib/serve/camera-lookup) and the
// hls.min.js file it serves (lib/serve/hls-js).
"use strict";
const assert = require("assert");
const {
  HTTP_STREAM_OUT_DEFAULTS,
  normalizePath,
  corsFromSettings,
  streamServerOptions,
} = require("../dist/nodes/lib/serve/stream-out-settings");
const { findCamera, cameraMetricRows } = require("../dist/nodes/lib/serve/camera-lookup");
const { HLS_JS_PATH, serveHlsJs } = require("../dist/nodes/lib/serve/hls-js");

describe("serve/stream-out-settings", function () {
  it("normalises a path, and refuses '/' and characters express would read as a pattern", function () {
    assert.strictEqual(normalizePath("camera/front/"), "/camera/front");
    assert.strictEqual(normalizePath("  //camera//front "), "/camera/front");
    assert.strictEqual(normalizePath("/cam-1.x_y~z"), "/cam-1.x_y~z");
    for (const bad of ["/", "", "/cam/:id", "/cam*", "/cam(x)", "/a b", undefined, 5, null])
      assert.strictEqual(normalizePath(bad), undefined, JSON.stringify(bad));
  });

  it("reads httpNodeCors's origin as the cors default", function () {
    assert.strictEqual(corsFromSettings(undefined), "");
    assert.strictEqual(corsFromSettings({}), "*");
    assert.strictEqual(corsFromSettings({ origin: true }), "*");
    assert.strictEqual(corsFromSettings({ origin: "https://a.example" }), "https://a.example");
    assert.deepStrictEqual(corsFromSettings({ origin: ["https://a.example", 3, "https://b.example"] }), [
      "https://a.example",
      "https://b.example",
    ]);
    assert.strictEqual(corsFromSettings({ origin: false }), "");
  });

  it("gives a node saved without settings the defaults, seconds as milliseconds", function () {
    const o = streamServerOptions({}, {});
    assert.strictEqual(o.path, "/");
    assert.strictEqual(o.title, undefined);
    assert.strictEqual(o.maxClients, HTTP_STREAM_OUT_DEFAULTS.maxClients);
    assert.strictEqual(o.maxPerAddress, HTTP_STREAM_OUT_DEFAULTS.maxPerAddress);
    assert.strictEqual(o.maxKbps, HTTP_STREAM_OUT_DEFAULTS.maxKbps);
    assert.strictEqual(o.offlineAfterMs, HTTP_STREAM_OUT_DEFAULTS.offlineAfter * 1000);
    assert.strictEqual(o.stallTimeoutMs, HTTP_STREAM_OUT_DEFAULTS.stallTimeout * 1000);
    assert.strictEqual(o.token, undefined);
    assert.strictEqual(o.cors, "");
  });

  it("reads numbers by the shared rule: text is read, junk is the default, too low is clamped", function () {
    const o = streamServerOptions(
      { path: "cam", name: "Front", maxClients: "5", maxPerAddress: "x", maxKbps: -3, stallTimeout: 0.1 },
      {},
    );
    assert.strictEqual(o.path, "/cam");
    assert.strictEqual(o.title, "Front");
    assert.strictEqual(o.maxClients, 5);
    assert.strictEqual(o.maxPerAddress, 0);
    assert.strictEqual(o.maxKbps, 0);
    assert.strictEqual(o.stallTimeoutMs, 500);
    assert.strictEqual(streamServerOptions({ path: "/cam" }, {}).title, "/cam");
    assert.strictEqual(streamServerOptions({ offlineAfter: "0" }, {}).offlineAfterMs, 0);
  });

  it("takes a non-empty string token, and the node's cors before httpNodeCors", function () {
    assert.strictEqual(streamServerOptions({}, { token: "s3cret" }).token, "s3cret");
    assert.strictEqual(streamServerOptions({}, { token: "" }).token, undefined);
    assert.strictEqual(streamServerOptions({}, { token: 42 }).token, undefined);
    assert.strictEqual(streamServerOptions({ cors: "" }, { httpNodeCors: { origin: "*" } }).cors, "*");
    assert.strictEqual(
      streamServerOptions({ cors: "https://a.example" }, { httpNodeCors: { origin: "*" } }).cors,
      "https://a.example",
    );
    const texts = { waiting: "W", offline: "O" };
    assert.strictEqual(streamServerOptions({}, { texts }).texts, texts);
  });
});

describe("serve/camera-lookup", function () {
  const cam = (name, extra = {}) => ({ name, stats: { reconnects: 0 }, state: { state: "idle" }, ...extra });
  const registry = (byId) => ({ byId: (id) => byId[id], all: () => Object.values(byId) });

  it("finds the camera by the id the frames carry, whatever its name", function () {
    const a = cam("camera");
    const b = cam("camera");
    assert.strictEqual(findCamera("b", "camera", registry({ a, b })), b);
    assert.strictEqual(findCamera("gone", "camera", registry({ a, b })), undefined);
  });

  it("falls back to the name only when exactly one camera has it", function () {
    const a = cam("camera");
    const b = cam("camera");
    const front = cam("front");
    assert.strictEqual(findCamera(undefined, "front", registry({ a, b, front })), front);
    assert.strictEqual(findCamera(undefined, "camera", registry({ a, b, front })), undefined);
    assert.strictEqual(findCamera(undefined, "", registry({ front: cam("") })), undefined);
  });

  it("gives the camera's reconnects and whether it streams as metric rows", function () {
    const rows = cameraMetricRows(cam("front", { stats: { reconnects: 3 }, state: { state: "streaming" } }));
    assert.deepStrictEqual(
      rows.map((r) => [r.name, r.type, r.value, r.labels]),
      [
        ["camrelay_camera_reconnects_total", "counter", 3, { camera: "front" }],
        ["camrelay_camera_up", "gauge", 1, { camera: "front" }],
      ],
    );
    assert.strictEqual(cameraMetricRows(cam("x"))[1].value, 0);
  });
});

describe("serve/hls-js", function () {
  function answer(req) {
    return new Promise((resolve, reject) => {
      const out = { status: 0, headers: {}, body: undefined, headersSent: false };
      const res = {
        get headersSent() {
          return out.headersSent;
        },
        writeHead(status, headers) {
          out.status = status;
          out.headers = headers;
          out.headersSent = true;
        },
        end(body) {
          out.body = body;
          resolve(out);
        },
      };
      serveHlsJs({ method: "GET", headers: {}, ...req }, res, reject);
    });
  }

  it("serves hls.min.js with an ETag, a 304 for it, and no body for HEAD", async function () {
    assert.strictEqual(HLS_JS_PATH, "/camrelay/hls.min.js");
    const first = await answer({});
    assert.strictEqual(first.status, 200);
    assert.match(first.headers["Content-Type"], /^application\/javascript/);
    assert.ok(Buffer.isBuffer(first.body) && first.body.length === first.headers["Content-Length"]);
    const etag = first.headers.ETag;
    assert.match(etag, /^"[0-9a-f]{20}"$/);
    assert.strictEqual((await answer({ headers: { "if-none-match": etag } })).status, 304);
    const head = await answer({ method: "HEAD" });
    assert.strictEqual(head.status, 200);
    assert.strictEqual(head.body, undefined);
  });
});
