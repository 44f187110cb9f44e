#!/usr/bin/env bash
# Offline add throughput and peak memory, beside sha256sum of the same file, in one run.
# Usage: bash bench/add.sh [size in MiB, default 1024]
set -euo pipefail
size_mib=${1:-1024}
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/distribute-target}
cargo build --release -q -p distribute --manifest-path "$root/Cargo.toml"
bin="$CARGO_TARGET_DIR/release/distribute"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

work=$(mktemp -d "${TMPDIR:-/tmp}/distribute-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
file="$work/input.bin"
echo "generating ${size_mib} MiB of random data in $work ..." >&2
head -c "$((size_mib * 1024 * 1024))" /dev/urandom > "$file"
cat "$file" > /dev/null   # warm the page cache so every run reads from memory

bytes=$((size_mib * 1024 * 1024))
results=()
measure() { # name, command...
  local name=$1; shift
  local out
  out=$( { /usr/bin/time -f "%e %M" "$@" > /dev/null; } 2>&1 | tail -n 1 )
  results+=("$name|${out% *}|${out#* }")
}

measure "sha256sum (1 core)" sha256sum "$file"
measure "distribute add (sled)" "$bin" --repo "$work/repo-sled" add -Q "$file"
rm -rf "$work/repo-sled"
"$bin" --repo "$work/repo-flatfs" init --blockstore flatfs > /dev/null
measure "distribute add (flatfs)" "$bin" --repo "$work/repo-flatfs" add -Q "$file"
rm -rf "$work/repo-flatfs"
measure "distribute add (sled, unixfs-v1-2025)" "$bin" --repo "$work/repo-v1" add -Q --profile unixfs-v1-2025 "$file"
rm -rf "$work/repo-v1"
# The same adds with the repository in tmpfs: the pipeline without the filesystem's cost of
# creating one file per large block.
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
  shm=$(mktemp -d /dev/shm/distribute-bench.XXXXXX)
  trap 'rm -rf "$work" "$shm"' EXIT
  measure "distribute add (sled, repo in tmpfs)" "$bin" --repo "$shm/repo-sled" add -Q "$file"
  rm -rf "$shm/repo-sled"
  "$bin" --repo "$shm/repo-flatfs" init --blockstore flatfs > /dev/null
  measure "distribute add (flatfs, repo in tmpfs)" "$bin" --repo "$shm/repo-flatfs" add -Q "$file"
  rm -rf "$shm"
fi

base_secs=$(echo "${results[0]}" | cut -d'|' -f2)
printf '\nadd of a %s MiB file (%s cores)\n\n' "$size_mib" "$(nproc)"
printf '| %-38s | %8s | %9s | %13s | %12s |\n' "run" "seconds" "MB/s" "peak RSS (MB)" "× sha256sum"
printf '|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..40})" "----------" "-----------" "---------------" "--------------"
for r in "${results[@]}"; do
  IFS='|' read -r name secs rss_kb <<< "$r"
  python3 - "$name" "$secs" "$rss_kb" "$bytes" "$base_secs" <<'PY'
import sys
name, secs, rss_kb, size, base = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
secs = max(secs, 0.01)
print(f"| {name:<38} | {secs:8.2f} | {size / secs / 1e6:9.1f} | {rss_kb / 1024:13.1f} | {base / secs:12.2f} |")
PY
done
