#!/usr/bin/env bash
# Peer-to-peer numbers in one run, all on loopback (127.0.0.1, no mDNS):
#   1. bitswap transfer of one file from A: `pin add` on a fresh node C (the whole DAG into its
#      store) and `cat` through B's daemon to the CLI, beside Helia -> Helia,
#   2. provider lookup latency in a local Kademlia network of M nodes (in-process swarms,
#      examples/dht_lookup.rs),
#   3. one daemon holding C connections from C distinct peers (examples/conn_hold.rs):
#      RSS and CPU while idle, beside the same daemon with no connections.
# Usage: bash bench/p2p.sh [transfer MiB, default 1024] [nodes, default 50] [lookups, default 200] [connections, default 1000]
set -euo pipefail
size_mib=${1:-1024}
nodes=${2:-50}
lookups=${3:-200}
conns=${4:-1000}
parts=${P2P_PARTS:-123}   # which parts to run, e.g. P2P_PARTS=23
helia_budget=${HELIA_BUDGET_SECS:-180}   # longest the Helia transfer may be expected to take
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/distribute-target}
cargo build --release -q -p distribute --manifest-path "$root/Cargo.toml" --bin distribute --example dht_lookup --example conn_hold
bin="$CARGO_TARGET_DIR/release/distribute"
examples="$CARGO_TARGET_DIR/release/examples"
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
# returns once node.json lists an address and the RPC API's address file exists.
start_daemon() {
  local name=$1; shift
  local repo="$work/$name" args=() b
  for b in "$@"; do args+=("--bootstrap=$b"); done
  mkdir -p "$repo"
  "$bin" --repo "$repo" --log-level="${DLOG:-warn}" node --listen=/ip4/127.0.0.1/tcp/0 --api=127.0.0.1:0 --no-mdns "${args[@]}" \
    < /dev/null > /dev/null 2> "$work/$name.log" &
  dpid[$name]=$!
  pids+=("$!")
}
wait_daemon() {
  local name=$1 repo="$work/$1" i
  for i in $(seq 1 1200); do
    if [ -s "$repo/api" ] && [ -f "$repo/node.json" ]; then
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

if [[ $parts == *1* ]]; then
# ---------------------------------------------------------------- 1. transfer
# The Helia side is the slow one: time a 64 MiB Helia transfer first and, if the requested
# size would take longer than the budget, shrink the size (for both sides) to fit.
(cd "$interop" && bash install.sh >&2)
helia_run() { # MiB -> JSON line on stdout
  (cd "$interop" && timeout -k 10 "$2" node --import ./polyfill.mjs helia-transfer-bench.mjs \
    --mib "$1" --disk --json --tmp "$work") | tail -n 1
}
probe_mib=$(( size_mib < 64 ? size_mib : 64 ))
log "Helia probe: $probe_mib MiB"
probe=$(helia_run "$probe_mib" 300)
probe_secs=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1])[0]; print((r["getMs"]+r["addMs"])/1000)' "$probe")
tx_mib=$size_mib
note=""
while [ "$tx_mib" -gt 64 ] && python3 -c 'import sys; sys.exit(0 if float(sys.argv[1])*int(sys.argv[2])/int(sys.argv[4]) > int(sys.argv[3]) else 1)' "$probe_secs" "$tx_mib" "$helia_budget" "$probe_mib"; do
  tx_mib=$((tx_mib / 2))
done
if [ "$tx_mib" != "$size_mib" ]; then
  note=" (asked for $size_mib MiB; Helia moved $probe_mib MiB in ${probe_secs} s, so $size_mib MiB would exceed ${helia_budget} s)"
fi
if [ "$tx_mib" -le "$probe_mib" ]; then helia=$probe; else log "Helia: $tx_mib MiB"; helia=$(helia_run "$tx_mib" $((helia_budget * 3))); fi

log "distribute: $tx_mib MiB"
file="$work/input.bin"
head -c "$((tx_mib * 1024 * 1024))" /dev/urandom > "$file"
start_daemon A; wait_daemon A
cid=$("$bin" --repo "$work/A" add -Q "$file")
rm -f "$file"
start_daemon B "${daddr[A]}"; wait_daemon B
for i in $(seq 1 100); do [ "$(peer_count B)" -ge 1 ] && break; sleep 0.1; done
a_cpu0=$(cpu_ticks "${dpid[A]}"); b_cpu0=$(cpu_ticks "${dpid[B]}")
t0=$(now)
"$bin" --repo "$work/B" cat "$cid" > /dev/null
t1=$(now)
a_cpu=$(( $(cpu_ticks "${dpid[A]}") - a_cpu0 )); b_cpu=$(( $(cpu_ticks "${dpid[B]}") - b_cpu0 ))
b_hwm=$(kb VmHWM "${dpid[B]}")
stop_daemon B
# The same fetch into a fresh node's store, no client in between: `pin add` on C.
start_daemon C "${daddr[A]}"; wait_daemon C
for i in $(seq 1 100); do [ "$(peer_count C)" -ge 1 ] && break; sleep 0.1; done
pa_cpu0=$(cpu_ticks "${dpid[A]}"); c_cpu0=$(cpu_ticks "${dpid[C]}")
p0=$(now)
"$bin" --repo "$work/C" pin add "$cid" > /dev/null
p1=$(now)
pa_cpu=$(( $(cpu_ticks "${dpid[A]}") - pa_cpu0 )); c_cpu=$(( $(cpu_ticks "${dpid[C]}") - c_cpu0 ))
c_hwm=$(kb VmHWM "${dpid[C]}")
stop_daemon C; stop_daemon A
rm -rf "$work/A" "$work/B" "$work/C"

tx_bytes=$((tx_mib * 1024 * 1024))
printf '\n### 1. Transfer of a %s MiB random file over loopback, fetcher side%s\n\n' "$tx_mib" "$note"
python3 - "$tx_bytes" "$t0" "$t1" "$b_hwm" "$helia" "$a_cpu" "$b_cpu" "$(getconf CLK_TCK)" "$p0" "$p1" "$c_hwm" "$pa_cpu" "$c_cpu" <<'PY'
import json, sys
size, t0, t1, hwm = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
h = json.loads(sys.argv[5])[0]
tck = int(sys.argv[8])
a_cpu, b_cpu = int(sys.argv[6]) / tck, int(sys.argv[7]) / tck
p0, p1, c_hwm = float(sys.argv[9]), float(sys.argv[10]), int(sys.argv[11])
pa_cpu, c_cpu = int(sys.argv[12]) / tck, int(sys.argv[13]) / tck
d_secs = t1 - t0
d_mbs = size / d_secs / 1e6
p_secs = p1 - p0
p_mbs = size / p_secs / 1e6
rows = [
    ("distribute → distribute (`pin add` on a fresh node C)", p_secs, p_mbs, c_hwm / 1024),
    ("distribute → distribute (`cat` via B's daemon, sled)", d_secs, d_mbs, hwm / 1024),
    ("Helia → Helia (helia-transfer-bench.mjs --disk)", h["getMs"] / 1000, h["mbPerS"], h["fetcherPeakRss"] / 1048576),
]
print(f"| {'run':<54} | {'seconds':>8} | {'MB/s':>8} | {'peak RSS (MiB)':>14} |")
print(f"|{'-'*56}|{'-'*10}|{'-'*10}|{'-'*16}|")
for name, s, mbs, rss in rows:
    print(f"| {name:<54} | {s:8.2f} | {mbs:8.1f} | {rss:14.1f} |")
print(f"\ndistribute / Helia: {p_mbs / h['mbPerS']:.2f}× throughput for the fetch into C's store, "
      f"{d_mbs / h['mbPerS']:.2f}× for the `cat` to a client; "
      f"{(hwm / 1024) / (h['fetcherPeakRss'] / 1048576):.2f}× peak RSS (B)"
      + ("" if h["identical"] else "  (Helia output MISMATCH)"))
print("distribute: wall time of the command. `pin add` on C: C's daemon fetches the whole DAG from A "
      "into its store (the fetch node→node). `cat` on B: CLI start + B's fetch + every byte sent over "
      "B's HTTP API to the CLI process and on to /dev/null. Peak RSS = VmHWM of the fetching daemon. "
      "Helia: its `get` time (a UnixFS cat over bitswap in the fetching process, blocks kept in its "
      "disk blockstore, bytes written to a file) and that process's peak RSS.")
gib = size / 2**30
print(f"CPU time during the `pin add` (utime + stime, per GiB): serving daemon A {pa_cpu / gib:.2f} s, "
      f"fetching daemon C {c_cpu / gib:.2f} s.")
print(f"CPU time during the `cat` (utime + stime, per GiB): serving daemon A {a_cpu / gib:.2f} s, "
      f"fetching daemon B {b_cpu / gib:.2f} s. B stores what it fetches with direct I/O (past the "
      "page cache); A serves from the page cache its `add` filled.")
PY

fi

if [[ $parts == *2* ]]; then
# ---------------------------------------------------------------- 2. provider lookups
log "DHT lookups: $nodes in-process nodes, $lookups lookups"
printf '\n### 2. Provider lookup latency: %s nodes on loopback (%s cores), %s lookups\n\n' "$nodes" "$(nproc)" "$lookups"
"$examples/dht_lookup" --nodes "$nodes" --lookups "$lookups"
printf "\nEach node is the daemon's own swarm and event loop (TCP, TLS, Yamux, identify, kad /ipfs/kad/1.0.0,\n"
printf 'k = 20) in one process; each key is announced by one random node and looked up once by another.\n'

fi

if [[ $parts == *3* ]]; then
# ---------------------------------------------------------------- 3. connections
log "one daemon, $conns connections"
start_daemon hub; wait_daemon hub
sleep 2
tck=$(getconf CLK_TCK)
idle_sample() { # pid seconds -> cpu_percent over that many seconds
  local c0 c1 t0 t1
  c0=$(cpu_ticks "$1"); t0=$(now); sleep "$2"; c1=$(cpu_ticks "$1"); t1=$(now)
  python3 -c 'import sys; c0,c1,tck=map(int,sys.argv[1:4]); t0,t1=map(float,sys.argv[4:6]); print((c1-c0)/tck/(t1-t0)*100)' "$c0" "$c1" "$tck" "$t0" "$t1"
}
rss_empty=$(kb VmRSS "${dpid[hub]}")
cpu_empty=$(idle_sample "${dpid[hub]}" 10)
"$examples/conn_hold" "${daddr[hub]}" --count "$conns" --hold 600 > "$work/hold.out" 2> "$work/hold.err" &
holder=$!
pids+=("$holder")
for i in $(seq 1 1200); do grep -q '^connected' "$work/hold.out" && break; sleep 0.1; done
held=$(awk '/^connected/ {print $2}' "$work/hold.out")
sleep 5   # identify and the first pings settle
hub_peers=$(peer_count hub)
rss_held=$(kb VmRSS "${dpid[hub]}")
# 30 s: two of the peers' 15 s ping rounds, so the sample does not depend on whether one
# round falls inside it (10 s samples swung between 1.3 % and 3.2 % run to run).
cpu_held=$(idle_sample "${dpid[hub]}" 30)
hwm=$(kb VmHWM "${dpid[hub]}")
kill "$holder" 2>/dev/null || true
# Dials that failed are part of the result: say why.
[ -s "$work/hold.err" ] && sed 's/^/p2p.sh: /' "$work/hold.err" >&2
printf '\n### 3. One daemon holding %s connections from %s distinct peers, idle\n\n' "${held:-0}" "${held:-0}"
python3 - "$rss_empty" "$cpu_empty" "$rss_held" "$cpu_held" "$hwm" "${held:-0}" "$hub_peers" <<'PY'
import sys
rss0, cpu0, rss1, cpu1, hwm, held, peers = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
print(f"| {'daemon state':<44} | {'RSS (MiB)':>9} | {'CPU idle, % of a core':>21} |")
print(f"|{'-'*46}|{'-'*11}|{'-'*23}|")
print(f"| {'no connections':<44} | {rss0/1024:9.1f} | {cpu0:21.2f} |")
print(f"| {f'{held} connections held ({peers} peers listed)':<44} | {rss1/1024:9.1f} | {cpu1:21.2f} |")
print(f"\nPer connection: {(rss1-rss0)/max(held,1):.1f} KiB of RSS; peak RSS during the connects {hwm/1024:.1f} MiB. "
      "CPU from /proc (utime + stime), sampled over 10 s without connections and 30 s with them; "
      "the peers ping every 15 s as libp2p does.")
PY
[ -s "$work/hold.err" ] && { echo; sed 's/^/conn_hold: /' "$work/hold.err"; }
fi
exit 0
