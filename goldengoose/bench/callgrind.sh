#!/usr/bin/env bash
# Instructions per work request (callgrind), for comparing server options
# on a loaded machine: the goldengoose binary runs under callgrind with one
# worker thread, a Python keep-alive client sends N1 then (in a second run)
# N2 GET /, and the per-request cost is the difference of the inclusive
# instruction counts of server::work (and of the whole process) divided by
# N2 - N1, which cancels start-up and first-request costs.
#
# Usage: goldengoose/bench/callgrind.sh BIN [server args...]
#   e.g. callgrind.sh target/debug/goldengoose
#        callgrind.sh target/debug/goldengoose --istio workload=shop-canary
# Env: N1 (default 300), N2 (default 1300). Needs valgrind and python3.
set -euo pipefail
BIN=$1
shift
N1=${N1:-300}
N2=${N2:-1300}
WORK=$(mktemp -d /tmp/gg-callgrind.XXXXXX)
PID=
cleanup() {
    if [[ -n "$PID" ]]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

cat > "$WORK/client.py" <<'PY'
import http.client, sys
host, port = sys.argv[1].rsplit(':', 1)
c = http.client.HTTPConnection(host, int(port))
for _ in range(int(sys.argv[2])):
    c.request('GET', '/')
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
PY

measure() { # n, server args... -> writes "work_ir total_ir" to $WORK/result.n
    local n=$1 out=$WORK/cg.$1.out
    shift
    valgrind --tool=callgrind --callgrind-out-file="$out" "$BIN" --listen 127.0.0.1:0 \
        --threads 1 --track bench "$@" > "$WORK/stdout.$n" 2> "$WORK/stderr.$n" &
    PID=$!
    for _ in $(seq 600); do [[ -s "$WORK/stdout.$n" ]] && break; sleep 0.1; done
    python3 "$WORK/client.py" "$(head -n1 "$WORK/stdout.$n")" "$n"
    kill -TERM "$PID"; wait "$PID" || true; PID=
    local work total
    work=$(callgrind_annotate --inclusive=yes "$out" | grep -E 'server::work::\{\{closure\}\} \[' | head -1 | awk '{print $1}' | tr -d ,)
    total=$(grep -m1 '^summary:' "$out" | awk '{print $2}')
    echo "$work $total" > "$WORK/result.$n"
}
measure "$N1" "$@"
measure "$N2" "$@"
read -r W1 T1 < "$WORK/result.$N1"
read -r W2 T2 < "$WORK/result.$N2"
python3 -c "import sys; w1,w2,t1,t2,n1,n2=map(int,sys.argv[1:]); d=n2-n1; print('per request: server::work %.0f Ir, whole process %.0f Ir (runs of %d and %d requests)' % ((w2-w1)/d,(t2-t1)/d,n1,n2))" "$W1" "$W2" "$T1" "$T2" "$N1" "$N2"
