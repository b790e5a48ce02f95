#!/usr/bin/env python3
"""Buckets a `perf report` of Cohort's server into what the CPU went to.

Reads the output of

    perf report -i perf.data --stdio --no-children --sort dso,sym -g none --percent-limit 0

(self time per symbol) and prints a markdown table: share of the samples per bucket (GraphQL
execution, the database driver, JSON, HTTP, the async runtime, tracing and metrics, allocation,
the kernel, …) with the top symbols of each. With `--ms-per-request X` it also turns the shares
into milliseconds of CPU per request (X = the server's measured CPU per request).

Usage: perf_buckets.py REPORT.txt [--ms-per-request X] [--top N]
"""

import re
import sys

# First match wins: (bucket, patterns on the demangled symbol or the DSO).
BUCKETS = [
    ("kernel (syscalls, TCP, scheduling)", [r"^\[kernel", r"\[k\]"]),
    ("allocation (malloc/free)", [r"malloc", r"\bfree\b", r"_int_free", r"realloc", r"calloc", r"cfree", r"tcache"]),
    ("memcpy/memmove/memset", [r"mem(cpy|move|set|cmp)", r"__memcpy", r"__memmove", r"__memset"]),
    ("GraphQL: parse, validate, execute", [r"async_graphql", r"async_graphql_parser", r"async_graphql_value"]),
    ("database driver (sqlx, sea-orm): encode, decode, protocol", [r"sqlx", r"sea_orm", r"sea_query", r"libsqlite3", r"sqlite3"]),
    ("JSON (serde_json)", [r"serde_json", r"serde::"]),
    ("HTTP (hyper, axum, tower)", [r"hyper", r"axum", r"tower", r"\bhttp::", r"h2::", r"httparse"]),
    ("tracing, logs, metrics", [r"tracing", r"opentelemetry", r"metrics", r"prometheus"]),
    ("tokio runtime", [r"tokio", r"mio::", r"parking_lot", r"crossbeam", r"futures_"]),
    ("token verification (jsonwebtoken, ring, base64)", [r"jsonwebtoken", r"ring::", r"base64", r"hmac", r"sha2"]),
    ("hashing, ids (uuid, hashbrown, siphash)", [r"uuid", r"hashbrown", r"siphash", r"core::hash", r"ahash", r"std::collections::hash"]),
    ("Cohort's own code", [r"cohort_", r"cohort::"]),
    ("std/core (formatting, strings, collections)", [r"core::", r"alloc::", r"std::", r"<alloc::", r"<core::"]),
    ("libc/ld (other)", [r"libc", r"ld-linux", r"__"]),
]

LINE = re.compile(r"^\s*([0-9.]+)%\s+(\S+)\s+\[([.k])\]\s+(.*)$")


def bucket_of(dso: str, kind: str, sym: str) -> str:
    text = f"{dso} [{kind}] {sym}"
    if kind == "k" or dso.startswith("[kernel"):
        return BUCKETS[0][0]
    for name, patterns in BUCKETS[1:]:
        if any(re.search(p, text) for p in patterns):
            return name
    return "other"


def main() -> None:
    args = sys.argv[1:]
    if not args:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    path = args[0]
    ms = None
    top = 3
    if "--ms-per-request" in args:
        ms = float(args[args.index("--ms-per-request") + 1])
    if "--top" in args:
        top = int(args[args.index("--top") + 1])
    totals: dict[str, float] = {}
    syms: dict[str, list[tuple[float, str]]] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LINE.match(line)
            if not m:
                continue
            pct, dso, kind, sym = float(m.group(1)), m.group(2), m.group(3), m.group(4).strip()
            b = bucket_of(dso, kind, sym)
            totals[b] = totals.get(b, 0.0) + pct
            syms.setdefault(b, []).append((pct, sym))
    whole = sum(totals.values()) or 1.0
    head = "| what | share |" + (" ms/request |" if ms is not None else "") + " top symbols |"
    print(head)
    print("|---|---:|" + ("---:|" if ms is not None else "") + "---|")
    for b, pct in sorted(totals.items(), key=lambda kv: -kv[1]):
        share = pct / whole
        tops = ", ".join(
            f"`{s[:60]}` {p:.1f}%" for p, s in sorted(syms[b], key=lambda x: -x[0])[:top]
        )
        row = f"| {b} | {share * 100:.1f}% |"
        if ms is not None:
            row += f" {share * ms:.3f} |"
        print(row + f" {tops} |")


if __name__ == "__main__":
    main()
