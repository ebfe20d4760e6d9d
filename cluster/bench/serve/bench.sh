#!/usr/bin/env bash
# POST /judge throughput of `canarylab serve`, all on loopback, in one run:
#   - wrk -t2 -c16 against /judge with a 10-metric, 60 vs 60 RemoteJudgeRequest
#     (body10.json from gen.py), judgments/s;
#   - the same wrk against goldengoose's GET / (the same binary's
#     `canarylab goldengoose`), the reference for how loaded the machine is;
#   - with BEFORE=path/to/older/canarylab, that build's /judge too;
# interleaved rounds (the order alternates), the medians and the ratios
# judgments/s : goldengoose requests/s; and the server's CPU per judgment
# (utime+stime from /proc, all rounds).
#
# Usage: cluster/bench/serve/bench.sh path/to/canarylab [BEFORE=path]
# Env: DURATION (default 10s), ROUNDS (default 3), CONNECTIONS (default 16).
# Build: cargo build --release --no-default-features --features local --bin canarylab
# Needs wrk and python3.
set -euo pipefail

BIN=${1:?usage: bench.sh path/to/canarylab}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-16}
HERE=$(cd "$(dirname "$0")" && pwd)
for tool in wrk python3; do
    command -v "$tool" >/dev/null || { echo "bench: $tool not found" >&2; exit 2; }
done

WORK=$(mktemp -d /tmp/serve-bench.XXXXXX)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

(cd "$WORK" && python3 "$HERE/gen.py" && cp "$HERE/post.lua" .)

# Starts "$@" (first stdout line: the address); sets STARTED_PID, STARTED_ADDR.
# Not called as $(start ...): a subshell would keep the PID from cleanup.
start() {
    local name=$1
    shift
    "$@" > "$WORK/$name.out" 2> "$WORK/$name.err" &
    STARTED_PID=$!
    PIDS+=("$STARTED_PID")
    for _ in $(seq 200); do
        [[ -s "$WORK/$name.out" ]] && break
        sleep 0.05
    done
    STARTED_ADDR=$(head -n1 "$WORK/$name.out")
    [[ -n "$STARTED_ADDR" ]] || { echo "bench: $name did not start" >&2; cat "$WORK/$name.err" >&2; exit 1; }
}

start goldengoose "$BIN" goldengoose --listen 127.0.0.1:0
GG_URL="http://$STARTED_ADDR/"
start serve "$BIN" serve --listen 127.0.0.1:0
SERVE_PID=$STARTED_PID
SERVE_URL="http://$STARTED_ADDR/judge"
TARGETS=(goldengoose serve)
URLS=("$GG_URL" "$SERVE_URL")
if [[ -n "${BEFORE:-}" ]]; then
    start before "$BEFORE" serve --listen 127.0.0.1:0
    TARGETS+=(before)
    URLS+=("http://$STARTED_ADDR/judge")
fi

# The answers are judgments, not errors.
for url in "${URLS[@]:1}"; do
    code=$(cd "$WORK" && python3 -c "
import sys, urllib.request
r = urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=open('body10.json','rb').read(), headers={'Content-Type': 'application/json'}))
print(r.status)" "$url")
    [[ "$code" == 200 ]] || { echo "bench: $url answered $code" >&2; exit 1; }
done

rps() { # url [lua] -> requests/s, failing on any non-2xx or socket error
    local out
    if [[ $# -gt 1 ]]; then
        out=$(cd "$WORK" && wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s post.lua "$1")
    else
        out=$(wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "$1")
    fi
    if grep -qE "Non-2xx|Socket errors" <<<"$out"; then
        echo "bench: errors from $1:" >&2
        echo "$out" >&2
        exit 1
    fi
    awk '/^Requests\/sec:/ { print $2 }' <<<"$out"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
served() { # total requests served, from the server's /metrics
    python3 -c "
import re, sys, urllib.request
text = urllib.request.urlopen(sys.argv[1]).read().decode()
print(int(sum(float(m) for m in re.findall(r'^canarylab_serve_requests_total\{[^}]*endpoint=\"judge\"[^}]*\} (\S+)', text, re.M))))" "$1"
}

echo "# wrk -t2 -c$CONNECTIONS -d$DURATION, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for i in "${!URLS[@]}"; do
    if ((i == 0)); then wrk -t2 -c"$CONNECTIONS" -d2s "${URLS[$i]}" >/dev/null
    else (cd "$WORK" && wrk -t2 -c"$CONNECTIONS" -d2s -s post.lua "${URLS[$i]}" >/dev/null); fi
done
ticks0=$(cpu_ticks "$SERVE_PID")
requests0=$(served "${SERVE_URL%/judge}/metrics" 2>/dev/null || echo 0)
declare -A RESULTS
for round in $(seq "$ROUNDS"); do
    order=("${!URLS[@]}")
    if ((round % 2 == 0)); then order=($(printf '%s\n' "${order[@]}" | tac)); fi
    line="round $round:"
    for i in "${order[@]}"; do
        if ((i == 0)); then r=$(rps "${URLS[$i]}"); else r=$(rps "${URLS[$i]}" lua); fi
        RESULTS[${TARGETS[$i]}]+="$r "
        line+=$(printf '  %s %.0f/s' "${TARGETS[$i]}" "$r")
    done
    echo "$line"
done
ticks1=$(cpu_ticks "$SERVE_PID")
requests1=$(served "${SERVE_URL%/judge}/metrics" 2>/dev/null || echo 0)
python3 - "${RESULTS[goldengoose]}" "${RESULTS[serve]}" "${RESULTS[before]:-}" \
    "$ticks0" "$ticks1" "$requests0" "$requests1" "$(getconf CLK_TCK)" <<'PY'
import statistics, sys
gg, serve, before = ([float(x) for x in a.split()] for a in sys.argv[1:4])
t0, t1, r0, r1, hz = (float(x) for x in sys.argv[4:9])
med = statistics.median
print(f"median: goldengoose GET / {med(gg):.0f}/s, /judge {med(serve):.0f} judgments/s")
print(f"ratio /judge : goldengoose GET / = {med([s / g for s, g in zip(serve, gg)]):.3f} (median of rounds)")
if before:
    print(f"before: {med(before):.0f} judgments/s; after : before = {med([s / b for s, b in zip(serve, before)]):.2f} (median of rounds)")
if r1 > r0:
    print(f"server CPU per judgment: {(t1 - t0) / hz / (r1 - r0) * 1e6:.0f} us over {r1 - r0:.0f} requests")
PY
