#!/usr/bin/env bash
# Health.Check throughput and latency: our kata-agent vs containerd's Go ttrpc
# server (ttrpc-peer server), same load generator (ttrpc-peer bench), rounds
# alternated A/B/A/B. See bench/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

BUILD_DIR=$ROOT/build/native
PEER_DIR=
ROUNDS=3
DURATION=5s
WARMUP=1s
CONNS=16
PIN=1
CLIENT=raw
OUT=$HERE/results/health.md

usage() {
  cat <<EOF
Usage: bench/health.sh [options]
  --build-dir DIR   where kata-agent is (default build/native: cmake --preset native)
  --peer-dir DIR    where to build ttrpc-peer (default BUILD_DIR/interop)
  --rounds N        rounds per server, alternated ours/go (default $ROUNDS)
  --duration D      measured time per round, Go duration (default $DURATION)
  --warmup D        warm-up per round, not measured (default $WARMUP)
  --conns N         client connections, one call in flight each (default $CONNS)
  --client MODE     raw: minimal frame loop (default); ttrpc: containerd ttrpc.Client
  --no-pin          do not pin (default: servers on the last CPU, load on CPU 0)
  --out FILE        Markdown result (default bench/results/health.md)
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --build-dir) BUILD_DIR=$2; shift 2;;
    --peer-dir) PEER_DIR=$2; shift 2;;
    --rounds) ROUNDS=$2; shift 2;;
    --duration) DURATION=$2; shift 2;;
    --warmup) WARMUP=$2; shift 2;;
    --conns) CONNS=$2; shift 2;;
    --client) CLIENT=$2; shift 2;;
    --no-pin) PIN=0; shift;;
    --out) OUT=$2; shift 2;;
    -h|--help) usage; exit 0;;
    *) echo "health.sh: unknown option $1" >&2; usage >&2; exit 2;;
  esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "health.sh: --rounds wants a positive number" >&2; exit 2; }
case $CLIENT in raw) CLIENT_FLAG=-raw;; ttrpc) CLIENT_FLAG=;; *) echo "health.sh: --client raw|ttrpc" >&2; exit 2;; esac
PEER_DIR=${PEER_DIR:-$BUILD_DIR/interop}
AGENT=$BUILD_DIR/kata-agent
PEER=$PEER_DIR/ttrpc-peer
[[ -x $AGENT ]] || { echo "health.sh: no $AGENT (cmake --preset native && cmake --build --preset native)" >&2; exit 1; }

"$ROOT/tests/interop/build.sh" "$PEER_DIR" >&2

NCPU=$(nproc)
if [[ $PIN -eq 1 && $NCPU -lt 2 ]]; then
  echo "health.sh: one CPU, not pinning" >&2
  PIN=0
fi
SERVER_CPU=$((NCPU - 1))
CLIENT_CPU=0
server_pin=()
client_pin=()
if [[ $PIN -eq 1 ]]; then
  server_pin=(taskset -c "$SERVER_CPU")
  client_pin=(taskset -c "$CLIENT_CPU")
fi

TMP=$(mktemp -d /tmp/ka-bench.XXXXXX)
PIDS=()
cleanup() {
  local rc=$? p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_sock() {
  local i
  for ((i = 0; i < 200; i++)); do
    [[ -S $1 ]] && return 0
    kill -0 "$2" 2>/dev/null || { echo "health.sh: server pid $2 died; log:" >&2; cat "$3" >&2; exit 1; }
    sleep 0.05
  done
  echo "health.sh: $1 did not appear" >&2
  exit 1
}

"${server_pin[@]}" "$AGENT" --server-addr "unix://$TMP/ours.sock" --cmdline-file /dev/null \
  >"$TMP/ours.log" 2>&1 &
OURS_PID=$!
PIDS+=("$OURS_PID")
"${server_pin[@]}" "$PEER" server "unix://$TMP/go.sock" >"$TMP/go.log" 2>&1 &
GO_PID=$!
PIDS+=("$GO_PID")
wait_sock "$TMP/ours.sock" "$OURS_PID" "$TMP/ours.log"
wait_sock "$TMP/go.sock" "$GO_PID" "$TMP/go.log"

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
echo "health.sh: $ROUNDS rounds x $DURATION (+$WARMUP warm-up), $CONNS connections, client $CLIENT," \
  "pinning $([[ $PIN -eq 1 ]] && echo "servers->CPU$SERVER_CPU load->CPU$CLIENT_CPU" || echo off)" >&2
for ((r = 1; r <= ROUNDS; r++)); do
  for who in ours go; do
    if [[ $who == ours ]]; then pid=$OURS_PID; else pid=$GO_PID; fi
    line=$("${client_pin[@]}" timeout 300 "$PEER" bench "unix://$TMP/$who.sock" -c "$CONNS" \
      -d "$DURATION" -w "$WARMUP" $CLIENT_FLAG -pid "$pid")
    echo "$line" >>"$TMP/$who.jsonl"
    echo "round $r $who: $line" >&2
  done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# field NAME FILE: every value of a numeric JSON field, one per line.
field() { grep -o "\"$1\":[0-9.e+-]*" "$2" | cut -d: -f2; }
median() { sort -g | awk '{v[NR]=$1} END {if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
med() { field "$1" "$TMP/$2.jsonl" | median; }
runs() { field calls_per_sec "$TMP/$1.jsonl" | awk '{printf "%s%.0f", (NR>1?", ":""), $1}'; }
fmt0() { awk -v v="$1" 'BEGIN {printf "%.0f", v}'; }
fmt1() { awk -v v="$1" 'BEGIN {printf "%.1f", v}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a/b; else print "n/a"}'; }

ours_cps=$(med calls_per_sec ours); go_cps=$(med calls_per_sec go)
ours_p50=$(med p50_us ours); go_p50=$(med p50_us go)
ours_p99=$(med p99_us ours); go_p99=$(med p99_us go)
ours_eff=$(med calls_per_server_cpu_s ours); go_eff=$(med calls_per_server_cpu_s go)

GO_TTRPC=$(dpkg-query -W -f '${Version}' golang-github-containerd-ttrpc-dev 2>/dev/null || echo "?")
CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
mkdir -p "$(dirname "$OUT")"
{
  echo "# Health.Check: kata-agent (C) vs containerd ttrpc (Go)"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?'), $NCPU CPUs ($CPU_MODEL)."
  echo "Load generator: \`ttrpc-peer bench -c $CONNS -d $DURATION -w $WARMUP${CLIENT_FLAG:+ $CLIENT_FLAG}\` ($CLIENT client, one call in flight per connection),"
  echo "$ROUNDS rounds per server alternated ours/go; median of the rounds for each column."
  if [[ $PIN -eq 1 ]]; then
    echo "Pinned: both servers on CPU $SERVER_CPU (one core, like Kata's default 1-vCPU guest), load generator on CPU $CLIENT_CPU."
  else
    echo "Not pinned: servers and load generator share all $NCPU CPUs."
  fi
  echo "Go server: golang-github-containerd-ttrpc-dev $GO_TTRPC, $(go version 2>/dev/null | cut -d' ' -f3). Load average before/after: $LOAD_BEFORE / $LOAD_AFTER."
  echo
  echo "| server | calls/s | p50 µs | p99 µs | calls per server CPU-second | calls/s per round |"
  echo "|---|---:|---:|---:|---:|---|"
  echo "| ours (kata-agent) | $(fmt0 "$ours_cps") | $(fmt1 "$ours_p50") | $(fmt1 "$ours_p99") | $(fmt0 "$ours_eff") | $(runs ours) |"
  echo "| go (containerd/ttrpc) | $(fmt0 "$go_cps") | $(fmt1 "$go_p50") | $(fmt1 "$go_p99") | $(fmt0 "$go_eff") | $(runs go) |"
  echo "| **ours/go** | **$(ratio "$ours_cps" "$go_cps")x** | $(ratio "$ours_p50" "$go_p50")x | $(ratio "$ours_p99" "$go_p99")x | **$(ratio "$ours_eff" "$go_eff")x** | |"
} >"$TMP/table.md"
cp "$TMP/table.md" "$OUT"
cat "$TMP/table.md"
echo >&2
echo "health.sh: written to $OUT" >&2

for p in "$OURS_PID" "$GO_PID"; do
  kill -TERM "$p"
  rc=0
  wait "$p" || rc=$?
  [[ $rc -eq 0 ]] || { echo "health.sh: server pid $p exited $rc after SIGTERM" >&2; exit 1; }
done
PIDS=()
