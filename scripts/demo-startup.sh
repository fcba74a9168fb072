#!/usr/bin/env bash
# Measures how long `onecard demo` takes from start to a ready /readyz:
# on a fresh data directory (migrations + seeding) and on a second run
# (data kept). Prints every run and the medians.
#
#   bash scripts/demo-startup.sh [runs]      (default 5)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
runs=${1:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/onecard" ./cmd/onecard

port=$((20000 + RANDOM % 10000))
now() { date +%s.%N; }
one() { # data-dir → seconds to ready
  local start pid t
  start=$(now)
  "$tmp/onecard" demo --addr "127.0.0.1:$port" --data-dir "$1" >/dev/null 2>&1 &
  pid=$!
  until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || { echo "demo exited early" >&2; exit 1; }
    sleep 0.02
  done
  t=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.3f", b - a }')
  kill -TERM "$pid"; wait "$pid" || true
  echo "$t"
}
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

fresh=() second=()
for i in $(seq 1 "$runs"); do
  dir="$tmp/data$i"
  fresh+=("$(one "$dir")")
  second+=("$(one "$dir")")
  echo "run $i: fresh ${fresh[-1]} s, second ${second[-1]} s"
done
echo "median fresh:  $(printf '%s\n' "${fresh[@]}" | median) s"
echo "median second: $(printf '%s\n' "${second[@]}" | median) s"
