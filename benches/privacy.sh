#!/usr/bin/env bash
# Privacy-model benchmarks (release build).
#
#   benches/privacy.sh [ROWS]
#
# 1. Adult (examples/adult.csv): wall time of `apply` with optimal enforcement,
#    k = 5 with 5% suppression and with none (policies/adult.yaml), best of 5; the search's own
#    time is read from the provenance.
# 2. `check` on a generated customers table of ROWS rows (default 10,000,000) with five
#    derived quasi-identifiers, coarse (birth decade, zip1, city, income/50k, signup year:
#    ~39k classes; benches/policies/check-*-coarse.yaml) and fine (birth year, zip2: ~2.9M
#    classes; check-k.yaml, check-klt.yaml): k only, then with l-diversity, t-closeness and
#    risks; best of 3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-10000000}
WORK=${BENCH_DIR:-target/bench}
mkdir -p "$WORK"
cargo build --release --quiet --bin cloakline --example generate
REL="${CARGO_TARGET_DIR:-target}/release"
BIN=$REL/cloakline
KEYS=examples/demo-keyring.json

best() { # best wall time (s) of N runs of a command
  local n=$1; shift
  local b=""
  for _ in $(seq "$n"); do
    local s e t
    s=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || [ $? = 3 ]
    e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc -l)
    if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
  done
  printf '%.3f' "$b"
}

ADULT=examples/adult.csv
if [ -f "$ADULT" ]; then
  sed 's/max_suppression: 0.05/max_suppression: 0/' policies/adult.yaml > policies/.adult-nosupp.yaml
  for p in policies/adult.yaml policies/.adult-nosupp.yaml; do
    T=$(best 5 "$BIN" apply --policy "$p" --input "$ADULT" --delimiter ';' --output "$WORK/adult.parquet" --no-progress)
    S=$(python3 -c "import json;d=json.load(open('$WORK/adult.parquet.provenance.json'));n=[x for x in d['@included'] if 'cl:search' in x][0]['cl:search'];print('search %.3f s, %d of %d nodes evaluated' % (n['seconds'], n['nodesEvaluated'], n['latticeNodes']))")
    echo "adult apply ($p, k=5): ${T} s wall; ${S}"
  done
  rm -f policies/.adult-nosupp.yaml
  echo "adult check (k=5): $(best 5 "$BIN" check --policy policies/adult.yaml --input "$ADULT" --delimiter ';') s"
else
  echo "skipped Adult: $ADULT not found"
fi

DATA="$WORK/customers-$ROWS.parquet"
[ -f "$DATA" ] || "$REL/examples/generate" "$ROWS" "$DATA"
for grain in coarse fine; do
  sfx=$([ $grain = coarse ] && echo "-coarse" || echo "")
  echo "check, $ROWS rows, 5 QIs ($grain), k only:            $(best 3 "$BIN" check --policy benches/policies/check-k$sfx.yaml --keyring "$KEYS" --input "$DATA") s"
  echo "check, $ROWS rows, 5 QIs ($grain), k + l + t + risks: $(best 3 "$BIN" check --policy benches/policies/check-klt$sfx.yaml --keyring "$KEYS" --input "$DATA") s"
  "$BIN" check --policy benches/policies/check-k$sfx.yaml --keyring "$KEYS" --input "$DATA" --json \
    | python3 -c "import json,sys;d=json.load(sys.stdin)['assessment'];print('  %d classes, smallest %d' % (d['classes'], d['smallestClass']))" || true
  # Reference: DuckDB's GROUP BY over the same file and derivations, 2 threads, best of 3.
  if python3 -c "import duckdb" 2>/dev/null; then
    python3 - "$DATA" "$grain" <<'PY'
import sys, time, duckdb
data, grain = sys.argv[1], sys.argv[2]
derive = {"coarse": "(year(birth_date)//10)*10, substr(zip::VARCHAR,1,1)",
          "fine": "year(birth_date), substr(zip::VARCHAR,1,2)"}[grain]
con = duckdb.connect()
con.execute("SET threads=2")
q = (f"SELECT min(c), count(*) FROM (SELECT count(*) c FROM '{data}' GROUP BY {derive}, "
     # least() skips nulls; keep null income its own group, as cloakline does.
     "city, CASE WHEN income IS NULL THEN -1 ELSE least(floor(income/50000),4) END, "
     "year(signup_ts))")
times, result = [], None
for _ in range(3):
    t = time.time()
    result = con.execute(q).fetchall()[0]
    times.append(time.time() - t)
print(f"  duckdb {duckdb.__version__} reference, same GROUP BY: {min(times):.3f} s "
      f"({result[1]} classes, smallest {result[0]})")
PY
  else
    echo "  (pip install duckdb for a reference timing of the same GROUP BY)"
  fi
done
