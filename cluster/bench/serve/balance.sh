#!/usr/bin/env bash
# How evenly `canarylab serve`'s worker threads share the load: under
# `wrk -t2 -c16` against POST /judge, the connections each worker accepted
# (canarylab_serve_connections_total{worker="N"} from /metrics) and the CPU
# time (utime+stime, clock ticks) of each of the server's threads.
#
# Usage: cluster/bench/serve/balance.sh path/to/canarylab [DURATION] [serve arguments...]
#   (run in a directory holding body10.json from gen.py and post.lua)
set -euo pipefail
BIN=$1 DUR=${2:-10s}
shift $(($# < 2 ? $# : 2))
"$BIN" serve --listen 127.0.0.1:0 "$@" > balance.addr 2> balance.err &
PID=$!
trap 'kill -TERM "$PID" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [[ -s balance.addr ]] && break; sleep 0.1; done
ADDR=$(head -1 balance.addr)
ticks() { for t in /proc/"$PID"/task/*; do echo "${t##*/} $(awk '{ print $14 + $15 }' "$t/stat")"; done; }
ticks > balance.t0
wrk -t2 -c16 -d"$DUR" -s post.lua "http://$ADDR/judge" | grep -E "Requests/sec|requests in"
ticks > balance.t1
curl -s "http://$ADDR/metrics" | grep "^canarylab_serve_connections_total" | sort
echo "CPU ticks per server thread over the run (threads that used any):"
join balance.t0 balance.t1 | awk '{ if ($3 - $2 > 0) print "  thread", $1, $3 - $2 }'
kill -TERM "$PID"
wait "$PID" || true
trap - EXIT
