#!/usr/bin/env bash
# Object-store runs against local ones, side by side in one script: the full customers policy
# on ROWS rows (default 1,000,000), local disk → local disk against an S3 server on loopback
# (SERVER=moto, the default, or s3s) → the same server, best of N (default 3), interleaved.
# Then the peak RSS of one S3 → S3 run on BIG_ROWS rows (default 10,000,000; 0 skips it).
#
#   benches/storage.sh [BIN] [ROWS] [BIG_ROWS]
#
# Needs a release build (BIN, default $CARGO_TARGET_DIR/release/cloakline), its `generate`
# example, GNU time, and `pip install 'moto[server]' boto3`.
set -euo pipefail
cd "$(dirname "$0")/.."
T=${CARGO_TARGET_DIR:-target}
BIN=${1:-$T/release/cloakline}
ROWS=${2:-1000000}
BIG=${3:-10000000}
N=${N:-3}
WORK=${BENCH_DIR:-$T/bench}
GEN=${GEN:-$T/release/examples/generate}
KEYS=examples/demo-keyring.json
POLICY=policies/customers.yaml
mkdir -p "$WORK"
[ -f "$WORK/customers-$ROWS.parquet" ] || "$GEN" "$ROWS" "$WORK/customers-$ROWS.parquet"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# SERVER=moto (default; Python) or SERVER=s3s (s3s-fs, Rust: `cargo install s3s-fs@0.14.1
# --features binary`). moto assembles a multipart upload in Python at completion (0.55 s
# for 84 MB here), which real stores do server-side in milliseconds.
SERVER=${SERVER:-moto}
case "$SERVER" in
  moto) moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 & ;;
  s3s) mkdir -p "$WORK/s3s" && rm -rf "${WORK:?}/s3s/"*
       s3s-fs --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench \
         "$WORK/s3s" >/dev/null 2>&1 & ;;
  *) echo "SERVER must be moto or s3s" >&2; exit 2 ;;
esac
moto=$!
trap 'kill $moto 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.2; done

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1
S3=(--storage-option "endpoint=http://127.0.0.1:$port" --storage-option allow_http=true)
put() { # put FILE BUCKET KEY
  python3 - "$@" "$port" <<'EOF'
import sys, boto3
f, bucket, key, port = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="bench",
                  aws_secret_access_key="bench", region_name="us-east-1")
try: s3.create_bucket(Bucket=bucket)
except Exception: pass
s3.upload_file(f, bucket, key)
EOF
}
put "$WORK/customers-$ROWS.parquet" raw "customers-$ROWS.parquet"
python3 - "$port" <<'EOF'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", aws_access_key_id="bench",
                  aws_secret_access_key="bench", region_name="us-east-1")
s3.create_bucket(Bucket="share")
EOF

now() { date +%s.%N; }
best_local="" best_s3=""
for i in $(seq "$N"); do
  rm -rf "$WORK/local-out.parquet" "$WORK/local-out.parquet.provenance.json"
  s=$(now)
  "$BIN" -q apply --policy $POLICY --keyring $KEYS --input "$WORK/customers-$ROWS.parquet" \
    --output "$WORK/local-out.parquet"
  t=$(echo "$(now) - $s" | bc -l)
  [ -z "$best_local" ] || [ "$(echo "$t < $best_local" | bc)" = 1 ] && best_local=$t
  s=$(now)
  "$BIN" -q "${S3[@]}" apply --policy $POLICY --keyring $KEYS \
    --input "s3://raw/customers-$ROWS.parquet" --output "s3://share/out-$i.parquet"
  t=$(echo "$(now) - $s" | bc -l)
  [ -z "$best_s3" ] || [ "$(echo "$t < $best_s3" | bc)" = 1 ] && best_s3=$t
done
printf 'apply %s rows, best of %s: local→local %.2fs, S3→S3 (%s, loopback) %.2fs, ratio %.2f\n' \
  "$ROWS" "$N" "$best_local" "$SERVER" "$best_s3" "$(echo "$best_s3 / $best_local" | bc -l)"

if [ "$BIG" -gt 0 ]; then
  [ -f "$WORK/customers-$BIG.parquet" ] || "$GEN" "$BIG" "$WORK/customers-$BIG.parquet"
  put "$WORK/customers-$BIG.parquet" raw "customers-$BIG.parquet"
  /usr/bin/time -f '%M' -o "$WORK/rss.txt" "$BIN" -q "${S3[@]}" apply --policy $POLICY \
    --keyring $KEYS --input "s3://raw/customers-$BIG.parquet" --output "s3://share/big.parquet"
  printf 'apply %s rows S3→S3: peak RSS %.0f MiB\n' "$BIG" "$(echo "$(cat "$WORK/rss.txt") / 1024" | bc -l)"
fi
