/** The `<path>/status` page: self-contained (no external assets), a person's view of status.json. */

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * URLs are computed in the browser from location.pathname, so the page works under any
 * httpNodeRoot, with or without a trailing slash, and carries `?token=` on to the stream and JSON.
 * Over 60 lines because it is one template (HTML, CSS and the page's script): splitting it would only
 * scatter the page.
 */
export function renderStatusPage(title: string): string {
  const t = escapeHtml(title);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${t} - camrelay</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .5em}
.live{max-width:100%;background:#333;display:block;margin-bottom:1em;min-height:120px}
camrelay-player.live{width:640px;aspect-ratio:4/3}
dl{display:grid;grid-template-columns:max-content auto;gap:.2em 1em;margin:0 0 1em}
dt{color:#666}dd{margin:0;font-variant-numeric:tabular-nums}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{border-bottom:1px solid #ddd;padding:.25em .75em;text-align:right}
th:first-child,td:first-child,th:nth-child(2),td:nth-child(2){text-align:left}
.err{color:#b00}
</style></head><body>
<h1>${t}</h1>
<div id="liveBox"><img class="live" id="live" alt="live view" hidden></div>
<dl>
<dt>upstream</dt><dd id="upstream">-</dd>
<dt>viewers</dt><dd id="viewerCount">-</dd>
<dt>frames in</dt><dd id="framesIn">-</dd>
<dt>fps in</dt><dd id="fpsIn">-</dd>
<dt>bytes out</dt><dd id="bytesOut">-</dd>
<dt>frames sent / skipped</dt><dd id="sent">-</dd>
<dt>viewers dropped</dt><dd id="dropped">-</dd>
<dt>video</dt><dd id="video">-</dd>
<dt>snapshots and MJPEG</dt><dd id="jpegSource">-</dd>
</dl>
<table><thead><tr><th>address</th><th>kind</th><th>since</th><th>frames sent</th><th>skipped</th><th>kbps</th></tr></thead>
<tbody id="viewers"></tbody></table>
<p id="error" class="err"></p>
<script>
(function () {
  var base = location.pathname.replace(/\\/status\\/?$/, "/");
  var token = new URLSearchParams(location.search).get("token");
  var q = token ? "?token=" + encodeURIComponent(token) : "";
  var playerTried = false;
  /**
   * The stream through camrelay's <camrelay-player> (<httpNodeRoot>camrelay/player.js, found from
   * status.json's path: base = root + path); the MJPEG <img> when the player cannot be loaded.
   */
  function showLive(path) {
    if (playerTried) return;
    playerTried = true;
    var img = document.getElementById("live");
    var fallback = function () { img.hidden = false; img.src = base + q; };
    var tail = path.replace(/\\/+$/, "") + "/";
    if (base.toLowerCase().slice(-tail.length) !== tail.toLowerCase()) return fallback();
    var rootPath = base.slice(0, base.length - tail.length) + "/";
    var s = document.createElement("script");
    s.src = rootPath + "camrelay/player.js";
    s.onload = function () {
      var p = document.createElement("camrelay-player");
      p.className = "live";
      p.id = "player";
      p.setAttribute("src", path);
      if (token) p.setAttribute("token", token);
      img.replaceWith(p);
    };
    s.onerror = fallback;
    document.head.appendChild(s);
  }
  function set(id, v) { document.getElementById(id).textContent = v; }
  function bytes(n) {
    var u = ["B", "KB", "MB", "GB", "TB"], i = 0;
    while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return n.toFixed(i ? 1 : 0) + " " + u[i];
  }
  function age(since) {
    var s = Math.max(0, Math.round((Date.now() - since) / 1000));
    return s < 60 ? s + " s" : s < 3600 ? Math.floor(s / 60) + " min" : Math.floor(s / 3600) + " h";
  }
  function refresh() {
    fetch(base + "status.json" + q, { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error("status.json: HTTP " + r.status);
      return r.json();
    }).then(function (s) {
      showLive(s.path || "/");
      set("upstream", s.upstream); set("viewerCount", s.viewerCount + (s.maxClients ? " / " + s.maxClients : ""));
      set("framesIn", s.framesIn); set("fpsIn", s.fpsIn.toFixed(1)); set("bytesOut", bytes(s.bytesOut));
      set("sent", s.framesSent + " / " + s.framesSkipped); set("dropped", s.viewersDropped);
      var v = s.video;
      set("video", v ? v.format + " " + v.width + "x" + v.height + " (" + v.codec + "), " +
        (v.passthrough ? "passed through from the camera" : "from the flow") : "none");
      set("jpegSource", !v || v.jpegSource === "frames" ? "JPEG frames" : v.jpegSource === "decoded" ?
        "decoded from the video" + (v.decoderRunning ? " (decoder running)" : "") : "none");
      var body = document.getElementById("viewers");
      body.textContent = "";
      s.viewers.forEach(function (v) {
        var tr = document.createElement("tr");
        [v.address, v.kind, age(v.since), v.framesSent, v.framesSkipped, v.kbps].forEach(function (c) {
          var td = document.createElement("td"); td.textContent = c; tr.appendChild(td);
        });
        body.appendChild(tr);
      });
      set("error", "");
    }).catch(function (e) {
      set("error", e.message);
      if (!playerTried) {
        playerTried = true;
        var img = document.getElementById("live");
        img.hidden = false;
        img.src = base + q;
      }
    });
  }
  refresh();
  setInterval(refresh, 2000);
})();
</script>
</body></html>
`;
}
