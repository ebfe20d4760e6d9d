#!/usr/bin/env bash
# goldengoose benchmark, all on loopback:
#  1. throughput with no faults against nginx (Debian) serving a static body
#     of the same size, wrk -t2 -c64, in the same run, interleaved;
#  2. precision of an injected +50 ms latency at p50 under moderate load,
#     and /healthz latency under that fault (not slowed by it).
#
# Usage: goldengoose/bench/bench.sh            (builds the release binary)
#        GG_BIN=path/to/goldengoose bench.sh   (uses that binary)
# Env: DURATION (default 10s), ROUNDS (default 5), CONNECTIONS (default 64).
# Needs nginx and wrk: apt-get install -y nginx wrk
set -euo pipefail

DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
CONNECTIONS=${CONNECTIONS:-64}
PAYLOAD=64
HERE=$(cd "$(dirname "$0")" && pwd)

for tool in nginx wrk python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found (apt-get install -y nginx wrk)" >&2; exit 2; }
done

if [[ -z "${GG_BIN:-}" ]]; then
    (cd "$HERE/.." && cargo build --release -q -p goldengoose)
    GG_BIN="${CARGO_TARGET_DIR:-$HERE/../../target}/release/goldengoose"
fi

WORK=$(mktemp -d /tmp/gg-bench.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

wait_http() {
    for _ in $(seq 100); do
        if python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "bench: $1 did not come up" >&2
    exit 1
}

# --- nginx: its own prefix and config, a static body of $PAYLOAD bytes ------
NGINX_PORT=$(free_port)
mkdir -p "$WORK/nginx/html" "$WORK/nginx/logs"
head -c $((PAYLOAD - 1)) /dev/zero | tr '\0' '.' > "$WORK/nginx/html/index.html"
echo >> "$WORK/nginx/html/index.html"
chmod -R a+rX "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 1000000;
    client_body_temp_path $WORK/nginx/client_body;
    proxy_temp_path $WORK/nginx/proxy;
    fastcgi_temp_path $WORK/nginx/fastcgi;
    uwsgi_temp_path $WORK/nginx/uwsgi;
    scgi_temp_path $WORK/nginx/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $WORK/nginx/html;
        location / { default_type text/plain; index index.html; }
    }
}
EOF
nginx -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/logs/error.log" &
PIDS+=($!)
NGINX_URL="http://127.0.0.1:$NGINX_PORT/"
wait_http "$NGINX_URL"

# --- goldengoose: port 0, the bound address is the first stdout line ---------
# Sets STARTED_URL. Not called as $(start_gg ...): a subshell would keep the
# PID from the cleanup list.
start_gg() { # name, extra args...
    local name=$1
    shift
    "$GG_BIN" --listen 127.0.0.1:0 --payload-bytes "$PAYLOAD" "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
    PIDS+=($!)
    for _ in $(seq 100); do
        [[ -s "$WORK/$name.out" ]] && break
        sleep 0.05
    done
    STARTED_URL="http://$(head -n1 "$WORK/$name.out")/"
}
start_gg plain --track bench
GG_URL=$STARTED_URL
wait_http "$GG_URL"

rps() { # url -> requests/s
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "$1" | awk '/^Requests\/sec:/ { print $2 }'
}

echo "# throughput: wrk -t2 -c$CONNECTIONS -d$DURATION, body $PAYLOAD bytes, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
wrk -t2 -c"$CONNECTIONS" -d2s "$NGINX_URL" >/dev/null
wrk -t2 -c"$CONNECTIONS" -d2s "$GG_URL" >/dev/null
# Interleaved rounds, alternating which goes first, so background load on a
# shared machine hits both alike; the median of the per-round ratios is the
# headline number.
RATIOS=()
for round in $(seq "$ROUNDS"); do
    if (( round % 2 )); then
        n=$(rps "$NGINX_URL")
        g=$(rps "$GG_URL")
    else
        g=$(rps "$GG_URL")
        n=$(rps "$NGINX_URL")
    fi
    r=$(python3 -c "print('%.3f' % ($g / $n))")
    RATIOS+=("$r")
    printf 'round %d: nginx %8.0f req/s   goldengoose %8.0f req/s   ratio %s\n' "$round" "$n" "$g" "$r"
done
python3 -c "import statistics,sys; print('ratio goldengoose/nginx: median %.2f over %d rounds (target >= 0.8)' % (statistics.median(map(float, sys.argv[1:])), len(sys.argv) - 1))" "${RATIOS[@]}"

# --- latency fault precision at p50 under moderate load ---------------------
p50_ms() { # url -> p50 in ms from wrk --latency
    wrk -t2 -c16 -d"$DURATION" --latency "$1" | awk '
        /^ +50%/ {
            v = $2
            if (v ~ /us$/) { sub(/us$/, "", v); v = v / 1000 }
            else if (v ~ /ms$/) { sub(/ms$/, "", v) }
            else if (v ~ /s$/) { sub(/s$/, "", v); v = v * 1000 }
            print v
        }'
}
start_gg slow --track bench-slow --fault latency=50ms
SLOW_URL=$STARTED_URL
wait_http "$SLOW_URL"
echo "# latency fault precision: wrk -t2 -c16 -d$DURATION --latency, fault latency=50ms"
BASE=$(p50_ms "$GG_URL")
SLOW=$(p50_ms "$SLOW_URL")
python3 -c "print('p50 no fault %.3f ms, p50 latency=50ms %.3f ms, added %.3f ms (target 50 +/- 1)' % ($BASE, $SLOW, $SLOW - $BASE))"

# --- health checks under a latency fault (moved here from the tests) --------
# The test suite only checks that /healthz is answered while a faulted
# request is still held; how fast it is belongs to a quiet machine.
HEALTH=$(p50_ms "${SLOW_URL%/}/healthz")
python3 -c "print('p50 /healthz with latency=50ms %.3f ms (target well under 50: faults skip health checks)' % $HEALTH)"
