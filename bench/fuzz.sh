#!/usr/bin/env bash
# Run every cargo-fuzz target (or the ones named) for FUZZ_SECONDS each and print a table.
# Usage: FUZZ_SECONDS=300 bash bench/fuzz.sh [target ...]
#
# Works on the stable toolchain: cargo-fuzz needs -Z flags, which RUSTC_BOOTSTRAP=1 allows.
# Targets are built with debug assertions (so integer overflow panics) and AddressSanitizer.
# Corpora grow in fuzz/corpus/<target>/ and carry over between runs; a crashing input is
# written to fuzz/artifacts/<target>/ (reproduce: cargo fuzz run -a <target> <file>;
# shrink: cargo fuzz tmin -a <target> <file>). Both folders are ignored by git.
# Exits non-zero if any target crashed.
set -euo pipefail
seconds=${FUZZ_SECONDS:-60}
rss_mb=${FUZZ_RSS_MB:-4096}
root=$(cd "$(dirname "$0")/.." && pwd)
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/distribute-fuzz-target}

cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cd "$root/fuzz"
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi
echo "building ${targets[*]} ..." >&2
for t in "${targets[@]}"; do
  cargo fuzz build -a "$t"
done

logs=$(mktemp -d "${TMPDIR:-/tmp}/distribute-fuzz.XXXXXX")
trap 'rm -rf "$logs"' EXIT
final_stat() { # log, name: a libFuzzer final statistic, or ? if the run ended without them
  sed -n "s/^stat::$2: *//p" "$1" | tail -n 1 | grep . || echo "?"
}
count() { # directory: files in it
  find "$1" -type f 2>/dev/null | wc -l
}

rows=()
failed=0
for t in "${targets[@]}"; do
  corpus="corpus/$t"
  mkdir -p "$corpus" "artifacts/$t"
  seeds=()
  # Real CARs make a better start than nothing for the CAR reader.
  if [ "$t" = car_reader ] && [ -d "$root/../shared/gateway-fixtures" ]; then
    seeds+=("$root/../shared/gateway-fixtures")
  fi
  before=$(count "artifacts/$t")
  echo "fuzzing $t for ${seconds}s ..." >&2
  status=0
  cargo fuzz run -a "$t" "$corpus" "${seeds[@]}" -- \
    -max_total_time="$seconds" -rss_limit_mb="$rss_mb" -print_final_stats=1 \
    > "$logs/$t.log" 2>&1 || status=$?
  crashes=$(( $(count "artifacts/$t") - before ))
  if [ "$status" -ne 0 ]; then
    failed=1
    [ "$crashes" -gt 0 ] || crashes="exit $status"
    echo "$t failed; last lines of its log:" >&2
    tail -n 30 "$logs/$t.log" >&2
  fi
  rows+=("$t|$(final_stat "$logs/$t.log" number_of_executed_units)|$(final_stat "$logs/$t.log" average_exec_per_sec)|$(count "$corpus")|$crashes")
done

printf '\n| %-16s | %14s | %8s | %11s | %7s |\n' target "runs (execs)" "exec/s" "corpus size" crashes
printf '|%s|%s|%s|%s|%s|\n' ------------------ ---------------- ---------- ------------- ---------
for row in "${rows[@]}"; do
  IFS='|' read -r t runs rate size crashes <<< "$row"
  printf '| %-16s | %14s | %8s | %11s | %7s |\n' "$t" "$runs" "$rate" "$size" "$crashes"
done
exit "$failed"
