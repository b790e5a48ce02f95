#!/usr/bin/env bash
# Refreshes tests/fixtures/introspection-graphql-js-<version>-{default,all}.graphql: the exact
# introspection queries graphql-js's getIntrospectionQuery() prints (what GraphiQL, gql,
# graphql-codegen, Rover and Postman send). Needs node and npm.
# Usage: scripts/vendor-introspection.sh [version]   (default 16.9.0)
set -euo pipefail
v=${1:-16.9.0}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack "graphql@$v" --silent >/dev/null
tar xzf "graphql-$v.tgz"
sum=$(sha256sum "graphql-$v.tgz" | cut -d' ' -f1)
node -e '
const g = require("./package/index.js"), fs = require("fs");
fs.writeFileSync("default.graphql", g.getIntrospectionQuery());
fs.writeFileSync("all.graphql", g.getIntrospectionQuery({descriptions: true, specifiedByUrl: true,
  directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true}));'
for f in default all; do
  opts=""
  [ "$f" = all ] && opts="{descriptions, specifiedByUrl, directiveIsRepeatable, schemaDescription, inputValueDeprecation: true}"
  {
    echo "# getIntrospectionQuery($opts) of graphql-js $v"
    echo "# (npm graphql-$v.tgz sha256 $sum), printed by scripts/vendor-introspection.sh"
    cat "$f.graphql"
    echo
  } > "$root/tests/fixtures/introspection-graphql-js-$v-$f.graphql"
done
echo "vendored graphql-js $v introspection queries (tarball sha256 $sum)"
