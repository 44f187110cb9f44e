#!/usr/bin/env bash
# `add` of one file through the HTTP RPC API (curl multipart upload to a running daemon)
# beside the offline `distribute add` of the same file, in one run: time and MB/s.
# Usage: bash bench/api.sh [size in MiB, default 1024]
# DISTRIBUTE_BIN=path skips the release build and uses that binary.
set -euo pipefail
size_mib=${1:-1024}
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/distribute-target}
bin=${DISTRIBUTE_BIN:-}
if [ -z "$bin" ]; then
  cargo build --release -q -p distribute --manifest-path "$root/Cargo.toml"
  bin="$CARGO_TARGET_DIR/release/distribute"
fi
command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

work=$(mktemp -d "${TMPDIR:-/tmp}/distribute-api-bench.XXXXXX")
daemon=
cleanup() { [ -n "$daemon" ] && kill "$daemon" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
file="$work/input.bin"
echo "generating ${size_mib} MiB of random data in $work ..." >&2
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$file"
cat "$file" > /dev/null   # warm the page cache
bytes=$((size_mib * 1024 * 1024))

now() { date +%s.%N; }

t0=$(now)
offline_cid=$("$bin" --repo "$work/offline" add -Q "$file")
t1=$(now)

"$bin" --repo "$work/online" init > /dev/null
"$bin" --repo "$work/online" node --listen=/ip4/127.0.0.1/tcp/0 --no-mdns --api=127.0.0.1:0 \
  2> "$work/daemon.log" &
daemon=$!
for _ in $(seq 600); do [ -f "$work/online/api" ] && break; sleep 0.1; done
port=$(sed 's#.*/tcp/##' "$work/online/api")
t2=$(now)
api_cid=$(curl -sS -X POST -F "file=@$file;filename=input.bin" \
  "http://127.0.0.1:$port/api/v0/add?pin=true" | tail -n 1 | sed 's/.*"Hash":"\([^"]*\)".*/\1/')
t3=$(now)
[ "$offline_cid" = "$api_cid" ] || { echo "CIDs differ: offline $offline_cid, API $api_cid" >&2; exit 1; }

python3 - "$bytes" "$t0" "$t1" "$t2" "$t3" "$offline_cid" <<'PY'
import sys
size, t0, t1, t2, t3 = int(sys.argv[1]), *map(float, sys.argv[2:6])
rows = [("offline: distribute add", t1 - t0), ("API: curl multipart POST /api/v0/add", t3 - t2)]
print(f"add of {size / 2**20:.0f} MiB, root {sys.argv[6]} (same CID both ways)\n")
print(f"| {'path':<38} | {'seconds':>8} | {'MB/s':>8} |")
print(f"|{'-' * 40}|{'-' * 10}|{'-' * 10}|")
for name, secs in rows:
    print(f"| {name:<38} | {secs:>8.2f} | {size / 1e6 / secs:>8.1f} |")
PY
