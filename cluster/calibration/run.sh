#!/bin/bash
# Sim-vs-real calibration (issue 7, "Measured"): real releases of catalog
# scenarios with `canarylab local`, the simulator on the same scenarios, and
# the comparison tables (tools/calibration). See CALIBRATION.md.
#
# Usage: cluster/calibration/run.sh [SCENARIO:REAL_RUNS ...]
#   default: aa-typical:10 latency-10pct:10 errors-2pct:6
#
# Environment (defaults in brackets):
#   OUT          work directory [/tmp/calib/v2]; results under OUT/{real,sim,sim0}/SCENARIO
#   SCALE        --time-scale of the real runs [0.02]
#   MULT         --rate-scale of the real runs [1/SCALE]: holds the
#                simulator's requests per rate window (see CALIBRATION.md)
#   SIM_EX       simulated example runs per scenario (series) [30]
#   SIM_RUNS     simulated runs per scenario for the verdict rates [1000]
#   CANARYLAB    canarylab binary [built here: cargo build --release]
#   CARGO_TARGET_DIR  [/work/target-calib]
#   SEED0        first real seed [1]: SCENARIO:K runs seeds SEED0..SEED0+K-1
#                (a later call with SEED0=K+1 adds runs to the same OUT)
#   SKIP_REAL=1  reuse the real runs already in OUT (only sim + tables)
#   KEEP_CPU=1   keep the scenario's CPU burn in every real run (default:
#                only in cpu regressions; the others get cpu_ms_per_request = 0
#                so the burn does not load the shared machine)
# Anything else in the environment reaches canarylab (e.g. CALIB_CONNECTIONS
# for a build with the connection patch described in CALIBRATION.md).
#
# Only one real run at a time, and nothing is built while one runs.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=${CALIB_REPO:-$(cd "$here/../.." && pwd)}
catalog=$repo/scenarios/catalog
OUT=${OUT:-/tmp/calib/v2}
SCALE=${SCALE:-0.02}
MULT=${MULT:-$(python3 -c "print(round(1 / $SCALE, 6))")}
SIM_EX=${SIM_EX:-30}
SIM_RUNS=${SIM_RUNS:-1000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/target-calib}

if [ $# -eq 0 ]; then
    set -- aa-typical:10 latency-10pct:10 errors-2pct:6
fi

if [ -z "${CANARYLAB:-}" ]; then
    (cd "$repo" && cargo build --release -p canarylab)
    CANARYLAB=$CARGO_TARGET_DIR/release/canarylab
fi
echo "canarylab: $CANARYLAB ($("$CANARYLAB" --version))"
# Build the comparison now, not between real runs.
(cd "$repo" && cargo build --release -p calibration)
compare=$CARGO_TARGET_DIR/release/calibration

mkdir -p "$OUT"/scen/{sim,sim0,real} "$OUT"/real "$OUT"/sim "$OUT"/sim0
for d in sim sim0 real; do
    cp "$catalog/canary-config.json" "$OUT/scen/$d/"
done

# A scenario copy with extra [service] keys (the chosen catalog files have
# no [service] table of their own; refuse one that has).
with_service() { # SRC DST KEY=VALUE...
    local src=$1 dst=$2
    shift 2
    if grep -q '^\[service' "$src"; then
        echo "$src has its own [service] table: edit it by hand" >&2
        exit 2
    fi
    cp "$src" "$dst"
    if [ $# -gt 0 ]; then
        printf '\n[service]\n' >>"$dst"
        printf '%s\n' "$@" >>"$dst"
    fi
}

rates=$OUT/real/rates.tsv
[ -f "$rates" ] || printf 'scenario\tseed\tasked_rps\tachieved_rps\tachieved_median_rps\tcanary_asked_rps\tcanary_median_rps\tdropped\tlate_starts\twall_s\tload1\tdecision\n' >"$rates"

for arg in "$@"; do
    s=${arg%%:*}
    k=${arg#*:}
    [ "$k" != "$arg" ] || k=8
    src=$catalog/$s.toml
    [ -f "$src" ] || { echo "no scenario $src" >&2; exit 2; }

    # The simulator runs the catalog file as it is; sim0 the same without
    # the effects a loopback release cannot have (pods that differ, drift,
    # shared load swings, cold fresh pods).
    with_service "$src" "$OUT/scen/sim/$s.toml"
    with_service "$src" "$OUT/scen/sim0/$s.toml" \
        'pod_variation = 0.0' 'load_noise = { sd = 0.0, rho = 0.0 }' \
        'pod_drift = { sd = 0.0, rho = 0.0 }' 'fresh_pod = { cold_latency = 0.0 }'
    # The real runs: --rate-scale MULT. A CPU regression keeps its CPU burn
    # (--rate-scale divides the CPU per request by MULT, so each instance
    # burns what the scenario says); the others burn none, to keep the
    # shared machine quiet (KEEP_CPU=1 keeps it).
    cpu=()
    if [ "${KEEP_CPU:-0}" != 1 ] && ! grep -q '^kind = "cpu"' "$src"; then
        cpu=('cpu_ms_per_request = 0.0')
    fi
    with_service "$src" "$OUT/scen/real/$s.toml" "${cpu[@]}"

    if [ "${SKIP_REAL:-0}" != 1 ]; then
        for seed in $(seq "${SEED0:-1}" $((${SEED0:-1} + k - 1))); do
            dir=$OUT/real/$s/$seed
            rm -rf "$dir"
            mkdir -p "$OUT/real/$s"
            load1=$(cut -d' ' -f1 /proc/loadavg)
            start=$(date +%s.%N)
            rc=0
            "$CANARYLAB" local "$OUT/scen/real/$s.toml" --seed "$seed" --time-scale "$SCALE" --rate-scale "$MULT" \
                --out "$dir" >"$dir.log" 2>&1 || rc=$?
            wall=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
            decision=$(jq -r '.example_runs[0].decision // "none"' "$dir/results.json" 2>/dev/null || echo none)
            if [ -f "$dir/load.json" ]; then
                # Rates: loadgen's overall (requests / whole load phase) and
                # the median over its 0.2 s steps (the canary's: steps where
                # it had traffic), against the rate and canary share asked.
                jq -r --arg s "$s" --arg seed "$seed" --arg wall "$wall" --arg load1 "$load1" --arg d "$decision" '
                    def median: sort | if length == 0 then null else .[length / 2 | floor] end;
                    def canary($i): [$i.targets[] | select(.name | startswith("canary-")) | .requests] | add // 0;
                    (.weight_changes[0].weights | to_entries) as $w
                    | (($w | map(select(.key | startswith("canary-")) | .value) | add) / ($w | map(.value) | add)) as $share
                    | [$s, $seed, .target_rate, .achieved_rate,
                       ([.intervals[] | .rate] | median),
                       (.target_rate * $share),
                       ([.intervals[] | canary(.) / (.end_s - .start_s) | select(. > 0)] | median),
                       .total.dropped, .total.late_starts, $wall, $load1, $d]
                    | @tsv' "$dir/load.json" >>"$rates"
                # load.json (1.6 MB of histograms) is summarised above.
                rm -f "$dir/load.json"
            else
                printf '%s\t%s\t-\t-\t-\t-\t-\t-\t-\t%s\t%s\t%s (rc %s)\n' "$s" "$seed" "$wall" "$load1" "$decision" "$rc" >>"$rates"
            fi
            rm -rf "$dir/charts" "$dir/report.html"
            tail -n 1 "$rates"
        done
    fi

    # Verdict rates, then example runs (the simulator writes one example run
    # per scenario and study, so one study per seed; seeds 1001.. do not
    # repeat run 0 of the seed-1 study).
    for v in sim sim0; do
        rm -rf "$OUT/$v/$s"
        mkdir -p "$OUT/$v/$s"
        "$CANARYLAB" sim "$OUT/scen/$v/$s.toml" --runs "$SIM_RUNS" --seed 1 --out "$OUT/$v/$s/study" >"$OUT/$v/$s/study.log"
        for seed in $(seq 1001 $((1000 + SIM_EX))); do
            "$CANARYLAB" sim "$OUT/scen/$v/$s.toml" --runs 1 --seed "$seed" --out "$OUT/$v/$s/ex-$seed" >/dev/null
            rm -rf "$OUT/$v/$s/ex-$seed/charts" "$OUT/$v/$s/ex-$seed/report.html"
        done
        rm -rf "$OUT/$v/$s/study/charts" "$OUT/$v/$s/study/report.html"
    done

    "$compare" --real "$OUT/real/$s" --sim "$OUT/sim/$s" --also "sim, no pod effects=$OUT/sim0/$s" \
        >"$OUT/tables-$s.md"
    echo "tables: $OUT/tables-$s.md"
done
