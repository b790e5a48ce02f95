#!/usr/bin/env python3
"""Fault injection for Cohort on PostgreSQL: kill -9 in the middle of a 10,000-member add, a
database restart under a running server, and a soak with RSS sampling. Prints a table.

Not part of `cargo test` (it restarts the local PostgreSQL cluster and runs for minutes).
Everything it talks to is on 127.0.0.1; every loop is bounded in count and time.

    cargo build --release
    python3 scripts/faults.py --admin-url postgres://postgres@127.0.0.1:5432/postgres \
        --binary target/release/cohort --soak-seconds 300

Exit status 0 when every check held, 1 otherwise.
"""

import argparse
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

SECRET = "fault-injection-secret-0123456789abcdef"
TENANT = "faults"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(admin_url, sql):
    subprocess.run(["psql", admin_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


def with_db(url, name):
    base = url.rsplit("/", 1)[0]
    return f"{base}/{name}"


class Server:
    def __init__(self, binary, db_url, port):
        self.binary, self.db_url, self.port, self.proc = binary, db_url, port, None

    def start(self):
        env = dict(os.environ, COHORT_DATABASE_URL=self.db_url, COHORT_LISTEN=f"127.0.0.1:{self.port}",
                   COHORT_JWT_SECRET=SECRET, COHORT_LOG="warn")
        self.proc = subprocess.Popen([self.binary, "serve"], env=env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if get(self.url("/readyz"))[0] == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready in 30 s")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def rss_mib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def token(binary, subject, role):
    env = dict(os.environ, COHORT_JWT_SECRET=SECRET)
    out = subprocess.run([binary, "token", "--tenant", TENANT, "--subject", subject, "--role", role, "--ttl", "2h"],
                         env=env, check=True, capture_output=True, text=True).stdout
    return out.strip().split()[-1]


def gql(server, tok, query, variables=None, timeout=60):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(server.url("/graphql"), data=body, method="POST",
                                 headers={"content-type": "application/json", "authorization": f"Bearer {tok}"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def must(resp):
    if resp.get("errors"):
        raise RuntimeError(json.dumps(resp["errors"]))
    return resp["data"]


def create_contacts(server, tok, book, n):
    ids = []
    per_doc = 50
    for start in range(0, n, per_doc):
        parts = []
        for i in range(start, min(n, start + per_doc)):
            parts.append(f'c{i}: createContact(input: {{addressBookId: "{book}", kind: PERSON, '
                         f'firstName: "F{i}", lastName: "Fault"}}) {{ contact {{ id }} }}')
        data = must(gql(server, tok, "mutation { " + " ".join(parts) + " }"))
        ids += [v["contact"]["id"] for v in data.values()]
    return ids


def member_state(server, tok, group):
    q = "query($g: ID!) { group(id: $g) { memberCount membershipHistory(first: 1) { edges { node { action } } } } }"
    d = must(gql(server, tok, q, {"g": group}))
    return d["group"]["memberCount"]


def history_joins(server, tok, group):
    joins, after = 0, None
    q = ("query($g: ID!, $a: String) { group(id: $g) { membershipHistory(first: 100, after: $a) { "
         "edges { node { action } } pageInfo { hasNextPage endCursor } } } }")
    for _ in range(1000):
        h = must(gql(server, tok, q, {"g": group, "a": after}))["group"]["membershipHistory"]
        joins += sum(1 for e in h["edges"] if e["node"]["action"] == "JOIN")
        if not h["pageInfo"]["hasNextPage"]:
            break
        after = h["pageInfo"]["endCursor"]
    return joins


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--admin-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--binary", default="target/release/cohort")
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--soak-seconds", type=int, default=60)
    ap.add_argument("--pg-cluster", default="15 main", help="'<version> <name>' for pg_ctlcluster")
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    rows, ok = [], True
    name = f"cohort_faults_{uuid.uuid4().hex[:12]}"
    psql(args.admin_url, f'CREATE DATABASE "{name}"')
    server = Server(args.binary, with_db(args.admin_url, name), free_port())
    try:
        server.start()
        admin = token(args.binary, "admin", "admin")
        book = must(gql(server, admin, 'mutation { createAddressBook(input: {name: "Faults"}) { addressBook { id } } }'))
        book = book["createAddressBook"]["addressBook"]["id"]
        t0 = time.time()
        people = create_contacts(server, admin, book, 10_000)
        rows.append(("setup", f"10,000 contacts in {time.time() - t0:.1f} s", "ok"))

        # 1. kill -9 during a 10,000-member add: all or nothing, and the history agrees.
        add = "mutation($i: AddGroupMembersInput!) { addGroupMembers(input: $i) { addedCount } }"
        for k in range(args.kills):
            g = must(gql(server, admin, "mutation($b: ID!, $n: String!) { createGroup(input: {addressBookId: $b, name: $n}) { group { id } } }",
                         {"b": book, "n": f"Kill {k}"}))["createGroup"]["group"]["id"]
            delay = rnd.uniform(0.05, 1.5)
            child = subprocess.Popen([sys.executable, "-c", (
                "import json,sys,urllib.request;"
                f"b=json.dumps({{'query':{add!r},'variables':{{'i':{{'groupId':'{g}','contactIds':json.load(sys.stdin)}}}}}}).encode();"
                f"r=urllib.request.Request('{server.url('/graphql')}',data=b,headers={{'content-type':'application/json','authorization':'Bearer {admin}'}});"
                "urllib.request.urlopen(r,timeout=120)")], stdin=subprocess.PIPE, stderr=subprocess.DEVNULL)
            child.stdin.write(json.dumps(people).encode())
            child.stdin.close()
            time.sleep(delay)
            server.kill9()
            child.wait(timeout=30)
            server.start()
            count = member_state(server, admin, g)
            joins = history_joins(server, admin, g)
            good = count in (0, 10_000) and joins == count
            ok &= good
            rows.append((f"kill -9 #{k + 1}", f"after {delay * 1000:.0f} ms: {count} members, {joins} JOINs",
                         "ok" if good else "FAILED"))

        # 2. PostgreSQL restart under a running server: no restart of Cohort needed.
        version, cluster = args.pg_cluster.split()
        t0 = time.time()
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, cluster, "restart"], check=True)
        recovered = None
        for _ in range(600):
            try:
                r = gql(server, admin, "{ viewer { user { id } } }", timeout=5)
                if not r.get("errors"):
                    recovered = time.time() - t0
                    break
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        good = recovered is not None
        ok &= good
        rows.append(("PostgreSQL restart", f"answering again after {recovered:.1f} s" if good else "never recovered",
                     "ok" if good else "FAILED"))

        # 3. Soak: a mixed load for --soak-seconds, RSS sampled every 10 s.
        g = must(gql(server, admin, "mutation($b: ID!) { createGroup(input: {addressBookId: $b, name: \"Soak\"}) { group { id } } }",
                     {"b": book}))["createGroup"]["group"]["id"]
        page = "query($g: ID!) { group(id: $g) { memberCount members(first: 50) { edges { node { id displayName } } } } }"
        detail = "query($c: ID!) { contact(id: $c) { displayName memberships { group { name } } } }"
        remove = "mutation($i: RemoveGroupMembersInput!) { removeGroupMembers(input: $i) { removedCount } }"
        start, requests, errors, series = time.time(), 0, 0, []
        next_sample = start
        while time.time() - start < args.soak_seconds:
            if time.time() >= next_sample:
                series.append((int(time.time() - start), server.rss_mib()))
                next_sample += 10
            ids = rnd.sample(people, 20)
            for q, v in ((add, {"i": {"groupId": g, "contactIds": ids}}), (page, {"g": g}),
                         (detail, {"c": ids[0]}), (remove, {"i": {"groupId": g, "contactIds": ids[:10]}})):
                requests += 1
                try:
                    errors += bool(gql(server, admin, q, v).get("errors"))
                except (urllib.error.URLError, OSError):
                    errors += 1
        series.append((int(time.time() - start), server.rss_mib()))
        good = errors == 0
        ok &= good
        rss = ", ".join(f"{t}s {m:.1f}" for t, m in series)
        rows.append(("soak", f"{requests} requests, {errors} errors in {args.soak_seconds} s; RSS MiB: {rss}",
                     "ok" if good else "FAILED"))
    finally:
        server.stop()
        try:
            psql(args.admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        except subprocess.CalledProcessError:
            pass
    width = max(len(r[0]) for r in rows)
    print(f"\n{'scenario'.ljust(width)}  result  detail")
    for scenario, detail, result in rows:
        print(f"{scenario.ljust(width)}  {result.ljust(6)}  {detail}")
    print(f"\nseed {args.seed}: {'all checks held' if ok else 'SOME CHECKS FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
