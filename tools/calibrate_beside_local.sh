#!/usr/bin/env bash
# Does tests/local disturb tests/calibrate's round trip? `.ci/run` runs the
# two binaries at once (README "How long CI takes"); this runs calibrate
# alone and beside local, in turns, and prints what the round trip fitted
# and each binary's wall time, to compare. Needs prometheus, as the tests
# do.
#
#   tools/calibrate_beside_local.sh [ORDER]    # ORDER: default "A T T A T"
#
# A: calibrate alone; T: calibrate and local started together. Logs are
# kept in a temporary directory, printed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_PROFILE_DEV_DEBUG=0
order=(${1:-A T T A T})
SKIP=(--skip fast_equals_full_on_a_million_cases --skip week_of_20_pods
    --skip cost_of_measuring_argo_queries)

built=$(cargo test --workspace --locked --no-run --test calibrate --test local 2>&1)
bin() { sed -n "s|^ *Executable tests/$1/main.rs (\\(.*\\))\$|\\1|p" <<<"$built"; }
cal=$(bin calibrate)
loc=$(bin local)
[ -x "$cal" ] && [ -x "$loc" ] || {
    echo "$built"
    exit 1
}
logs=$(mktemp -d)
n=0
for run in "${order[@]}"; do
    n=$((n + 1))
    name="$n$run"
    echo "== $name ($([ "$run" = T ] && echo "beside local" || echo alone)), load $(cut -d' ' -f1-3 /proc/loadavg)"
    lpid=""
    if [ "$run" = T ]; then
        /usr/bin/time -f "local: %e s wall, %U + %S CPU-s" "$loc" --include-ignored "${SKIP[@]}" \
            >"$logs/$name.local" 2>&1 &
        lpid=$!
    fi
    rc=0
    /usr/bin/time -f "calibrate: %e s wall, %U + %S CPU-s" "$cal" --include-ignored --nocapture "${SKIP[@]}" \
        >"$logs/$name.cal" 2>&1 || rc=$?
    echo "calibrate exit $rc"
    grep -E '^(latency_sigma|latency_median_ms|cpu_ms_per_request|request_rate|cpu service request_rate): fitted|^calibrate:' \
        "$logs/$name.cal" | grep -v 'truth 0.40000\|truth 4.00000\|truth 285\|truth 80.0' || true
    if [ -n "$lpid" ]; then
        rc=0
        wait "$lpid" || rc=$?
        echo "local exit $rc"
        grep -E '^test result|^local:|FAILED' "$logs/$name.local" || true
    fi
done
echo "logs: $logs"
