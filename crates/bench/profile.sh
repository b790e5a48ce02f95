#!/usr/bin/env bash
# Where the server's CPU goes, per request: `perf record` on `cohort serve` while wrk drives one
# workload at a time (the bodies and wrk script `compare.sh` wrote), then the samples bucketed by
# scripts/perf_buckets.py (GraphQL execution, database driver, JSON, HTTP, runtime, tracing,
# allocation, kernel, …) and scaled to the measured CPU per request.
#
# Usage: crates/bench/profile.sh DATABASE_URL COMPARE_OUT_DIR [OUT_DIR]
#   DATABASE_URL     a database loaded with `cohort-bench generate --size m`
#   COMPARE_OUT_DIR  a directory compare.sh wrote (bodies/, post_auth.lua)
#   OUT_DIR          default /tmp/cohort-profile
# Environment: WORKLOADS (default "W1 W2"), CONNS (16), DURATION (10), WARMUP (3),
#              CARGO_TARGET_DIR (the release binaries). Needs perf (Debian: linux-perf) and wrk.
set -euo pipefail

db=$1
cmp=$2
out=${3:-/tmp/cohort-profile}
here="$(cd "$(dirname "$0")" && pwd)"
bin="${CARGO_TARGET_DIR:-target}/release"
port=18094
url="http://127.0.0.1:$port"
mkdir -p "$out"
export COHORT_JWT_SECRET
COHORT_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
COHORT_DATABASE_URL="$db" COHORT_LISTEN="127.0.0.1:$port" COHORT_LOG=warn "$bin/cohort" serve >"$out/cohort.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
until curl -sf "$url/readyz" >/dev/null 2>&1; do
  kill -0 "$pid" 2>/dev/null || { echo "the server exited" >&2; exit 1; }
  sleep 0.05
done
"$bin/cohort" token --tenant bench --subject user-1 --role agent --ttl 1h >"$out/user1.token"
admin=$("$bin/cohort" token --tenant bench --subject bench-admin --role admin --ttl 1h)
curl -sf -X POST -H 'content-type: application/json' -H "authorization: Bearer $admin" \
  --data '{"query":"mutation { setDataUsagePolicy(input: {scope: TENANT, membershipPairBudget: 0}) { policy { scope } } }"}' \
  "$url/graphql" >/dev/null
cpu() { awk '{ print $14 + $15 }' "/proc/$pid/stat"; }
tck=$(getconf CLK_TCK)
for w in ${WORKLOADS:-W1 W2}; do
  body="$cmp/bodies/$w.json"
  wrk -t1 -c"${CONNS:-16}" -d"${WARMUP:-3}"s -s "$cmp/post_auth.lua" "$url/graphql" -- "$body" "$out/user1.token" >/dev/null
  before=$(cpu)
  perf record -F 1999 -g -p "$pid" -o "$out/$w.perf.data" -- sleep "${DURATION:-10}" 2>/dev/null &
  rec=$!
  wrk -t1 -c"${CONNS:-16}" -d"${DURATION:-10}"s --latency -s "$cmp/post_auth.lua" "$url/graphql" -- "$body" "$out/user1.token" >"$out/$w.wrk.txt"
  wait "$rec" || true
  after=$(cpu)
  requests=$(awk '/requests in/ { print $1 }' "$out/$w.wrk.txt")
  grep -q '^graphql_errors_or_non200: 0$' "$out/$w.wrk.txt" || { cat "$out/$w.wrk.txt" >&2; echo "$w: errors" >&2; exit 1; }
  ms=$(python3 -c "import sys; print('%.3f' % ((float(sys.argv[2]) - float(sys.argv[1])) / float(sys.argv[3]) / float(sys.argv[4]) * 1000))" "$before" "$after" "$tck" "$requests")
  perf report -i "$out/$w.perf.data" --stdio --no-children --sort dso,sym -g none --percent-limit 0 2>/dev/null >"$out/$w.report.txt"
  {
    echo "### $w: $requests requests in ${DURATION:-10} s, server CPU $ms ms/request (perf, with the sampler's own overhead)"
    echo
    python3 "$here/../../scripts/perf_buckets.py" "$out/$w.report.txt" --ms-per-request "$ms"
    echo
  } | tee "$out/$w.md"
done
