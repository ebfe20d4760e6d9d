#!/usr/bin/env bash
# Instructions per POST /judge: `canarylab serve` under callgrind while
# client.py sends exactly N requests on one connection; the server is then
# stopped by its PID (SIGTERM). Run twice (e.g. N=200 and N=1000) and
# divide the difference of the totals by the difference of N, so start-up
# and shutdown cancel out.
#
# Usage: cluster/bench/serve/cg.sh path/to/canarylab N OUT [serve arguments...]
#   (run in a directory holding body10.json from gen.py)
# Then: callgrind_annotate --inclusive=yes OUT | grep -E "PROGRAM TOTALS|judge_body_json \[|scan_remote_judge_request \[|judge_pairs_with \[|Judge::classify \["
set -euo pipefail
BIN=$1 N=$2 OUT=$3
shift 3
HERE=$(cd "$(dirname "$0")" && pwd)
valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BIN" serve --listen 127.0.0.1:0 "$@" > "$OUT.addr" 2> "$OUT.err" &
PID=$!
trap 'kill -TERM "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 600); do [[ -s "$OUT.addr" ]] && break; sleep 0.1; done
python3 "$HERE/client.py" "$(head -1 "$OUT.addr")" "$N"
kill -TERM "$PID"
wait "$PID" || true
trap - EXIT
grep -E "Collected" "$OUT.err" || true
