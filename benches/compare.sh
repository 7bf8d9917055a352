#!/usr/bin/env bash
# Two builds of cloakline side by side, in one run: the workloads of benches/bench.sh and
# benches/privacy.sh, each timed best-of-N with the two binaries interleaved (A B A B …), so
# the machine's drift hits both alike. Prints each time and the ratio AFTER / BEFORE.
#
#   benches/compare.sh BEFORE_BIN AFTER_BIN [ROWS] [CHECK_ROWS]
#
# ROWS (default 1,000,000) for apply; CHECK_ROWS (default 2,000,000) for `check`. The data is
# generated with the AFTER tree's `generate` example (GEN, default
# $CARGO_TARGET_DIR or target, /release/examples/generate). Adult is examples/adult.csv.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1
B=$2
ROWS=${3:-1000000}
CHECK_ROWS=${4:-2000000}
N=${N:-5}
WORK=${BENCH_DIR:-target/bench}
GEN=${GEN:-${CARGO_TARGET_DIR:-target}/release/examples/generate}
KEYS=examples/demo-keyring.json
mkdir -p "$WORK"
[ -f "$WORK/customers-$ROWS.parquet" ] || "$GEN" "$ROWS" "$WORK/customers-$ROWS.parquet"
[ -f "$WORK/customers-$CHECK_ROWS.parquet" ] || "$GEN" "$CHECK_ROWS" "$WORK/customers-$CHECK_ROWS.parquet"

now() { date +%s.%N; }

# compare NAME ARGS… (the binary is prepended; `{out}` is replaced by a per-binary output)
compare() {
  local name=$1; shift
  local ba="" bb=""
  for _ in $(seq "$N"); do
    for which in a b; do
      local bin=$A
      [ "$which" = b ] && bin=$B
      local args=("${@//\{out\}/$WORK/cmp-$which}")
      local s e t
      s=$(now)
      "$bin" "${args[@]}" >/dev/null 2>&1 || [ $? = 3 ]
      e=$(now)
      t=$(echo "$e - $s" | bc -l)
      if [ "$which" = a ]; then
        if [ -z "$ba" ] || [ "$(echo "$t < $ba" | bc -l)" = 1 ]; then ba=$t; fi
      else
        if [ -z "$bb" ] || [ "$(echo "$t < $bb" | bc -l)" = 1 ]; then bb=$t; fi
      fi
    done
  done
  printf '%-44s before %7.3f s  after %7.3f s  after/before %.3f\n' "$name" "$ba" "$bb" "$(echo "$bb / $ba" | bc -l)"
}

echo "before: $A"
echo "after:  $B"
echo "rows: $ROWS (apply), $CHECK_ROWS (check); best of $N, interleaved; cores: $(nproc)"
DATA="$WORK/customers-$ROWS.parquet"
compare "apply, example policy" apply --policy policies/customers.yaml --keyring "$KEYS" \
  --input "$DATA" --output "{out}.parquet" --overwrite --no-progress
compare "apply, all-keep (plain copy)" apply --policy policies/customers-keep.yaml \
  --keyring "$KEYS" --input "$DATA" --output "{out}-keep.parquet" --overwrite --no-progress
ADULT=examples/adult.csv
if [ -f "$ADULT" ]; then
  compare "adult apply, optimal k=5, 5% suppression" apply --policy policies/adult.yaml \
    --input "$ADULT" --delimiter ';' --output "{out}-adult.parquet" --overwrite --no-progress
  compare "adult check, k=5" check --policy policies/adult.yaml --input "$ADULT" --delimiter ';'
else
  echo "skipped Adult: $ADULT not found"
fi
CDATA="$WORK/customers-$CHECK_ROWS.parquet"
compare "check, coarse QIs, k only" check --policy benches/policies/check-k-coarse.yaml \
  --keyring "$KEYS" --input "$CDATA"
compare "check, coarse QIs, k + l + t + risks" check --policy benches/policies/check-klt-coarse.yaml \
  --keyring "$KEYS" --input "$CDATA"
for b in "$A" "$B"; do
  s=$(now)
  for _ in $(seq 20); do "$b" --version >/dev/null; done
  e=$(now)
  printf 'startup (--version, mean of 20) %.4f s, binary %s bytes: %s\n' \
    "$(echo "($e - $s) / 20" | bc -l)" "$(stat -c %s "$b")" "$b"
done
