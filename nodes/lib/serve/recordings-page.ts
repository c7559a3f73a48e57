/**
 * `<path>/recordings.html`: one day's clips (the browser's local day), newest first, with thumbnails,
 * time, length and trigger; a clip plays in place in a <video>, can be downloaded or deleted. A `?token=`
 * in the page's address is passed on to every request. Static: all data comes from `recordings` (JSON).
 */
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Recordings</title>
<style>
body{font:15px system-ui,sans-serif;margin:0;background:#111;color:#eee}
header{display:flex;gap:.5em;align-items:center;flex-wrap:wrap;padding:.6em 1em;background:#222;position:sticky;top:0;z-index:1}
header h1{font-size:1.1em;margin:0 1em 0 0}
button,input{font:inherit;padding:.3em .6em;border-radius:4px;border:1px solid #555;background:#333;color:#eee}
button:hover{background:#444}
#player{display:none;padding:1em;background:#000;text-align:center}
#player video{max-width:100%;max-height:70vh}
#player .meta{margin-top:.4em;color:#bbb}
ul{list-style:none;margin:0;padding:1em;display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:1em}
li{background:#1d1d1d;border-radius:6px;overflow:hidden;display:flex;flex-direction:column}
li.playing{outline:2px solid #4a9eff}
li img{width:100%;aspect-ratio:4/3;object-fit:cover;background:#000;cursor:pointer;display:block}
li .info{padding:.5em;display:flex;flex-direction:column;gap:.2em}
li .time{font-weight:600}
li .trigger{color:#aaa;font-size:.9em;word-break:break-word}
li .actions{display:flex;gap:.4em;padding:0 .5em .5em}
li .actions a{color:#4a9eff;align-self:center}
#empty,#error{padding:1em;color:#aaa}
#error{color:#f77}
</style></head><body>
<header><h1>Recordings</h1>
<button id="prev" title="Previous day">&#9664;</button>
<input type="date" id="day" aria-label="Day">
<button id="next" title="Next day">&#9654;</button>
<button id="today">Today</button>
<span id="count"></span>
</header>
<div id="player"><video id="video" controls playsinline preload="metadata"></video><div class="meta" id="playing"></div></div>
<div id="error" hidden></div>
<ul id="list"></ul>
<div id="empty" hidden>No recordings on this day.</div>
<script>
(function () {
  "use strict";
  var here = new URL(location.href);
  var token = here.searchParams.get("token");
  var base = location.pathname.replace(/\\.html$/, "");
  var $ = function (id) { return document.getElementById(id); };
  function withToken(u) { return token === null ? u : u + (u.indexOf("?") < 0 ? "?" : "&") + "token=" + encodeURIComponent(token); }
  function pad(n) { return String(n).padStart(2, "0"); }
  function dayText(d) { return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()); }
  function parseDay(s) { var p = /^(\\d{4})-(\\d{2})-(\\d{2})$/.exec(s || ""); return p ? new Date(+p[1], +p[2] - 1, +p[3]) : null; }
  function clock(ms) { var d = new Date(ms); return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()); }
  function length(s) { s = Math.round(s || 0); return s >= 60 ? Math.floor(s / 60) + " min " + (s % 60) + " s" : s + " s"; }
  function triggerText(t) {
    if (!t) return "";
    var parts = [];
    if (t.topic !== undefined && t.topic !== "") parts.push(String(t.topic));
    if (t.payload !== undefined) parts.push(typeof t.payload === "string" ? t.payload : JSON.stringify(t.payload));
    return parts.join(": ").slice(0, 200);
  }
  function showError(text) { var e = $("error"); e.textContent = text; e.hidden = !text; }
  var day = parseDay(here.searchParams.get("day")) || new Date();
  day = new Date(day.getFullYear(), day.getMonth(), day.getDate());
  var loading = 0;
  function play(rec, li) {
    var v = $("video");
    v.src = rec.url;
    $("player").style.display = "block";
    $("playing").textContent = clock(rec.start) + " \\u00b7 " + length(rec.duration) + (triggerText(rec.trigger) ? " \\u00b7 " + triggerText(rec.trigger) : "");
    Array.prototype.forEach.call(document.querySelectorAll("li.playing"), function (x) { x.classList.remove("playing"); });
    li.classList.add("playing");
    v.play().catch(function () {});
    window.scrollTo(0, 0);
  }
  function remove(rec, li) {
    if (!confirm("Delete the recording of " + clock(rec.start) + "?")) return;
    fetch(withToken(base + "/" + encodeURIComponent(rec.name) + ".mp4"), { method: "DELETE" }).then(function (r) {
      if (r.status === 204) { li.remove(); showError(""); return; }
      showError(r.status === 401 || r.status === 403 ? "Deleting needs the Node-RED admin permission or the stream's token." : "Could not delete: HTTP " + r.status);
    }, function (e) { showError("Could not delete: " + e.message); });
  }
  function item(rec) {
    var li = document.createElement("li");
    li.dataset.name = rec.name;
    var img = document.createElement("img");
    img.loading = "lazy"; img.alt = "Recording at " + clock(rec.start); img.src = rec.thumbnail;
    img.addEventListener("click", function () { play(rec, li); });
    var info = document.createElement("div"); info.className = "info";
    var time = document.createElement("span"); time.className = "time";
    time.textContent = clock(rec.start) + " \\u2013 " + clock(rec.end) + " (" + length(rec.duration) + ")" + (rec.inProgress ? " \\u25cf" : "");
    var trig = document.createElement("span"); trig.className = "trigger"; trig.textContent = triggerText(rec.trigger) || rec.camera || "";
    info.append(time, trig);
    var actions = document.createElement("div"); actions.className = "actions";
    var b = document.createElement("button"); b.textContent = "Play"; b.className = "play";
    b.addEventListener("click", function () { play(rec, li); });
    var a = document.createElement("a"); a.textContent = "Download"; a.className = "download";
    a.href = rec.url + (rec.url.indexOf("?") < 0 ? "?" : "&") + "download=1"; a.download = rec.file;
    var del = document.createElement("button"); del.textContent = "Delete"; del.className = "delete";
    del.addEventListener("click", function () { remove(rec, li); });
    actions.append(b, a, del);
    li.append(img, info, actions);
    return li;
  }
  function load() {
    var n = ++loading;
    $("day").value = dayText(day);
    var to = new Date(day.getFullYear(), day.getMonth(), day.getDate() + 1);
    var list = $("list"); list.textContent = ""; $("empty").hidden = true; showError("");
    var count = 0;
    var page = function (url) {
      return fetch(url).then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      }).then(function (body) {
        if (n !== loading) return;
        body.recordings.forEach(function (rec) { list.append(item(rec)); count++; });
        $("count").textContent = count + " of " + body.total;
        if (body.next && count < 2000) return page(body.next);
        $("empty").hidden = count > 0;
      });
    };
    page(withToken(base + "?limit=200&from=" + day.getTime() + "&to=" + to.getTime())).catch(function (e) {
      if (n === loading) showError("Could not load the recordings: " + e.message);
    });
    var u = new URL(location.href); u.searchParams.set("day", dayText(day)); history.replaceState(null, "", u);
  }
  function shift(days) { day = new Date(day.getFullYear(), day.getMonth(), day.getDate() + days); load(); }
  $("prev").addEventListener("click", function () { shift(-1); });
  $("next").addEventListener("click", function () { shift(1); });
  $("today").addEventListener("click", function () { var d = new Date(); day = new Date(d.getFullYear(), d.getMonth(), d.getDate()); load(); });
  $("day").addEventListener("change", function () { var d = parseDay($("day").value); if (d) { day = d; load(); } });
  load();
})();
</script></body></html>
`;

export function recordingsPage(): string {
  return PAGE;
}
