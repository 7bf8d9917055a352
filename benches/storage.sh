#!/usr/bin/env bash
# Object-store runs against local ones, side by side in one script: the full customers policy
# on ROWS rows (default 1,000,000), local disk → local disk against an S3 server on loopback
# (SERVER=moto, the default, s3s or garage) → the same server, best of N (default 3),
# interleaved. The input is Parquet in one row group unless GROUP (rows per row group) or
# FORMAT=csv says otherwise. Then the peak RSS of one S3 → S3 run on BIG_ROWS rows (default
# 10,000,000; 0 skips it).
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
# Rows per Parquet row group of the input (GROUP=122880 writes DuckDB's layout); by
# default Parquet's own, 1,048,576, which makes the 1,000,000-row input one row group.
GROUP=${GROUP:-}
# FORMAT=csv reads a CSV input instead (read as it arrives from the store, as Parquet is).
FORMAT=${FORMAT:-parquet}
IN=customers-$ROWS${GROUP:+-g$GROUP}.$FORMAT
mkdir -p "$WORK"
[ -f "$WORK/$IN" ] || "$GEN" "$ROWS" "$WORK/$IN" $GROUP

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# SERVER=moto (default; Python), SERVER=s3s (s3s-fs, Rust: `cargo install s3s-fs@0.14.1
# --features binary`) or SERVER=garage (Garage, a production S3 store, single node: `cargo
# install garage@2.5.0 --locked --no-default-features --features lmdb,bundled-libs`; GARAGE
# names the binary). moto assembles a multipart upload in Python at completion (0.55 s for
# 84 MB here) and s3s-fs copies and hashes it again; Garage, like AWS, completes by
# reference to the parts already stored.
SERVER=${SERVER:-moto}
AK=bench SK=bench
case "$SERVER" in
  moto) moto_server -H 127.0.0.1 -p "$port" >/dev/null 2>&1 & ;;
  s3s) mkdir -p "$WORK/s3s" && rm -rf "${WORK:?}/s3s/"*
       s3s-fs --host 127.0.0.1 --port "$port" --access-key bench --secret-key bench \
         "$WORK/s3s" >/dev/null 2>&1 & ;;
  garage)
    GARAGE=${GARAGE:-garage}
    g="$WORK/garage" && rm -rf "$g" && mkdir -p "$g"
    rpc=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    # No compression: the server shares this machine's two cores with the run it serves,
    # which a cloud store does not.
    cat > "$g/garage.toml" <<EOT
metadata_dir = "$g/meta"
data_dir = "$g/data"
db_engine = "lmdb"
replication_factor = 1
compression_level = "none"
rpc_bind_addr = "127.0.0.1:$rpc"
rpc_public_addr = "127.0.0.1:$rpc"
rpc_secret = "$(openssl rand -hex 32)"
[s3_api]
s3_region = "us-east-1"
api_bind_addr = "127.0.0.1:$port"
EOT
    chmod 600 "$g/garage.toml"
    "$GARAGE" -c "$g/garage.toml" server >"$g/log" 2>&1 &
    gar() { "$GARAGE" -c "$g/garage.toml" "$@" >/dev/null; }
    for _ in $(seq 100); do gar status 2>/dev/null && break; sleep 0.2; done
    node=$("$GARAGE" -c "$g/garage.toml" node id -q 2>/dev/null | cut -d@ -f1)
    gar layout assign -z dc1 -c 10G "$node" && gar layout apply --version 1
    AK=GK$(openssl rand -hex 12) SK=$(openssl rand -hex 32)
    gar key import --yes -n bench "$AK" "$SK"
    for b in raw share; do gar bucket create $b && gar bucket allow --read --write --owner $b --key bench; done ;;
  *) echo "SERVER must be moto, s3s or garage" >&2; exit 2 ;;
esac
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
# LINK=1gbit (root, Linux tc): loopback limited to that rate, both directions sharing it,
# for the S3 runs only: a store across a network link instead of beside the run.
if [ -n "${LINK:-}" ]; then
  trap 'kill $server 2>/dev/null || true; tc qdisc del dev lo root 2>/dev/null || true' EXIT
fi
link() {
  [ -n "${LINK:-}" ] || return 0
  case $1 in
    add) tc qdisc add dev lo root tbf rate "$LINK" burst 1mb latency 100ms ;;
    del) tc qdisc del dev lo root ;;
  esac
}
for _ in $(seq 100); do curl -s "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.2; done

export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK AWS_REGION=us-east-1
S3=(--storage-option "endpoint=http://127.0.0.1:$port" --storage-option allow_http=true)
put() { # put FILE BUCKET KEY
  python3 - "$@" "$port" <<'EOF'
import sys, boto3
f, bucket, key, port = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1")
try: s3.create_bucket(Bucket=bucket)
except Exception: pass
s3.upload_file(f, bucket, key)
EOF
}
put "$WORK/$IN" raw "$IN"
python3 - "$port" <<'EOF'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{sys.argv[1]}", region_name="us-east-1")
try: s3.create_bucket(Bucket="share")
except Exception: pass
EOF

now() { date +%s.%N; }
best_local="" best_s3=""
for i in $(seq "$N"); do
  rm -rf "$WORK/local-out.parquet" "$WORK/local-out.parquet.provenance.json"
  s=$(now)
  "$BIN" -q apply --policy $POLICY --keyring $KEYS --input "$WORK/$IN" \
    --output "$WORK/local-out.parquet"
  t=$(echo "$(now) - $s" | bc -l)
  [ -z "$best_local" ] || [ "$(echo "$t < $best_local" | bc)" = 1 ] && best_local=$t
  link add
  s=$(now)
  "$BIN" -q "${S3[@]}" apply --policy $POLICY --keyring $KEYS \
    --input "s3://raw/$IN" --output "s3://share/out-$i.parquet"
  t=$(echo "$(now) - $s" | bc -l)
  link del
  [ -z "$best_s3" ] || [ "$(echo "$t < $best_s3" | bc)" = 1 ] && best_s3=$t
done
printf 'apply %s rows (%s), best of %s: local→local %.2fs, S3→S3 (%s, loopback%s) %.2fs, ratio %.2f\n' \
  "$ROWS" "$IN" "$N" "$best_local" "$SERVER" "${LINK:+ at $LINK}" "$best_s3" "$(echo "$best_s3 / $best_local" | bc -l)"

if [ "$BIG" -gt 0 ]; then
  [ -f "$WORK/customers-$BIG.parquet" ] || "$GEN" "$BIG" "$WORK/customers-$BIG.parquet"
  put "$WORK/customers-$BIG.parquet" raw "customers-$BIG.parquet"
  /usr/bin/time -f '%M' -o "$WORK/rss.txt" "$BIN" -q "${S3[@]}" apply --policy $POLICY \
    --keyring $KEYS --input "s3://raw/customers-$BIG.parquet" --output "s3://share/big.parquet"
  printf 'apply %s rows S3→S3: peak RSS %.0f MiB\n' "$BIG" "$(echo "$(cat "$WORK/rss.txt") / 1024" | bc -l)"
fi
