#!/usr/bin/env bash
# End-to-end benchmark of `cloakline apply` (release build).
#
#   benches/bench.sh [ROWS] [RSS_ROWS]
#
# 1. generates a customers table of ROWS rows (default 1,000,000) as Parquet;
# 2. times `apply` with the example policy (policies/customers.yaml) and with the all-keep
#    baseline (policies/customers-keep.yaml: the plain copy through the same reader and writer),
#    best of 3 runs each, and prints the ratio;
# 3. measures peak RSS of `apply` on RSS_ROWS rows (default 10,000,000; 0 to skip).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
RSS_ROWS=${2:-10000000}
WORK=${BENCH_DIR:-target/bench}
mkdir -p "$WORK"
cargo build --release --quiet --bin cloakline --example generate
REL="${CARGO_TARGET_DIR:-target}/release"
BIN=$REL/cloakline
GEN=$REL/examples/generate
KEYS=examples/demo-keyring.json

[ -f "$WORK/customers-$ROWS.parquet" ] || "$GEN" "$ROWS" "$WORK/customers-$ROWS.parquet"

best() { # best wall time (s) of 3 runs of: apply POLICY INPUT OUTPUT
  local b=""
  for _ in 1 2 3; do
    local s e
    s=$(date +%s.%N)
    "$BIN" apply --policy "$1" --keyring "$KEYS" --input "$2" --output "$3" --no-progress
    e=$(date +%s.%N)
    local t; t=$(echo "$e - $s" | bc -l)
    if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
  done
  printf '%.3f' "$b"
}

echo "rows: $ROWS, cores: $(nproc)"
FULL=$(best policies/customers.yaml "$WORK/customers-$ROWS.parquet" "$WORK/out-full.parquet")
KEEP=$(best policies/customers-keep.yaml "$WORK/customers-$ROWS.parquet" "$WORK/out-keep.parquet")
echo "full policy:          ${FULL} s"
echo "all-keep (plain copy): ${KEEP} s"
echo "ratio full/keep:      $(echo "scale=3; $FULL / $KEEP" | bc -l)"
echo "full policy µs/row:   $(echo "scale=3; $FULL * 1000000 / $ROWS" | bc -l)"

if [ "$RSS_ROWS" != 0 ]; then
  [ -f "$WORK/customers-$RSS_ROWS.parquet" ] || "$GEN" "$RSS_ROWS" "$WORK/customers-$RSS_ROWS.parquet"
  /usr/bin/time -f "%M" -o "$WORK/rss.txt" "$BIN" apply --policy policies/customers.yaml --keyring "$KEYS" \
    --input "$WORK/customers-$RSS_ROWS.parquet" --output "$WORK/out-rss.parquet" --no-progress
  echo "peak RSS on $RSS_ROWS rows: $(( $(cat "$WORK/rss.txt") / 1024 )) MiB"
fi
