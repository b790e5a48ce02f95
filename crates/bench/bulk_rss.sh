#!/usr/bin/env bash
# W6 as an admin, round after round, on one server: each round is `cohort-bench run --workload W6
# --admin` for W6_DURATION seconds (default 5: two or three cycles, each adding 10,000 contacts
# to a new group and removing them again, every answer checked), and after each the server's
# resident memory (VmRSS) is read from /proc. Prints one line per cycle
# (add and remove latency, RSS) and, at the end, RSS after the last cycle against after the first.
# Then W4 and W5 at one connection (the pricing p50s issue 16 asks about) on the same server.
#
# Usage: crates/bench/bulk_rss.sh DATABASE_URL [CYCLES]
#   DATABASE_URL  a database loaded with `cohort-bench generate --size m`
#   CYCLES        default 10
# Environment: CARGO_TARGET_DIR (where the release binaries are), W6_DURATION (default 5),
#              PRICING_DURATION (default 10).
set -euo pipefail

db=$1
cycles=${2:-10}
bin="${CARGO_TARGET_DIR:-target}/release"
port=18093
url="http://127.0.0.1:$port"
export COHORT_JWT_SECRET="${COHORT_JWT_SECRET:-bench-secret-bench-secret-bench-secret-0123}"

COHORT_DATABASE_URL="$db" COHORT_LISTEN="127.0.0.1:$port" COHORT_LOG=warn "$bin/cohort" serve &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until curl -sf "$url/readyz" >/dev/null 2>&1; do
  kill -0 "$pid" 2>/dev/null || { echo "the server exited" >&2; exit 1; }
  sleep 0.05
done
rss() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$pid/status"; }
echo "RSS at start: $(rss) MB"
first=""
out=$(mktemp)
for i in $(seq 1 "$cycles"); do
  : >"$out"
  # A started cycle always runs to its end; only the requests inside the window are reported.
  "$bin/cohort-bench" run --url "$url" --workload W6 --admin --connections 1 --duration "${W6_DURATION:-5}" --warmup 0 --size m \
    --out "$out" >/dev/null
  lat=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    r = json.loads(line)
    print("%s %d x p50 %.0f ms" % (r["workload"], r["requests"], r["p50_ms"]), end="; ")
' "$out")
  now=$(rss)
  [ -n "$first" ] || first=$now
  echo "round $i: ${lat}RSS $now MB"
done
python3 -c "import sys; a, b = map(float, sys.argv[1:]); print('RSS after round 1: %.1f MB, after the last: %.1f MB (%+.1f%%)' % (a, b, (b - a) / a * 100))" "$first" "$(rss)"
for w in W4 W5; do
  "$bin/cohort-bench" run --url "$url" --workload "$w" --connections 1 --duration "${PRICING_DURATION:-10}" --warmup 2 --size m
done
rm -f "$out"
