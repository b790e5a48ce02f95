#!/usr/bin/env bash
# Side-by-side comparison: Cohort against the peer PostGraphile 5 (../shared/bench/postgraphile,
# DATASET.md "The anchor and the limit") in ONE sitting, with ONE load generator (wrk, driven by
# the peer's own post_auth.lua), runs interleaved, plus the single-statement SQL limit of W1
# (../shared/bench/ideal-w1*.sql through pgbench). Ratios are what count on a shared 2-core box.
#
# Usage: crates/bench/compare.sh COHORT_DB_URL [OUT_DIR]
#   COHORT_DB_URL  a database loaded with `cohort-bench generate --size m` (postgres://… or
#                  sqlite://…; then VACUUM ANALYZE it — autovacuum may be off). SQLite needs
#                  SKIP_PEER=1 (the peer is PostgreSQL) and has no ideal-statement runs.
#   OUT_DIR        default /tmp/cohort-compare/out-<date>; gets compare.jsonl (one line per
#                  measured run), report.md (the table below), check.txt, bodies/, raw/ (every
#                  wrk/pgbench output), cohort.log, postgraphile.log.
#
# What it does:
#   1. Peer (unless SKIP_PEER=1), as the peer's run.sh does: installs wrk if missing, copies
#      the peer folder to PEER_DIR (default /tmp/cohort-compare/peer; /work/shared is never
#      written), `npm install` there if needed (postgraphile 5 + Node 22 as an npm package),
#      creates database `anchor`, applies schema.sql, loads data.sql unless the row counts are
#      already right, sets `ALTER ROLE anchor_app SET plan_cache_mode = $PLAN_MODE` (reset on
#      exit; RESULTS.md: the steady state a warm pool reaches) and starts PostGraphile on
#      PEER_PORT.
#   2. Cohort: `cohort serve` (release) on COHORT_DB_URL with a fresh random HS256 secret, on
#      COHORT_PORT; user 1's token (`cohort token --tenant bench --subject user-1 --role agent`,
#      the claims cohort-bench uses) and an admin's, which switches the bench tenant's daily
#      export budget off (as `cohort-bench run` does: otherwise W1 is refused after 100 pages).
#   3. Checks, once, before any load (fails on any mismatch; details in check.txt):
#      - `cohort-bench run` for W1, W2, W3 (1 connection, 1 s): every answer equals what
#        dataset M implies (BENCH_CHECK=0 skips).
#      - every Cohort body (W1, W1Q1, W2, W3) answers without `errors`;
#      - W1 vs q1: totalCount, the 50 ids in order (Cohort's ids decoded to generation
#        indexes), displayName = "First Last" / the company name (peer: firstName + lastName);
#        W1Q1 vs q1 additionally kind, firstName, lastName (persons; Cohort keeps a company's
#        name in companyName, the peer in lastName) and the e-mail. businessStatus is NOT
#        compared: the peer's data.sql invents statuses, dataset M has none;
#      - W2 vs q2: the contact, its name and e-mail; its groups: the peer lists all 6 (its
#        contact_group has no RLS), Cohort only those whose home book user 1 reads (DESIGN §1),
#        so Cohort's groups (ids, names) must equal the peer's restricted to home book % 10 = 1;
#      - W3 vs q3: both ask groups 1 AND 11, NOT 21 (BENCHMARKS.md: user 1 cannot read groups
#        2 and 3, so the peer's default 1/2/3 is replaced): the 50 ids in order, names, and the
#        total (a check-only query with totalCount on both sides);
#      - the ideal statements (pgbench's :tkey='bench', :sub='user-1', :gid = group 1's uuid,
#        looked up in the database) return W1's page and 10,000.
#   4. ROUNDS rounds; in each, for each workload in WORKLOADS: wrk against Cohort, then the
#      peer's paired query (W1, W1Q1 → q1; W2 → q2; W3 → q3), each `wrk -t$WRK_THREADS
#      -c$CONNS --timeout 30s` for WARMUP s (unmeasured) then DURATION s with --latency; after
#      W1's pair pgbench of ideal-w1.sql, after W1Q1's ideal-w1-fields.sql (`-M prepared -c
#      $CONNS -j $PGBENCH_JOBS`, WARMUP then -T DURATION). Before every run it waits until
#      no session of this comparison has an active query left over from the previous run.
#      (Before all that, Cohort's PostgreSQL database gets VACUUM ANALYZE if it was never
#      vacuumed or has more than 2 % dead rows somewhere: autovacuum may be off.)
#      Per run: req/s, p50, p99, errors (wrk socket errors + non-2xx + post_auth.lua's count
#      of non-200 or "errors" bodies, warm-up included), server CPU (utime+stime of the cohort
#      or node process from /proc/PID/stat around the measured run) ÷ requests, PostgreSQL CPU
#      ÷ requests (the run's own backends, told apart by application_name; pgbench's are read
#      half-way through the run and scaled; parallel workers are not included, and the CPU of
#      every postgres process that exited during the run is in the jsonl as pg_exited_cpu_s —
#      on a shared machine it includes other sessions), for Cohort statements/request
#      (cohort_db_statements_total delta from /metrics ÷ requests), and the machine's busy
#      cores (/proc/stat), wrk's own CPU (bash `times`) and what remains = "other" (any other
#      process: a machine that is not quiet shows here).
#   5. Report: medians over the rounds (ratio and efficiency: median of the per-round
#      ratios), printed as markdown and written to report.md. Exit status 1 if any run (or
#      check) had an error or a non-200. Both servers are stopped on exit, error or ^C.
#
# Tunables (environment): DURATION (s, 10), WARMUP (s, 3), CONNS (16), ROUNDS (5),
#   WORKLOADS ("W1 W1Q1 W2 W3"), SKIP_PEER=1 (Cohort and the ideal statements only),
#   COHORT_BIN / BENCH_BIN (default $CARGO_TARGET_DIR/release/{cohort,cohort-bench};
#   CARGO_TARGET_DIR defaults to the repository's target/), BENCH_CHECK (1), PLAN_MODE
#   (force_generic_plan; "auto" leaves the role alone), DB_POOL (16: both servers' pools),
#   COHORT_PORT (18091), PEER_PORT (5678), PEER_SRC (/work/shared/bench/postgraphile),
#   PEER_DIR (/tmp/cohort-compare/peer), IDEAL_DIR (/work/shared/bench), WRK_THREADS (1),
#   PGBENCH_JOBS (2), COHORT_LOG (warn).
# Needs: root (runuser -u postgres for the peer's database, as run.sh), wrk, curl, python3,
#   psql/pgbench 15, PostgreSQL on 127.0.0.1:5432.
#
# Example: DURATION=3 WARMUP=1 ROUNDS=1 crates/bench/compare.sh \
#            postgres://postgres@127.0.0.1:5432/cohort_cmp /tmp/cohort-compare/dev
set -euo pipefail

[ $# -ge 1 ] || { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
COHORT_DB=$1
OUT=${2:-/tmp/cohort-compare/out-$(date +%Y%m%d-%H%M%S)}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-3}
CONNS=${CONNS:-16}
ROUNDS=${ROUNDS:-5}
WORKLOADS=${WORKLOADS:-W1 W1Q1 W2 W3}
SKIP_PEER=${SKIP_PEER:-0}
BENCH_CHECK=${BENCH_CHECK:-1}
PLAN_MODE=${PLAN_MODE:-force_generic_plan}
DB_POOL=${DB_POOL:-16}
COHORT_PORT=${COHORT_PORT:-18091}
PEER_PORT=${PEER_PORT:-5678}
PEER_SRC=${PEER_SRC:-/work/shared/bench/postgraphile}
PEER_DIR=${PEER_DIR:-/tmp/cohort-compare/peer}
IDEAL_DIR=${IDEAL_DIR:-/work/shared/bench}
WRK_THREADS=${WRK_THREADS:-1}
PGBENCH_JOBS=${PGBENCH_JOBS:-2}
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
COHORT_BIN=${COHORT_BIN:-$TARGET_DIR/release/cohort}
BENCH_BIN=${BENCH_BIN:-$TARGET_DIR/release/cohort-bench}

PEER_DB=anchor
APP_TAG="cohort-compare-$$"  # application_name of each side's sessions (their CPU is the run's)
STAT_URL=""  # where pg_stat_activity is read (it shows the sessions of every database)
PEER_APP_URL="postgres://anchor_app:anchor@127.0.0.1:5432/$PEER_DB?application_name=$APP_TAG-peer"
COHORT_URL="http://127.0.0.1:$COHORT_PORT"
PEER_URL="http://127.0.0.1:$PEER_PORT/graphql"

log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
as_postgres() { runuser -u postgres -- "$@"; }
psql_peer() { as_postgres psql -X -q -v ON_ERROR_STOP=1 -d "$PEER_DB" "$@"; }
psql_cohort() { psql -X -q -v ON_ERROR_STOP=1 "$COHORT_DB" "$@"; }

case "$COHORT_DB" in
  postgres://* | postgresql://*) COHORT_PG=1 STAT_URL=$COHORT_DB ;;
  sqlite:*) COHORT_PG=0 ;;
  *) die "COHORT_DB_URL must be postgres://… or sqlite://…, not '$COHORT_DB'" ;;
esac
[ "$COHORT_PG" = 1 ] || [ "$SKIP_PEER" = 1 ] || die "a SQLite database needs SKIP_PEER=1 (the peer runs on PostgreSQL)"
for w in $WORKLOADS; do
  case $w in W1 | W1Q1 | W2 | W3) ;; *) die "unknown workload '$w' (W1 W1Q1 W2 W3)" ;; esac
done
for t in curl python3 "$COHORT_BIN"; do command -v "$t" >/dev/null || die "$t not found"; done
if [ "$BENCH_CHECK" = 1 ]; then [ -x "$BENCH_BIN" ] || die "$BENCH_BIN not found (or BENCH_CHECK=0)"; fi
if [ "$COHORT_PG" = 1 ]; then command -v pgbench >/dev/null || die "pgbench not found"; fi
if ! command -v wrk >/dev/null; then
  log "installing wrk"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi

mkdir -p "$OUT/bodies" "$OUT/raw"
OUT=$(cd "$OUT" && pwd)
JSONL="$OUT/compare.jsonl"
: >"$JSONL"
HELPER="$OUT/compare_helper.py"

# --- helper (bodies, checks, parsing, report) --------------------------------------------------
cat >"$HELPER" <<'PY'
import base64, glob, json, os, re, statistics, sys, time, urllib.request

def uuid_of(kind, index):  # cohort-bench's dataset::id (UUIDv8: "CBM1", kind, index)
    b = bytearray(16)
    b[0:4] = b"CBM1"; b[4] = kind; b[8:16] = index.to_bytes(8, "big")
    b[6] = (b[6] & 0x0F) | 0x80; b[8] = (b[8] & 0x3F) | 0x80
    return b.hex()

KIND = {"Contact": 4, "Group": 5}
def gid(tag, index):  # cohort_api::graphql::ids::encode
    return base64.urlsafe_b64encode(f"{tag}:{uuid_of(KIND[tag], index)}".encode()).decode().rstrip("=")

def uuid_index(hexstr):
    b = bytes.fromhex(hexstr.replace("-", ""))
    return int.from_bytes(bytes([b[8] & 0x3F]) + b[9:16], "big")

def ungid(g):
    s = base64.urlsafe_b64decode(g + "=" * (-len(g) % 4)).decode()
    tag, u = s.split(":", 1)
    return tag, uuid_index(u)

W1 = "query W1($g: ID!) { group(id: $g) { members(first: 50, orderBy: NAME) { totalCount edges { node { id displayName } } pageInfo { hasNextPage endCursor } } } }"
# tests/api/statement_budget.rs W1_Q1_FIELDS: W1 with the fields of the peer's Q1
W1Q1 = "query W1Q1($g: ID!) { group(id: $g) { members(first: 50, orderBy: NAME) { totalCount edges { node { id kind firstName lastName emails { address } businessStatus { key } } } pageInfo { hasNextPage endCursor } } } }"
W2 = "query W2($c: ID!) { contact(id: $c) { id displayName emails { address } memberships { joinedAt source group { id name } } } }"
W3 = "query W3($all: [ID!]!, $none: [ID!]!) { contacts(first: 50, orderBy: ID, filter: { groups: { all: $all, none: $none } }) { edges { node { id displayName } } pageInfo { hasNextPage endCursor } } }"
W3_COUNT = "query W3Count($all: [ID!]!, $none: [ID!]!) { contacts(first: 1, orderBy: ID, filter: { groups: { all: $all, none: $none } }) { totalCount } }"
GROUP, CONTACT, W3_GROUPS = 1, 79191, (1, 11, 21)

def bodies(outdir, peer_dir):
    g3 = {"all": [gid("Group", W3_GROUPS[0]), gid("Group", W3_GROUPS[1])], "none": [gid("Group", W3_GROUPS[2])]}
    b = {
        "W1": {"operationName": "W1", "query": W1, "variables": {"g": gid("Group", GROUP)}},
        "W1Q1": {"operationName": "W1Q1", "query": W1Q1, "variables": {"g": gid("Group", GROUP)}},
        "W2": {"operationName": "W2", "query": W2, "variables": {"c": gid("Contact", CONTACT)}},
        "W3": {"operationName": "W3", "query": W3, "variables": g3},
        "W3count": {"operationName": "W3Count", "query": W3_COUNT, "variables": g3},
    }
    if peer_dir:
        rd = lambda f: open(os.path.join(peer_dir, "graphql", f)).read()
        q3 = rd("q3_selection.graphql")
        b.update({
            "q1": {"query": rd("q1_members_page.graphql"), "variables": {"groupId": str(GROUP)}},
            "q2": {"query": rd("q2_contact_detail.graphql"), "variables": {"id": str(CONTACT)}},
            "q3": {"query": q3, "variables": {"a": str(W3_GROUPS[0]), "b": str(W3_GROUPS[1]), "c": str(W3_GROUPS[2])}},
            # check only: the same selection with its total
            "q3count": {"query": re.sub(r"nodes\s*\{", "totalCount nodes {", q3, count=1),
                        "variables": {"a": str(W3_GROUPS[0]), "b": str(W3_GROUPS[1]), "c": str(W3_GROUPS[2])}},
        })
    for k, v in b.items():
        with open(os.path.join(outdir, f"{k}.json"), "w") as f:
            json.dump(v, f)

def post(url, body_file, headers):
    req = urllib.request.Request(url, data=open(body_file, "rb").read(), method="POST",
                                 headers={"content-type": "application/json", **headers})
    with urllib.request.urlopen(req, timeout=60) as r:
        status, v = r.status, json.loads(r.read())
    if status != 200 or "errors" in v or v.get("data") is None:
        raise SystemExit(f"{body_file}: HTTP {status}: {json.dumps(v)[:500]}")
    return v["data"]

def peer_display(n):
    return f"{n['firstName']} {n['lastName']}" if n.get("kind") == "person" else n["lastName"]

def check(bodies_dir, cohort_url, token_file, peer_url, ideal_csv_dir):
    tok = open(token_file).read().strip()
    C = lambda n: post(cohort_url, os.path.join(bodies_dir, f"{n}.json"), {"authorization": f"Bearer {tok}"})
    P = lambda n: post(peer_url, os.path.join(bodies_dir, f"{n}.json"), {"x-user-id": "1"})
    fails = []
    def ok(label, cond, detail=""):
        print(("ok   " if cond else "FAIL ") + label + ("" if cond else f"\n     {detail}"))
        if not cond: fails.append(label)
    c = {n: C(n) for n in ("W1", "W1Q1", "W2", "W3", "W3count")}
    print("ok   Cohort W1, W1Q1, W2, W3 (and W3's count) answer without errors")
    w1 = c["W1"]["group"]["members"]; w1q = c["W1Q1"]["group"]["members"]
    w1ids = [ungid(e["node"]["id"])[1] for e in w1["edges"]]
    ok("W1 totalCount = 10000", w1["totalCount"] == 10000, w1["totalCount"])
    ok("W1 page has 50 rows, all visible to user 1 (id % 10 = 1)", len(w1ids) == 50 and all(i % 10 == 1 for i in w1ids), w1ids)
    ok("W1Q1 = W1 (count and ids)", w1q["totalCount"] == w1["totalCount"] and [ungid(e["node"]["id"])[1] for e in w1q["edges"]] == w1ids)
    if peer_url:
        p = {n: P(n) for n in ("q1", "q2", "q3", "q3count")}
        q1 = p["q1"]["contactsInGroup"]
        q1ids = [int(n["rowId"]) for n in q1["nodes"]]
        ok("W1 totalCount = q1 totalCount", w1["totalCount"] == q1["totalCount"], f'{w1["totalCount"]} vs {q1["totalCount"]}')
        ok("W1 page ids (in order) = q1 page ids", w1ids == q1ids, f"{w1ids[:5]}… vs {q1ids[:5]}…")
        ok("W1 displayName = q1 firstName + lastName (company: lastName)",
           [e["node"]["displayName"] for e in w1["edges"]] == [peer_display(n) for n in q1["nodes"]])
        rows = list(zip([e["node"] for e in w1q["edges"]], q1["nodes"]))
        ok("W1Q1 kind = q1 kind", all(a["kind"].lower() == b["kind"].lower() for a, b in rows))
        ok("W1Q1 firstName/lastName = q1 (persons; companies: companyName ↔ lastName not asked)",
           all(a["firstName"] == b["firstName"] and (a["lastName"] == b["lastName"] if b["kind"] == "person" else a["lastName"] is None) for a, b in rows))
        ok("W1Q1 first e-mail = q1 email", all([x["address"] for x in a["emails"]][:1] == [b["email"]] for a, b in rows))
        ok("W1Q1 businessStatus: not compared (the peer's statuses are its own invention)", True)
        w2 = c["W2"]["contact"]; q2 = p["q2"]["contactByRowId"]
        ok("W2 contact = q2 contact (79191)", ungid(w2["id"])[1] == int(q2["rowId"]) == CONTACT)
        ok("W2 displayName/e-mail = q2", w2["displayName"] == peer_display(q2) and [e["address"] for e in w2["emails"]][:1] == [q2["email"]])
        cg = sorted((ungid(m["group"]["id"])[1], m["group"]["name"]) for m in w2["memberships"])
        pg_all = [(int(n["groupId"]), n["contactGroupByGroupId"]["name"]) for n in q2["groupMembershipsByContactId"]["nodes"]]
        pg_vis = sorted(g for g in pg_all if ((g[0] - 1) % 200 + 1) % 10 == 1)
        ok(f"W2 groups = q2 groups whose home book user 1 reads ({len(cg)} of the peer's {len(pg_all)})", cg == pg_vis and len(cg) > 0, f"{cg} vs {pg_vis}")
        w3 = c["W3"]["contacts"]["edges"]; q3 = p["q3"]["contactSelection"]["nodes"]
        ok(f"W3 ids (1 ∧ 11 ∧ ¬21, in order) = q3 ids ({len(w3)} rows)",
           [ungid(e["node"]["id"])[1] for e in w3] == [int(n["rowId"]) for n in q3] and len(w3) > 0)
        ok("W3 displayName = q3 firstName + lastName",
           all(e["node"]["displayName"].endswith(n["lastName"]) and (n["firstName"] is None or e["node"]["displayName"].startswith(n["firstName"] + " ")) for e, n in zip(w3, q3)))
        ok("W3 totalCount = q3 totalCount", c["W3count"]["contacts"]["totalCount"] == p["q3count"]["contactSelection"]["totalCount"],
           f'{c["W3count"]["contacts"]["totalCount"]} vs {p["q3count"]["contactSelection"]["totalCount"]}')
    if ideal_csv_dir:
        for name in ("ideal-w1", "ideal-w1-fields"):
            rows = [l.split("|") for l in open(os.path.join(ideal_csv_dir, f"{name}.out")).read().split("\n") if l]
            ok(f"{name}.sql: W1's 50 ids in order, total_count 10000",
               [uuid_index(r[0]) for r in rows] == w1ids and all(r[-1] == "10000" for r in rows), rows[:2])
    print(f"{len(fails)} check(s) FAILED" if fails else "all checks passed")
    sys.exit(1 if fails else 0)

def cpu_table():  # {pid: (comm, utime+stime jiffies, cmdline)} of every process
    t = {}
    for f in glob.glob("/proc/[0-9]*/stat"):
        try:
            x = open(f).read()
            cmd = open(f[:-4] + "cmdline", "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError: continue  # ended meanwhile
        v = x[x.rindex(")") + 2:].split()
        t[f.split("/")[2]] = (x[x.index("(") + 1:x.rindex(")")], int(v[11]) + int(v[12]), cmd, int(v[13]) + int(v[14]))
    return t

def client_ports(pid):
    """The local TCP ports of process `pid`'s sockets (/proc/PID/fd → /proc/net/tcp)."""
    inodes = set()
    for fd in glob.glob(f"/proc/{pid}/fd/*"):
        try: l = os.readlink(fd)
        except OSError: continue
        if l.startswith("socket:["): inodes.add(l[8:-1])
    ports = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try: lines = open(f).read().splitlines()[1:]
        except OSError: continue
        for l in lines:
            v = l.split()
            if v[9] in inodes: ports.add(int(v[1].rsplit(":", 1)[1], 16))
    return ports

def snap(path, server_pid, app, stat_url, client_pid=""):
    """CPU counters: the machine's (/proc/stat), every process's, the postmaster's reaped-children
    time, and which backends belong to the run: those of `client_pid`'s connections (by port, in
    the backends' ps titles: quick, for pgbench's, which exit with it) or else application_name
    `app` (and its parallel workers)."""
    ours = []
    if client_pid:
        ports = client_ports(client_pid)
        for f in glob.glob("/proc/[0-9]*/cmdline"):
            try: cmd = open(f, "rb").read().decode(errors="replace")
            except OSError: continue
            m = re.match(r"postgres: .*\((\d+)\)", cmd)
            if m and int(m.group(1)) in ports: ours.append(f.split("/")[2])
    elif stat_url:
        import subprocess
        q = ("select pid from pg_stat_activity where application_name = '%s' or leader_pid in "
             "(select pid from pg_stat_activity where application_name = '%s')" % (app, app))
        ours = subprocess.run(["psql", "-XAt", stat_url, "-c", q], capture_output=True, text=True, check=True).stdout.split()
    t0 = time.time()
    cpu = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    table = cpu_table()
    t = (t0 + time.time()) / 2
    procs, reaped = {}, 0
    for p, (n, c, cmd, children) in table.items():
        is_pg = n == "postgres"
        procs[p] = [n, c, is_pg and cmd.startswith("postgres:")]  # [comm, cpu, postmaster's child]
        if is_pg and not cmd.startswith("postgres:"):
            reaped += children  # the postmaster: CPU of its children that have exited
    json.dump({"t": t, "busy": sum(cpu) - cpu[3] - cpu[4], "irq": cpu[5] + cpu[6], "reaped": reaped,
               "server": server_pid, "ours": ours, "procs": procs}, open(path, "w"))

def deltas(a, b):
    """Server CPU s; PostgreSQL CPU s of the run's backends (application_name), per process;
    machine-busy cores; the biggest other consumers; and, for information only, the CPU of the
    PostgreSQL processes that exited during the run (the postmaster's reaped-children time minus
    what they had used before: parallel workers, but on a shared machine any session of any
    database, e.g. test suites creating databases)."""
    hz = os.sysconf("SC_CLK_TCK")
    a, b = json.load(open(a)), json.load(open(b))
    el = b["t"] - a["t"]
    d = {"elapsed_s": round(el, 2), "busy_cores": round((b["busy"] - a["busy"]) / hz / el, 2),
         "irq_cores": round((b["irq"] - a["irq"]) / hz / el, 2)}
    ours = set(b["ours"]) | set(a["ours"])
    pg, others = 0, {}
    for p, (n, c, child) in b["procs"].items():
        c0 = a["procs"].get(p, [n, 0, child])[1]
        if p == b["server"]:
            if p in a["procs"]: d["cpu_s"] = round((c - c0) / hz, 3)
        elif p in ours:
            pg += c - c0
        elif c > c0 and n != "wrk":
            key = "postgres (other sessions)" if child else n
            others[key] = others.get(key, 0) + c - c0
    gone = sum(c for p, (n, c, child) in a["procs"].items() if child and p not in b["procs"])
    exited = max(0, b["reaped"] - a["reaped"] - gone)
    d["pg_exited_cpu_s"] = round(exited / hz, 3)
    d["pg_cpu_s"] = round(pg / hz, 3)
    d["other_top"] = [[k, round(v / hz / el, 2)] for k, v in sorted(others.items(), key=lambda kv: -kv[1])[:4]]
    return d

def ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[m.group(2)]

def wrk_errors(text):
    n = sum(int(x) for x in re.findall(r"graphql_errors_or_non200: (\d+)", text))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    n += int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    n += sum(int(x) for x in m.groups()) if m else 0
    return n

def record(kind, out_file, warm_file, meta_json, jsonl, snap0, snap1, times_file=None, late_snap=None):
    meta = json.loads(meta_json)
    meta.update(deltas(snap0, snap1))
    if late_snap:  # pgbench: its backends, read half-way (they exit with it), scaled
        late, started = deltas(snap0, late_snap), meta.pop("started")
        ran = json.load(open(late_snap))["t"] - started
        meta["pg_cpu_s"] = round(late["pg_cpu_s"] * meta["duration_s"] / max(ran, 0.1), 3)
    if times_file:  # bash `times`: the shell's user/sys, then its children's (wrk)
        t = [float(m) * 60 + float(sec) for m, sec in re.findall(r"(\d+)m([\d.]+)s", open(times_file).read())]
        meta["wrk_cpu_s"] = round(t[2] + t[3], 3)
    if meta.pop("db_cpu", True): meta["db_cpu_s"] = meta["pg_cpu_s"]
    meta.pop("pg_cpu_s")
    text = open(out_file).read()
    warm = open(warm_file).read() if warm_file and os.path.exists(warm_file) else ""
    lat_log = meta.pop("log", None)
    r = dict(meta)
    if kind == "wrk":
        r["requests"] = int(re.search(r"(\d+) requests in", text).group(1))
        r["rps"] = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
        r["p50_ms"] = ms(re.search(r"^\s+50%\s+(\S+)", text, re.M).group(1))
        r["p99_ms"] = ms(re.search(r"^\s+99%\s+(\S+)", text, re.M).group(1))
        r["errors"] = wrk_errors(text)
        r["warmup_errors"] = wrk_errors(warm)
    else:  # pgbench, latencies from its per-transaction log (microseconds, 3rd column)
        r["requests"] = int(re.search(r"number of transactions actually processed: (\d+)", text).group(1))
        r["rps"] = float(re.search(r"^tps = ([\d.]+)", text, re.M).group(1))
        lat = sorted(float(l.split()[2]) for l in open(lat_log) if l.strip())
        pick = lambda q: lat[max(0, int(len(lat) * q) - 1)] / 1000 if lat else None
        r["p50_ms"], r["p99_ms"] = pick(0.50), pick(0.99)
        m = re.search(r"number of failed transactions: (\d+)", text)
        r["errors"] = int(m.group(1)) if m else 0
        r["warmup_errors"] = 0 if re.search(r"^tps = ", warm, re.M) else 1
    n = max(r["requests"], 1)
    if "cpu_s" in r: r["cpu_ms_per_req"] = round(r["cpu_s"] * 1000 / n, 3)
    if "db_cpu_s" in r: r["db_cpu_ms_per_req"] = round(r["db_cpu_s"] * 1000 / n, 3)
    if "wrk_cpu_s" in r: r["wrk_cores"] = round(r["wrk_cpu_s"] / r["elapsed_s"], 2)
    # cores used by everything else on the machine (not the server, its backends or wrk)
    if kind == "wrk": r["other_cores"] = round(r["busy_cores"] - (r.get("cpu_s", 0) + r.get("db_cpu_s", 0) + r.get("wrk_cpu_s", 0)) / r["elapsed_s"], 2)
    if "statements" in r: r["statements_per_req"] = round(r["statements"] / n, 2)
    with open(jsonl, "a") as f:
        f.write(json.dumps(r) + "\n")
    parts = [f"{r['target']:<12} {r['workload']:<5} round {r['round']}: {r['rps']:8.1f}/s  p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  errors {r['errors'] + r['warmup_errors']}"]
    for k, lbl in (("cpu_ms_per_req", "cpu"), ("db_cpu_ms_per_req", "db cpu"), ("statements_per_req", "stmts"), ("busy_cores", "busy cores"), ("wrk_cores", "wrk cores"), ("other_cores", "other")):
        if k in r: parts.append(f"{lbl} {r[k]}")
    if r.get("other_top"): parts.append("(" + ", ".join(f"{n} {c}" for n, c in r["other_top"][:3]) + ")")
    print("  ".join(parts), file=sys.stderr)

def report(jsonl, header):
    runs = [json.loads(l) for l in open(jsonl) if l.strip()]
    med = lambda xs: statistics.median(xs) if xs else None
    def f(v, d=1):
        return "–" if v is None else f"{v:,.{d}f}"
    def sel(w, t): return [r for r in runs if r["workload"] == w and r["target"] == t]
    def per_round_ratio(a, b):
        rb = {r["round"]: r["rps"] for r in b}
        return med([r["rps"] / rb[r["round"]] for r in a if rb.get(r["round"])])
    out = [header, "",
           "| workload (peer) | Cohort req/s | PostGraphile req/s | ratio | Cohort p50/p99 ms | peer p50/p99 ms | Cohort CPU ms/req | peer CPU ms/req | DB CPU ms/req Cohort/peer | Cohort statements/req | ideal tx/s | efficiency | errors |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    pair = {"W1": "q1", "W1Q1": "q1", "W2": "q2", "W3": "q3"}
    ideal_of = {"W1": "ideal-w1", "W1Q1": "ideal-w1-fields"}
    seen = []
    for r in runs:
        if r["target"] == "cohort" and r["workload"] not in seen: seen.append(r["workload"])
    for w in seen:
        c, p = sel(w, "cohort"), sel(w, "postgraphile")
        i = sel(w, "ideal")
        m = lambda rs, k: med([r[k] for r in rs if r.get(k) is not None])
        errs = sum(r["errors"] + r["warmup_errors"] for r in c + p + i)
        out.append("| " + " | ".join([
            f"{w} ({pair[w]})" if p else w,
            f(m(c, "rps")), f(m(p, "rps")), f(per_round_ratio(c, p), 2) + "×" if p else "–",
            f"{f(m(c, 'p50_ms'), 2)} / {f(m(c, 'p99_ms'), 2)}",
            f"{f(m(p, 'p50_ms'), 2)} / {f(m(p, 'p99_ms'), 2)}" if p else "–",
            f(m(c, "cpu_ms_per_req"), 3), f(m(p, "cpu_ms_per_req"), 3) if p else "–",
            f"{f(m(c, 'db_cpu_ms_per_req'), 3)} / {f(m(p, 'db_cpu_ms_per_req'), 3) if p else '–'}",
            f(m(c, "statements_per_req"), 2),
            f(m(i, "rps")) + (f" ({ideal_of[w]})" if i else "") if i else "–",
            f(per_round_ratio(c, i), 2) if i else "–",
            str(errs)]) + " |")
    ideal = [r for r in runs if r["target"] == "ideal"]
    if ideal:
        out += ["", "Ideal statements (pgbench -M prepared): " + "; ".join(
            f"{n}: {f(med([r['rps'] for r in ideal if r['query'] == n]))} tx/s, p50/p99 "
            f"{f(med([r['p50_ms'] for r in ideal if r['query'] == n]), 2)} / {f(med([r['p99_ms'] for r in ideal if r['query'] == n]), 2)} ms, "
            f"DB CPU {f(med([r['db_cpu_ms_per_req'] for r in ideal if r['query'] == n]), 3)} ms/tx"
            for n in dict.fromkeys(r["query"] for r in ideal))]
    oth = [r for r in runs if r["target"] != "ideal"]
    if oth:
        worst = max(oth, key=lambda r: r["other_cores"])
        out += ["", f"Machine during the HTTP runs: busy median {med([r['busy_cores'] for r in oth]):.2f} of {os.cpu_count()} cores; "
                f"wrk median {med([r['wrk_cores'] for r in oth]):.2f} cores; other processes (busy − server − its PostgreSQL backends − wrk) median "
                f"{med([r['other_cores'] for r in oth]):.2f} cores, max {worst['other_cores']:.2f} ({worst['target']} {worst['workload']} round {worst['round']})"]
        agg = {}
        for r in oth:
            for n, c in r.get("other_top", []): agg[n] = agg.get(n, 0) + c / len(oth)
        top = sorted(agg.items(), key=lambda kv: -kv[1])[:3]
        out[-1] += ("; the biggest of them (mean cores per run): " + ", ".join(f"{n} {c:.2f}" for n, c in top) if top else "") + "."
        for t in ("cohort", "postgraphile"):
            rs = [r["other_cores"] for r in oth if r["target"] == t]
            if rs: out[-1] += f" Median other during {t} runs: {med(rs):.2f} cores."
        if med([r["other_cores"] for r in oth]) > 0.15:
            out[-1] += " **The machine was not quiet: absolute figures are low, and the comparison is biased (see other_top in compare.jsonl).**"
    bad = [r for r in runs if r["errors"] or r["warmup_errors"]]
    out += ["", f"{len(runs)} measured runs, {len(bad)} with errors or non-200s" +
            ("" if not bad else ": " + ", ".join(f"{r['target']} {r['workload']} round {r['round']} ({r['errors']}+{r['warmup_errors']} in warm-up)" for r in bad))]
    print("\n".join(out))
    sys.exit(1 if bad else 0)

if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "bodies": bodies(args[0], args[1] or None)
    elif cmd == "check": check(args[0], args[1], args[2], args[3] or None, args[4] or None)
    elif cmd == "record": record(*args)
    elif cmd == "snap": snap(*args)
    elif cmd == "report": report(args[0], args[1])
    elif cmd == "gid-uuid": print(uuid_of(KIND[args[0]], int(args[1])))
    else: raise SystemExit(f"unknown helper command {cmd}")
PY
helper() { python3 "$HELPER" "$@"; }

# --- cleanup ------------------------------------------------------------------------------------
COHORT_PID=""
PEER_PID=""
PLAN_SET=0
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$COHORT_PID" ] && kill -0 "$COHORT_PID" 2>/dev/null; then
    kill "$COHORT_PID" 2>/dev/null || true
    wait "$COHORT_PID" 2>/dev/null || true
  fi
  if [ -n "$PEER_PID" ] && kill -0 "$PEER_PID" 2>/dev/null; then
    kill "$PEER_PID" 2>/dev/null || true
    wait "$PEER_PID" 2>/dev/null || true
  fi
  if [ "$PLAN_SET" = 1 ]; then psql_peer -c "alter role anchor_app reset plan_cache_mode" >/dev/null 2>&1 || true; fi
  [ "$rc" = 0 ] || log "exit status $rc (outputs in $OUT)"
  exit "$rc"
}
trap cleanup EXIT
set -o errtrace
trap 'log "failed (status $?) at line $LINENO: $BASH_COMMAND"' ERR
trap 'exit 130' INT TERM

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
statements() { curl -sf "$COHORT_URL/metrics" | awk '$1 == "cohort_db_statements_total" { printf "%d", $2; f = 1 } END { if (!f) print "0" }'; }
wait_idle() {  # no query of the previous run may still be running (max 180 s)
  [ -n "$STAT_URL" ] || return 0
  for _ in $(seq 1 360); do
    [ "$(psql -XAt "$STAT_URL" -c "select count(*) from pg_stat_activity where application_name like '$APP_TAG-%' and state <> 'idle'")" = 0 ] && return 0
    sleep 0.5
  done
  log "warning: queries still active after 180 s"
}

# --- 1. the peer --------------------------------------------------------------------------------
if [ "$SKIP_PEER" != 1 ]; then
  [ -d "$PEER_SRC" ] || die "PEER_SRC $PEER_SRC not found"
  mkdir -p "$PEER_DIR"
  # copy the peer's files (never node_modules/out), keeping an installed node_modules
  (cd "$PEER_SRC" && find . -path ./node_modules -prune -o -path ./out -prune -o -type f -print0 |
    xargs -0 cp --parents -t "$PEER_DIR")
  cd "$PEER_DIR"
  if [ ! -x node_modules/.bin/node ] || [ ! -e node_modules/postgraphile/package.json ]; then
    log "npm install in $PEER_DIR (postgraphile 5, the Node 22 runtime package)"
    npm install --no-audit --no-fund >"$OUT/npm.log" 2>&1 || die "npm install failed (see $OUT/npm.log)"
  fi
  NODE="$PEER_DIR/node_modules/.bin/node"
  if ! pg_lsclusters -h 2>/dev/null | awk '$1 == 15 && $2 == "main"' | grep -q online; then
    log "starting PostgreSQL 15/main"; pg_ctlcluster 15 main start
  fi
  if [ "$(as_postgres psql -XAtc "select 1 from pg_database where datname = '$PEER_DB'")" != 1 ]; then
    log "creating database $PEER_DB"; as_postgres createdb "$PEER_DB"
  fi
  psql_peer <schema.sql >/dev/null
  rows=$(psql_peer -At -c "select (select count(*) from contact) || '/' || (select count(*) from group_membership)")
  if [ "$rows" != "1000000/5097999" ]; then
    log "loading the peer's data.sql (found contact/membership rows: $rows; includes VACUUM ANALYZE)"
    psql_peer <data.sql >/dev/null
  fi
  if [ "$PLAN_MODE" != auto ]; then
    psql_peer -c "alter role anchor_app set plan_cache_mode = '$PLAN_MODE'" >/dev/null
    PLAN_SET=1
  fi
  port_free "$PEER_PORT" || die "port $PEER_PORT is in use (another PostGraphile?)"
  log "starting PostGraphile on port $PEER_PORT (plan_cache_mode $PLAN_MODE for anchor_app, pool $DB_POOL)"
  NODE_ENV=production GRAPHILE_ENV=production DATABASE_URL="$PEER_APP_URL" PORT="$PEER_PORT" PG_POOL_MAX="$DB_POOL" \
    "$NODE" node_modules/postgraphile/dist/cli-run.js -C graphile.config.mjs >"$OUT/postgraphile.log" 2>&1 &
  PEER_PID=$!
  for _ in $(seq 1 120); do
    curl -sf -o /dev/null -X POST -H 'content-type: application/json' --data '{"query":"{__typename}"}' "$PEER_URL" && break
    kill -0 "$PEER_PID" 2>/dev/null || die "PostGraphile exited (see $OUT/postgraphile.log)"
    sleep 0.5
  done
  cp post_auth.lua "$OUT/post_auth.lua"
  cd "$REPO"
else
  cp "$PEER_SRC/post_auth.lua" "$OUT/post_auth.lua"
fi

# --- 2. Cohort ----------------------------------------------------------------------------------
if [ "$COHORT_PG" = 1 ]; then
  n=$(psql_cohort -At -c "select count(*) from tenants where key = 'bench'" 2>/dev/null) ||
    die "cannot read tenants in $COHORT_DB (load it: $BENCH_BIN generate --database URL --size m)"
  [ "$n" = 1 ] || die "no tenant 'bench' in $COHORT_DB (load it: $BENCH_BIN generate --database URL --size m)"
  # autovacuum may be off: a database never vacuumed, or with dead rows (W6 runs, bulk tests)
  # plans and scans worse than it should
  stale=$(psql_cohort -At -c "select string_agg(relname || ' (' || case when coalesce(last_vacuum, last_autovacuum) is null
    then 'never vacuumed' else n_dead_tup || ' dead rows' end || ')', ', ') from pg_stat_user_tables
    where n_live_tup > 1000 and (coalesce(last_vacuum, last_autovacuum) is null or n_dead_tup > 1000 + n_live_tup / 50)")
  if [ -n "$stale" ]; then
    log "VACUUM ANALYZE on Cohort's database: $stale"
    psql_cohort -c "VACUUM ANALYZE" >/dev/null
  fi
fi
port_free "$COHORT_PORT" || die "port $COHORT_PORT is in use"
COHORT_SERVE_DB=$COHORT_DB
if [ "$COHORT_PG" = 1 ]; then
  case $COHORT_DB in *\?*) COHORT_SERVE_DB="$COHORT_DB&application_name=$APP_TAG-cohort" ;;
    *) COHORT_SERVE_DB="$COHORT_DB?application_name=$APP_TAG-cohort" ;; esac
fi
export COHORT_JWT_SECRET
COHORT_JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
log "starting cohort serve on $COHORT_DB (port $COHORT_PORT, pool $DB_POOL)"
COHORT_DATABASE_URL="$COHORT_SERVE_DB" COHORT_LISTEN="127.0.0.1:$COHORT_PORT" COHORT_LOG="${COHORT_LOG:-warn}" \
  COHORT_DATABASE_MAX_CONNECTIONS="$DB_POOL" "$COHORT_BIN" serve >"$OUT/cohort.log" 2>&1 &
COHORT_PID=$!
until curl -sf -o /dev/null "$COHORT_URL/readyz"; do
  kill -0 "$COHORT_PID" 2>/dev/null || die "cohort serve exited (see $OUT/cohort.log)"
  sleep 0.05
done
TOKEN="$OUT/user1.token"
"$COHORT_BIN" token --tenant bench --subject user-1 --role agent --ttl 24h >"$TOKEN"
ADMIN_TOKEN=$("$COHORT_BIN" token --tenant bench --subject bench-admin --role admin --ttl 1h)
# the daily export budget would refuse W1 after 100 pages (cohort-bench run does the same)
answer=$(curl -s -X POST -H 'content-type: application/json' -H "authorization: Bearer $ADMIN_TOKEN" \
  --data '{"query":"mutation { setDataUsagePolicy(input: {scope: TENANT, membershipPairBudget: 0}) { policy { scope } } }"}' \
  "$COHORT_URL/graphql")
case $answer in *'"errors"'* | '') die "could not switch the export budget off: $answer" ;; *'"policy"'*) ;; *) die "could not switch the export budget off: $answer" ;; esac

# --- 3. bodies and checks -----------------------------------------------------------------------
helper bodies "$OUT/bodies" "$([ "$SKIP_PEER" = 1 ] || echo "$PEER_DIR")"
IDEAL_OUT=""
if [ "$COHORT_PG" = 1 ]; then
  cp "$IDEAL_DIR/ideal-w1.sql" "$IDEAL_DIR/ideal-w1-fields.sql" "$OUT/"
  GROUP1_UUID=$(helper gid-uuid Group 1)
  GID=$(psql_cohort -At -c "select cg.id from contact_groups cg join tenants t on t.id = cg.tenant_id where t.key = 'bench' and cg.name = 'Root group 1'")
  [ "$(echo "$GID" | tr -d -)" = "$GROUP1_UUID" ] || die "group 1 is '$GID' in the database, the generator says $GROUP1_UUID"
  [ "$(psql_cohort -At -c "select count(*) from users u join tenants t on t.id = u.tenant_id where t.key = 'bench' and u.subject = 'user-1'")" = 1 ] ||
    die "no user 'user-1' in tenant 'bench'"
  for q in ideal-w1 ideal-w1-fields; do
    psql_cohort -At -v tkey="'bench'" -v sub="'user-1'" -v gid="'$GID'" -f "$OUT/$q.sql" >"$OUT/$q.out"
  done
  IDEAL_OUT="$OUT"
fi
if [ "$BENCH_CHECK" = 1 ]; then
  for w in W1 W2 W3; do
    "$BENCH_BIN" run --url "$COHORT_URL" --workload "$w" --connections 1 --duration 1 --warmup 0 --size m \
      >>"$OUT/check.txt" 2>&1 || { cat "$OUT/check.txt" >&2; die "cohort-bench run $w: wrong answers"; }
  done
  echo "ok   cohort-bench run W1, W2, W3: every answer as dataset M implies" >>"$OUT/check.txt"
fi
log "checking answers (Cohort against dataset M$([ "$SKIP_PEER" = 1 ] || echo ', against PostGraphile')$([ -z "$IDEAL_OUT" ] || echo ', the ideal statements'))"
if ! helper check "$OUT/bodies" "$COHORT_URL/graphql" "$TOKEN" "$([ "$SKIP_PEER" = 1 ] || echo "$PEER_URL")" "$IDEAL_OUT" >>"$OUT/check.txt" 2>&1; then
  cat "$OUT/check.txt" >&2
  die "the answers disagree (see $OUT/check.txt)"
fi
grep -E '^(ok|FAIL)' "$OUT/check.txt" | sed 's/^/  /' >&2

# --- 4. the interleaved rounds ------------------------------------------------------------------
declare -A PAIR=([W1]=q1 [W1Q1]=q1 [W2]=q2 [W3]=q3)

declare -A IDEAL=([W1]=ideal-w1 [W1Q1]=ideal-w1-fields)
COMMON="\"conns\": $CONNS, \"duration_s\": $DURATION, \"warmup_s\": $WARMUP"

run_wrk() {  # target workload body url round token-args...
  local target=$1 w=$2 body=$3 url=$4 round=$5; shift 5
  local raw="$OUT/raw/r${round}_${w}_${target}" pid app st0=0 st1=0 extra=""
  if [ "$target" = cohort ]; then pid=$COHORT_PID app=$APP_TAG-cohort; else pid=$PEER_PID app=$APP_TAG-peer; fi
  wait_idle
  wrk -t"$WRK_THREADS" -c"$CONNS" -d"${WARMUP}s" --timeout 30s -s "$OUT/post_auth.lua" "$url" -- "$body" "$@" >"$raw.warmup.txt" 2>&1 || true
  [ "$target" = cohort ] && st0=$(statements)
  helper snap "$raw.snap0" "$pid" "$app" "$STAT_URL"
  # in a subshell, so that `times` reports wrk's own CPU (the subshell's only child)
  (wrk -t"$WRK_THREADS" -c"$CONNS" -d"${DURATION}s" --timeout 30s --latency -s "$OUT/post_auth.lua" "$url" -- "$body" "$@" >"$raw.txt" 2>&1 &&
    times >"$raw.times") || die "wrk failed: $(tail -3 "$raw.txt")"
  helper snap "$raw.snap1" "$pid" "$app" "$STAT_URL"
  if [ "$target" = cohort ]; then st1=$(statements); extra=", \"statements\": $((st1 - st0))"; fi
  # SQLite: the database works inside the cohort process
  [ "$COHORT_PG" = 1 ] || [ "$target" != cohort ] || extra="$extra, \"db_cpu\": false"
  helper record wrk "$raw.txt" "$raw.warmup.txt" \
    "{\"round\": $round, \"workload\": \"$w\", \"target\": \"$target\", \"query\": \"$(basename "$body" .json)\", $COMMON$extra}" \
    "$JSONL" "$raw.snap0" "$raw.snap1" "$raw.times"
}

run_pgbench() {  # workload query round
  local w=$1 q=$2 round=$3 raw="$OUT/raw/r${3}_${2}_pgbench" tmp pgb pgb_start
  tmp=$(mktemp -d)
  wait_idle
  PGAPPNAME=$APP_TAG-ideal-warmup pgbench -n -M prepared -c "$CONNS" -j "$PGBENCH_JOBS" -T "$WARMUP" -D tkey=bench -D sub=user-1 -D gid="$GID" \
    -f "$OUT/$q.sql" "$COHORT_DB" >"$raw.warmup.txt" 2>&1 || true
  helper snap "$raw.snap0" 0 "$APP_TAG-ideal" "$STAT_URL"
  pgb_start=$(date +%s.%N)
  PGAPPNAME=$APP_TAG-ideal pgbench -n -M prepared -c "$CONNS" -j "$PGBENCH_JOBS" -T "$DURATION" -D tkey=bench -D sub=user-1 -D gid="$GID" \
    -l --log-prefix="$tmp/pgb" -f "$OUT/$q.sql" "$COHORT_DB" >"$raw.txt" 2>&1 &
  pgb=$!
  # its backends exit with it: read their CPU half-way (scaled to the duration); niced, as a
  # saturated machine starves the reader (it takes a second or more)
  sleep "$(awk -v d="$DURATION" 'BEGIN { print d * 0.5 }')"
  nice -n -10 python3 "$HELPER" snap "$raw.snap_late" 0 "$APP_TAG-ideal" "$STAT_URL" "$pgb"
  wait "$pgb" || die "pgbench $q failed: $(tail -3 "$raw.txt")"
  helper snap "$raw.snap1" 0 "$APP_TAG-ideal" "$STAT_URL"
  cat "$tmp"/pgb.* >"$raw.log"
  rm -rf "$tmp"
  helper record pgbench "$raw.txt" "$raw.warmup.txt" \
    "{\"round\": $round, \"workload\": \"$w\", \"target\": \"ideal\", \"query\": \"$q\", $COMMON, \"log\": \"$raw.log\", \"started\": $pgb_start}" \
    "$JSONL" "$raw.snap0" "$raw.snap1" "" "$raw.snap_late"
  rm -f "$raw.log"
}

log "$ROUNDS round(s) of: $WORKLOADS — $CONNS connections, ${WARMUP} s warm-up + ${DURATION} s measured per run"
for round in $(seq 1 "$ROUNDS"); do
  log "round $round/$ROUNDS"
  for w in $WORKLOADS; do
    run_wrk cohort "$w" "$OUT/bodies/$w.json" "$COHORT_URL/graphql" "$round" "$TOKEN"
    if [ "$SKIP_PEER" != 1 ]; then
      run_wrk postgraphile "$w" "$OUT/bodies/${PAIR[$w]}.json" "$PEER_URL" "$round" - 1
    fi
    if [ "$COHORT_PG" = 1 ] && [ -n "${IDEAL[$w]:-}" ]; then
      run_pgbench "$w" "${IDEAL[$w]}" "$round"
    fi
  done
done

# --- 5. report ----------------------------------------------------------------------------------
if [ "$SKIP_PEER" = 1 ]; then PEER_NOTE="no peer (SKIP_PEER=1); W3 = groups 1 ∧ 11 ∧ ¬21"
else PEER_NOTE="peer plan_cache_mode $PLAN_MODE; W3/q3 = groups 1 ∧ 11 ∧ ¬21"; fi
HEADER="Cohort vs PostGraphile 5 — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, Cohort on ${COHORT_DB%%://*} ($(basename "${COHORT_DB%%\?*}")), \
medians of $ROUNDS round(s), $CONNS connections, ${WARMUP} s warm-up + ${DURATION} s per run, wrk -t$WRK_THREADS; \
$PEER_NOTE. ratio and efficiency = median of the per-round ratios; \
CPU = the server process's user+sys ÷ requests; DB CPU = $([ "$COHORT_PG" = 1 ] && echo "its PostgreSQL backends ÷ requests" || echo "Cohort's: inside its process (SQLite)")."
set +e
helper report "$JSONL" "$HEADER" | tee "$OUT/report.md"
rc=${PIPESTATUS[0]}
set -e
log "results: $JSONL, $OUT/report.md"
[ "$rc" = 0 ] || die "some runs had errors or non-200 answers"
