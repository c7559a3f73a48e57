// Issue 10, HTTPS cameras: mjpeg, jpeg and Canon WebView over https:// against real TLS servers on
// 127.0.0.1 with certificates made by openssl here; certificates verified by default, a clear error that
// offers to trust (pin) the camera's certificate, pins honoured and checked before any request byte is
// sent; no Basic answer after a Digest challenge; ffmpeg https inputs verify too; the retry delay never
// above 30 s.
"use strict";
const assert = require("assert");
const fs = require("fs");
const os = require("os");
const path = require("path");
const http = require("http");
const https = require("https");
const { execFileSync, execFile } = require("child_process");
const helper = require("node-red-node-test-helper");
const sourceNode = require("../dist/nodes/camera-source.js");
const { createSource } = require("../dist/nodes/lib/sources");
const { Camera } = require("../dist/nodes/lib/camera/camera");
const { cameraOptions } = require("../dist/nodes/lib/camera/options");
const { makeFrames } = require("./lib/fake-cameras");

helper.init(require.resolve("node-red"));
require("./lib/i18n").useCatalogs(helper);

const ROOT = path.join(__dirname, "..");
const USER = "camuser";
const PASSWORD = "Https-Pa55-4471";

/** A CA, a leaf it signed, and two self-signed certificates, all for 127.0.0.1 and localhost. */
function makeCertificates(dir) {
  const ossl = (...args) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  const ext = "subjectAltName=IP:127.0.0.1,DNS:localhost";
  const selfSigned = (name, cn) =>
    ossl(
      ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", `/CN=${cn}/O=Fake Cam`],
      ...["-addext", ext, "-keyout", `${name}.key`, "-out", `${name}.crt`],
    );
  selfSigned("self", "camera.test");
  selfSigned("other", "impostor.test");
  ossl(
    ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Camrelay Test CA"],
    ...["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
    ...["-keyout", "ca.key", "-out", "ca.crt"],
  );
  ossl(
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=signed.test",
    "-keyout",
    "leaf.key",
    "-out",
    "leaf.csr",
  );
  fs.writeFileSync(path.join(dir, "leaf.ext"), ext + "\n");
  ossl(
    ...[
      "x509",
      "-req",
      "-in",
      "leaf.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
    ],
    ...["-extfile", "leaf.ext", "-out", "leaf.crt"],
  );
  const read = (f) => fs.readFileSync(path.join(dir, f));
  const pair = (name) => ({
    key: read(`${name}.key`),
    cert: read(`${name}.crt`),
    file: path.join(dir, `${name}.crt`),
  });
  const fingerprint = (name) => new (require("crypto").X509Certificate)(read(`${name}.crt`)).fingerprint256;
  return {
    self: { ...pair("self"), fingerprint: fingerprint("self") },
    other: { ...pair("other"), fingerprint: fingerprint("other") },
    leaf: { ...pair("leaf"), fingerprint: fingerprint("leaf") },
    caFile: path.join(dir, "ca.crt"),
  };
}

/**
 * An https camera: `/video` MJPEG, `/snap.jpg` snapshots, `/-wvhttp-01-/GetOneShot` Canon WebView, all behind
 * Basic auth. Records every request and every application byte any TLS connection received.
 */
async function httpsCamera(pair) {
  const frames = makeFrames(5);
  const cam = { requests: [], bytes: 0, authorizations: [] };
  const timers = new Set();
  const server = https.createServer({ key: pair.key, cert: pair.cert }, (req, res) => {
    cam.requests.push(req.url);
    cam.authorizations.push(req.headers.authorization || "");
    const expected = "Basic " + Buffer.from(`${USER}:${PASSWORD}`).toString("base64");
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { "WWW-Authenticate": 'Basic realm="cam"' });
      return res.end();
    }
    if (req.url.startsWith("/snap.jpg")) {
      res.writeHead(200, { "Content-Type": "image/jpeg", "Content-Length": frames[0].length });
      return res.end(frames[0]);
    }
    res.writeHead(200, { "Content-Type": "multipart/x-mixed-replace; boundary=frame" });
    let n = 0;
    const send = () => {
      const jpeg = frames[n++ % frames.length];
      res.write(`--frame\r\nContent-Type: image/jpeg\r\nContent-Length: ${jpeg.length}\r\n\r\n`);
      res.write(jpeg);
      res.write("\r\n");
    };
    send();
    const timer = setInterval(send, 100);
    timers.add(timer);
    res.on("close", () => {
      clearInterval(timer);
      timers.delete(timer);
    });
  });
  server.on("secureConnection", (socket) => socket.on("data", (d) => (cam.bytes += d.length)));
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  cam.port = server.address().port;
  cam.base = `https://127.0.0.1:${cam.port}`;
  cam.close = () =>
    new Promise((resolve) => {
      timers.forEach(clearInterval);
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return cam;
}

function options(protocol, url, tls, extra = {}) {
  return {
    ...cameraOptions({ protocol, url, fps: 0, mode: "stream", ...tls }, { user: USER, password: PASSWORD }),
    ...extra,
  };
}

/** Runs one connection attempt: resolves with the first frame's size, or rejects with the source's error. */
function firstFrame(opts, ms = 10000) {
  return new Promise((resolve, reject) => {
    const source = createSource(opts);
    const timer = setTimeout(() => {
      source.stop();
      reject(new Error(`no frame and no error within ${ms} ms`));
    }, ms);
    source.on("frame", ({ data: jpeg, width, height }) => {
      clearTimeout(timer);
      source.stop();
      resolve({ bytes: jpeg.length, width, height });
    });
    source.on("close", (err) => {
      clearTimeout(timer);
      source.stop();
      reject(err || new Error("closed without an error"));
    });
    source.start();
  });
}

const URLS = {
  mjpeg: (cam) => `${cam.base}/video`,
  jpeg: (cam) => `${cam.base}/snap.jpg`,
  "canon-webview": (cam) => cam.base,
};

describe("fixes: HTTPS cameras (issue 10)", function () {
  this.timeout(60000);
  let dir;
  let certs;
  let selfCam;
  let leafCam;

  before(async function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "camrelay-tls-"));
    certs = makeCertificates(dir);
    selfCam = await httpsCamera(certs.self);
    leafCam = await httpsCamera(certs.leaf);
  });

  after(async function () {
    await selfCam?.close();
    await leafCam?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const protocol of Object.keys(URLS)) {
    it(`${protocol}: a self-signed certificate is refused by default with an error that offers to trust it; nothing is sent`, async () => {
      const before = { bytes: selfCam.bytes, requests: selfCam.requests.length };
      const err = await firstFrame(options(protocol, URLS[protocol](selfCam))).then(
        () => assert.fail("connected to an untrusted camera"),
        (e) => e,
      );
      assert.strictEqual(err.name, "CertificateError", err.message);
      assert.strictEqual(err.kind, "config");
      assert.match(err.message, /not trusted \(self-signed\)/);
      assert.match(err.message, /press Test in the camera dialog to trust this camera's certificate/);
      assert.ok(err.message.includes(`SHA-256 ${certs.self.fingerprint}`), err.message);
      assert.strictEqual(err.certificate.fingerprint256, certs.self.fingerprint);
      assert.match(err.certificate.subject, /CN=camera\.test/);
      assert.strictEqual(err.certificate.selfSigned, true);
      assert.ok(!err.message.includes(PASSWORD));
      assert.strictEqual(selfCam.requests.length, before.requests, "no request reached the camera");
      assert.strictEqual(selfCam.bytes, before.bytes, "not one application byte reached the camera");
    });

    it(`${protocol}: the pinned fingerprint of a self-signed certificate connects and streams`, async () => {
      const frame = await firstFrame(
        options(protocol, URLS[protocol](selfCam), { tlsFingerprint: certs.self.fingerprint }),
      );
      assert.strictEqual(`${frame.width}x${frame.height}`, "320x240");
    });

    it(`${protocol}: a wrong pin is refused before any request byte (so no password) is sent`, async () => {
      const before = { bytes: selfCam.bytes, requests: selfCam.requests.length };
      const err = await firstFrame(
        options(protocol, URLS[protocol](selfCam), { tlsFingerprint: certs.other.fingerprint }),
      ).then(
        () => assert.fail("connected despite a wrong pin"),
        (e) => e,
      );
      assert.strictEqual(err.name, "CertificateError", err.message);
      assert.match(err.message, /is not the trusted one/);
      assert.ok(
        err.message.includes(certs.self.fingerprint) && err.message.includes(certs.other.fingerprint),
      );
      assert.strictEqual(selfCam.requests.length, before.requests);
      assert.strictEqual(selfCam.bytes, before.bytes, "not one application byte reached the camera");
    });
  }

  it("a pin also accepts a CA-signed certificate, and overrides a verify failure of the chain", async () => {
    const frame = await firstFrame(
      options("mjpeg", `${leafCam.base}/video`, { tlsFingerprint: certs.leaf.fingerprint }),
    );
    assert.strictEqual(frame.width, 320);
  });

  it("a certificate from a CA this process does not trust is refused, naming the issuer", async () => {
    const err = await firstFrame(options("jpeg", `${leafCam.base}/snap.jpg`)).then(
      () => assert.fail("connected"),
      (e) => e,
    );
    assert.match(err.message, /not trusted \(issued by CN=Camrelay Test CA, which is not a trusted CA\)/);
  });

  it("a certificate signed by a CA trusted through NODE_EXTRA_CA_CERTS verifies (real child Node process)", async () => {
    const script = `
      const { createSource } = require(${JSON.stringify(path.join(ROOT, "dist/nodes/lib/sources"))});
      const s = createSource(${JSON.stringify(options("jpeg", `${leafCam.base}/snap.jpg`))});
      s.on("frame", ({ width: w, height: h }) => { console.log("frame " + w + "x" + h); s.stop(); });
      s.on("close", (e) => { console.log("error " + (e && e.message)); });
      s.start();`;
    const out = await new Promise((resolve, reject) =>
      execFile(
        process.execPath,
        ["-e", script],
        { env: { ...process.env, NODE_EXTRA_CA_CERTS: certs.caFile }, timeout: 20000 },
        (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout)),
      ),
    );
    assert.strictEqual(out.trim(), "frame 320x240");
  });

  it("tlsVerify false accepts any certificate (the old behaviour, now a choice)", async () => {
    const frame = await firstFrame(options("mjpeg", `${selfCam.base}/video`, { tlsVerify: false }));
    assert.strictEqual(frame.height, 240);
  });

  it("a pin that is not a SHA-256 is a config error in words", async () => {
    const err = await firstFrame(options("mjpeg", `${selfCam.base}/video`, { tlsFingerprint: "AB:CD" })).then(
      () => assert.fail("connected"),
      (e) => e,
    );
    assert.match(err.message, /not a SHA-256 \(64 hex digits\)/);
  });

  describe("ffmpeg inputs over https", function () {
    const ffmpegUrl = () => `${selfCam.base}/video`;

    it("a self-signed certificate is refused with the same error before ffmpeg starts; nothing is sent", async () => {
      const before = { bytes: selfCam.bytes, requests: selfCam.requests.length };
      const err = await firstFrame(options("ffmpeg", ffmpegUrl())).then(
        () => assert.fail("connected to an untrusted camera"),
        (e) => e,
      );
      assert.strictEqual(err.name, "CertificateError", err.message);
      assert.match(err.message, /not trusted \(self-signed\): press Test/);
      assert.strictEqual(err.certificate.fingerprint256, certs.self.fingerprint);
      assert.strictEqual(selfCam.requests.length, before.requests);
      assert.strictEqual(selfCam.bytes, before.bytes);
    });

    it("a pinned certificate streams, ffmpeg verifying it itself (-tls_verify 1 with the pinned certificate as CA)", async () => {
      const opts = options("ffmpeg", ffmpegUrl(), { tlsFingerprint: certs.self.fingerprint });
      const { args, stdin } = await createSource(opts).buildCommand(opts.ffmpegPath);
      // Without credentials the options stand before -i; with them (this camera) they are option lines of
      // the script on stdin that names the URL, so the password stays off the command line.
      const i = args.indexOf("-tls_verify");
      const inArgs = i >= 0 && args[i + 1] === "1" && i < args.indexOf("-i");
      const inScript = /^option tls_verify '1'$/m.test(stdin ?? "") && /^option ca_file '/m.test(stdin ?? "");
      const { concatHasOptionDirective } = require("../dist/nodes/lib/ffmpeg");
      if (await concatHasOptionDirective(opts.ffmpegPath)) {
        assert.ok(inArgs || inScript, `${args.join(" ")}\n${stdin}`);
      } else {
        // An ffmpeg older than 5 takes no options behind the script: camrelay's own check (the pin, just
        // before ffmpeg starts) is the only one, and the password still stays off the command line.
        assert.ok(!inArgs && !args.join(" ").includes(PASSWORD), args.join(" "));
      }
      const frame = await firstFrame(opts, 20000);
      assert.strictEqual(frame.width, 320);
    });

    it("a pinned CA-signed certificate streams too (ffmpeg trusts the pinned leaf itself)", async () => {
      const opts = options("ffmpeg", `${leafCam.base}/video`, { tlsFingerprint: certs.leaf.fingerprint });
      const frame = await firstFrame(opts, 20000);
      assert.strictEqual(frame.width, 320);
    });

    it("a wrong pin is refused", async () => {
      const err = await firstFrame(
        options("ffmpeg", ffmpegUrl(), { tlsFingerprint: certs.other.fingerprint }),
      ).then(
        () => assert.fail("connected despite a wrong pin"),
        (e) => e,
      );
      assert.match(err.message, /is not the trusted one/);
    });

    it("both ffmpeg builds refuse another certificate with the options made for a pin (no window after camrelay's check)", async () => {
      const impostor = await httpsCamera(certs.other);
      try {
        const { ffmpegTlsArgs } = require("../dist/nodes/lib/sources/tls");
        const tlsArgs = await ffmpegTlsArgs(ffmpegUrl(), {
          verify: true,
          fingerprint: certs.self.fingerprint,
        });
        for (const { ffmpeg } of require("./lib/toolkit").ffmpegBuilds()) {
          const run = (url) =>
            new Promise((resolve) =>
              execFile(
                ffmpeg,
                ["-hide_banner", "-v", "error", ...tlsArgs, "-i", url, "-frames:v", "1", "-f", "null", "-"],
                { timeout: 20000 },
                (err, _out, stderr) => resolve({ code: err ? err.code : 0, stderr }),
              ),
            );
          const good = await run(`https://${USER}:${PASSWORD}@127.0.0.1:${selfCam.port}/video`);
          assert.strictEqual(good.code, 0, `${ffmpeg} with the pinned camera: ${good.stderr}`);
          const requests = impostor.requests.length;
          const bad = await run(`https://${USER}:${PASSWORD}@127.0.0.1:${impostor.port}/video`);
          assert.notStrictEqual(bad.code, 0, `${ffmpeg} accepted another certificate`);
          assert.match(bad.stderr, /Peer certificate failed verification|certificate/i);
          assert.strictEqual(impostor.requests.length, requests, `${ffmpeg} sent a request to the impostor`);
        }
      } finally {
        await impostor.close();
      }
    });

    it("ffprobe (the dialog's Test) verifies too: with the options for a pin it refuses another certificate, both builds", async () => {
      const impostor = await httpsCamera(certs.other);
      try {
        const { ffmpegTlsArgs } = require("../dist/nodes/lib/sources/tls");
        const { probeMedia } = require("../dist/nodes/lib/ffmpeg");
        const { ffmpegInput } = require("../dist/nodes/lib/ffmpeg");
        const { concatHasOptionDirective } = require("../dist/nodes/lib/ffmpeg");
        const tlsArgs = await ffmpegTlsArgs(ffmpegUrl(), {
          verify: true,
          fingerprint: certs.self.fingerprint,
        });
        for (const { ffprobe: ffprobePath } of require("./lib/toolkit").ffmpegBuilds()) {
          const url = (port) => `https://${USER}:${PASSWORD}@127.0.0.1:${port}/video`;
          // The probe builds its input as the Test does: the password goes into a script on stdin.
          const probe = async (port) => {
            const input = await ffmpegInput(ffprobePath, url(port), { tlsArgs });
            return probeMedia(url(port), {
              ffprobePath,
              inputArgs: input.args,
              stdin: input.stdin,
              timeoutMs: 15000,
            });
          };
          if (!(await concatHasOptionDirective(ffprobePath))) {
            // An ffprobe older than 5 takes no options behind the script: camrelay's check of the pin, made
            // for each URL before ffprobe starts, is what refuses the impostor (nothing is sent to it).
            const good = await probe(selfCam.port);
            assert.strictEqual(good.streams[0].codecName, "mjpeg", ffprobePath);
            const requests = impostor.requests.length;
            const refused = await ffmpegTlsArgs(url(impostor.port), {
              verify: true,
              fingerprint: certs.self.fingerprint,
            }).then(
              () => "accepted",
              (e) => e.message,
            );
            assert.match(refused, /is not the trusted one/, ffprobePath);
            assert.strictEqual(
              impostor.requests.length,
              requests,
              `${ffprobePath} sent a request to the impostor`,
            );
            continue;
          }
          const good = await probe(selfCam.port);
          assert.strictEqual(good.streams[0].codecName, "mjpeg", ffprobePath);
          const requests = impostor.requests.length;
          const bad = await probe(impostor.port).then(
            () => "accepted",
            (e) => e.message,
          );
          assert.match(bad, /ffprobe failed: .*(certificate|Input\/output error)/, `${ffprobePath}: ${bad}`);
          assert.strictEqual(
            impostor.requests.length,
            requests,
            `${ffprobePath} sent a request to the impostor`,
          );
        }
      } finally {
        await impostor.close();
      }
    });

    it("tlsVerify false streams from a self-signed camera", async () => {
      const frame = await firstFrame(options("ffmpeg", ffmpegUrl(), { tlsVerify: false }), 20000);
      assert.strictEqual(frame.height, 240);
    });

    it("a CA trusted through NODE_EXTRA_CA_CERTS is trusted by ffmpeg too (real child Node process)", async () => {
      const script = `
        const { createSource } = require(${JSON.stringify(path.join(ROOT, "dist/nodes/lib/sources"))});
        const s = createSource(${JSON.stringify(options("ffmpeg", `${leafCam.base}/video`))});
        s.on("frame", ({ width: w, height: h }) => { console.log("frame " + w + "x" + h); s.stop(); });
        s.on("close", (e) => { console.log("error " + (e && e.message)); });
        s.start();`;
      const out = await new Promise((resolve, reject) =>
        execFile(
          process.execPath,
          ["-e", script],
          { env: { ...process.env, NODE_EXTRA_CA_CERTS: certs.caFile }, timeout: 30000 },
          (err, stdout, stderr) => (err ? reject(new Error(stderr || err.message)) : resolve(stdout)),
        ),
      );
      assert.strictEqual(out.trim(), "frame 320x240");
    });
  });

  it("never answers a Basic challenge after a Digest one: refuses with an error, the password never sent", async () => {
    const seen = [];
    const server = http.createServer((req, res) => {
      const auth = req.headers.authorization || "";
      seen.push(auth);
      const challenge = auth.startsWith("Digest ")
        ? 'Basic realm="gimme"'
        : 'Digest realm="cam", nonce="n1", qop="auth"';
      res.writeHead(401, { "WWW-Authenticate": challenge });
      res.end();
    });
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const url = `http://127.0.0.1:${server.address().port}/video`;
      const err = await firstFrame(options("mjpeg", url)).then(
        () => assert.fail("connected"),
        (e) => e,
      );
      assert.strictEqual(err.kind, "auth");
      assert.match(err.message, /Basic authentication after Digest: refused to send the password in clear/);
      assert.ok(
        seen.some((a) => a.startsWith("Digest ")),
        `the Digest challenge was answered: ${seen}`,
      );
      assert.ok(!seen.some((a) => a.startsWith("Basic ")), `a Basic answer reached the server: ${seen}`);
      assert.ok(!seen.join(" ").includes(Buffer.from(`${USER}:${PASSWORD}`).toString("base64")));
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("the retry delay is never above 30 s, and still jittered below it", () => {
    const camera = new Camera(options("test", ""), createSource);
    try {
      const delays = [];
      for (let attempt = 0; attempt < 20; attempt++) {
        for (let i = 0; i < 200; i++) delays.push({ attempt, ms: camera.backoffMs(attempt) });
      }
      const over = delays.filter((d) => d.ms > 30000);
      assert.deepStrictEqual(over.slice(0, 3), [], `${over.length} delays above 30 s`);
      const late = delays.filter((d) => d.attempt >= 6).map((d) => d.ms);
      assert.ok(Math.min(...late) >= 24000, `min ${Math.min(...late)}`);
      assert.ok(new Set(late).size > 50, "capped delays are still jittered");
      const first = delays.filter((d) => d.attempt === 0).map((d) => d.ms);
      assert.ok(Math.max(...first) <= 600 && Math.min(...first) >= 400);
    } finally {
      camera.close();
    }
  });

  describe("the camera dialog's Test (real Node-RED)", function () {
    afterEach(async () => {
      await helper.unload();
      await helper.stopServer();
    });

    async function probe(body) {
      await helper.startServer();
      await helper.load(sourceNode, [{ id: "cam", type: "camera-source", protocol: "test" }]);
      const res = await helper.request().post("/camrelay/camera-source/test").send(body).expect(200);
      return res.body;
    }

    it("reports the untrusted certificate's fingerprint and subject; with that pin it gets a frame", async () => {
      const url = `${selfCam.base}/video`;
      const refused = await probe({ protocol: "mjpeg", url, fps: "0", user: USER, password: PASSWORD });
      assert.match(refused.error, /not trusted \(self-signed\)/);
      assert.strictEqual(refused.certificate.fingerprint256, certs.self.fingerprint);
      assert.match(refused.certificate.subject, /CN=camera\.test, O=Fake Cam/);
      await helper.unload();
      await helper.stopServer();
      const pinned = await probe({
        protocol: "mjpeg",
        url,
        fps: "0",
        user: USER,
        password: PASSWORD,
        tlsFingerprint: refused.certificate.fingerprint256,
      });
      assert.strictEqual(pinned.error, undefined, pinned.error);
      assert.strictEqual(pinned.width, 320);
      assert.strictEqual(
        pinned.certificate.fingerprint256,
        certs.self.fingerprint,
        "the presented certificate",
      );
    });

    it("a camera whose certificate is not checked says so once in the log (verify off; ffmpeg rtsps://)", async () => {
      await helper.startServer();
      await helper.load(sourceNode, [
        {
          id: "off",
          type: "camera-source",
          protocol: "mjpeg",
          url: `${selfCam.base}/video`,
          tlsVerify: false,
        },
        { id: "rtsps", type: "camera-source", protocol: "ffmpeg", url: "rtsps://127.0.0.1:1/x" },
        { id: "on", type: "camera-source", protocol: "mjpeg", url: `${selfCam.base}/video` },
        {
          id: "pin",
          type: "camera-source",
          protocol: "jpeg",
          url: `${selfCam.base}/snap.jpg`,
          tlsVerify: false,
          tlsFingerprint: certs.self.fingerprint,
        },
      ]);
      const warnings = helper
        .log()
        .args.map((a) => a[0])
        .filter((m) => m.level === helper.log().WARN);
      const of = (id) => warnings.filter((m) => m.id === id).map((m) => m.msg);
      assert.deepStrictEqual(of("off"), [
        "certificate verification is off: the connection is encrypted, but whoever sits in between can read the camera's password",
      ]);
      assert.deepStrictEqual(of("rtsps"), [
        "ffmpeg cannot verify rtsps:// certificates: the connection is encrypted, but not authenticated",
      ]);
      assert.deepStrictEqual(of("on"), []);
      assert.deepStrictEqual(of("pin"), []);
    });

    it("an ffmpeg https input: the same certificate report, and with the pin a frame and ffprobe's facts", async () => {
      const url = `${selfCam.base}/video`;
      const refused = await probe({ protocol: "ffmpeg", url, fps: "0", user: USER, password: PASSWORD });
      assert.match(refused.error, /not trusted \(self-signed\)/);
      assert.strictEqual(refused.certificate.fingerprint256, certs.self.fingerprint);
      await helper.unload();
      await helper.stopServer();
      const pinned = await probe({
        protocol: "ffmpeg",
        url,
        fps: "0",
        user: USER,
        password: PASSWORD,
        tlsFingerprint: certs.self.fingerprint,
      });
      assert.strictEqual(pinned.error, undefined, pinned.error);
      assert.strictEqual(pinned.videoError, undefined, pinned.videoError);
      assert.strictEqual(pinned.video.codec, "mjpeg");
    });
  });

  describe("the camera dialog in a browser (real Node-RED process, Debian chromium)", function () {
    let nodeRed;
    let browser;

    after(async function () {
      this.timeout(30000);
      if (browser) await browser.close();
      if (nodeRed) await nodeRed.stop();
    });

    it("Test shows the untrusted certificate, 'Trust this certificate' pins it, Test then shows a frame", async function () {
      this.timeout(120000);
      const { startNodeRed } = require("./lib/browser-nodered");
      const { launchChromium } = require("./lib/browser-chromium");
      nodeRed = await startNodeRed({
        flows: [
          { id: "t1", type: "tab", label: "tls" },
          {
            id: "tlscam",
            type: "camera-source",
            name: "tls cam",
            protocol: "mjpeg",
            url: `${selfCam.base}/video`,
          },
        ],
      });
      browser = await launchChromium();
      const page = await browser.context.newPage();
      const errors = [];
      page.on("pageerror", (err) => errors.push(err.message));
      await page.goto(`${nodeRed.base}/`);
      await page.waitForSelector('.red-ui-palette-node[data-palette-type="camera-connect"]', {
        timeout: 45000,
      });
      await page.evaluate(() => globalThis.RED.editor.editConfig("", "camera-source", "tlscam"));
      await page.waitForSelector("#camrelay-camera-test", { state: "visible" });
      assert.ok(
        await page.isVisible("#node-config-input-tlsFingerprint"),
        "the TLS fields show for https://",
      );
      assert.ok(await page.isChecked("#node-config-input-tlsVerify"), "verification is on by default");
      await page.fill("#node-config-input-user", USER);
      await page.fill("#node-config-input-password", PASSWORD);
      await page.click("#camrelay-camera-test");
      const trust = page.locator("#camrelay-camera-test-result .camrelay-camera-test-trust");
      await trust.waitFor({ timeout: 20000 });
      const refused = await page.innerText("#camrelay-camera-test-result");
      assert.match(refused, /not trusted \(self-signed\)/);
      assert.ok(refused.includes(certs.self.fingerprint), refused);
      assert.match(refused, /CN=camera\.test/);
      await trust.click();
      assert.strictEqual(await page.inputValue("#node-config-input-tlsFingerprint"), certs.self.fingerprint);
      await page.click("#camrelay-camera-test");
      await page
        .locator("#camrelay-camera-test-result img.camrelay-camera-test-image")
        .waitFor({ timeout: 20000 });
      assert.ok((await page.innerText(".camrelay-camera-test-certificate")).includes(certs.self.fingerprint));
      await page.click("#node-config-dialog-ok");
      await page.waitForSelector("#node-config-dialog-ok", { state: "detached" });
      const saved = await page.evaluate(() => {
        const n = globalThis.RED.nodes.node("tlscam");
        return { tlsFingerprint: n.tlsFingerprint, tlsVerify: n.tlsVerify };
      });
      assert.deepStrictEqual(saved, { tlsFingerprint: certs.self.fingerprint, tlsVerify: true });
      assert.deepStrictEqual(errors, []);
    });
  });
});
