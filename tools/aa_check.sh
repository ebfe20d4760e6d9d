#!/bin/bash
# Does the calibrated simulator predict a real service's A/A false alarms?
# (issue 17, "Measured"). One scenario of known settings (default: the
# catalog's aa-typical judged by the catalog's Kayenta config, with the
# settings goldengoose on loopback really has: no pod-to-pod variation,
# drift, shared load noise or cold fresh pods, and no CPU burn), then:
#   1. calibrate: the scenario's production pods run for real (goldengoose
#      processes, loadgen, a real Prometheus, time-scaled as `canarylab
#      local` runs them) and `canarylab calibrate`'s code fits the service
#      (examples/aa_calibrate.rs) -> OUT/fitted.toml;
#   2. predict: `canarylab sim` of the scenario with the fitted service
#      (`--service OUT/fitted.toml`), SIM_RUNS runs; and, for reference, of
#      the known settings as written;
#   3. real: REAL_RUNS real releases `canarylab local` (time-scaled) of the
#      same scenario, each rolled back or promoted by the same judge;
#   4. OUT/summary.md: false alarms with Wilson and Clopper-Pearson 95%
#      intervals, and an exact test of the real count against the
#      calibrated prediction.
#
# Usage: tools/aa_check.sh            (about 30 minutes on 2 busy cores)
# Environment (defaults in brackets):
#   OUT        work directory [/tmp/aa-check]
#   SCENARIO   a scenario without its own [service] table [scenarios/catalog/aa-typical.toml]
#   REAL_RUNS  real releases [20];   SEED0  first real seed [1]
#   SIM_RUNS   simulated releases per prediction [2000]
#   SCALE      --time-scale [0.02];   MULT  --rate-scale [1/SCALE]: a scaled
#              window then holds the scenario's requests, as the simulator
#              models it (cluster/README.md, "Sim vs real")
#   CAL_SECONDS  real seconds of calibration data [180]
#   SERVICE    the known [service] lines (one per line) [see below]
#   CANARYLAB, AA_CALIBRATE   prebuilt binaries [built: cargo build --release]
#   SKIP_REAL=1  only calibrate, predict and summarise the runs already in OUT
#   SKIP_CAL=1   reuse OUT/fitted.toml
# Only one real run at a time, and nothing else of ours runs beside it.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
OUT=${OUT:-/tmp/aa-check}
SCENARIO=${SCENARIO:-$repo/scenarios/catalog/aa-typical.toml}
REAL_RUNS=${REAL_RUNS:-20}
SEED0=${SEED0:-1}
SIM_RUNS=${SIM_RUNS:-2000}
SCALE=${SCALE:-0.02}
MULT=${MULT:-$(python3 -c "print(round(1 / $SCALE, 6))")}
CAL_SECONDS=${CAL_SECONDS:-180}
SERVICE=${SERVICE:-'pod_variation = 0.0
cpu_ms_per_request = 0.0
load_noise = { sd = 0.0, rho = 0.0 }
pod_drift = { sd = 0.0, rho = 0.0 }
fresh_pod = { cold_latency = 0.0 }'}

if [ -z "${CANARYLAB:-}" ] || [ -z "${AA_CALIBRATE:-}" ]; then
    (cd "$repo" && cargo build --release --no-default-features --features local \
        --bin canarylab --example aa_calibrate)
    target=${CARGO_TARGET_DIR:-$repo/target}
    CANARYLAB=${CANARYLAB:-$target/release/canarylab}
    AA_CALIBRATE=${AA_CALIBRATE:-$target/release/examples/aa_calibrate}
fi

mkdir -p "$OUT/real"
name=$(basename "$SCENARIO" .toml)
scen=$OUT/$name.toml
if grep -q '^\[service' "$SCENARIO"; then
    echo "$SCENARIO has its own [service] table: give the known settings in SERVICE instead" >&2
    exit 2
fi
cp "$SCENARIO" "$scen"
printf '\n[service]\n%s\n' "$SERVICE" >>"$scen"
# the scenario's canary config, beside the copy
config=$(sed -n 's/^config *= *"\(.*\)"/\1/p' "$SCENARIO" | head -n 1)
[ -z "$config" ] || cp "$(dirname "$SCENARIO")/$config" "$OUT/"
echo "scenario: $scen; canarylab: $CANARYLAB ($("$CANARYLAB" --version))"

# 1. calibrate
if [ "${SKIP_CAL:-0}" != 1 ]; then
    "$AA_CALIBRATE" "$scen" --canarylab "$CANARYLAB" --time-scale "$SCALE" --rate-scale "$MULT" \
        --seconds "$CAL_SECONDS" --out "$OUT/fitted.toml" 2>&1 | tee "$OUT/calibrate.log"
fi

# 2. predict (and the known settings as written, for reference)
"$CANARYLAB" sim "$scen" --service "$OUT/fitted.toml" --runs "$SIM_RUNS" --seed 1 \
    --out "$OUT/sim-calibrated" >"$OUT/sim-calibrated.log"
"$CANARYLAB" sim "$scen" --runs "$SIM_RUNS" --seed 1 --out "$OUT/sim-known" >"$OUT/sim-known.log"
rm -rf "$OUT"/sim-*/charts "$OUT"/sim-*/report.html

# 3. real releases
if [ "${SKIP_REAL:-0}" != 1 ]; then
    for seed in $(seq "$SEED0" $((SEED0 + REAL_RUNS - 1))); do
        dir=$OUT/real/$seed
        rm -rf "$dir"
        start=$(date +%s)
        rc=0
        "$CANARYLAB" local "$scen" --seed "$seed" --time-scale "$SCALE" --rate-scale "$MULT" \
            --out "$dir" >"$dir.log" 2>&1 || rc=$?
        rm -rf "$dir/charts" "$dir/report.html" "$dir/load.json"
        decision=$(jq -r '.example_runs[0].decision // "none"' "$dir/results.json" 2>/dev/null || echo none)
        echo "real seed $seed: $decision (exit $rc, $(($(date +%s) - start)) s, load $(cut -d' ' -f1 /proc/loadavg))"
    done
fi

# 4. summary
python3 - "$OUT" "$name" >"$OUT/summary.md" <<'PY'
import glob, json, math, os, sys

out, name = sys.argv[1], sys.argv[2]

def wilson(x, n, z=1.959964):
    p = x / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return c - h, c + h

def binom_cdf(x, n, p):
    # P(X <= x), X ~ Binomial(n, p)
    if x < 0:
        return 0.0
    if x >= n:
        return 1.0
    if p <= 0:
        return 1.0
    if p >= 1:
        return 0.0
    lp, lq = math.log(p), math.log1p(-p)
    return min(1.0, sum(math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                                 + k * lp + (n - k) * lq) for k in range(x + 1)))

def clopper_pearson(x, n, a=0.05):
    def solve(f):  # f increasing in p, root of f(p) = 0 on [0, 1]
        lo, hi = 0.0, 1.0
        for _ in range(80):
            mid = (lo + hi) / 2
            if f(mid) < 0:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2
    lower = 0.0 if x == 0 else solve(lambda p: (1 - binom_cdf(x - 1, n, p)) - a / 2)
    upper = 1.0 if x == n else solve(lambda p: a / 2 - binom_cdf(x, n, p))
    return lower, upper

def binom_pmf(k, n, p):
    return math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
                    + k * math.log(p) + (n - k) * math.log1p(-p))

def exact_two_sided(x, n, p):
    # the probability under Binomial(n, p) of a count no more likely than x
    px = binom_pmf(x, n, p)
    return min(1.0, sum(binom_pmf(k, n, p) for k in range(n + 1) if binom_pmf(k, n, p) <= px * (1 + 1e-7)))

def sim(which):
    d = json.load(open(os.path.join(out, which, "results.json")))
    v = d["scenarios"][0]["verdicts"]
    return v["rolled_back"], v["promoted"] + v["rolled_back"] + v["deploy_failed"] + v["build_failed"]

def pct(a):
    return f"{100 * a:.1f}"

real, failed, why = [], [], {}
for path in sorted(glob.glob(os.path.join(out, "real", "*", "results.json")), key=lambda p: int(p.split(os.sep)[-2])):
    d = json.load(open(path))
    runs = d.get("example_runs") or []
    seed = path.split(os.sep)[-2]
    if not runs or runs[0].get("decision") not in ("promote", "rollback"):
        failed.append(seed)
        continue
    r = runs[0]
    real.append((seed, r["decision"]))
    if r["decision"] == "rollback":
        # the metrics that did not pass in the interval that decided
        bad = set()
        for it in r.get("intervals", [])[-1:]:
            for m in it.get("metrics", []) or it.get("judge", {}).get("metrics", []):
                cls = m.get("classification") or m.get("result")
                if cls and cls not in ("Pass", "pass"):
                    bad.add(m.get("name", "?"))
        why[seed] = ", ".join(sorted(bad)) or r.get("reason", "")

rows = []
x_real = sum(1 for _, d in real if d == "rollback")
n_real = len(real)
for label, (x, n) in [("real releases (`canarylab local`)", (x_real, n_real)),
                      ("sim, calibrated service", sim("sim-calibrated")),
                      ("sim, known settings as written", sim("sim-known"))]:
    if n == 0:
        rows.append(f"| {label} | 0 runs | | |")
        continue
    w, cp = wilson(x, n), clopper_pearson(x, n)
    rows.append(f"| {label} | {x}/{n} = {pct(x / n)}% | [{pct(w[0])}, {pct(w[1])}] | [{pct(cp[0])}, {pct(cp[1])}] |")

print(f"# A/A false alarms: {name}, real vs the calibrated simulator\n")
print("| releases | rolled back | Wilson 95% | Clopper-Pearson 95% |")
print("|---|---|---|---|")
print("\n".join(rows))
xs, ns = sim("sim-calibrated")
if n_real and 0 < xs < ns:
    p = xs / ns
    lo, hi = wilson(x_real, n_real)
    plo, phi = wilson(xs, ns)
    print(f"\nExact two-sided binomial test of the real count against the calibrated prediction "
          f"p = {pct(p)}%: P = {exact_two_sided(x_real, n_real, p):.3f}; "
          f"intervals {'overlap' if lo <= phi and plo <= hi else 'do not overlap'}; "
          f"the prediction {'lies' if lo <= p <= hi else 'does not lie'} in the real count's Wilson interval.")
if why:
    print("\nReal rollbacks, metrics not Pass in the deciding interval: " +
          "; ".join(f"seed {s}: {w}" for s, w in why.items()))
if failed:
    print(f"\nReal runs without a verdict (errors, see real/SEED.log): {', '.join(failed)}")
PY
cat "$OUT/summary.md"
