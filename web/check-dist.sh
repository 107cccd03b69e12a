#!/bin/sh
# CI check: the generated code (src/gen) and the build the hub embeds (dist/) must be
# exactly what the committed sources give. Run from anywhere; needs Node 20 and npm.
# Exits non-zero, showing what differs, if someone changed proto/ or web/src without
# running `npm run gen && npm run build` and committing the result.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npm run gen
npm run check
npm run build
git add -N src/gen dist
if ! git diff --exit-code --stat -- src/gen dist; then
    echo "web/src/gen or web/dist is stale: run 'npm run gen && npm run build' in web/ and commit" >&2
    exit 1
fi
echo "web/src/gen and web/dist match the sources"
