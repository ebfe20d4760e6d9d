#!/bin/bash
# Prometheus side of the speed comparison: promtool backfill of FILE, then a
# Prometheus on that TSDB (127.0.0.1, random port), the same queries as
# prom's bench example, instant (20 repeats, mean) and range (50 min / 30 s).
set -u
FILE=$1; TEND=$2
DIR=$(mktemp -d)
/usr/bin/time -f "promtool backfill: %e s wall, %U s user, %S s sys" promtool tsdb create-blocks-from openmetrics "$FILE" "$DIR/tsdb" > /dev/null
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
printf 'global:\n  scrape_interval: 15s\nscrape_configs: []\n' > "$DIR/p.yml"
START=$(date +%s.%N)
prometheus --config.file="$DIR/p.yml" --storage.tsdb.path="$DIR/tsdb" --web.listen-address=127.0.0.1:$PORT --storage.tsdb.retention.time=100y > "$DIR/log" 2>&1 &
PID=$!
trap 'kill $PID; wait $PID 2>/dev/null; rm -rf "$DIR"' EXIT
until curl -sf http://127.0.0.1:$PORT/-/ready > /dev/null; do sleep 0.1; done
echo "prometheus ready after $(echo "$(date +%s.%N) - $START" | bc) s"
while IFS= read -r Q; do
  [ -z "$Q" ] && continue
  # first query warms the caches; then 20 timed
  curl -s -G --data-urlencode "query=$Q" --data-urlencode "time=$TEND" http://127.0.0.1:$PORT/api/v1/query > /dev/null
  S=$(date +%s.%N)
  for i in $(seq 20); do curl -s -G --data-urlencode "query=$Q" --data-urlencode "time=$TEND" http://127.0.0.1:$PORT/api/v1/query > /dev/null; done
  I=$(echo "($(date +%s.%N) - $S)/20" | bc -l)
  S=$(date +%s.%N)
  curl -s -G --data-urlencode "query=$Q" --data-urlencode "start=$(echo "$TEND - 3000" | bc)" --data-urlencode "end=$TEND" --data-urlencode step=30 http://127.0.0.1:$PORT/api/v1/query_range > /dev/null
  R=$(echo "$(date +%s.%N) - $S" | bc -l)
  printf 'instant %.6f s, range %.6f s: %s\n' "$I" "$R" "$Q"
done <<'QUERIES'
sum(rate(http_requests_total{version="canary",code=~"5.."}[1m])) / sum(rate(http_requests_total{version="canary"}[1m]))
histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{version="canary"}[1m])))
histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="prod",destination_workload=~"shop-canary"}[1m])) by (le))
sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="prod",destination_workload=~"shop-canary",response_code!~"5.*"}[1m])) / sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="prod",destination_workload=~"shop-canary"}[1m])) * 100
avg(process_resident_memory_bytes{version="canary"})
QUERIES
