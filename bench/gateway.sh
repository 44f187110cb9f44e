#!/usr/bin/env bash
# Gateway throughput beside nginx serving the same bytes from disk, in one run: requests per
# second and p99 latency (wrk) for a 4 KiB and a 1 MiB file, local content.
# Usage: bash bench/gateway.sh [seconds per run, default 10] [connections, default 32]
#        (DISTRIBUTE_BIN=<binary> skips the release build)
set -euo pipefail
secs=${1:-10}
conns=${2:-32}
root=$(cd "$(dirname "$0")/.." && pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/distribute-target}
# DISTRIBUTE_BIN=path runs an already built binary instead of building the release one.
if [ -n "${DISTRIBUTE_BIN:-}" ]; then
  bin=$DISTRIBUTE_BIN
else
  cargo build --release -q -p distribute --manifest-path "$root/Cargo.toml"
  bin="$CARGO_TARGET_DIR/release/distribute"
fi
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null; then
  apt-get update -qq && apt-get install -y -qq wrk nginx >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

work=$(mktemp -d "${TMPDIR:-/tmp}/distribute-gwbench.XXXXXX")
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

mkdir -p "$work/www"
head -c 4096 /dev/urandom > "$work/www/4k.bin"
head -c $((1024 * 1024)) /dev/urandom > "$work/www/1m.bin"
chmod a+x "$work"; chmod -R a+rX "$work/www"   # nginx workers run as another user

# The gateway: a node whose repository holds the same two files in one directory; beside it
# a node on a copy of that repository with the hot-block cache off, so every request reads
# and re-hashes its blocks from the store (the cold path).
dir_cid=$("$bin" --repo "$work/repo" add -Q -r "$work/www")
cp -r "$work/repo" "$work/repo-nocache"
gw_port=$(free_port)
"$bin" --repo "$work/repo" node --listen=/ip4/127.0.0.1/tcp/0 --no-mdns \
  --gateway="127.0.0.1:$gw_port" 2> "$work/node.log" &
pids+=($!)
cold_port=$(free_port)
"$bin" --repo "$work/repo-nocache" node --listen=/ip4/127.0.0.1/tcp/0 --no-mdns \
  --gateway="127.0.0.1:$cold_port" --gateway-cache-mib=0 --api=127.0.0.1:0 2> "$work/node-nocache.log" &
pids+=($!)

# nginx: the same files from disk, as many workers as cores.
ng_port=$(free_port)
cat > "$work/nginx.conf" <<CONF
worker_processes auto;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  keepalive_requests 100000;
  server {
    listen 127.0.0.1:$ng_port;
    root $work/www;
  }
}
CONF
"$nginx_bin" -c "$work/nginx.conf" -p "$work" -g 'daemon off;' &
pids+=($!)

wait_http() { # url
  for _ in $(seq 1 200); do
    curl -sf -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2; cat "$work/node.log" >&2; exit 1
}
wait_http "http://127.0.0.1:$gw_port/ipfs/$dir_cid/4k.bin"
wait_http "http://127.0.0.1:$cold_port/ipfs/$dir_cid/4k.bin"
wait_http "http://127.0.0.1:$ng_port/4k.bin"
cmp <(curl -s "http://127.0.0.1:$gw_port/ipfs/$dir_cid/1m.bin") "$work/www/1m.bin"

run_wrk() { # url -> "req/s p99"
  local out rps p99
  out=$(wrk -t2 -c"$conns" -d"${secs}s" --latency "$1")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<< "$out")
  p99=$(awk '$1 == "99%" {print $2}' <<< "$out")
  echo "$rps $p99"
}

rows=()
for f in 4k.bin 1m.bin; do
  read -r ng_rps ng_p99 < <(run_wrk "http://127.0.0.1:$ng_port/$f")
  read -r gw_rps gw_p99 < <(run_wrk "http://127.0.0.1:$gw_port/ipfs/$dir_cid/$f")
  read -r cold_rps cold_p99 < <(run_wrk "http://127.0.0.1:$cold_port/ipfs/$dir_cid/$f")
  rows+=("$f|$ng_rps|$ng_p99|$gw_rps|$gw_p99|$cold_rps|$cold_p99")
done

printf '\nGET of local content, wrk -t2 -c%s -d%ss, %s cores (all servers on this machine)\n' \
  "$conns" "$secs" "$(nproc)"
printf 'gateway: default hot-block cache (32 MiB); cache off: --gateway-cache-mib=0, every block read and re-hashed\n\n'
printf '| %-6s | %11s | %9s | %13s | %11s | %7s | %15s | %13s | %7s |\n' \
  file "nginx req/s" "nginx p99" "gateway req/s" "gateway p99" "/ nginx" "cache off req/s" "cache off p99" "/ nginx"
printf '|--------|-------------|-----------|---------------|-------------|---------|-----------------|---------------|---------|\n'
ratio() { python3 -c "print(f'{float(\"$1\") / float(\"$2\"):.2f}x')"; }
for r in "${rows[@]}"; do
  IFS='|' read -r f ng_rps ng_p99 gw_rps gw_p99 cold_rps cold_p99 <<< "$r"
  printf '| %-6s | %11s | %9s | %13s | %11s | %7s | %15s | %13s | %7s |\n' \
    "$f" "$ng_rps" "$ng_p99" "$gw_rps" "$gw_p99" "$(ratio "$gw_rps" "$ng_rps")" \
    "$cold_rps" "$cold_p99" "$(ratio "$cold_rps" "$ng_rps")"
done
