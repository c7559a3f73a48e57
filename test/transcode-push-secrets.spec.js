// lib/transcode/push-secrets: what must be masked in logs for a node that sends to a media server.
"use strict";
const assert = require("assert");
const { urlSecrets, transcodeSecrets } = require("../dist/nodes/lib/transcode/push-secrets");

describe("transcode push secrets", function () {
  it("the stream key is the last path segment, raw and decoded", function () {
    assert.deepStrictEqual(urlSecrets("rtmp://host/live/ab%2Fcd"), ["ab%2Fcd", "ab/cd"]);
    assert.deepStrictEqual(urlSecrets("rtmp://host:1935/app/key123"), ["key123"]);
  });

  it("an app with no key, or a bare host, has no path secret", function () {
    assert.deepStrictEqual(urlSecrets("rtmp://host/live"), []);
    assert.deepStrictEqual(urlSecrets("srt://host:9000"), []);
  });

  it("every query value is secret (srt streamid, passphrase)", function () {
    assert.deepStrictEqual(urlSecrets("srt://host:9000?streamid=publish:cam&passphrase=longsecret"), [
      "publish:cam",
      "longsecret",
    ]);
  });

  it("values shorter than 3 characters are not masked, and a bad escape is kept raw", function () {
    assert.deepStrictEqual(urlSecrets("srt://h?mode=1&latency=on&pw=%E0%A4%A"), ["%E0%A4%A"]);
  });

  it("credentials: the password always, the user from 3 characters on, the URL's only when given", function () {
    assert.deepStrictEqual(transcodeSecrets({ user: "bob", password: "pw" }), ["pw", "bob"]);
    assert.deepStrictEqual(transcodeSecrets({ user: "al", password: undefined }), [undefined, undefined]);
    assert.deepStrictEqual(transcodeSecrets({ password: "pw", url: "rtmp://h/app/streamkey" }), [
      "pw",
      undefined,
      "streamkey",
    ]);
  });
});
