"use strict";
const assert = require("assert");
const fc = require("fast-check");
const {
  credentialSecrets,
  redactCredentials,
  splitUrlCredentials,
  splitUserinfo,
  urlWithCredentials,
} = require("../dist/nodes/lib/credentials");

describe("redactCredentials", function () {
  const cases = [
    ["rtsp://admin:hunter2@10.0.0.5:554/stream", "rtsp://***@10.0.0.5:554/stream"],
    ["open rtsp://admin@cam/x failed", "open rtsp://***@cam/x failed"],
    ["rtmp://u:p%40ss@host/live", "rtmp://***@host/live"],
    ["http://user:p@ss@host/a?b=c", "http://***@host/a?b=c"],
    ["rtsp%3A%2F%2Fadmin%3Ahunter2%40cam%2Fx", "rtsp%3A%2F%2F***%40cam%2Fx"],
    ["two: rtsp://a:b@h1/ and http://c:d@h2/", "two: rtsp://***@h1/ and http://***@h2/"],
    ["rtsp://cam.local/stream no creds", "rtsp://cam.local/stream no creds"],
    ["Connection to tcp://127.0.0.1:1?timeout=5 failed", "Connection to tcp://127.0.0.1:1?timeout=5 failed"],
  ];
  for (const [input, expected] of cases) {
    it(`redacts ${JSON.stringify(input)}`, function () {
      assert.strictEqual(redactCredentials(input), expected);
    });
  }

  it("replaces given secrets, raw and url-encoded", function () {
    const out = redactCredentials("pass=s3cr/t! again s3cr%2Ft! user bob", ["s3cr/t!", undefined, ""]);
    assert.strictEqual(out, "pass=*** again *** user bob");
  });

  it("never leaves a password that was in a URL, whatever it contains", function () {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 12 }).filter((s) => !/[\s/?#]/.test(s)),
        fc.string({ minLength: 4, maxLength: 12 }),
        (user, password) => {
          const url = `rtsp://${encodeURIComponent(user)}:${encodeURIComponent(password)}@cam:554/s`;
          const out = redactCredentials(`failed: ${url}`, [password]);
          assert.ok(!out.includes(`:${encodeURIComponent(password)}@`), out);
          assert.ok(!out.includes(password), out);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe("credentialSecrets", function () {
  it("redacts the password, user:password, and a user name of three characters or more", function () {
    assert.deepStrictEqual(credentialSecrets("admin", "hunter2"), ["hunter2", "admin:hunter2", "admin"]);
    assert.deepStrictEqual(credentialSecrets("cam", "pw"), ["pw", "cam:pw", "cam"]);
  });

  it("keeps short user names (they would blank ordinary words) and nothing for no login", function () {
    assert.deepStrictEqual(credentialSecrets("ab", "pw"), ["pw", "ab:pw"]);
    assert.deepStrictEqual(credentialSecrets("admin"), ["admin"]);
    assert.deepStrictEqual(credentialSecrets(undefined, "pw"), ["pw"]);
    assert.deepStrictEqual(credentialSecrets(), []);
    assert.deepStrictEqual(credentialSecrets("", ""), []);
  });
});

describe("urlWithCredentials", function () {
  it("puts url-encoded credentials into a URL, replacing any it had", function () {
    assert.strictEqual(urlWithCredentials("rtsp://old:x@cam/s", "u", "p w"), "rtsp://u:p%20w@cam/s");
    assert.strictEqual(
      urlWithCredentials("rtmp://cam/live", "a@b", "p:/?#"),
      "rtmp://a%40b:p%3A%2F%3F%23@cam/live",
    );
    assert.strictEqual(urlWithCredentials("rtsp://cam/s", "u"), "rtsp://u@cam/s");
    assert.strictEqual(urlWithCredentials("rtsp://cam/s", undefined, "p"), "rtsp://:p@cam/s");
  });

  it("leaves URLs alone without credentials or without a scheme", function () {
    assert.strictEqual(urlWithCredentials("rtsp://u:p@cam/s"), "rtsp://u:p@cam/s");
    assert.strictEqual(urlWithCredentials("/file.mp4", "u", "p"), "/file.mp4");
  });
});

describe("splitUserinfo", function () {
  it("takes user and password out of a URL string, url-decoded", function () {
    assert.deepStrictEqual(splitUserinfo("rtsp://ad%20min:p%40ss@cam:554/s?x=1"), {
      url: "rtsp://cam:554/s?x=1",
      user: "ad min",
      password: "p@ss",
    });
  });

  it("splits at the first colon and the last @ before the path", function () {
    assert.deepStrictEqual(splitUserinfo("http://u:a:b@c@host/p@th"), {
      url: "http://host/p@th",
      user: "u",
      password: "a:b@c",
    });
  });

  it("empty parts are undefined; a malformed escape stays as typed", function () {
    assert.deepStrictEqual(splitUserinfo("rtsp://:pw@cam/"), {
      url: "rtsp://cam/",
      user: undefined,
      password: "pw",
    });
    assert.deepStrictEqual(splitUserinfo("rtsp://u:@cam/"), {
      url: "rtsp://cam/",
      user: "u",
      password: undefined,
    });
    assert.deepStrictEqual(splitUserinfo("rtsp://u@cam/"), {
      url: "rtsp://cam/",
      user: "u",
      password: undefined,
    });
    assert.deepStrictEqual(splitUserinfo("rtsp://u%zz:100%@cam/"), {
      url: "rtsp://cam/",
      user: "u%zz",
      password: "100%",
    });
  });

  it("leaves a URL without userinfo, a path or an @ after the host alone", function () {
    for (const url of [
      "rtsp://cam/s",
      "/videos/a@b.mp4",
      "http://host/a@b",
      "http://host?u=a@b",
      "file:x@y",
    ]) {
      assert.deepStrictEqual(splitUserinfo(url), { url });
    }
  });

  it("round-trips with urlWithCredentials for any user and password", function () {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 }), (user, password) => {
        const parts = splitUserinfo(urlWithCredentials("rtsp://cam:554/s", user, password));
        assert.strictEqual(parts.url, "rtsp://cam:554/s");
        assert.strictEqual(parts.user, user || undefined);
        assert.strictEqual(parts.password, password || undefined);
      }),
      { numRuns: 300 },
    );
  });
});

describe("splitUrlCredentials", function () {
  it("returns a URL object without credentials and the decoded user and password", function () {
    const parts = splitUrlCredentials("http://ad%20min:p%40ss@cam:8080/video.cgi?x=1");
    assert.ok(parts.url instanceof URL);
    assert.strictEqual(parts.url.href, "http://cam:8080/video.cgi?x=1");
    assert.strictEqual(parts.url.username, "");
    assert.strictEqual(parts.url.password, "");
    assert.strictEqual(parts.user, "ad min");
    assert.strictEqual(parts.password, "p@ss");
  });

  it("no credentials: both undefined", function () {
    const parts = splitUrlCredentials("https://cam/snap.jpg");
    assert.strictEqual(parts.url.href, "https://cam/snap.jpg");
    assert.strictEqual(parts.user, undefined);
    assert.strictEqual(parts.password, undefined);
  });

  it("decodes exactly as splitUserinfo does, a malformed escape included", function () {
    for (const raw of [
      "http://u%zz:100%@cam/",
      "http://:pw@cam/",
      "http://u:@cam/",
      "http://a%3Ab:c%2Fd@cam/",
      "http://%C3%A9t%C3%A9:%E2%82%AC@cam/",
    ]) {
      const { user, password } = splitUrlCredentials(raw);
      const expected = splitUserinfo(raw);
      assert.deepStrictEqual({ user, password }, { user: expected.user, password: expected.password }, raw);
    }
  });

  it("throws on what is not a URL (the caller turns that into a config error)", function () {
    assert.throws(() => splitUrlCredentials("http://"), TypeError);
  });
});
