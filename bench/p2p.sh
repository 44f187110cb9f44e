#!/usr/bin/env bash
# Peer-to-peer numbers in one run, all on loopback (127.0.0.1, no mDNS):
#   1. bitswap transfer A -> B (distribute cat through B's daemon) beside Helia -> Helia,
#   2. provider lookup latency (distribute findprovs) in a local network of M daemons,
#   3. idle memory/CPU of the daemon holding the most connections (a proxy, see its table).
# Usage: bash bench/p2p.sh [transfer size in MiB, default 1024] [nodes, default 20] [lookups, default 30]
set -euo pipefail
size_mib=${1:-1024}
nodes=${2:-20}
lookups=${3:-30}
helia_budget=${HELIA_BUDGET_SECS:-180}   # longest the Helia transfer may be expected to take
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/distribute-target}
cargo build --release -q -p distribute --manifest-path "$root/Cargo.toml"
bin="$CARGO_TARGET_DIR/release/distribute"
interop="$root/tests/interop"
[ "$nodes" -ge 3 ] || { echo "need at least 3 nodes" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/distribute-p2p.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "p2p.sh: $*" >&2; }

declare -A dpid daddr
# start_daemon NAME [bootstrap multiaddr...]: daemon on 127.0.0.1 with a free TCP port;
# returns once node.json lists an address and api.sock exists.
start_daemon() {
  local name=$1; shift
  local repo="$work/$name" args=() b
  for b in "$@"; do args+=("--bootstrap=$b"); done
  mkdir -p "$repo"
  "$bin" --repo "$repo" node --listen=/ip4/127.0.0.1/tcp/0 --no-mdns "${args[@]}" \
    < /dev/null > /dev/null 2> "$work/$name.log" &
  dpid[$name]=$!
  pids+=("$!")
}
wait_daemon() {
  local name=$1 repo="$work/$1" i
  for i in $(seq 1 1200); do
    if [ -S "$repo/api.sock" ] && [ -f "$repo/node.json" ]; then
      daddr[$name]=$(python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print(d["addrs"][0]+"/p2p/"+d["peer_id"] if d.get("addrs") else "")' "$repo/node.json" 2>/dev/null || true)
      [ -n "${daddr[$name]}" ] && return 0
    fi
    kill -0 "${dpid[$name]}" 2>/dev/null || { cat "$work/$name.log" >&2; log "daemon $name died"; exit 1; }
    sleep 0.1
  done
  log "daemon $name did not come up"; exit 1
}
stop_daemon() { kill -TERM "${dpid[$1]}" 2>/dev/null || true; wait "${dpid[$1]}" 2>/dev/null || true; }
kb() { awk -v k="$1" '$1 == k":" {print $2}' "/proc/$2/status"; }        # VmHWM / VmRSS in kB
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }                 # utime + stime
now() { date +%s.%N; }
peer_count() { "$bin" --repo "$work/$1" peers 2>/dev/null | grep -c . || true; }

# ---------------------------------------------------------------- 1. transfer
# The Helia side is the slow one: time a 64 MiB Helia transfer first and, if the requested
# size would take longer than the budget, shrink the size (for both sides) to fit.
(cd "$interop" && bash install.sh >&2)
helia_run() { # MiB -> JSON line on stdout
  (cd "$interop" && timeout -k 10 "$2" node --import ./polyfill.mjs helia-transfer-bench.mjs \
    --mib "$1" --disk --json --tmp "$work") | tail -n 1
}
log "Helia probe: 64 MiB"
probe=$(helia_run 64 300)
probe_secs=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1])[0]; print((r["getMs"]+r["addMs"])/1000)' "$probe")
tx_mib=$size_mib
note=""
while [ "$tx_mib" -gt 64 ] && python3 -c 'import sys; sys.exit(0 if float(sys.argv[1])*int(sys.argv[2])/64 > int(sys.argv[3]) else 1)' "$probe_secs" "$tx_mib" "$helia_budget"; do
  tx_mib=$((tx_mib / 2))
done
if [ "$tx_mib" != "$size_mib" ]; then
  note=" (asked for $size_mib MiB; Helia moved 64 MiB in ${probe_secs} s, so $size_mib MiB would exceed ${helia_budget} s)"
fi
if [ "$tx_mib" -le 64 ]; then helia=$probe; else log "Helia: $tx_mib MiB"; helia=$(helia_run "$tx_mib" $((helia_budget * 3))); fi

log "distribute: $tx_mib MiB"
file="$work/input.bin"
head -c "$((tx_mib * 1024 * 1024))" /dev/urandom > "$file"
start_daemon A; wait_daemon A
cid=$("$bin" --repo "$work/A" add -Q "$file")
rm -f "$file"
start_daemon B "${daddr[A]}"; wait_daemon B
for i in $(seq 1 100); do [ "$(peer_count B)" -ge 1 ] && break; sleep 0.1; done
t0=$(now)
"$bin" --repo "$work/B" cat "$cid" > /dev/null
t1=$(now)
b_hwm=$(kb VmHWM "${dpid[B]}")
stop_daemon B; stop_daemon A
rm -rf "$work/A" "$work/B"

tx_bytes=$((tx_mib * 1024 * 1024))
printf '\n### 1. Transfer of a %s MiB random file over loopback, fetcher side%s\n\n' "$tx_mib" "$note"
python3 - "$tx_bytes" "$t0" "$t1" "$b_hwm" "$helia" <<'PY'
import json, sys
size, t0, t1, hwm = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
h = json.loads(sys.argv[5])[0]
d_secs = t1 - t0
d_mbs = size / d_secs / 1e6
rows = [
    ("distribute → distribute (`cat` via B's daemon, sled)", d_secs, d_mbs, hwm / 1024),
    ("Helia → Helia (helia-transfer-bench.mjs --disk)", h["getMs"] / 1000, h["mbPerS"], h["fetcherPeakRss"] / 1048576),
]
print(f"| {'run':<54} | {'seconds':>8} | {'MB/s':>8} | {'peak RSS (MiB)':>14} |")
print(f"|{'-'*56}|{'-'*10}|{'-'*10}|{'-'*16}|")
for name, s, mbs, rss in rows:
    print(f"| {name:<54} | {s:8.2f} | {mbs:8.1f} | {rss:14.1f} |")
print(f"\ndistribute / Helia: {d_mbs / h['mbPerS']:.2f}× throughput, "
      f"{(hwm / 1024) / (h['fetcherPeakRss'] / 1048576):.2f}× peak RSS"
      + ("" if h["identical"] else "  (Helia output MISMATCH)"))
print("distribute: wall time of the `cat` command (CLI start + bitswap fetch + bytes to /dev/null), "
      "peak RSS = VmHWM of B's daemon. Helia: its `get` time and its process peak RSS.")
PY
