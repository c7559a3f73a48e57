// The Node-RED-free parts of WebRTC (WHEP): samples out of real ffmpeg fMP4 (mp4-samples), the RFC 6184
// packetizer (h264-rtp), reading the browser's offer (whep-sdp) and the node's WebRTC settings.
"use strict";
const assert = require("assert");
const { execFileSync } = require("child_process");
const { parseInitTracks, parseFragmentSamples } = require("../dist/nodes/lib/codec/mp4-samples");
const { H264Packetizer, splitAvcc, nalType, NAL } = require("../dist/nodes/lib/codec/h264-rtp");
const { readOffer, chooseH264, h264ProfileOf } = require("../dist/nodes/lib/serve/whep-sdp");
const { webrtcConfig, parseUdpPorts } = require("../dist/nodes/lib/serve/stream-out-settings");
const { Mp4FragmentSplitter } = require("../dist/nodes/lib/codec/fmp4-splitter");
const { StreamServer } = require("../dist/nodes/lib/serve/stream-server");
const { WhepEndpoint } = require("../dist/nodes/lib/serve/whep");
const { WhepSession } = require("../dist/nodes/lib/serve/whep-session");
const { OggOpusReader, OpusFeed } = require("../dist/nodes/lib/serve/whep-audio");
const { ffmpegBuilds, until } = require("./lib/toolkit");
const http = require("http");

const FFMPEG = ffmpegBuilds()[0].ffmpeg;

/** Two seconds of 320x240 H.264 (+ AAC when `audio`) as fMP4 split into init and fragments. */
function fmp4({ audio = false, profile = "high", gop = 25, seconds = 2 } = {}) {
  const args = ["-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25"];
  if (audio) args.push("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000");
  args.push(
    "-t",
    String(seconds),
    "-c:v",
    "libx264",
    "-profile:v",
    profile,
    "-pix_fmt",
    "yuv420p",
    "-g",
    String(gop),
  );
  args.push("-bf", "0", "-x264-params", "keyint_min=" + gop);
  if (audio) args.push("-c:a", "aac", "-b:a", "64k");
  args.push(
    "-f",
    "mp4",
    "-movflags",
    "empty_moov+default_base_moof+frag_keyframe",
    "-frag_duration",
    "250000",
  );
  args.push("pipe:1");
  const out = execFileSync(FFMPEG, args, { maxBuffer: 64 << 20 });
  const parts = { init: null, fragments: [] };
  const splitter = new Mp4FragmentSplitter({
    init: (data) => (parts.init = data),
    fragment: (data, info) => parts.fragments.push({ data, info }),
  });
  splitter.push(out);
  return parts;
}

/** Reassembles RTP packets (single NAL and FU-A) into the NAL units they carry. */
function depacketize(packets) {
  const nals = [];
  let fu = null;
  for (const pkt of packets) {
    const payload = pkt.subarray(12);
    const type = payload[0] & 0x1f;
    if (type === NAL.FU_A) {
      const start = payload[1] & 0x80;
      const end = payload[1] & 0x40;
      if (start) fu = [Buffer.from([(payload[0] & 0xe0) | (payload[1] & 0x1f)])];
      assert.ok(fu, "an FU-A continuation without a start");
      fu.push(payload.subarray(2));
      if (end) {
        nals.push(Buffer.concat(fu));
        fu = null;
      }
    } else nals.push(payload);
  }
  assert.strictEqual(fu, null, "every FU-A ended");
  return nals;
}

describe("WHEP core (mp4-samples, h264-rtp, whep-sdp, settings)", function () {
  this.timeout(60000);
  let video;
  let av;
  before(function () {
    video = fmp4();
    av = fmp4({ audio: true, profile: "main" });
  });

  describe("mp4-samples", function () {
    it("reads the tracks of an init: id, timescale, avcC parameter sets and profile", function () {
      const tracks = parseInitTracks(video.init);
      assert.strictEqual(tracks.tracks.length, 1);
      const v = tracks.video;
      assert.strictEqual(v.kind, "video");
      assert.strictEqual(v.format, "avc1");
      assert.strictEqual(v.width, 320);
      assert.strictEqual(v.height, 240);
      assert.ok(v.timescale > 0);
      assert.strictEqual(v.avc.lengthSize, 4);
      assert.strictEqual(v.avc.sps.length, 1);
      assert.strictEqual(v.avc.pps.length, 1);
      assert.strictEqual(nalType(v.avc.sps[0]), NAL.SPS);
      assert.strictEqual(nalType(v.avc.pps[0]), NAL.PPS);
      assert.strictEqual(v.avc.profileLevelId.slice(0, 2), "64", "high profile");
      assert.strictEqual(v.avc.profileLevelId, v.avc.sps[0].toString("hex", 1, 4));
      const both = parseInitTracks(av.init);
      assert.strictEqual(both.tracks.length, 2);
      assert.strictEqual(both.audio.format, "mp4a");
      assert.strictEqual(both.audio.timescale, 48000);
      assert.strictEqual(both.video.avc.profileLevelId.slice(0, 2), "4d", "main profile");
    });

    it("gives every sample of every fragment with times, durations and keyframes in order", function () {
      const tracks = parseInitTracks(video.init);
      const all = video.fragments.flatMap((f) => parseFragmentSamples(f.data, tracks));
      assert.strictEqual(all.length, 50, "2 s at 25 fps");
      const step = tracks.video.timescale / 25;
      all.forEach((s, i) => {
        assert.strictEqual(s.trackId, tracks.video.id);
        assert.strictEqual(s.dts, i * step, `dts of sample ${i}`);
        assert.strictEqual(s.duration, step);
        assert.strictEqual(s.keyframe, i % 25 === 0, `keyframe flag of sample ${i}`);
        const nals = splitAvcc(s.data, 4);
        assert.ok(nals.length >= 1);
        if (s.keyframe)
          assert.ok(
            nals.some((n) => nalType(n) === NAL.IDR),
            `sample ${i} has an IDR`,
          );
        else assert.ok(!nals.some((n) => nalType(n) === NAL.IDR), `sample ${i} has no IDR`);
      });
      // Fragments of 250 ms or less, each fragment's first sample is its keyframe flag.
      for (const f of video.fragments) {
        const samples = parseFragmentSamples(f.data, tracks);
        assert.ok(samples.length <= 7, `a fragment of ${samples.length} samples`);
        assert.strictEqual(samples[0].keyframe, f.info.keyframe);
      }
    });

    it("separates the audio track's samples from the video's", function () {
      const tracks = parseInitTracks(av.init);
      const all = av.fragments.flatMap((f) => parseFragmentSamples(f.data, tracks));
      const v = all.filter((s) => s.trackId === tracks.video.id);
      const a = all.filter((s) => s.trackId === tracks.audio.id);
      assert.strictEqual(v.length, 50);
      assert.ok(a.length >= 90, `${a.length} AAC frames in 2 s`); // 48000 / 1024 per second
      assert.ok(
        a.slice(0, -1).every((s) => s.duration === 1024),
        "AAC frames of 1024 samples",
      );
    });

    it("refuses cut or lying boxes with an error in words, never a crash", function () {
      const tracks = parseInitTracks(video.init);
      const frag = video.fragments[0].data;
      assert.throws(() => parseFragmentSamples(frag.subarray(0, frag.length - 100), tracks), /mp4: /);
      assert.throws(() => parseInitTracks(Buffer.from("not an mp4 at all")), /mp4: /);
      assert.throws(() => parseInitTracks(video.init.subarray(0, 40)), /mp4: /);
      const other = parseInitTracks(av.init);
      other.tracks = other.tracks.filter((t) => t.kind === "audio");
      assert.throws(() => parseFragmentSamples(frag, other), /track \d+, which the init does not have/);
      // random damage: an Error or samples inside the buffer, never anything else
      for (let i = 0; i < 300; i++) {
        const bad = Buffer.from(frag);
        for (let k = 0; k < 4; k++)
          bad[Math.floor(Math.random() * Math.min(bad.length, 400))] = Math.random() * 256;
        try {
          for (const s of parseFragmentSamples(bad, tracks)) assert.ok(s.data.length <= bad.length);
        } catch (err) {
          assert.ok(err instanceof Error && /^mp4: |out of range|outside/.test(err.message), err.message);
        }
      }
    });
  });

  describe("h264-rtp", function () {
    it("cuts a big NAL into FU-A fragments under the MTU and reassembles to the same bytes", function () {
      const p = new H264Packetizer({ mtu: 1200, payloadType: 102, ssrc: 0x1234, sequence: 65534 });
      const nal = Buffer.alloc(5000, 7);
      nal[0] = 0x65; // IDR, NRI 3
      const small = Buffer.from([0x06, 1, 2, 3]); // SEI
      p.setParameterSets([Buffer.from([0x67, 0x64, 0, 0x1f])], [Buffer.from([0x68, 0xee])]);
      const packets = p.packetize([small, nal], 123456);
      assert.ok(
        packets.every((pkt) => pkt.length <= 1200 - 32 + 12),
        "room for extensions under 1200",
      );
      const nals = depacketize(packets);
      assert.deepStrictEqual(
        nals.map((n) => nalType(n)),
        [NAL.SEI, NAL.SPS, NAL.PPS, NAL.IDR],
        "SPS and PPS go right before the IDR",
      );
      assert.ok(nals[3].equals(nal));
      const seqs = packets.map((pkt) => pkt.readUInt16BE(2));
      assert.deepStrictEqual(seqs.slice(0, 4), [65534, 65535, 0, 1], "sequence numbers wrap");
      packets.forEach((pkt, i) => {
        assert.strictEqual(pkt[0], 0x80);
        assert.strictEqual(pkt[1] & 0x7f, 102);
        assert.strictEqual(!!(pkt[1] & 0x80), i === packets.length - 1, "marker on the last packet only");
        assert.strictEqual(pkt.readUInt32BE(4), 123456);
        assert.strictEqual(pkt.readUInt32BE(8), 0x1234);
      });
    });

    it("keeps in-band parameter sets, drops access unit delimiters, leaves P pictures alone", function () {
      const p = new H264Packetizer();
      const sps = Buffer.from([0x67, 0x42, 0xe0, 0x1f, 9]);
      const pps = Buffer.from([0x68, 0xce]);
      const aud = Buffer.from([0x09, 0xf0]);
      const idr = Buffer.from([0x65, 1, 2]);
      const inband = depacketize(p.packetize([aud, sps, pps, idr], 1));
      assert.deepStrictEqual(inband.map(nalType), [NAL.SPS, NAL.PPS, NAL.IDR]);
      const later = depacketize(p.packetize([Buffer.from([0x65, 3])], 2));
      assert.deepStrictEqual(later.map(nalType), [NAL.SPS, NAL.PPS, NAL.IDR], "remembered from in-band");
      assert.ok(later[0].equals(sps));
      const pframe = depacketize(p.packetize([Buffer.from([0x41, 4, 5])], 3));
      assert.deepStrictEqual(pframe.map(nalType), [1]);
      assert.throws(() => splitAvcc(Buffer.from([0, 0, 0, 9, 1]), 4), /runs past its sample/);
      assert.throws(() => new H264Packetizer({ mtu: 50 }), /too small/);
      assert.strictEqual(p.packetize([idr], 2 ** 32 + 5)[0].readUInt32BE(4), 5, "32-bit timestamps wrap");
    });

    it("packetizes a real fMP4 stream and the NAL units come back unchanged", function () {
      const tracks = parseInitTracks(video.init);
      const p = new H264Packetizer();
      p.setParameterSets(tracks.video.avc.sps, tracks.video.avc.pps);
      let pictures = 0;
      for (const f of video.fragments)
        for (const s of parseFragmentSamples(f.data, tracks)) {
          const nals = splitAvcc(s.data, 4).filter((n) => nalType(n) !== NAL.AUD);
          const back = depacketize(p.packetize(nals, s.pts * 90));
          const expected = s.keyframe && !nals.some((n) => nalType(n) === NAL.SPS) ? 2 : 0;
          assert.strictEqual(back.length, nals.length + expected);
          assert.ok(back.slice(back.length - 1)[0].equals(nals[nals.length - 1]));
          pictures++;
        }
      assert.strictEqual(pictures, 50);
    });
  });

  describe("whep-audio", function () {
    it("converts the fMP4's AAC into 20 ms Opus RTP packets, fed in any chunking, each fragment once", async function () {
      const rtp = [];
      const feed = new OpusFeed({ ffmpegPath: FFMPEG, onRtp: (p) => rtp.push(p) });
      feed.feed(
        { type: "init", data: av.init, codec: "avc1.4d000d,mp4a.40.2", width: 320, height: 240 },
        false,
      );
      feed.feed({ type: "init", data: Buffer.from(av.init), codec: "", width: 0, height: 0 }, false);
      for (const f of av.fragments) {
        const ev = { type: "fragment", data: f.data, keyframe: f.info.keyframe, time: 0, duration: 0 };
        feed.feed(ev, false);
        feed.feed(ev, false); // a second viewer's sink: the same Buffer, written once
      }
      assert.strictEqual(feed.counts.fragments, av.fragments.length);
      await until(() => rtp.length >= 95, {
        ms: 15000,
        what: "2 s of Opus",
        detail: () => `${rtp.length} packets`,
      });
      await feed.stop();
      assert.strictEqual(feed.counts.restarts, 0, "the same init again is no restart");
      assert.ok(rtp.length <= 110, `${rtp.length} packets of 20 ms for 2 s (+ AAC priming)`);
      rtp.forEach((p, i) => {
        assert.strictEqual(p[0], 0x80);
        if (i > 0) {
          assert.strictEqual(p.readUInt16BE(2), (rtp[i - 1].readUInt16BE(2) + 1) & 0xffff);
          assert.strictEqual((p.readUInt32BE(4) - rtp[i - 1].readUInt32BE(4)) >>> 0, 960);
        }
        assert.ok(p.length > 13, "an Opus payload after the header");
      });
    });

    it("reads Ogg pages in any chunking and leaves out OpusHead and OpusTags", function () {
      const page = (packets, headerType = 0) => {
        const lacing = [];
        for (const p of packets) {
          let n = p.length;
          while (n >= 255) {
            lacing.push(255);
            n -= 255;
          }
          lacing.push(n);
        }
        const head = Buffer.alloc(27);
        head.write("OggS", 0, "latin1");
        head[5] = headerType;
        head[26] = lacing.length;
        return Buffer.concat([head, Buffer.from(lacing), ...packets]);
      };
      const big = Buffer.alloc(600, 3);
      const stream = Buffer.concat([
        page([Buffer.from("OpusHead\x01\x02")], 2),
        page([Buffer.from("OpusTags....")]),
        page([Buffer.from([1, 2, 3]), big]),
        Buffer.from("junk"),
        page([Buffer.from([9])]),
      ]);
      for (const step of [1, 7, stream.length]) {
        const got = [];
        const r = new OggOpusReader((p) => got.push(p));
        for (let i = 0; i < stream.length; i += step) r.push(stream.subarray(i, i + step));
        assert.deepStrictEqual(
          got.map((p) => p.length),
          [3, 600, 1],
          `chunks of ${step}`,
        );
        assert.ok(got[1].equals(big));
      }
    });
  });

  describe("whep-sdp", function () {
    const offer = [
      "v=0",
      "m=audio 9 UDP/TLS/RTP/SAVPF 111",
      "a=rtpmap:111 opus/48000/2",
      "m=video 9 UDP/TLS/RTP/SAVPF 96 102 104 106 108 127",
      "a=rtpmap:96 VP8/90000",
      "a=rtpmap:102 H264/90000",
      "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
      "a=rtpmap:104 H264/90000",
      "a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f",
      "a=rtpmap:106 H264/90000",
      "a=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
      "a=rtpmap:108 H264/90000",
      "a=fmtp:108 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f",
      "a=rtpmap:127 H264/90000",
      "a=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640034",
      "",
    ].join("\r\n");

    it("reads the H.264 variants and Opus of an offer and picks the camera's profile", function () {
      const s = readOffer(offer);
      assert.strictEqual(s.opus, true);
      assert.strictEqual(s.video, true);
      assert.strictEqual(s.h264.length, 5);
      assert.strictEqual(chooseH264(s.h264, "4d001f").payloadType, 108, "exact");
      assert.strictEqual(chooseH264(s.h264, "64001f").payloadType, 127, "same profile, other level");
      assert.strictEqual(chooseH264(s.h264, "f4001f").payloadType, 106, "else constrained baseline");
      assert.strictEqual(
        chooseH264(
          s.h264.filter((h) => h.packetizationMode === 0),
          "42001f",
        ),
        undefined,
      );
      assert.strictEqual(readOffer("v=0\r\nm=video 0 RTP/AVP 96\r\n").video, false, "port 0 is no video");
      assert.strictEqual(h264ProfileOf("avc1.64001f,mp4a.40.2"), "64001f");
      assert.strictEqual(h264ProfileOf("hvc1.1.6.L93.B0"), undefined);
      assert.strictEqual(h264ProfileOf("avc1"), "42e01f");
    });
  });

  describe("WebRTC settings", function () {
    it("reads STUN/TURN lines, the TURN login, a UDP range and ICE over TCP; says what it left out", function () {
      const { config, problems } = webrtcConfig(
        {
          iceServers: "stun:stun.l.google.com:19302\n\n# a comment\nturn:host:3478?transport=udp\nhttp://x\n",
          turnUser: "me",
          udpPorts: "40000-40100",
          iceTcp: true,
        },
        "secret",
      );
      assert.deepStrictEqual(config.iceServers, [
        { urls: "stun:stun.l.google.com:19302" },
        { urls: "turn:host:3478?transport=udp", username: "me", credential: "secret" },
      ]);
      assert.deepStrictEqual(config.portRange, [40000, 40100]);
      assert.strictEqual(config.iceTcp, true);
      assert.strictEqual(problems.length, 1);
      assert.match(problems[0], /"http:\/\/x" is not a stun: or turn: URL/);
      assert.deepStrictEqual(webrtcConfig({}, undefined), {
        config: { iceServers: [], portRange: undefined, iceTcp: false },
        problems: [],
      });
      assert.strictEqual(parseUdpPorts(""), undefined);
      for (const bad of ["40000", "5-10", "50000-40000", "40000-70000", "a-b"])
        assert.match(parseUdpPorts(bad).message, /not a range min-max/, bad);
    });
  });

  describe("the WHEP endpoint on a StreamServer (real werift, plain http)", function () {
    let httpServer;
    let handler;
    let offerSdp;
    const url = (p) => `http://127.0.0.1:${httpServer.address().port}${p}`;
    const post = (p, body, headers = {}) =>
      fetch(url(p), {
        method: "POST",
        headers: { "Content-Type": "application/sdp", ...headers },
        body,
      }).then(async (r) => ({ status: r.status, text: await r.text(), location: r.headers.get("location") }));
    before(async function () {
      httpServer = http.createServer((req, res) => handler(req, res));
      await new Promise((r) => httpServer.listen(0, "127.0.0.1", r));
      // A browser-like offer (recvonly H.264, mode 1) made by a second werift peer.
      const w = require("werift");
      const client = new w.RTCPeerConnection({
        codecs: {
          video: [
            new w.RTCRtpCodecParameters({
              mimeType: "video/H264",
              clockRate: 90000,
              parameters: "profile-level-id=42e01f;packetization-mode=1;level-asymmetry-allowed=1",
            }),
          ],
        },
      });
      client.addTransceiver("video", { direction: "recvonly" });
      await client.setLocalDescription(await client.createOffer());
      offerSdp = client.localDescription.sdp;
      await client.close();
    });
    after(() => new Promise((r) => httpServer.close(r)));

    /** A StreamServer with the ffmpeg fMP4 pushed in (init + first fragment). */
    function serverWith(options) {
      const s = new StreamServer({ path: "/cam", ...options });
      s.pushMp4(video.init, { type: "init", codec: "avc1.64000d", width: 320, height: 240 });
      s.pushMp4(video.fragments[0].data, { type: "fragment", keyframe: true, duration: 0.25 });
      handler = (req, res) => s.handle(req, res, req.url.replace(/^\/cam/, ""));
      return s;
    }

    it("answers 503 in words over maxClients, and 201 once a slot is free", async function () {
      const s = serverWith({ maxClients: 1 });
      try {
        const other = s.openLive("ws", "10.0.0.9", { video() {} });
        const busy = await post("/cam/whep", offerSdp);
        assert.strictEqual(busy.status, 503);
        assert.match(busy.text, /\w+ \w+/);
        other.close();
        const ok = await post("/cam/whep", offerSdp);
        assert.strictEqual(ok.status, 201, ok.text);
        assert.strictEqual(s.stats().viewers.filter((v) => v.kind === "webrtc").length, 1);
      } finally {
        s.close();
      }
      assert.strictEqual(s.whep.size, 0, "close ends the session");
      assert.strictEqual(s.viewerCount, 0);
    });

    it("ICE over TCP adds passive TCP candidates; UDP ports keep every UDP candidate in the range", async function () {
      const s = serverWith({
        webrtc: webrtcConfig({ iceTcp: true, udpPorts: "41000-41050" }, undefined),
      });
      try {
        const r = await post("/cam/whep", offerSdp);
        assert.strictEqual(r.status, 201, r.text);
        const candidates = r.text.split(/\r?\n/).filter((l) => l.startsWith("a=candidate:"));
        const udp = candidates.filter((c) => / udp /i.test(c));
        const tcp = candidates.filter((c) => / tcp /i.test(c));
        assert.ok(udp.length > 0, r.text);
        assert.ok(
          tcp.some((c) => /tcptype passive/.test(c)),
          `passive TCP candidates:\n${candidates.join("\n")}`,
        );
        for (const c of udp) {
          const port = Number(c.split(" ")[5]);
          assert.ok(port >= 41000 && port <= 41050, c);
        }
      } finally {
        s.close();
      }
    });

    it("answers 415 in words for an H.265 path, and 503 before any video came", async function () {
      const empty = new StreamServer({ path: "/cam" });
      handler = (req, res) => empty.handle(req, res, req.url.replace(/^\/cam/, ""));
      const none = await post("/cam/whep", offerSdp);
      empty.close();
      assert.strictEqual(none.status, 503);
      assert.match(none.text, /No video has arrived/);
      const hevc = execFileSync(
        FFMPEG,
        [
          "-hide_banner",
          "-loglevel",
          "error",
          "-f",
          "lavfi",
          "-i",
          "testsrc2=size=160x120:rate=10",
          "-t",
          "1",
        ]
          .concat(["-c:v", "libx265", "-tag:v", "hvc1", "-x265-params", "log-level=error", "-f", "mp4"])
          .concat(["-movflags", "empty_moov+default_base_moof+frag_keyframe", "pipe:1"]),
        { maxBuffer: 16 << 20 },
      );
      const parts = [];
      let codec = "";
      new Mp4FragmentSplitter({
        init: (d, info) => (parts.push(d), (codec = info.codec)),
        fragment: (d) => parts.push(d),
      }).push(hevc);
      assert.match(codec, /^hvc1\./);
      const s = new StreamServer({ path: "/cam" });
      s.pushMp4(parts[0], { type: "init", codec, width: 160, height: 120 });
      s.pushMp4(parts[1], { type: "fragment", keyframe: true });
      handler = (req, res) => s.handle(req, res, req.url.replace(/^\/cam/, ""));
      const r = await post("/cam/whep", offerSdp);
      s.close();
      assert.strictEqual(r.status, 415);
      assert.match(r.text, /carries hvc1\.[^,]*, not H\.264/);
    });

    it("answers 501 in words when werift cannot be loaded", async function () {
      const host = {
        authorized: () => true,
        liveAccess: () => ({ ok: true }),
        openLive: () => assert.fail("no viewer without werift"),
        videoCodec: () => "avc1.64001f",
        hasHadFrames: () => true,
        closed: () => false,
      };
      const endpoint = new WhepEndpoint(host, {
        config: { iceServers: [], iceTcp: false },
        loadWerift: () => Promise.reject(new Error("Cannot find module 'werift'")),
      });
      handler = (req, res) => endpoint.handle(req, res, new URL(req.url, "http://x"));
      const r = await post("/whep", offerSdp);
      assert.strictEqual(r.status, 501);
      assert.match(r.text, /WebRTC is not available.*werift could not be loaded \(Cannot find module/);
    });
  });

  describe("a WHEP session's pacing (werift replaced by a recording stand-in)", function () {
    /** Just enough of werift for WhepSession: records sendRtp, lets the test drive the connection state. */
    function fakeWerift({ sendDelayMs = 0 } = {}) {
      const sent = [];
      const event = () => {
        const subs = [];
        return {
          subscribe: (f) => (subs.push(f), { unSubscribe() {} }),
          fire: (v) => subs.forEach((f) => f(v)),
        };
      };
      const state = event();
      const sender = {
        sendRtp: (pkt) => {
          sent.push(Buffer.from(pkt));
          return new Promise((r) => setTimeout(r, sendDelayMs));
        },
        onPictureLossIndication: event(),
        dtlsTransport: { onStateChange: event() },
      };
      class RTCPeerConnection {
        constructor(config) {
          this.config = config;
          this.iceGatheringState = "complete";
          this.connectionStateChange = state;
          this.iceGatheringStateChange = event();
          this.localDescription = { sdp: "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\n" };
        }
        async setRemoteDescription() {}
        getTransceivers() {
          return [{ kind: "video", sender, setDirection() {} }];
        }
        async createAnswer() {
          return {};
        }
        async setLocalDescription() {}
        async close() {}
      }
      return {
        werift: { RTCPeerConnection, RTCRtpCodecParameters: class {} },
        sent,
        connect: () => state.fire("connected"),
      };
    }

    async function session(fake) {
      const ended = [];
      const { session: s } = await WhepSession.create("t", {
        werift: fake.werift,
        config: { iceServers: [], iceTcp: false },
        offer: "v=0",
        h264: { payloadType: 102, profileLevelId: "64000d", packetizationMode: 1, parameters: "" },
        onEnd: (r) => ended.push(r),
      });
      return { s, ended };
    }
    const fragments = (parts) =>
      parts.fragments.map((f) => ({
        type: "fragment",
        data: f.data,
        keyframe: f.info.keyframe,
        time: 0,
        duration: 0,
      }));
    /** RTP timestamps of the first packet of each picture (after a marker). */
    const pictureTimes = (sent) => {
      const out = [];
      let start = true;
      for (const p of sent) {
        if (start) out.push(p.readUInt32BE(4));
        start = (p[1] & 0x80) !== 0;
      }
      return out;
    };

    it("keeps only the newest GOP until connected, sends it squeezed, then live pictures at 90 kHz", async function () {
      const fake = fakeWerift();
      const { s } = await session(fake);
      s.feed({ type: "init", data: video.init, codec: "avc1.64000d", width: 320, height: 240 });
      const frags = fragments(video);
      for (const f of frags.slice(0, 6)) s.feed(f); // the second GOP starts at fragment 4 (25 pictures per GOP)
      const gop2 = frags.findIndex((f, i) => i > 0 && f.keyframe);
      assert.ok(gop2 > 0 && gop2 < 6, "a second GOP began");
      assert.strictEqual(fake.sent.length, 0, "nothing is sent before the peer connects");
      fake.connect();
      await until(() => !s.queuedBytes, 5000, "the backlog went out");
      const backlog = pictureTimes(fake.sent);
      const tracks = parseInitTracks(video.init);
      const waiting = frags.slice(gop2, 6).flatMap((f) => parseFragmentSamples(f.data, tracks)).length;
      assert.strictEqual(backlog.length, waiting, "the newest GOP only, from its keyframe");
      backlog.forEach((t, i) => i > 0 && assert.strictEqual((t - backlog[i - 1]) >>> 0, 1, "one tick apart"));
      const first = fake.sent[0].subarray(12);
      assert.strictEqual(first[0] & 0x1f, 7, "the first packet is the SPS");
      for (const f of frags.slice(6, 8)) s.feed(f);
      await until(() => !s.queuedBytes, 5000, "live pictures went out");
      const live = pictureTimes(fake.sent).slice(backlog.length);
      assert.ok(live.length > 3);
      live.forEach((t, i) => {
        const prev = i === 0 ? backlog[backlog.length - 1] : live[i - 1];
        assert.strictEqual((t - prev) >>> 0, 3600, "25 fps at 90 kHz");
      });
      s.end("test");
    });

    it("a viewer that cannot keep up skips to the next keyframe; memory stays bounded", async function () {
      const long = fmp4({ seconds: 4 });
      const fake = fakeWerift({ sendDelayMs: 40 }); // each picture takes 40 ms to send: slower than 25 fps
      const { s, ended } = await session(fake);
      const viewer = { closed: 0, sent: 0, skipped: 0, kbpsBudget: 0 };
      s.viewer = {
        close: () => viewer.closed++,
        countSent: () => viewer.sent++,
        countSkipped: () => viewer.skipped++,
        kbpsBudget: 0,
      };
      s.feed({ type: "init", data: long.init, codec: "avc1.64000d", width: 320, height: 240 });
      fake.connect();
      for (const f of fragments(long)) s.feed(f); // 4 s of video at once
      assert.ok(viewer.skipped > 0, "pictures were skipped");
      assert.ok(s.queuedBytes < 8 * 1024 * 1024);
      await until(() => !s.queuedBytes, 10000, "the queue drained");
      const times = pictureTimes(fake.sent);
      assert.strictEqual(
        times.length + viewer.skipped,
        100,
        `${times.length} sent + ${viewer.skipped} skipped`,
      );
      assert.ok(times.length < 100);
      // after a skip the next picture sent is a keyframe: the packet after a marker carries an SPS
      const starts = fake.sent.filter((p, i) => i === 0 || fake.sent[i - 1][1] & 0x80);
      const keys = starts.filter((p) => (p[12] & 0x1f) === 7).length;
      assert.ok(keys >= 2, `${keys} keyframes sent`);
      s.end("done");
      assert.deepStrictEqual(ended, ["done"]);
      assert.strictEqual(viewer.closed, 1, "the live feed is told once");
      s.end("again");
      assert.strictEqual(viewer.closed, 1, "end is idempotent");
    });

    it("maxKbps: pictures over the viewer's budget are skipped up to the next keyframe", async function () {
      const fake = fakeWerift();
      const { s } = await session(fake);
      let skipped = 0;
      s.viewer = { close() {}, countSent() {}, countSkipped: () => skipped++, kbpsBudget: 16 };
      s.feed({ type: "init", data: video.init, codec: "avc1.64000d", width: 320, height: 240 });
      fake.connect();
      for (const f of fragments(video)) s.feed(f);
      await until(() => !s.queuedBytes, 5000, "the queue drained");
      assert.ok(skipped > 0, "16 kbit/s is far below the stream: pictures were skipped");
      s.end("test");
    });
  });
});
