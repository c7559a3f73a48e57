// Unit specs for the parts of the stream server that have logic (no Node-RED, no sockets): access and
// admission, the route table, HLS sessions, metrics text, and the viewer message pair.
"use strict";
const assert = require("assert");
const { Access, Admission, addressGroup, clientAddress } = require("../dist/nodes/lib/serve/access");
const { matchRoute, parseRequestUrl } = require("../dist/nodes/lib/serve/routes");
const { HlsSessions, HlsSession, HLS_SESSIONS_PER_ADDRESS } = require("../dist/nodes/lib/serve/hls-sessions");
const { renderMetrics, streamMetricRows } = require("../dist/nodes/lib/serve/metrics");
const {
  viewerMessage,
  viewerFromMessage,
  frameMessage,
  cameraIdFromMessage,
} = require("../dist/nodes/lib/messages");

const req = (headers = {}, remoteAddress = "127.0.0.1", ip) => ({ headers, socket: { remoteAddress }, ip });
function res() {
  const headers = {};
  return { headers, setHeader: (k, v) => (headers[k.toLowerCase()] = v) };
}

describe("serve/access", function () {
  it("accepts everything without a token; with one, ?token= first, then Authorization: Bearer", function () {
    assert.ok(new Access(undefined, "").authorized(req(), null));
    const a = new Access("s3cret", "");
    assert.ok(a.authorized(req(), "s3cret"));
    assert.ok(!a.authorized(req(), "s3cre"));
    assert.ok(!a.authorized(req(), null));
    assert.ok(a.authorized(req({ authorization: "Bearer s3cret" }), null));
    assert.ok(a.authorized(req({ authorization: "  bearer   s3cret " }), null));
    assert.ok(!a.authorized(req({ authorization: "Basic s3cret" }), null));
    // A query token that is wrong is not rescued by a right header.
    assert.ok(!a.authorized(req({ authorization: "Bearer s3cret" }), "wrong"));
  });

  it("sets CORS from a fixed origin, echoes a listed Origin with Vary, and sets nothing otherwise", function () {
    let r = res();
    new Access(undefined, "*").setCors(req(), r);
    assert.deepStrictEqual(r.headers, { "access-control-allow-origin": "*" });
    r = res();
    new Access(undefined, "https://a.example").setCors(req(), r);
    assert.deepStrictEqual(r.headers, { "access-control-allow-origin": "https://a.example", vary: "Origin" });
    const list = new Access(undefined, ["https://a.example", "https://b.example"]);
    r = res();
    list.setCors(req({ origin: "https://b.example" }), r);
    assert.strictEqual(r.headers["access-control-allow-origin"], "https://b.example");
    r = res();
    list.setCors(req({ origin: "https://evil.example" }), r);
    assert.deepStrictEqual(r.headers, {});
    r = res();
    new Access(undefined, "").setCors(req(), r);
    assert.deepStrictEqual(r.headers, {});
  });

  it("reads the client address from req.ip first and unwraps IPv4-mapped addresses", function () {
    assert.strictEqual(clientAddress(req({}, "::ffff:192.0.2.1")), "192.0.2.1");
    assert.strictEqual(clientAddress(req({}, "10.0.0.1", "198.51.100.7")), "198.51.100.7");
    assert.strictEqual(clientAddress(req({}, null)), "");
    assert.strictEqual(addressGroup("2001:db8::1"), "2001:db8:0:0::/64");
  });

  it("admits up to maxClients in all and maxPerAddress per group, and counts HLS sessions apart", function () {
    const a = new Admission(3, 2);
    assert.strictEqual(a.refusal(0, "g"), undefined);
    a.hold("g", false);
    a.hold("g", true);
    assert.strictEqual(a.hlsHeld("g"), 1);
    assert.strictEqual(a.refusal(2, "g"), "Too many viewers from your address\n");
    assert.strictEqual(a.refusal(2, "h"), undefined);
    assert.strictEqual(a.refusal(3, "h"), "Too many viewers\n");
    a.release("g", true);
    assert.strictEqual(a.hlsHeld("g"), 0);
    assert.strictEqual(a.refusal(1, "g"), undefined);
    a.release("g", false);
    a.release("g", false); // more releases than holds are harmless
    assert.strictEqual(new Admission(0, 0).refusal(1e6, "g"), undefined, "0 is unlimited");
  });
});

describe("serve/routes", function () {
  it("maps every endpoint, one trailing slash ignored, and the segment number", function () {
    const name = (p) => matchRoute(p)?.name;
    assert.strictEqual(name("/"), "mjpeg");
    assert.strictEqual(name("/snapshot.jpg"), "snapshot");
    assert.strictEqual(name("/snapshot.jpg/"), "snapshot");
    assert.strictEqual(name("/status.json"), "statusJson");
    assert.strictEqual(name("/status"), "statusPage");
    assert.strictEqual(name("/metrics"), "metrics");
    assert.strictEqual(name("/stream.mp4"), "mp4");
    assert.strictEqual(name("/index.m3u8"), "playlist");
    assert.strictEqual(name("/init.mp4"), "init");
    assert.deepStrictEqual(matchRoute("/seg-42.m4s"), { name: "segment", seq: 42 });
    for (const p of [
      "/nope",
      "/seg-.m4s",
      "/seg-1.m4s.x",
      "/status//",
      "/constructor",
      "/__proto__",
      "/toString",
    ])
      assert.strictEqual(matchRoute(p), undefined, p);
  });

  it("reads request URLs without throwing, relative to the mount point", function () {
    assert.strictEqual(parseRequestUrl("/snapshot.jpg?wait=1").searchParams.get("wait"), "1");
    assert.strictEqual(parseRequestUrl("/a/../status").pathname, "/status");
    assert.doesNotThrow(() => parseRequestUrl("//["));
    assert.strictEqual(parseRequestUrl("http://["), undefined);
  });
});

describe("serve/hls-sessions", function () {
  it("one session per address and User-Agent, held while it asks, let go after idleMs", function () {
    const admission = new Admission(0, 0);
    const sessions = new HlsSessions(admission, 1000);
    const admit = () => true;
    const a = sessions.touch("192.0.2.1", "player A", admit, 0);
    assert.ok(a.created);
    assert.strictEqual(sessions.touch("192.0.2.1", "player A", admit, 500).session, a.session);
    assert.ok(sessions.touch("192.0.2.1", "player B", admit, 500).created);
    assert.strictEqual(sessions.size, 2);
    assert.strictEqual(admission.hlsHeld("192.0.2.1"), 2);
    const left = [];
    sessions.expire((s) => left.push(s), 1400);
    assert.strictEqual(left.length, 0, "both asked 500 ms ago");
    sessions.expire((s) => left.push(s), 1600);
    assert.strictEqual(left.length, 2);
    assert.strictEqual(sessions.size, 0);
    assert.strictEqual(admission.hlsHeld("192.0.2.1"), 0);
  });

  it("refused sessions are not made; made-up User-Agents past the cap share one session", function () {
    const admission = new Admission(0, 0);
    const sessions = new HlsSessions(admission, 1000);
    assert.strictEqual(
      sessions.touch("192.0.2.1", "x", () => false, 0),
      undefined,
    );
    assert.strictEqual(sessions.size, 0);
    for (let i = 0; i < HLS_SESSIONS_PER_ADDRESS + 50; i++)
      sessions.touch("192.0.2.1", `ua ${i}`, () => true, 0);
    assert.strictEqual(sessions.size, HLS_SESSIONS_PER_ADDRESS + 1);
    // Only 64 characters of the User-Agent tell players apart.
    const s2 = new HlsSessions(new Admission(0, 0), 1000);
    s2.touch("192.0.2.2", "a".repeat(64) + "1", () => true, 0);
    assert.strictEqual(s2.touch("192.0.2.2", "a".repeat(64) + "2", () => true, 0).created, false);
  });

  it("counts what a session was sent and its kbps", function () {
    const s = new HlsSession("192.0.2.1", "192.0.2.1", 123, 0);
    s.sent(1000);
    s.sent(1000);
    s.sampleKbps(1000);
    assert.deepStrictEqual(
      { ...s.info(), since: s.info().since },
      {
        address: "192.0.2.1",
        since: 123,
        kind: "hls",
        framesSent: 2,
        framesSkipped: 0,
        bytesSent: 2000,
        kbps: 16,
        pending: false,
        buffered: 0,
      },
    );
  });
});

describe("serve/metrics", function () {
  const stats = {
    viewerCount: 2,
    upstream: "live",
    framesIn: 10,
    framesSent: 8,
    framesSkipped: 1,
    bytesOut: 999,
    viewersDropped: 0,
    fmp4: { restarts: 3 },
  };

  it("writes HELP, TYPE and a sample per row, the path label first and label values escaped", function () {
    const text = renderMetrics('/a"b\\c', [
      { name: "x_total", type: "counter", help: "X.", value: 4, labels: { camera: "line\nbreak" } },
    ]);
    assert.strictEqual(
      text,
      '# HELP x_total X.\n# TYPE x_total counter\nx_total{path="/a\\"b\\\\c",camera="line\\nbreak"} 4\n',
    );
  });

  it("lists the stream's rows in their order with the stats' values", function () {
    const rows = streamMetricRows(stats);
    assert.deepStrictEqual(
      rows.map((r) => [r.name, r.value]),
      [
        ["camrelay_viewers", 2],
        ["camrelay_upstream_up", 1],
        ["camrelay_frames_in_total", 10],
        ["camrelay_frames_sent_total", 8],
        ["camrelay_frames_skipped_total", 1],
        ["camrelay_bytes_out_total", 999],
        ["camrelay_viewers_dropped_total", 0],
        ["camrelay_ffmpeg_restarts_total", 3],
      ],
    );
    assert.strictEqual(streamMetricRows({ ...stats, upstream: "offline" })[1].value, 0);
  });
});

describe("messages: viewer events and the frame's camera id", function () {
  it("writes the viewers message as http stream out always sent it, and reads it back", function () {
    const msg = viewerMessage({
      event: "connect",
      viewer: { address: "::1", kind: "hls" },
      count: 3,
      path: "/p",
    });
    assert.deepStrictEqual(msg, {
      topic: "viewers",
      payload: 3,
      event: "connect",
      viewer: { address: "::1", kind: "hls" },
      path: "/p",
    });
    assert.deepStrictEqual(viewerFromMessage(msg), {
      event: "connect",
      viewer: { address: "::1", kind: "hls" },
      count: 3,
      path: "/p",
    });
    assert.strictEqual(viewerFromMessage({ ...msg, event: "left" }), undefined);
    assert.strictEqual(viewerFromMessage({ ...msg, viewer: { address: "::1", kind: "rtsp" } }), undefined);
    assert.strictEqual(viewerFromMessage({ ...msg, topic: "x" }), undefined);
  });

  it("carries the camera-source id in msg.frame.cameraId only when given", function () {
    const frame = { data: Buffer.from([0xff, 0xd8]), seq: 1, time: 5, camera: "c", width: 1, height: 1 };
    assert.strictEqual("cameraId" in frameMessage(frame).frame, false);
    assert.strictEqual(frameMessage(frame, "abc").frame.cameraId, "abc");
    assert.strictEqual(cameraIdFromMessage(frameMessage(frame, "abc")), "abc");
    assert.strictEqual(cameraIdFromMessage(frameMessage(frame)), undefined);
    assert.strictEqual(cameraIdFromMessage({ frame: { cameraId: 7 } }), undefined);
    assert.strictEqual(cameraIdFromMessage({ frame: null }), undefined);
    assert.strictEqual(cameraIdFromMessage({}), undefined);
  });
});
