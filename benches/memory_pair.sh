#!/usr/bin/env bash
# The in-memory engine beside another program, in paired rounds
# (BENCHMARKS.md, "twenty-second session"): each round runs both at once,
# each pinned to its own core, the cores swapped every round, and prints
# the ratio of their lifecycles per second; then the median.
#
#   benches/memory_pair.sh PEER [ROUNDS] [LIFECYCLES]
#
# PEER is the cqrs-es peer (`../shared/peer`, built with `cargo build
# --release`: target/release/peerbench), run as `PEER LIFECYCLES quiet`;
# or, to compare two builds of ours, the path of another `memory_peer`
# binary. Ours is built here with `cargo bench --bench memory_peer --no-run`.
# Needs two cores and `taskset`.
set -euo pipefail

peer=${1:?usage: benches/memory_pair.sh PEER [ROUNDS] [LIFECYCLES]}
rounds=${2:-16}
lifecycles=${3:-20000}
[ -x "$peer" ] || { echo "memory_pair: $peer is not a program that can be run" >&2; exit 2; }

cd "$(dirname "$0")/.."
ours=$(cargo bench --bench memory_peer --no-run --message-format=json 2>/dev/null |
    sed -n 's/.*"executable":"\([^"]*memory_peer[^"]*\)".*/\1/p' | tail -1)
[ -x "$ours" ] || { echo "memory_pair: could not build the memory_peer bench" >&2; exit 1; }

# Lifecycles per second: the number after "memory:" (ours) or "quiet:" (the peer's).
rate() { grep -oE '(memory|quiet): [0-9]+' "$1" | grep -oE '[0-9]+$'; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
ratios=()
for round in $(seq 1 "$rounds"); do
    a=$((round % 2)); b=$((1 - a))
    taskset -c "$a" "$ours" "$lifecycles" >"$out/ours" &
    taskset -c "$b" "$peer" "$lifecycles" quiet >"$out/peer"
    wait
    ratio=$(awk -v o="$(rate "$out/ours")" -v p="$(rate "$out/peer")" 'BEGIN { printf "%.3f", o / p }')
    ratios+=("$ratio")
    echo "round $round: ezdelivery $(rate "$out/ours")/s, peer $(rate "$out/peer")/s, ratio $ratio"
done
printf '%s\n' "${ratios[@]}" | sort -n |
    awk '{ r[NR] = $1 } END { m = (NR % 2) ? r[(NR + 1) / 2] : (r[NR / 2] + r[NR / 2 + 1]) / 2;
          printf "median %.3f (min %s, max %s, %d rounds)\n", m, r[1], r[NR], NR }'
