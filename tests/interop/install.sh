#!/usr/bin/env bash
# Installs the npm dependencies of a JS test harness from its package-lock.json (npm ci):
# tests/interop (Helia) by default, or the folder given (tests/kubo-client).
# Needs only node (>= 20) and npm on PATH. Idempotent: skipped when node_modules
# was already installed from this exact lockfile with this node version.
set -euo pipefail
cd "${1:-$(dirname "$0")}"
command -v node >/dev/null || { echo "install.sh: node not found" >&2; exit 1; }
command -v npm >/dev/null || { echo "install.sh: npm not found" >&2; exit 1; }
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then echo "install.sh: node >= 20 needed, have $(node -v)" >&2; exit 1; fi
want="$(node -p 'require("crypto").createHash("sha256").update(require("fs").readFileSync("package-lock.json")).digest("hex")') $(node -v)"
stamp=node_modules/.distribute-install-stamp
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "install.sh: node_modules up to date"
  exit 0
fi
start=$(date +%s)
# Some transitive packages declare engines node >= 22 (nanoid, p-retry); they
# work on 20 with polyfill.mjs, so engine warnings are not errors here.
npm ci --no-audit --no-fund --engine-strict=false --loglevel=error
echo "$want" > "$stamp"
echo "install.sh: npm ci done in $(( $(date +%s) - start )) s"
