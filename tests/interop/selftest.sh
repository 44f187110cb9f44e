#!/usr/bin/env bash
# Helia→Helia self-test of helia-peer.mjs (see selftest.mjs). Needs ./install.sh first.
set -euo pipefail
cd "$(dirname "$0")"
exec node --import ./polyfill.mjs selftest.mjs "$@"
