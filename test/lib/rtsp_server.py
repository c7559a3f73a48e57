# A test RTSP camera nobody here wrote: Debian's GStreamer RTSP server (gir1.2-gst-rtsp-server-1.0) driven
# through its Python bindings. Run with /usr/bin/python3 (the python3 on PATH may lack gi). Started and
# stopped by test/lib/rtsp-server.js; settings come in the environment (so no password sits in argv):
#   RTSP_PORT, RTSP_ADDRESS (127.0.0.1), RTSP_WIDTH/RTSP_HEIGHT (640x360), RTSP_FPS (15), RTSP_GOP
#   (key-int-max, 15), RTSP_BITRATE (kbit/s, 1000), RTSP_ONLY (udp | tcp | ""), RTSP_USER/RTSP_PASS (Basic),
#   RTSP_PATTERN (videotestsrc pattern of the ordinary mounts, "ball").
# Mounts (all live, shared between clients, a moving test picture with a clock where clockoverlay exists):
#   /h264aac  H.264 + AAC       /h264  H.264 only       /h265aac  H.265 + AAC      /h265  H.265 only
#   /switch   H.264 only whose size changes on the command "size W H" on stdin (a new SPS in-band)
#   /live     = /h264 (the name the issue 10 tests used)
#   /busy     H.264 of noise at 8x RTSP_BITRATE: a camera whose every frame is expensive (slow viewers fall behind)
# Commands on stdin, one a line, each answered "ok ..." or "error ..." on stdout:
#   size W H       switch /switch (and every later client of it) to W x H
#   kick           close every client session (a camera that drops its viewers)
# Prints "ready <port>" once it listens.
import os
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
gi.require_version("GstRtsp", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

Gst.init(None)
env = os.environ
width = int(env.get("RTSP_WIDTH", "640"))
height = int(env.get("RTSP_HEIGHT", "360"))
fps = int(env.get("RTSP_FPS", "15"))
gop = int(env.get("RTSP_GOP", str(fps)))
bitrate = int(env.get("RTSP_BITRATE", "1000"))
# The picture of the ordinary mounts: "ball" (a ball on black: a few hundred kbit/s whatever the bitrate) or,
# say, "snow" (noise: the encoder spends the whole RTSP_BITRATE, as a camera looking at a busy scene does).
PATTERN = env.get("RTSP_PATTERN", "ball")
switch_size = [width, height]


def has(name):
    return Gst.ElementFactory.find(name) is not None


for needed in ("videotestsrc", "x264enc", "rtph264pay"):
    if not has(needed):
        sys.exit(f"GStreamer element {needed} is missing (gstreamer1.0-plugins-base/-ugly/-good)")
AAC = "voaacenc" if has("voaacenc") else "avenc_aac" if has("avenc_aac") else None
HEVC = has("x265enc") and has("rtph265pay")
# clockoverlay lives in gstreamer1.0-x (pango); without it the ball pattern still moves every frame.
OVERLAY = " ! clockoverlay time-format=\"%H:%M:%S\" halignment=left valignment=top" if has("clockoverlay") else ""


def video(codec, w, h, name="size", pattern=None, rate=None):
    rate = rate or bitrate
    pattern = pattern or PATTERN
    src = (f"videotestsrc is-live=true pattern={pattern} animation-mode=wall-time ! "
           f"video/x-raw,width={w},height={h},framerate={fps}/1 ! videoscale ! "
           f"capsfilter name={name} caps=video/x-raw,width={w},height={h}{OVERLAY} ! videoconvert ! "
           "video/x-raw,format=I420 ! ")
    if codec == "h264":
        return (src + f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={rate} ! "
                "video/x-h264,profile=high ! rtph264pay name=pay0 pt=96 config-interval=1")
    return (src + f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate={rate} ! "
            "rtph265pay name=pay0 pt=96 config-interval=1")


def audio():
    return (f" audiotestsrc is-live=true wave=sine freq=440 volume=0.2 ! audioconvert ! audioresample ! "
            f"audio/x-raw,rate=48000,channels=1 ! {AAC} bitrate=64000 ! aacparse ! "
            "rtpmp4gpay name=pay1 pt=97")


server = GstRtspServer.RTSPServer()
server.set_address(env.get("RTSP_ADDRESS", "127.0.0.1"))
server.set_service(env["RTSP_PORT"])
only = env.get("RTSP_ONLY", "")
user = env.get("RTSP_USER", "")
perm = None
if user:
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "viewer")
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, env["RTSP_PASS"]), token)
    server.set_auth(auth)
    perm = GstRtspServer.RTSPPermissions()
    perm.add_permission_for_role("viewer", "media.factory.access", True)
    perm.add_permission_for_role("viewer", "media.factory.construct", True)

switch_media = []


def on_switch_configure(_factory, media):
    switch_media.append(media)
    media.connect("unprepared", lambda m: switch_media.remove(m) if m in switch_media else None)


def mount(path, launch, on_configure=None):
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f"( {launch} )")
    factory.set_shared(True)
    # A shared media that every client left is torn down, and the next client starts it anew.
    factory.set_eos_shutdown(False)
    if only == "udp":
        factory.set_protocols(GstRtsp.RTSPLowerTrans.UDP)
    if only == "tcp":
        factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
    if perm is not None:
        factory.set_permissions(perm)
    if on_configure:
        factory.connect("media-configure", on_configure)
    server.get_mount_points().add_factory(path, factory)


mounts = server.get_mount_points()
mount("/h264", video("h264", width, height))
mount("/live", video("h264", width, height))
mount("/busy", video("h264", width, height, pattern="snow", rate=bitrate * 8))
if AAC:
    mount("/h264aac", video("h264", width, height) + audio())
if HEVC:
    mount("/h265", video("h265", width, height))
    if AAC:
        mount("/h265aac", video("h265", width, height) + audio())


class SwitchFactory(GstRtspServer.RTSPMediaFactory):
    """/switch: built per configure so that a client joining after "size" gets the current size."""

    def do_create_element(self, _url):
        return Gst.parse_launch(f"( {video('h264', switch_size[0], switch_size[1])} )")


switch = SwitchFactory()
switch.set_shared(True)
if perm is not None:
    switch.set_permissions(perm)
switch.connect("media-configure", on_switch_configure)
mounts.add_factory("/switch", switch)


def set_size(w, h):
    switch_size[0], switch_size[1] = w, h
    caps = Gst.Caps.from_string(f"video/x-raw,width={w},height={h}")
    for media in list(switch_media):
        element = media.get_element()
        capsfilter = element.get_by_name("size") if element else None
        if capsfilter:
            capsfilter.set_property("caps", caps)
    return False


def kick():
    server.client_filter(lambda _server, _client, _data=None: GstRtspServer.RTSPFilterResult.REMOVE)
    return False


def reply(text):
    print(text, flush=True)
    return False


def commands():
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "size" and len(words) == 3 and words[1].isdigit() and words[2].isdigit():
            GLib.idle_add(set_size, int(words[1]), int(words[2]))
            GLib.idle_add(reply, f"ok size {words[1]} {words[2]}")
        elif words[0] == "kick":
            GLib.idle_add(kick)
            GLib.idle_add(reply, "ok kick")
        else:
            GLib.idle_add(reply, f"error unknown command {words[0]}")
    # stdin closed: the test process is gone, so is this camera.
    GLib.idle_add(loop.quit)


loop = GLib.MainLoop()
if server.attach(None) == 0:
    sys.exit(f"could not listen on port {env['RTSP_PORT']}")
threading.Thread(target=commands, daemon=True).start()
print(f"ready {server.get_bound_port()} aac={AAC or 'none'} hevc={HEVC} clock={bool(OVERLAY)}", flush=True)
loop.run()
