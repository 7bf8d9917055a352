#!/usr/bin/env bash
# The cluster's overhead, side by side in one script: `check` on a generated customers table
# of ROWS rows (default 10,000,000; coarse quasi-identifiers, benches/policies/
# check-k-coarse.yaml) run locally and on a loopback Ballista cluster (a scheduler and
# executors of one task slot, each executor pinned to one core with taskset), best of N
# (default 3); then the same cluster with one executor, as evidence of how it scales.
#
#   benches/cluster.sh [ROWS]
#
# Needs a release build with the `cluster` feature (the default) and taskset.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
N=${N:-3}
T=${CARGO_TARGET_DIR:-target}
BIN=$T/release/cloakline
GEN=$T/release/examples/generate
WORK=${BENCH_DIR:-$T/bench}
POLICY=benches/policies/check-k-coarse.yaml
mkdir -p "$WORK"
DATA="$WORK/customers-$ROWS.parquet"
[ -f "$DATA" ] || "$GEN" "$ROWS" "$DATA"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
stop() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; pids=(); sleep 1; }
trap stop EXIT

# start_cluster EXECUTORS: a scheduler and EXECUTORS executors, executor i on core i.
start_cluster() {
  local n=$1
  sport=$(free_port)
  "$BIN" -q cluster scheduler --bind "127.0.0.1:$sport" --executor-timeout 5 \
    --min-executors "$n" >"$WORK/scheduler.log" 2>&1 &
  pids+=($!)
  for i in $(seq 0 $((n - 1))); do
    mkdir -p "$WORK/exec-$i"
    taskset -c "$i" "$BIN" -q cluster executor --scheduler "127.0.0.1:$sport" \
      --flight-port "$(free_port)" --grpc-port "$(free_port)" --task-slots 1 \
      --work-dir "$WORK/exec-$i" --keyring examples/demo-keyring.json \
      >"$WORK/executor-$i.log" 2>&1 &
    pids+=($!)
  done
  for _ in $(seq 150); do
    timeout 20 "$BIN" -q sql "SELECT 1" --cluster "df://127.0.0.1:$sport" >/dev/null 2>&1 && return 0
    sleep 0.2
  done
  echo "the cluster did not start" >&2
  exit 1
}

best() { # best wall time (s) of N runs; exit 3 (models not met) counts as a run
  local b=""
  for _ in $(seq "$N"); do
    local s t
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || [ $? = 3 ]
    t=$(echo "$(date +%s.%N) - $s" | bc -l)
    if [ -z "$b" ] || [ "$(echo "$t < $b" | bc)" = 1 ]; then b=$t; fi
  done
  echo "$b"
}

check=("$BIN" -q check --policy "$POLICY" --input "$DATA" --json --no-preview)
local_s=$(best taskset -c 0,1 "${check[@]}")
start_cluster 2
two=$(best "${check[@]}" --cluster "df://127.0.0.1:$sport")
stop
start_cluster 1
one=$(best "${check[@]}" --cluster "df://127.0.0.1:$sport")
stop
printf 'check %s rows, best of %s: local %.2fs; cluster of 2 executors %.2fs (%.2fx local); 1 executor %.2fs (2 executors take %.2f of its time)\n' \
  "$ROWS" "$N" "$local_s" "$two" "$(echo "$two / $local_s" | bc -l)" "$one" "$(echo "$two / $one" | bc -l)"
