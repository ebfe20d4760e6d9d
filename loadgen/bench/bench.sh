#!/usr/bin/env bash
# Client efficiency of loadgen against wrk, in the same run, against the same
# nginx on 127.0.0.1 (its own temp config, a free port):
#   1. wrk -t2 -c64 and loadgen closed loop -c64 (--threads 1 and 2), ROUNDS
#      rounds interleaved: client CPU seconds per request (user+sys of the
#      client process, from wait4), medians and their ratio to wrk
#      (closed_loop.py);
#   2. loadgen open loop at RATE req/s: achieved rate vs target;
#   3. loadgen resident memory (peak VmHWM) for a SHORT and a LONG run at RATE.
# Everything started here is killed by PID on exit (trap).
#
# Usage: loadgen/bench/bench.sh            (from the workspace root)
# Env:   SECS=10 ROUNDS=5 RATE=20000 SHORT=10 LONG=120 CONNS=64
#        LOADGEN=/path/to/loadgen (default: build with cargo --release)
set -euo pipefail

SECS=${SECS:-10}
ROUNDS=${ROUNDS:-5}
RATE=${RATE:-20000}
SHORT=${SHORT:-10}
LONG=${LONG:-120}
CONNS=${CONNS:-64}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

need() {
    if ! command -v "$1" >/dev/null 2>&1; then
        echo "installing $1 (waiting for the dpkg lock if someone else holds it)" >&2
        apt-get -o DPkg::Lock::Timeout=300 install -y "$1" >&2
    fi
}
need nginx
need wrk

if [[ -z "${LOADGEN:-}" ]]; then
    (cd "$ROOT" && cargo build --release -q -p loadgen)
    LOADGEN="${CARGO_TARGET_DIR:-$ROOT/target}/release/loadgen"
fi

TMP=$(mktemp -d /tmp/loadgen-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT INT TERM

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$TMP/logs"
cat >"$TMP/nginx.conf" <<EOF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$PORT;
        location / { return 200 "ok\n"; }
    }
}
EOF
nginx -p "$TMP" -c "$TMP/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
for _ in $(seq 50); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    sleep 0.1
done
URL="http://127.0.0.1:$PORT/"
echo "nginx on $URL (1 worker); loadgen: $LOADGEN"

# Warm-up, so nginx and the page cache are in a steady state.
wrk -t1 -c8 -d2s "$URL" >/dev/null

echo
echo "== closed loop, $CONNS connections, ${SECS}s each, $ROUNDS rounds interleaved =="
python3 "$HERE/closed_loop.py" "$URL" "$SECS" "$CONNS" "$ROUNDS" "$LOADGEN" "$TMP"

echo
echo "== open loop at $RATE req/s, ${SECS}s =="
"$LOADGEN" --target "nginx=$URL" --rate "$RATE" -d "${SECS}s" -c "$CONNS" -q --json "$TMP/open.json"
python3 - "$TMP/open.json" "$RATE" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1])); rate = float(sys.argv[2]); t = r["total"]
print(f"achieved {r['achieved_rate']:.1f} req/s over {r['duration_s']} s "
      f"({(r['achieved_rate'] - rate) / rate * 100:+.3f}% of target); "
      f"requests {t['requests']}, dropped {t['dropped']}, late starts {t['late_starts']}, errors {sum(t['errors'].values())}")
l, u = t["latency_ms"], t["uncorrected_latency_ms"]
print(f"corrected   p50 {l['p50']} p99 {l['p99']} p99.9 {l['p99_9']} max {l['max']} ms")
print(f"uncorrected p50 {u['p50']} p99 {u['p99']} p99.9 {u['p99_9']} max {u['max']} ms")
rates = [i["rate"] for i in r["intervals"]]
print("per-interval rates:", rates)
EOF

echo
echo "== resident memory, open loop at $RATE req/s =="
peak_rss() { # duration -> "peak_VmHWM_kB samples"
    "$LOADGEN" --target "nginx=$URL" --rate "$RATE" -d "$1" -c "$CONNS" --interval 10s -q --json "$TMP/mem.json" &
    local pid=$!
    PIDS+=("$pid")
    local hwm=0
    while kill -0 "$pid" 2>/dev/null; do
        local v
        v=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        [[ -n "$v" ]] && hwm=$v
        sleep 1
    done
    wait "$pid" || true
    echo "$hwm"
}
short=$(peak_rss "${SHORT}s")
echo "${SHORT}s run: peak RSS $((short / 1024)) MB ($short kB)"
long=$(peak_rss "${LONG}s")
echo "${LONG}s run: peak RSS $((long / 1024)) MB ($long kB)"
