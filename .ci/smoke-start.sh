#!/usr/bin/env bash
# `npm start` must bring up Node-RED with the demo flow, print what to open, and serve the test pattern
# without a camera: the editor, a snapshot and the HLS playlist (ffmpeg: the one on PATH, else the bundled).
set -euo pipefail
cd "$(dirname "$0")/.."
port=${SMOKE_PORT:-18931}
data=$(mktemp -d)
log=$(mktemp)
PORT=$port CAMRELAY_USER_DIR="$data" setsid npm start >"$log" 2>&1 &
pid=$!
cleanup() { kill -TERM -- -"$pid" 2>/dev/null || true; sleep 1; kill -KILL -- -"$pid" 2>/dev/null || true; rm -rf "$data"; }
trap cleanup EXIT
for _ in $(seq 1 60); do
  if grep -q "camrelay is running" "$log"; then break; fi
  sleep 1
done
grep -q "camrelay is running" "$log" || { cat "$log"; echo "npm start did not come up"; exit 1; }
curl -fsS "http://127.0.0.1:$port/" -o /dev/null
for _ in $(seq 1 20); do
  type=$(curl -fsS -o "$data/smoke.jpg" -w '%{content_type}' "http://127.0.0.1:$port/camera/demo/snapshot.jpg?wait=1" || true)
  [ "$type" = "image/jpeg" ] && break
  sleep 1
done
[ "$type" = "image/jpeg" ] || { cat "$log"; echo "no snapshot from the demo flow"; exit 1; }
for url in "http://127.0.0.1:$port/" "http://127.0.0.1:$port/camera/demo" \
  "http://127.0.0.1:$port/camera/demo/snapshot.jpg" "http://127.0.0.1:$port/camera/demo/index.m3u8"; do
  grep -qF "$url" "$log" || { cat "$log"; echo "npm start did not print $url"; exit 1; }
done
playlist=""
for _ in $(seq 1 30); do
  playlist=$(curl -fsS "http://127.0.0.1:$port/camera/demo/index.m3u8" 2>/dev/null || true)
  grep -q '\.m4s' <<<"$playlist" && break
  sleep 1
done
grep -q '\.m4s' <<<"$playlist" || { cat "$log"; echo "no HLS segment from the demo flow: $playlist"; exit 1; }
echo "npm start smoke: printed the URLs; editor, demo snapshot ($(stat -c %s "$data/smoke.jpg") bytes) and HLS answer"
