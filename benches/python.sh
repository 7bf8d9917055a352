#!/usr/bin/env bash
# The Python door against Rust, side by side on this machine (release builds):
#
#   benches/python.sh [ROWS]
#
# 1. tokenize over 1,000,000 strings: `cloakline.tokenize` from Python (pyarrow array in,
#    array out) against the same kernel called from Rust (benches/tokenize_1m.rs), best of 7;
# 2. the customers policy view over ROWS rows (default 1,000,000) through the stock
#    `datafusion` wheel, written to Parquet, against `cloakline sql` writing the same view,
#    best of 3.
# Needs a Python with `datafusion==55.*` and `pyarrow` (PYTHON, default python3); the wheel is
# built with maturin (release) and installed into it.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
PY=${PYTHON:-python3}
WORK=${BENCH_DIR:-target/bench}
mkdir -p "$WORK"
REL="${CARGO_TARGET_DIR:-target}/release"
cargo build --release --quiet --bin cloakline --example generate
(cd python && maturin build --release --quiet --out "$WORK/wheels" --interpreter "$PY")
"$PY" -m pip install --quiet --force-reinstall --no-deps "$WORK"/wheels/cloakline-*.whl
RUST_TOK=$(ROWS=1000000 cargo bench --quiet --bench tokenize_1m)
DATA="$WORK/customers-$ROWS.parquet"
[ -f "$DATA" ] || "$REL/examples/generate" "$ROWS" "$DATA"

best_sql() {
  local b=""
  for _ in 1 2 3; do
    rm -f "$WORK/sql-out.parquet" "$WORK/sql-out.parquet.provenance.json"
    local s e t
    s=$(date +%s.%N)
    "$REL/cloakline" -q sql --keyring examples/demo-keyring.json --policy policies/customers.yaml \
      --table "customers=$DATA" --output "$WORK/sql-out.parquet" "SELECT * FROM customers_shared"
    e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l)
    if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
  done
  printf '%.3f' "$b"
}
SQL=$(best_sql)
read -r _ PY_TOK _ PY_VIEW < <("$PY" benches/python.py 1000000 "$DATA" "$WORK/py-out.parquet" | tr '\n' ' ')
echo "rows: $ROWS, cores: $(nproc)"
echo "tokenize 1M: Rust kernel ${RUST_TOK} s, Python ${PY_TOK} s, ratio $(echo "scale=3; $PY_TOK / $RUST_TOK" | bc -l) (target <= 1.15)"
echo "policy view: cloakline sql ${SQL} s, datafusion-python ${PY_VIEW} s, ratio $(echo "scale=3; $PY_VIEW / $SQL" | bc -l) (target <= 1.2)"
