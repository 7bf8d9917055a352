#!/usr/bin/env bash
# Cost of enforcing a consent ledger (release build), side by side in one script.
#
#   benches/consent.sh [ROWS]
#
# 1. generates a customers table of ROWS rows (default 1,000,000) as Parquet, and a ledger of
#    one event per customer (ROWS events; one in ten withdrawn, one in fifty for another
#    purpose), written by `cloakline sql` from the table itself;
# 2. times `apply` with the example policy (policies/customers.yaml) without and with a
#    `consent:` block over that ledger, best of 3 runs each, alternating, and prints the ratio
#    (target: at most 1.3);
# 3. times the same consent run with --ledger-memory 1MiB, which reduces the ledger on disk
#    (the path for ledgers larger than memory), and prints its ratio too;
#    With --ledger-memory 64MiB the map (~110 MB) does not fit but the sorted records (17 MB)
#    do: reduced on disk, searched in memory;
# 4. prints the peak RSS of one run of each.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
WORK=${BENCH_DIR:-target/bench}
mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
cargo build --release --quiet --bin cloakline --example generate
REL="${CARGO_TARGET_DIR:-target}/release"
BIN=$REL/cloakline
GEN=$REL/examples/generate
KEYS=examples/demo-keyring.json
DATA="$WORK/customers-$ROWS.parquet"
LEDGER="$WORK/ledger-$ROWS.parquet"

[ -f "$DATA" ] || "$GEN" "$ROWS" "$DATA"
if [ ! -f "$LEDGER" ]; then
  "$BIN" sql --table "c=$DATA" --output "$LEDGER" "
    SELECT customer_id AS subject_id,
           CASE WHEN row_number() OVER () % 50 = 0 THEN 'other-purpose' ELSE 'churn' END AS purpose,
           CASE WHEN row_number() OVER () % 10 = 0 THEN 'withdrawn' ELSE 'given' END AS event,
           TIMESTAMP '2026-01-01 00:00:00' AS timestamp
    FROM c"
fi

# The example policy plus a consent block over the ledger.
{
  cat policies/customers.yaml
  printf '\nconsent:\n  ledger: %s\n  subject: customer_id\n  purpose: churn\n' "$LEDGER"
} > "$WORK/customers-consent.yaml"

run() { # wall time (s) of: apply POLICY OUTPUT [FLAG...]
  local s e p=$1 o=$2
  shift 2
  s=$(date +%s.%N)
  "$BIN" apply --policy "$p" --keyring "$KEYS" --input "$DATA" --output "$o" --no-progress \
    --overwrite -q "$@"
  e=$(date +%s.%N)
  echo "$e - $s" | bc -l
}

min() { if [ -z "$1" ] || [ "$(echo "$2 < $1" | bc -l)" = 1 ]; then echo "$2"; else echo "$1"; fi; }

PLAIN="" CONSENT="" DISK="" HELD=""
for _ in 1 2 3; do
  PLAIN=$(min "$PLAIN" "$(run policies/customers.yaml "$WORK/out-plain.parquet")")
  CONSENT=$(min "$CONSENT" "$(run "$WORK/customers-consent.yaml" "$WORK/out-consent.parquet")")
  DISK=$(min "$DISK" "$(run "$WORK/customers-consent.yaml" "$WORK/out-disk.parquet" \
    --ledger-memory 1MiB)")
  HELD=$(min "$HELD" "$(run "$WORK/customers-consent.yaml" "$WORK/out-held.parquet" \
    --ledger-memory 64MiB)")
done
echo "rows: $ROWS, ledger events: $ROWS, cores: $(nproc)"
printf 'without ledger:  %.3f s\n' "$PLAIN"
printf 'with ledger:     %.3f s\n' "$CONSENT"
printf 'ledger on disk:  %.3f s\n' "$DISK"
printf 'on disk, held:   %.3f s\n' "$HELD"
echo "ratio with/without: $(echo "scale=3; $CONSENT / $PLAIN" | bc -l)"
echo "ratio on disk/without: $(echo "scale=3; $DISK / $PLAIN" | bc -l)"
echo "ratio on disk, held/without: $(echo "scale=3; $HELD / $PLAIN" | bc -l)"
rss() { # peak RSS (MiB) of: apply POLICY OUTPUT [FLAG...]
  local p=$1 o=$2
  shift 2
  /usr/bin/time -f '%M' -o "$WORK/rss.txt" "$BIN" apply --policy "$p" --keyring "$KEYS" \
    --input "$DATA" --output "$o" --no-progress --overwrite -q "$@"
  echo $(( $(cat "$WORK/rss.txt") / 1024 ))
}
echo "peak RSS without ledger: $(rss policies/customers.yaml "$WORK/out-plain.parquet") MiB"
echo "peak RSS with ledger:    $(rss "$WORK/customers-consent.yaml" "$WORK/out-consent.parquet") MiB"
echo "peak RSS ledger on disk: $(rss "$WORK/customers-consent.yaml" "$WORK/out-disk.parquet" \
  --ledger-memory 1MiB) MiB"
echo "peak RSS on disk, held:  $(rss "$WORK/customers-consent.yaml" "$WORK/out-held.parquet" \
  --ledger-memory 64MiB) MiB"
