#!/bin/bash
# `canarylab query` against promtool backfill + a real Prometheus on the
# same ~30 MB OpenMetrics file (11 pods x 2,000 steps of 10 s: request
# counters by code and a 9-bucket latency histogram; 242,000 samples).
# Prints wall times of both and checks the answers are identical.
# Needs: a release build of canarylab, python3, promtool, prometheus, curl.
# Usage: prom/bench/query-vs-prometheus.sh [WORKDIR]
set -euo pipefail
B=${CANARYLAB:-$(dirname "$0")/../../target/release/canarylab}
W=${1:-$(mktemp -d)}
mkdir -p "$W"; cd "$W"
python3 - <<'PY'
import random
random.seed(1)
out = open('big.om', 'w')
pods, steps, t0 = 11, 2000, 1700000000
lab = lambda p: f'app="shop",namespace="default",pod="shop-{p:03d}",version="{"canary" if p < 2 else "production"}"'
out.write('# TYPE http_requests counter\n')
for p in range(pods):
    for code in ('200', '500'):
        c = 0
        for i in range(steps):
            c += random.randint(0, 200) if code == '200' else random.randint(0, 3)
            out.write(f'http_requests_total{{code="{code}",{lab(p)}}} {c} {t0 + 10 * i}\n')
out.write('# TYPE http_request_duration_seconds histogram\n')
les = ['0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '+Inf']
for p in range(pods):
    cs = [0] * len(les)
    for i in range(steps):
        acc = 0
        for k in range(len(les)):
            acc += random.randint(0, 20); cs[k] += acc
        for k, le in enumerate(les):
            out.write(f'http_request_duration_seconds_bucket{{le="{le}",{lab(p)}}} {cs[k]} {t0 + 10 * i}\n')
out.write('# EOF\n')
PY
ls -l big.om
Q1='sum(rate(http_requests_total{code="500"}[1m])) / sum(rate(http_requests_total[1m]))'
Q2='histogram_quantile(0.99, sum by (le, version) (rate(http_request_duration_seconds_bucket[5m])))'
S=1700000000; E=1700019990
for i in 1 2 3; do
  /usr/bin/time -f "canarylab query Q1 (load + query): %e s wall, %U+%S s CPU" "$B" query --timing --data big.om "$Q1" --start $S --end $E --step 30s > c1.json
  /usr/bin/time -f "canarylab query Q2 (load + query): %e s wall, %U+%S s CPU" "$B" query --timing --data big.om "$Q2" --start $S --end $E --step 30s > c2.json
done
rm -rf tsdb
/usr/bin/time -f "promtool backfill: %e s wall, %U+%S s CPU" promtool tsdb create-blocks-from openmetrics big.om tsdb > /dev/null
printf 'global:\n  scrape_interval: 1h\n' > prom.yml
t0=$(date +%s.%N)
prometheus --config.file=prom.yml --storage.tsdb.path=tsdb --web.listen-address=127.0.0.1:19123 \
    --storage.tsdb.retention.time=100y > prom.log 2>&1 &
P=$!
trap 'kill $P 2>/dev/null || true' EXIT
until curl -sf http://127.0.0.1:19123/-/ready > /dev/null; do sleep 0.05; done
echo "prometheus ready after $(echo "$(date +%s.%N) - $t0" | bc) s"
for j in 1 2 3; do
  /usr/bin/time -f "prometheus Q1: %e s wall" curl -sf http://127.0.0.1:19123/api/v1/query_range --data-urlencode "query=$Q1" \
      --data-urlencode "start=$S" --data-urlencode "end=$E" --data-urlencode "step=30" > p1.json
  /usr/bin/time -f "prometheus Q2: %e s wall" curl -sf http://127.0.0.1:19123/api/v1/query_range --data-urlencode "query=$Q2" \
      --data-urlencode "start=$S" --data-urlencode "end=$E" --data-urlencode "step=30" > p2.json
done
python3 - <<'PY'
import json
for a, b in [("c1.json", "p1.json"), ("c2.json", "p2.json")]:
    x, y = json.load(open(a))['data']['result'], json.load(open(b))['data']['result']
    vals = lambda r: [v for s in r for v in s['values']]
    vx, vy = vals(x), vals(y)
    same = [s['metric'] for s in x] == [s['metric'] for s in y] and [p[0] for p in vx] == [q[0] for q in vy]
    rel = max((abs(float(p[1]) - float(q[1])) / max(abs(float(q[1])), 1e-300) for p, q in zip(vx, vy) if q[1] != 'NaN'), default=0.0)
    print(f"{a}: {len(vx)} points; same series and timestamps as Prometheus: {same}; largest relative difference {rel:g}")
PY
