#!/usr/bin/env python3
"""Do an agent's answers cost more when a group holds many contacts hidden from them?

DESIGN §1 forbids timings that scale with hidden rows. This measures, on one server, the median
latency of an agent's `group.membershipHistory(first: 20)`, `group.members(first: 20)` and
`contacts(filter: {groups: {none: [g]}})` for a group with 20 visible members, first with no
hidden members, then after adding 10,000 contacts from a book the agent cannot read. Prints a
table; a measurement, not a test (no thresholds).

    python3 scripts/hidden_timing.py --binary target/release/cohort \
        [--database postgres://postgres@127.0.0.1:5432/postgres | --database sqlite]
"""

import argparse
import statistics
import subprocess
import sys
import time
import uuid

sys.path.insert(0, __import__("os").path.dirname(__file__))
from faults import Server, create_contacts, free_port, gql, must, psql, token, with_db  # noqa: E402

QUERIES = {
    "membershipHistory(first: 20)": "query($g: ID!) { group(id: $g) { membershipHistory(first: 20) { edges { node { action } } } } }",
    "members(first: 20)": "query($g: ID!) { group(id: $g) { members(first: 20) { edges { node { id } } } } }",
    "contacts(none: [g])": "query($g: ID!) { contacts(first: 20, filter: {groups: {none: [$g]}}) { edges { node { id } } } }",
}


def median_ms(server, tok, query, g, n):
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        must(gql(server, tok, query, {"g": g}))
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="target/release/cohort")
    ap.add_argument("--database", default="sqlite")
    ap.add_argument("--hidden", type=int, default=10_000)
    ap.add_argument("--samples", type=int, default=60)
    args = ap.parse_args()
    cleanup = None
    if args.database == "sqlite":
        path = f"/tmp/cohort-hidden-{uuid.uuid4().hex[:8]}.db"
        url, cleanup = f"sqlite://{path}", lambda: subprocess.run(["rm", "-f", path, path + "-wal", path + "-shm"])
    else:
        name = f"cohort_hidden_{uuid.uuid4().hex[:12]}"
        psql(args.database, f'CREATE DATABASE "{name}"')
        url = with_db(args.database, name)
        cleanup = lambda: psql(args.database, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # noqa: E731
    server = Server(args.binary, url, free_port())
    try:
        server.start()
        admin = token(args.binary, "admin", "admin")
        agent = token(args.binary, "agent", "agent")
        agent_id = must(gql(server, agent, "{ viewer { user { id } } }"))["viewer"]["user"]["id"]
        books = {}
        for n in ("Visible", "Hidden"):
            d = must(gql(server, admin, "mutation($n: String!) { createAddressBook(input: {name: $n}) { addressBook { id } } }", {"n": n}))
            books[n] = d["createAddressBook"]["addressBook"]["id"]
        must(gql(server, admin, "mutation($b: ID!, $u: ID) { grantAddressBookAccess(input: {addressBookId: $b, userId: $u, level: READ}) { grant { level } } }",
                 {"b": books["Visible"], "u": agent_id}))
        g = must(gql(server, admin, "mutation($b: ID!) { createGroup(input: {addressBookId: $b, name: \"Measured\"}) { group { id } } }",
                     {"b": books["Visible"]}))["createGroup"]["group"]["id"]
        add = "mutation($i: AddGroupMembersInput!) { addGroupMembers(input: $i) { addedCount } }"
        visible = create_contacts(server, admin, books["Visible"], 20)
        must(gql(server, admin, add, {"i": {"groupId": g, "contactIds": visible}}))
        before = {k: median_ms(server, agent, q, g, args.samples) for k, q in QUERIES.items()}
        hidden = create_contacts(server, admin, books["Hidden"], args.hidden)
        for i in range(0, len(hidden), 10_000):
            must(gql(server, admin, add, {"i": {"groupId": g, "contactIds": hidden[i:i + 10_000]}}, timeout=300))
        after = {k: median_ms(server, agent, q, g, args.samples) for k, q in QUERIES.items()}
    finally:
        server.stop()
        cleanup()
    print(f"\n{args.database.split('://')[0]}: median of {args.samples} requests, 20 visible members")
    print(f"{'query (agent)':32} {'0 hidden':>10} {f'{args.hidden:,} hidden':>14}")
    for k in QUERIES:
        print(f"{k:32} {before[k]:>8.1f} ms {after[k]:>11.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
