#!/usr/bin/env bash
# Issue 20's speed measurement: CPU seconds (user + sys, /usr/bin/time) of
# canarylab binaries on the catalog (`sim scenarios/catalog --runs 1000`)
# and the 9h20m A/A release (`sim sim/benches/lifetimes/aa-9h20m.toml
# --runs 500`), `--seed 1 --threads 1`, report included, the binaries
# interleaved round after round so that a drift of the machine's speed
# reaches them all alike. Prints each binary's median, least and greatest
# CPU seconds and its median runs per CPU-second.
#
#   tools/speed.sh ROUNDS NAME=BINARY [NAME=BINARY ...]
#   tools/speed.sh 10 old=/tmp/canarylab-old new=target/release/canarylab
#
# Build each binary with `cargo build --release -p canarylab` at the commit
# to measure (a `git worktree` per commit). Run on an otherwise idle machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -lt 2 ]; then
    echo "usage: $0 ROUNDS NAME=BINARY [NAME=BINARY ...]" >&2
    exit 2
fi
rounds=$1
shift
for nb in "$@"; do
    bin=${nb#*=}
    [ -x "$bin" ] || { echo "$0: $bin: not an executable" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "$0: needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
declare -A runs=([catalog]=18000 [9h20m]=500)
for r in $(seq 1 "$rounds"); do
    for nb in "$@"; do
        name=${nb%%=*}
        bin=${nb#*=}
        for w in catalog 9h20m; do
            if [ "$w" = catalog ]; then
                args=(sim scenarios/catalog --runs 1000)
            else
                args=(sim sim/benches/lifetimes/aa-9h20m.toml --runs 500)
            fi
            /usr/bin/time -f "%U %S" -o "$work/time" "$bin" "${args[@]}" \
                --seed 1 --threads 1 --out "$work/out" >/dev/null 2>&1
            awk '{printf "%.2f\n", $1 + $2}' "$work/time" >>"$work/$name-$w"
            echo "round $r $name $w $(tail -1 "$work/$name-$w") CPU-s" >&2
        done
    done
done
for w in catalog 9h20m; do
    for nb in "$@"; do
        name=${nb%%=*}
        sort -n "$work/$name-$w" | awk -v n="$name" -v w="$w" -v runs="${runs[$w]}" '
            { a[NR] = $1 }
            END {
                m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
                printf "%-8s %-12s median %.2f CPU-s (%.2f to %.2f), %.0f runs/CPU-s\n", w, n, m, a[1], a[NR], runs / m
            }'
    done
done
