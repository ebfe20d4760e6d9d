#!/usr/bin/env bash
# POST /judge throughput of `canarylab serve`, all on loopback, in one run:
#   - wrk -t2 -c16 against /judge with a 10-metric, 60 vs 60 RemoteJudgeRequest
#     (body10.json from gen.py), judgments/s;
#   - the same wrk against goldengoose's GET / (the same binary's
#     `canarylab goldengoose`), the reference for how loaded the machine is;
#   - with BEFORE=path/to/older/canarylab, that build's /judge too;
#   - with FAST=1, the same server started with --without-interval too;
# interleaved rounds (the order alternates), the medians and the ratios
# judgments/s : goldengoose requests/s; per target the server's CPU per
# request (utime+stime from /proc over its rounds) and wrk's (from
# /usr/bin/time), and from them the projection for two idle cores:
# 2 CPU-seconds / (server + client CPU-seconds per request), the client
# on the same two cores as the target asks.
#
# Usage: cluster/bench/serve/bench.sh path/to/canarylab
# Then `canarylab judge` on the same input, CLI_RUNS (default 40) processes
# one after another: judgments/s and CPU per judgment, the reference.
# Env: DURATION (default 10s), ROUNDS (default 3), CONNECTIONS (default 16),
#      BEFORE (an older canarylab), FAST (1: also --without-interval),
#      SERVE_ARGS (more arguments for every serve started).
# Build: cargo build --release --no-default-features --features local --bin canarylab
# Needs wrk, python3 and /usr/bin/time.
set -euo pipefail

BIN=${1:?usage: bench.sh path/to/canarylab}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-3}
CONNECTIONS=${CONNECTIONS:-16}
HERE=$(cd "$(dirname "$0")" && pwd)
for tool in wrk python3 /usr/bin/time; do
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

# shellcheck disable=SC2086
TARGETS=() URLS=() SPIDS=()
start goldengoose "$BIN" goldengoose --listen 127.0.0.1:0
TARGETS+=(goldengoose) URLS+=("http://$STARTED_ADDR/") SPIDS+=("$STARTED_PID")
# shellcheck disable=SC2086
start serve "$BIN" serve --listen 127.0.0.1:0 ${SERVE_ARGS:-}
TARGETS+=(serve) URLS+=("http://$STARTED_ADDR/judge") SPIDS+=("$STARTED_PID")
if [[ -n "${FAST:-}" ]]; then
    # shellcheck disable=SC2086
    start fast "$BIN" serve --listen 127.0.0.1:0 --without-interval ${SERVE_ARGS:-}
    TARGETS+=(fast) URLS+=("http://$STARTED_ADDR/judge") SPIDS+=("$STARTED_PID")
fi
if [[ -n "${BEFORE:-}" ]]; then
    start before "$BEFORE" serve --listen 127.0.0.1:0
    TARGETS+=(before) URLS+=("http://$STARTED_ADDR/judge") SPIDS+=("$STARTED_PID")
fi

# The answers are judgments, not errors.
for url in "${URLS[@]:1}"; do
    code=$(cd "$WORK" && python3 -c "
import sys, urllib.request
r = urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=open('body10.json','rb').read(), headers={'Content-Type': 'application/json'}))
print(r.status)" "$url")
    [[ "$code" == 200 ]] || { echo "bench: $url answered $code" >&2; exit 1; }
done

# url [lua] -> "requests/s requests client-CPU-seconds", failing on any
# non-2xx or socket error
rps() {
    local out cpu
    if [[ $# -gt 1 ]]; then
        out=$(cd "$WORK" && /usr/bin/time -f "%U %S" -o "$WORK/time" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" -s post.lua "$1")
    else
        out=$(/usr/bin/time -f "%U %S" -o "$WORK/time" wrk -t2 -c"$CONNECTIONS" -d"$DURATION" "$1")
    fi
    # wrk's "timeout" (an answer slower than 2 s) is the machine's load,
    # not an error of the server: reported, not fatal.
    grep -E "Socket errors" <<<"$out" >&2 || true
    if grep -qE "Non-2xx|Socket errors: connect [1-9]|read [1-9]|write [1-9]" <<<"$out"; then
        echo "bench: errors from $1:" >&2
        echo "$out" >&2
        exit 1
    fi
    cpu=$(awk '{ print $1 + $2 }' "$WORK/time")
    awk -v cpu="$cpu" '/^Requests\/sec:/ { r = $2 } / requests in / { n = $1 } END { print r, n, cpu }' <<<"$out"
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

echo "# wrk -t2 -c$CONNECTIONS -d$DURATION, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for i in "${!URLS[@]}"; do
    if ((i == 0)); then wrk -t2 -c"$CONNECTIONS" -d2s "${URLS[$i]}" >/dev/null
    else (cd "$WORK" && wrk -t2 -c"$CONNECTIONS" -d2s -s post.lua "${URLS[$i]}" >/dev/null); fi
done
RESULTS=$WORK/results
: > "$RESULTS"
for round in $(seq "$ROUNDS"); do
    order=("${!URLS[@]}")
    if ((round % 2 == 0)); then mapfile -t order < <(printf '%s\n' "${order[@]}" | tac); fi
    line="round $round:"
    for i in "${order[@]}"; do
        t0=$(cpu_ticks "${SPIDS[$i]}")
        if ((i == 0)); then r=$(rps "${URLS[$i]}"); else r=$(rps "${URLS[$i]}" lua); fi
        t1=$(cpu_ticks "${SPIDS[$i]}")
        echo "$round ${TARGETS[$i]} $r $((t1 - t0))" >> "$RESULTS"
        line+=$(printf '  %s %.0f/s' "${TARGETS[$i]}" "${r%% *}")
    done
    echo "$line"
done
# The named reference the issue asks for: `canarylab judge`, one process
# per judgment of the same input (config10.json + pairs10.json), in the
# same minutes.
CLI_RUNS=${CLI_RUNS:-40}
cli_start=$(date +%s.%N)
(cd "$WORK" && /usr/bin/time -f "%U %S" -o "$WORK/cli-time" bash -c \
    'for _ in $(seq "$1"); do "$2" judge --config config10.json --pairs pairs10.json > /dev/null; done' _ "$CLI_RUNS" "$BIN")
cli_end=$(date +%s.%N)
echo "cli $CLI_RUNS $cli_start $cli_end $(awk '{ print $1 + $2 }' "$WORK/cli-time")" > "$WORK/cli"
python3 - "$RESULTS" "$(getconf CLK_TCK)" "$WORK/cli" <<'PY'
import collections, statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
hz = float(sys.argv[2])
med = statistics.median
rate = collections.defaultdict(dict)
cpu = collections.defaultdict(lambda: [0.0, 0.0, 0])  # server s, client s, requests
for rnd, name, rps, n, client, ticks in rows:
    rate[name][rnd] = float(rps)
    c = cpu[name]
    c[0] += float(ticks) / hz
    c[1] += float(client)
    c[2] += int(n)
gg = rate["goldengoose"]
for name in rate:
    r = rate[name]
    ratio = med([r[k] / gg[k] for k in r])
    s, c, n = cpu[name]
    print(f"{name:12s} median {med(r.values()):7.0f}/s  : goldengoose GET / {ratio:.3f}"
          f"  CPU per request: server {s / n * 1e6:4.0f} us, wrk {c / n * 1e6:4.0f} us"
          f"  -> 2 idle cores {2 / ((s + c) / n):7.0f}/s")
_, runs, t0, t1, cli_cpu = open(sys.argv[3]).read().split()
runs, wall, cli_cpu = int(runs), float(t1) - float(t0), float(cli_cpu)
print(f"canarylab judge, a process per judgment: {runs / wall:.0f}/s (one at a time), "
      f"CPU {cli_cpu / runs * 1e6:.0f} us per judgment -> 2 idle cores {2 * runs / cli_cpu:.0f}/s")
for name in rate:
    if name != "goldengoose":
        s, c, n = cpu[name]
        print(f"{name} : canarylab judge, CPU per judgment = {(cli_cpu / runs) / ((s + c) / n):.1f}x fewer")
for name in rate:
    if name not in ("goldengoose", "serve"):
        print(f"{name} : serve = {med([rate[name][k] / rate['serve'][k] for k in rate[name]]):.2f} (median of rounds)")
PY
