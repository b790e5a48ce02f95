#!/usr/bin/env bash
# W1 with data-usage metering on and off, interleaved, same server binary and database.
# usage: crates/bench/usage.sh DB_URL OUT.jsonl [SIZE=s] [ROUNDS=3]   (DURATION=8 per run)
set -euo pipefail
db=$1; out=$2; size=${3:-s}; rounds=${4:-3}
bin="${CARGO_TARGET_DIR:-target}/release"
port=18091
export COHORT_JWT_SECRET="bench-secret-bench-secret-bench-secret-0123"
export COHORT_DATABASE_URL="$db" COHORT_LISTEN="127.0.0.1:$port" COHORT_LOG=warn
for r in $(seq 1 "$rounds"); do
  for mode in on off; do
    COHORT_DATA_USAGE=$mode "$bin/cohort" serve & pid=$!
    until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do sleep 0.05; done
    for c in 1 16; do
      echo "== round $r metering $mode, $c connections"
      "$bin/cohort-bench" run --url "http://127.0.0.1:$port" --size "$size" --workload W1 --connections $c \
        --duration "${DURATION:-8}" --warmup 1 --out "$out" 2>&1 | tail -3
    done
    kill $pid; wait $pid 2>/dev/null || true
  done
done
