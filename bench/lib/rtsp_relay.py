# The latency bench's RTSP camera: Debian's GStreamer RTSP server (as test/lib/rtsp_server.py) with one
# mount, /relay, that re-packs the bench camera's H.264 (MPEG-TS over HTTP from bench/lib/stamp-camera.js,
# encoded by ffmpeg's libx264) into RTP without decoding it: souphttpsrc ! tsdemux ! h264parse !
# rtph264pay. Shared by every client, started with the first one. Run with /usr/bin/python3; settings in
# the environment: RELAY_PORT, RELAY_SOURCE (the http URL of the MPEG-TS). Prints "ready <port>".
# Ends when stdin closes (the bench process is gone).
import os
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

Gst.init(None)
for needed in ("souphttpsrc", "tsdemux", "udpsrc", "rtph264depay", "h264parse", "rtph264pay"):
    if Gst.ElementFactory.find(needed) is None:
        sys.exit(f"GStreamer element {needed} is missing (gstreamer1.0-plugins-good/-bad)")

source = os.environ["RELAY_SOURCE"]
# RELAY_SOURCE "udp://127.0.0.1:<port>": the camera sends RTP H.264 there (no MPEG-TS in between).
if source.startswith("udp://"):
    port = source.rsplit(":", 1)[1]
    media = (
        f"udpsrc address=127.0.0.1 port={port} "
        'caps="application/x-rtp,media=video,clock-rate=90000,encoding-name=H264,payload=96" ! '
        "rtph264depay ! h264parse config-interval=-1 ! video/x-h264,alignment=au ! "
        "rtph264pay name=pay0 pt=96 config-interval=-1"
    )
else:
    media = (
        f'souphttpsrc location="{source}" is-live=true do-timestamp=true ! tsdemux latency=0 ! '
        "h264parse config-interval=-1 ! video/x-h264,alignment=au ! rtph264pay name=pay0 pt=96 config-interval=-1"
    )
server = GstRtspServer.RTSPServer()
server.set_address("127.0.0.1")
server.set_service(os.environ["RELAY_PORT"])
factory = GstRtspServer.RTSPMediaFactory()
factory.set_launch(f"( {media} )")
factory.set_shared(True)
factory.set_eos_shutdown(False)
server.get_mount_points().add_factory("/relay", factory)

loop = GLib.MainLoop()
if server.attach(None) == 0:
    sys.exit(f"could not listen on port {os.environ['RELAY_PORT']}")


def wait_stdin():
    sys.stdin.read()
    GLib.idle_add(loop.quit)


threading.Thread(target=wait_stdin, daemon=True).start()
print(f"ready {server.get_bound_port()}", flush=True)
loop.run()
