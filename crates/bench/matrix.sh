#!/usr/bin/env bash
# The BENCHMARKS.md matrix on one database: starts `cohort serve` on it, measures cold start to
# ready, runs W1–W5 at 1, 16 and 64 connections, W6 (bulk add/remove of 10,000 ids, one script at
# a time) as user 1 and as an admin, W7 (receiveMessage for a contact in 20+ groups; its line also
# carries the statements per message for 1 vs 20+ groups) and then W8 (a page of a queue) at the
# same concurrencies, W9 (createTicket for that contact, whose groups carry default SLAs; its line
# carries the statements per ticket for 1 vs 20+ groups) and W10 (a page of the ticket work queue),
# and the raw-SQL replay of W1–W3. W7/W8 set up their queues and responsibilities
# as an admin (idempotent) and store messages: every W7 run adds its requests to the database.
# Every line is appended to RESULTS; `cohort-bench report RESULTS` prints the table.
#
# Usage: crates/bench/matrix.sh DATABASE_URL RESULTS [SIZE]
#   DATABASE_URL  a database loaded with `cohort-bench generate` (sqlite://… or postgres://…)
#   RESULTS       a .jsonl file to append to
#   SIZE          m (default) or s
# Environment: DURATION (measured seconds per run, default 10), WARMUP (default 2),
#              CONNECTIONS (default "1 16 64"), ROUTING_CONNECTIONS (W7–W10, default: CONNECTIONS),
#              CARGO_TARGET_DIR (where the release binaries are).
set -euo pipefail

db=$1
out=$2
size=${3:-m}
duration=${DURATION:-10}
warmup=${WARMUP:-2}
connections=${CONNECTIONS:-1 16 64}
routing_connections=${ROUTING_CONNECTIONS:-$connections}
bin="${CARGO_TARGET_DIR:-target}/release"
port=18090

export COHORT_JWT_SECRET="${COHORT_JWT_SECRET:-bench-secret-bench-secret-bench-secret-0123}"
export COHORT_DATABASE_URL="$db" COHORT_LISTEN="127.0.0.1:$port" COHORT_LOG=warn

start=$(date +%s%N)
"$bin/cohort" serve &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do
  kill -0 "$pid" 2>/dev/null || { echo "the server exited" >&2; exit 1; }
  sleep 0.01
done
ready=$(date +%s%N)
echo "cold start to ready: $(( (ready - start) / 1000000 )) ms"

run() { "$bin/cohort-bench" run --url "http://127.0.0.1:$port" --size "$size" --duration "$duration" --warmup "$warmup" --out "$out" "$@" || echo "!! $* had errors (recorded in the results)"; }
for c in $connections; do
  for w in W1 W2 W3 W4 W5; do
    run --workload "$w" --connections "$c"
  done
done
run --workload W6 --connections 1
run --workload W6 --connections 1 --admin
# W7 first at every concurrency, then W8: all W8 lines page the same queue (its size is in their
# note; W7 runs add to it, and W8 tops it up to 2,000 messages if it holds fewer).
for w in W7 W8 W9 W10; do
  for c in $routing_connections; do
    run --workload "$w" --connections "$c"
  done
done
kill "$pid"
wait "$pid" 2>/dev/null || true
trap - EXIT

for c in $connections; do
  for w in W1 W2 W3; do
    "$bin/cohort-bench" sql --database "$db" --size "$size" --workload "$w" --connections "$c" \
      --duration "$duration" --warmup "$warmup" --out "$out"
  done
done
