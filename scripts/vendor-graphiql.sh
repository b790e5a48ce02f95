#!/usr/bin/env bash
# Refreshes crates/api/assets/graphiql/: the GraphiQL, React and ReactDOM browser builds that
# `/graphiql` serves from the binary itself (crates/api/src/graphiql.rs embeds them), so the page
# works offline and loads nothing from a CDN.
#
# Downloads the pinned npm tarballs from the npm registry, checks each tarball against the
# registry's `dist.integrity` (sha512) and, for the pinned default versions, against the sha512
# recorded below, extracts exactly the UMD/production files the page needs (byte for byte as
# published), and writes SHA256SUMS (sha256sum format; the unit test in graphiql.rs checks the
# embedded bytes against it) and VERSIONS (versions, tarball URLs and their integrity).
#
# Needs curl, tar, sha256sum, openssl (or sha512sum + xxd) and base64. After a version change,
# update VERSION in crates/api/src/graphiql.rs (the asset URLs carry it) and run
# `cargo test -p cohort-api graphiql` and `cargo test --test api graphiql`.
#
# Usage: scripts/vendor-graphiql.sh [graphiql-version [react-version]]   (default 3.9.0 18.3.1)
# GraphiQL 3.x is the last line that ships a UMD build usable with React 18's UMD builds
# (React 19 ships no UMD builds; GraphiQL 4 deprecates and 5 drops its UMD bundle).
set -euo pipefail

graphiql=${1:-3.9.0}
react=${2:-18.3.1}
registry=${NPM_REGISTRY:-https://registry.npmjs.org}

# The sha512 (npm `dist.integrity`) of the default pins, as first vendored: a changed tarball
# behind the same version is refused. Other versions are checked against the registry only.
declare -A pinned=(
  [graphiql@3.9.0]="sha512-rJYFlHdBbug9+YbFSwRVvgfPjCayC7wHecZkx/qB4XLuQPFQZw/yB9pmHFtOJV6RiNBBHro3u1GdocKa3YcGRA=="
  [react@18.3.1]="sha512-wS+hAgJShR0KhEvPJArfuPVN1+Hz1t0Y6n5jLrGQbkb4urgPE/0Rve+1kMB1v/oWgHgm4WIcV+i7F2pTVj+2iQ=="
  [react-dom@18.3.1]="sha512-5m4nQKp+rZRb09LNH59GM4BxTh9251/ylbKIbpe7TpGxfJ+9kv6BLkLBXIjjspbgbnIBNqlI23tRnTWT0snUIw=="
)

root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/crates/api/assets/graphiql"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sha512_b64() {
  if command -v openssl >/dev/null; then
    openssl dgst -sha512 -binary "$1" | base64 -w0
  else
    sha512sum "$1" | cut -d' ' -f1 | xxd -r -p | base64 -w0
  fi
}

# fetch NAME VERSION: downloads and verifies the tarball, extracts it to $tmp/NAME, and prints
# "NAME VERSION URL INTEGRITY" for VERSIONS.
fetch() {
  local name=$1 version=$2 meta url integrity got
  meta=$(curl -fsSL "$registry/$name/$version")
  url=$(printf '%s' "$meta" | grep -oE '"tarball": *"[^"]*"' | head -1 | sed -E 's/.*: *"([^"]*)"/\1/')
  integrity=$(printf '%s' "$meta" | grep -oE '"integrity": *"[^"]*"' | head -1 | sed -E 's/.*: *"([^"]*)"/\1/')
  [ -n "$url" ] && [ -n "$integrity" ] || { echo "no tarball/integrity for $name@$version" >&2; exit 1; }
  curl -fsSL -o "$tmp/$name.tgz" "$url"
  got="sha512-$(sha512_b64 "$tmp/$name.tgz")"
  if [ "$got" != "$integrity" ]; then
    echo "$name@$version: tarball sha512 $got differs from the registry's $integrity" >&2
    exit 1
  fi
  local want=${pinned[$name@$version]:-}
  if [ -n "$want" ] && [ "$got" != "$want" ]; then
    echo "$name@$version: tarball sha512 $got differs from the pinned $want" >&2
    exit 1
  fi
  mkdir -p "$tmp/$name"
  tar -xzf "$tmp/$name.tgz" -C "$tmp/$name"
  printf '%s %s %s %s\n' "$name" "$version" "$url" "$integrity"
}

lines=$(
  fetch graphiql "$graphiql"
  fetch react "$react"
  fetch react-dom "$react"
)

# Exactly the files the page loads, under the names it loads them by. (init.js and page.css
# in the same directory are Cohort's own, not vendored: left alone.)
mkdir -p "$out"
cp "$tmp/graphiql/package/graphiql.min.js" "$out/graphiql.min.js"
cp "$tmp/graphiql/package/graphiql.min.css" "$out/graphiql.min.css"
cp "$tmp/graphiql/package/LICENSE" "$out/LICENSE.graphiql"
cp "$tmp/react/package/umd/react.production.min.js" "$out/react.production.min.js"
cp "$tmp/react-dom/package/umd/react-dom.production.min.js" "$out/react-dom.production.min.js"
cp "$tmp/react/package/LICENSE" "$out/LICENSE.react"

{
  echo "# Vendored by scripts/vendor-graphiql.sh from $registry; do not edit by hand."
  echo "# package version tarball integrity"
  printf '%s\n' "$lines"
} > "$out/VERSIONS"

(
  cd "$out"
  sha256sum graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js > SHA256SUMS
)

echo "vendored graphiql $graphiql, react and react-dom $react into ${out#"$root"/}:"
(cd "$out" && ls -l graphiql.min.js graphiql.min.css react.production.min.js react-dom.production.min.js | awk '{print "  " $5 "\t" $9}')
