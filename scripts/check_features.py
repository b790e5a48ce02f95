#!/usr/bin/env python3
"""Checks that `cargo run` (the root package alone) and the workspace build with its tests
(`cargo test --workspace`) resolve every shared dependency with the same features.

Cargo builds a crate once per distinct feature list; when the two commands disagree about one
crate (`rand` with `default` in the tests only, say), that crate and everything above it —
sqlx, sea-orm, the workspace itself — is compiled twice, and the README's second command redoes
much of the first's work. Run by `.ci/run`; prints each disagreement and exits 1 if any.

    python3 scripts/check_features.py
"""

import subprocess
import sys


def features(*args: str) -> dict[str, set[str]]:
    """package id (`name vX.Y.Z`) → the feature lists `cargo tree` shows for it."""
    out = subprocess.run(
        ["cargo", "tree", "--locked", "--prefix", "none", "-f", "{p}|{f}", *args],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    seen: dict[str, set[str]] = {}
    for line in out.splitlines():
        if "|" not in line:
            continue
        package, feats = line.split("|", 1)
        name_version = " ".join(package.split()[:2])
        seen.setdefault(name_version, set()).add(feats.removesuffix(" (*)").strip())
    return seen


def main() -> int:
    root = features("-p", "cohort", "-e", "normal,build")
    workspace = features("--workspace", "-e", "normal,build,dev")
    differ = {p: (root[p], workspace[p]) for p in sorted(root) if p in workspace and root[p] != workspace[p]}
    for p, (r, w) in differ.items():
        print(f"{p}: `cargo run` builds it with [{'; '.join(sorted(r))}], the workspace with [{'; '.join(sorted(w))}]")
    if differ:
        print(f"{len(differ)} crate(s) resolve with other features for `cargo run` than for the workspace: align them in Cargo.toml")
        return 1
    print(f"features aligned: {len(root)} crates of `cargo run` build once for both commands")
    return 0


if __name__ == "__main__":
    sys.exit(main())
