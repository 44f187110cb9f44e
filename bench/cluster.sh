#!/usr/bin/env bash
# Cluster numbers in one run, all on loopback (127.0.0.1, no mDNS):
#   1. time of `pin --replication 3 --wait` (it returns at 3/3) of a random file in a 5-node
#      cluster, beside the raw node->node transfer of the same DAG (a fresh node `cat`s it
#      from the adder);
#   2. resident memory of a one-node cluster holding N cluster pins of small files, beside the
#      same node with none;
#   3. the same N pins made with replication 3 in a 3-node cluster: time until all are 3/3,
#      and each member's resident memory (each holds all N and tracks the others' sets).
# Usage: bash bench/cluster.sh [file MiB, default 100] [pins, default 10000]
# BENCH_PROFILE=debug uses the debug binary instead of building a release one.
set -euo pipefail
size_mib=${1:-100}
npins=${2:-10000}
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/distribute-target}
profile=${BENCH_PROFILE:-release}
if [ "$profile" = release ]; then
  cargo build --release -q -p distribute --manifest-path "$root/Cargo.toml"
fi
bin="$CARGO_TARGET_DIR/$profile/distribute"

work=$(mktemp -d "${TMPDIR:-/tmp}/distribute-cluster.XXXXXX")
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
log() { echo "cluster.sh: $*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

echo "bench cluster secret $$" > "$work/secret"
declare -A dpid daddr
# start NAME [extra node flags...]: a daemon on 127.0.0.1, waits until it is up.
start() {
  local name=$1; shift
  mkdir -p "$work/$name"
  "$bin" --repo "$work/$name" --log-level=warn node --listen=/ip4/127.0.0.1/tcp/0 --api=127.0.0.1:0 --no-mdns "$@" \
    < /dev/null > /dev/null 2> "$work/$name.log" &
  dpid[$name]=$!
  pids+=("$!")
  local i
  for i in $(seq 1 1200); do
    if [ -s "$work/$name/api" ] && [ -f "$work/$name/node.json" ]; then
      daddr[$name]=$(python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
print(d["addrs"][0]+"/p2p/"+d["peer_id"] if d.get("addrs") else "")' "$work/$name/node.json" 2>/dev/null || true)
      [ -n "${daddr[$name]}" ] && return 0
    fi
    kill -0 "${dpid[$name]}" 2>/dev/null || { cat "$work/$name.log" >&2; log "daemon $name died"; exit 1; }
    sleep 0.1
  done
  log "daemon $name did not come up"; exit 1
}
d() { local name=$1; shift; "$bin" --repo "$work/$name" "$@"; }
rss_kb() { awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status"; }
cflags=(--cluster-secret-file "$work/secret" --heartbeat-timeout 3 --rereplicate-after 10 --scrub-rate 0)
# wait_alive NODE N: until NODE lists N live members (for up to 2 minutes).
wait_alive() {
  local i
  for i in $(seq 1 600); do
    [ "$(d "$1" cluster peers | grep -c alive)" -eq "$2" ] && return 0; sleep 0.2
  done
}
# add_small NODE FILE: add every small file on NODE, unpinned; their CIDs go to FILE.
add_small() { (cd "$work/small" && ls | xargs -n 500 "$bin" --repo "$work/$1" add -q --pin=false) > "$2"; }
# pin_all NODE R FILE: pin FILE's CIDs into the cluster with replication R; returns once
# NODE reports all of them pinned.
pin_all() {
  xargs -n 500 "$bin" --repo "$work/$1" pin add --replication "$2" < "$3" > /dev/null
  until [ "$(d "$1" pin ls --cluster | grep -c pinned)" -ge "$npins" ]; do sleep 1; done
}

# --- 1. pin to 3/3 vs raw transfer -------------------------------------------------------
log "starting 5 cluster nodes"
start c0 "${cflags[@]}"
for i in 1 2 3 4; do start "c$i" "${cflags[@]}" --bootstrap "${daddr[c0]}"; done
wait_alive c0 5
head -c "$((size_mib << 20))" /dev/urandom > "$work/data.bin"
cid=$(d c0 add -Q --pin=false "$work/data.bin")

log "raw transfer: a fresh node cats $cid from c0"
start raw --bootstrap "${daddr[c0]}"
t0=$(now); d raw cat "$cid" > /dev/null; t1=$(now)
raw=$(secs "$t0" "$t1")

log "cluster pin --replication 3 --wait"
t0=$(now)
d c0 pin "$cid" --replication 3 --wait > /dev/null
t1=$(now)
pin=$(secs "$t0" "$t1")
d c0 cluster status "$cid" | python3 -c 'import json,sys
s=json.load(sys.stdin); sys.exit(0 if s["Status"]=="pinned" and s["Pinned"]==3 else 1)' \
  || { log "pin --wait returned before 3/3"; exit 1; }
ratio=$(awk -v a="$pin" -v b="$raw" 'BEGIN { printf "%.2f", a / b }')

# --- 2. memory of N pins -----------------------------------------------------------------
log "one-node clusters: empty, and with $npins pins"
start empty "${cflags[@]}" --replication 1
start full "${cflags[@]}" --replication 1
mkdir -p "$work/small"
python3 - "$work/small" "$npins" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"f{i:05}"), "w") as f:
        f.write(f"small file number {i}\n")
PY
add_small full "$work/cids"
pin_all full 1 "$work/cids"
sleep 12 # a few heartbeat and tracker rounds with every pin held (the daemon returns freed memory every 10 s)
rss_empty=$(rss_kb "${dpid[empty]}")
rss_full=$(rss_kb "${dpid[full]}")
extra=$(( (rss_full - rss_empty) / 1024 ))

# --- 3. N pins, replication 3, in a 3-node cluster ----------------------------------------
log "3-node cluster, replication 3: $npins pins"
echo "bench cluster secret three $$" > "$work/secret3"
c3=(--cluster-secret-file "$work/secret3" --heartbeat-timeout 3 --rereplicate-after 10 --scrub-rate 0 --replication 3)
start m0 "${c3[@]}"
for i in 1 2; do start "m$i" "${c3[@]}" --bootstrap "${daddr[m0]}"; done
wait_alive m0 3
add_small m0 "$work/cids3"
t0=$(now)
pin_all m0 3 "$work/cids3"
t1=$(now)
three=$(secs "$t0" "$t1")
sleep 12
rss_empty3=$(rss_kb "${dpid[empty]}")
members=""
worst=0
for i in 0 1 2; do
  r=$(rss_kb "${dpid[m$i]}")
  members="$members $((r / 1024))"
  [ "$r" -gt "$worst" ] && worst=$r
done
extra3=$(( (worst - rss_empty3) / 1024 ))

printf '\n### Cluster (%s binary, %s cores, loopback)\n\n' "$profile" "$(nproc)"
printf '| measure | value | beside | target |\n|---|---|---|---|\n'
printf '| %s MiB: pin --replication 3 --wait, to 3/3 (5 nodes) | %s s | raw node->node cat %s s (%sx) | <= 2x |\n' "$size_mib" "$pin" "$raw" "$ratio"
printf '| RSS, one-node cluster with %s pins | %s MiB | empty node %s MiB (+%s MiB) | <= +20 MiB |\n' "$npins" "$((rss_full / 1024))" "$((rss_empty / 1024))" "$extra"
printf '| %s pins, replication 3, 3-node cluster: all 3/3 | %s s | | |\n' "$npins" "$three"
printf '| RSS, largest member of that cluster (members:%s MiB) | %s MiB | empty node %s MiB (+%s MiB) | <= +20 MiB |\n' "$members" "$((worst / 1024))" "$((rss_empty3 / 1024))" "$extra3"
