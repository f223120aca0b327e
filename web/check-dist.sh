#!/usr/bin/env bash
# Check that the committed web/dist is exactly what the sources build to.
# web/dist is committed so that a fresh clone builds the opaas binary (which embeds it) with cargo
# alone; this script rebuilds into a temporary directory and compares file by file.
#   bash web/check-dist.sh            (installs node_modules with `npm ci` when missing)
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -d node_modules ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
npx vite build --outDir "$tmp/dist" --emptyOutDir --logLevel warn
if diff -r dist "$tmp/dist"; then
  echo "web/dist matches the sources ($(find dist -type f | wc -l) files, $(du -sk dist | cut -f1) KiB)"
else
  echo "web/dist is stale or was edited by hand: run 'npm run build' in web/ and commit web/dist" >&2
  exit 1
fi
