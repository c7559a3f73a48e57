#!/usr/bin/env bash
# `npm start` must bring up Node-RED with the demo flow and serve the test pattern without a camera.
set -euo pipefail
cd "$(dirname "$0")/.."
port=18931
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
  type=$(curl -fsS -o /tmp/camrelay-smoke.jpg -w '%{content_type}' "http://127.0.0.1:$port/camera/demo/snapshot.jpg?wait=1" || true)
  [ "$type" = "image/jpeg" ] && break
  sleep 1
done
[ "$type" = "image/jpeg" ] || { cat "$log"; echo "no snapshot from the demo flow"; exit 1; }
echo "npm start smoke: editor and demo snapshot answer ($(stat -c %s /tmp/camrelay-smoke.jpg) bytes)"
