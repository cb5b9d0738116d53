#!/bin/sh
# A local 3-node cluster with one Redis, all on loopback:
#   redis 127.0.0.1:6390, nodes a b c on HTTP 127.0.0.1:8081-8083.
# Ctrl-C stops everything. Needs redis-server and a Go toolchain.
set -eu
cd "$(dirname "$0")/.."
REDIS_PORT=${REDIS_PORT:-6390}
export LIVEROOM_JWT_SECRET=${LIVEROOM_JWT_SECRET:-cluster-dev-secret-0123456789}
export LIVEROOM_ADMIN_KEY=${LIVEROOM_ADMIN_KEY:-cluster-dev-admin-0123456789}
BIN=${BIN:-./liveroom}
[ -x "$BIN" ] || go build -o "$BIN" ./cmd/liveroom

pids=""
trap 'kill $pids 2>/dev/null; wait' INT TERM EXIT
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no >/dev/null &
pids="$pids $!"
until redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; do sleep 0.1; done

i=1
for id in a b c; do
  "$BIN" serve --config configs/cluster.yaml --redis "redis://127.0.0.1:$REDIS_PORT/0" --node-id "$id" \
    --http "127.0.0.1:808$i" --rtsp "127.0.0.1:855$((4 + i))" --rtsp-udp 0 \
    --webrtc-port "$((8443 + i))" --data-dir "data-cluster-$id" &
  pids="$pids $!"
  i=$((i + 1))
done
echo "nodes: http://127.0.0.1:8081 http://127.0.0.1:8082 http://127.0.0.1:8083 (admin key: $LIVEROOM_ADMIN_KEY)"
wait
