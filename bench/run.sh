#!/usr/bin/env bash
# The whole benchmark suite: container start, exec, streaming, footprint and
# Health.Check, our agent vs crun/runc/a raw pipe/containerd's ttrpc, and boot time
# and footprint in the riscv64 guest under qemu (bench/boot.sh), compared commands
# alternated A/B/A/B, medians and min/max, Markdown + PNG chart in bench/results/.
# Root needed. Not part of the tests. See bench/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

BUILD_DIR=$ROOT/build/native
RV_BIN=$ROOT/build/riscv64/kata-agent.stripped
RUNS=50
EXEC_RUNS=
STREAM_BYTES=1073741824
STREAM_ROUNDS=3
FILL=100
HEALTH_ROUNDS=3
HEALTH=1
BOOT=1
BOOT_RUNS=5
GUEST_DIR=${KA_GUEST_DIR:-$ROOT/build/guest}
OUTDIR=$HERE/results
LOCK=/tmp/ka-test.lock

usage() {
  cat <<EOF
Usage: bench/run.sh [options]         (as root; installs crun, runc, gnuplot-nox if missing)
  --runs N            container starts per runtime, alternated ours/crun/runc (default $RUNS)
  --exec-runs N       execs per runtime, alternated ours/crun (default: --runs)
  --stream-bytes N    bytes per streaming round (default $STREAM_BYTES = 1 GiB)
  --stream-rounds N   streaming rounds, alternated ours/pipe (default $STREAM_ROUNDS)
  --fill N            running containers for the loaded footprint (default $FILL)
  --health-rounds N   rounds for bench/health.sh (default $HEALTH_ROUNDS)
  --no-health         skip the Health.Check rows
  --boot-runs N       boots per variant in the riscv64 guest, bench/boot.sh (default $BOOT_RUNS)
  --no-boot           skip the guest rows (boot time, guest footprint; they need the
                      image-builder outputs, which bench/boot.sh builds when missing)
  --guest-dir DIR     image-builder output (default build/guest)
  --build-dir DIR     native build (default build/native)
  --out DIR           where results.md and chart.png go (default bench/results)
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) RUNS=$2; shift 2;;
    --exec-runs) EXEC_RUNS=$2; shift 2;;
    --stream-bytes) STREAM_BYTES=$2; shift 2;;
    --stream-rounds) STREAM_ROUNDS=$2; shift 2;;
    --fill) FILL=$2; shift 2;;
    --health-rounds) HEALTH_ROUNDS=$2; shift 2;;
    --no-health) HEALTH=0; shift;;
    --boot-runs) BOOT_RUNS=$2; shift 2;;
    --no-boot) BOOT=0; shift;;
    --guest-dir) GUEST_DIR=$2; shift 2;;
    --build-dir) BUILD_DIR=$2; shift 2;;
    --out) OUTDIR=$2; shift 2;;
    -h|--help) usage; exit 0;;
    *) echo "run.sh: unknown option $1" >&2; usage >&2; exit 2;;
  esac
done
EXEC_RUNS=${EXEC_RUNS:-$RUNS}
[[ $(id -u) -eq 0 ]] || { echo "run.sh: run as root (containers, cgroups, mount namespace)" >&2; exit 1; }
# One command on a fresh Debian 12 machine (after tools/setup-debian.sh): what the
# comparison needs comes from Debian's archive, the native build is made if missing.
missing=()
for t in crun runc gnuplot; do
  command -v $t >/dev/null || missing+=("$t")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  command -v apt-get >/dev/null || { echo "run.sh: missing ${missing[*]} (install crun runc gnuplot-nox)" >&2; exit 1; }
  echo "run.sh: installing crun runc gnuplot-nox (missing: ${missing[*]})"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q crun runc gnuplot-nox >/dev/null
fi
AGENT=$BUILD_DIR/kata-agent
ROOTFS=$BUILD_DIR/test-rootfs
PAYLOAD=$ROOTFS/usr/bin/ka-payload
if [[ ! -x $AGENT || ! -x $PAYLOAD ]] && [[ $BUILD_DIR == "$ROOT/build/native" ]]; then
  echo "run.sh: building the native preset first"
  (cd "$ROOT" && cmake --preset native >/dev/null && cmake --build --preset native -j "$(nproc)" >/dev/null)
fi
[[ -x $AGENT && -x $PAYLOAD ]] || { echo "run.sh: build first: cmake --preset native && cmake --build --preset native" >&2; exit 1; }
"$HERE/build-kabench.sh" "$BUILD_DIR"

TMP=$(mktemp -d /tmp/ka-run.XXXXXX)
# Private copies, so that a rebuild of build/native during the run changes nothing.
cp "$AGENT" "$TMP/kata-agent"; AGENT=$TMP/kata-agent
cp "$BUILD_DIR/kabench" "$TMP/kabench"; KB=$TMP/kabench
CG_OURS=/ka-bench-ours-$$
CG_OCI=/ka-bench-oci-$$
AGENT_PID=
HUGETLB_MOUNTED=0
cleanup() {
  local rc=$? d
  exec {KB_IN}>&- 2>/dev/null || true
  [[ -n ${KB_PID:-} ]] && { kill "$KB_PID" 2>/dev/null || true; }
  [[ -n $AGENT_PID ]] && { kill -TERM "$AGENT_PID" 2>/dev/null || true; }
  crun kill kb-exec KILL 2>/dev/null || true
  sleep 0.2
  crun delete -f kb-exec 2>/dev/null || true
  wait 2>/dev/null || true
  for d in /sys/fs/cgroup/*/"$CG_OURS" /sys/fs/cgroup/*/"$CG_OCI"; do
    [[ -d $d ]] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
  [[ $HUGETLB_MOUNTED -eq 1 ]] && { umount /sys/fs/cgroup/hugetlb 2>/dev/null && rmdir /sys/fs/cgroup/hugetlb 2>/dev/null || true; }
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Containers with fixed ids, the host's cgroupfs (and the hugetlb mount below): hold
# the lock the integration and e2e tests take, up to the end of the native part. The
# long-lived children do not get its fd: one left behind would hold it for ever.
exec {LOCKFD}>"$LOCK"
flock -n "$LOCKFD" || { echo "run.sh: waiting for $LOCK (a test run holds it)" >&2; flock "$LOCKFD"; }

# crun refuses a "hybrid" host whose cgroup2 still has controllers (here: hugetlb,
# the only v1 controller without a hierarchy). Give it a v1 hierarchy for the run.
UNIFIED=/sys/fs/cgroup/unified/cgroup.controllers
if [[ -s $UNIFIED ]]; then
  for c in $(cat "$UNIFIED"); do
    if [[ $c == hugetlb ]]; then
      mkdir -p /sys/fs/cgroup/hugetlb
      mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
      HUGETLB_MOUNTED=1
    else
      echo "run.sh: cgroup2 has controller $c; crun will refuse this hybrid host" >&2
    fi
  done
fi

# OCI bundles for crun/runc: `crun spec` with the namespaces and mounts our spec
# has (pid, ipc, uts, mount; no network, no /sys/fs/cgroup mount), read-only root.
mkbundle() { # DIR ARGS_JSON
  mkdir -p "$1"
  (cd "$1" && crun spec)
  python3 - "$1/config.json" "$ROOTFS" "$2" "$CG_OCI" <<'EOF'
import json, sys
path, rootfs, args, cg = sys.argv[1:]
s = json.load(open(path))
s['root'] = {'path': rootfs, 'readonly': True}
s['process']['args'] = json.loads(args)
s['process']['terminal'] = False
s['process']['env'] = ['PATH=/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm']
s['hostname'] = 'bench'
s['mounts'] = [m for m in s['mounts'] if m['destination'] != '/sys/fs/cgroup']
s['linux']['namespaces'] = [{'type': t} for t in ('pid', 'ipc', 'uts', 'mount')]
s['linux']['cgroupsPath'] = cg + '/' + ('true' if args.find('true') >= 0 else 'sleep')
json.dump(s, open(path, 'w'), indent=1)
EOF
}
mkbundle "$TMP/b-true" '["/bin/true"]'
mkbundle "$TMP/b-sleep" '["/bin/sleep", "100000"]'

# Our agent, as root in its own mount namespace with a private /run, one connection.
unshare -m sh -c 'mount --make-rprivate / && mount -t tmpfs -o mode=755 tmpfs /run &&
  exec "$0" --server-addr "unix://$1" --cmdline-file /dev/null' "$AGENT" "$TMP/agent.sock" \
  >"$TMP/agent.log" 2>&1 {LOCKFD}>&- &
AGENT_PID=$!
for ((i = 0; i < 200; i++)); do [[ -S $TMP/agent.sock ]] && break; sleep 0.05; done
[[ -S $TMP/agent.sock ]] || { echo "run.sh: agent did not start:" >&2; cat "$TMP/agent.log" >&2; exit 1; }
coproc KBP { exec "$KB" agent "unix://$TMP/agent.sock" "$AGENT_PID" "$ROOTFS" "$CG_OURS" {LOCKFD}>&-; }
KB_PID=$KBP_PID
exec {KB_IN}>&"${KBP[1]}" {KB_OUT}<&"${KBP[0]}"
ours() { # COMMAND -> its result line
  local line
  echo "$1" >&"$KB_IN"
  read -r -t 600 line <&"$KB_OUT" || { echo "run.sh: kabench died on '$1'; agent log:" >&2; tail -5 "$TMP/agent.log" >&2; exit 1; }
  echo "$line"
}

smaps() { # PID -> "rss_kB pss_kB"
  awk '/^Rss:/ {r=$2} /^Pss:/ {p=$2} END {print r, p}' "/proc/$1/smaps_rollup"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- footprint (idle: sandbox created, no container) ----
ours "fill 0" >/dev/null
read -r IDLE_RSS IDLE_PSS < <(smaps "$AGENT_PID")
echo "run.sh: idle agent RSS ${IDLE_RSS} kB PSS ${IDLE_PSS} kB" >&2

# ---- 1. container start ----
# One untimed start of each first: a first start is colder than the rest, and a
# runtime that cannot run the bundle at all says why here (kabench shows its stderr),
# after one retry a second later (a fresh machine's first crun run was once refused
# and the next run of the script passed; not reproduced since).
warm_up() { # DIR RUNTIME ID
  (cd "$1" && "$KB" time "$2" run "$3" >/dev/null) && return 0
  sleep 1
  (cd "$1" && "$KB" time "$2" run "$3-again" >/dev/null) && return 0
  echo "run.sh: $2 cannot run the benchmark's container (its message is above)" >&2
  exit 1
}
ours start >/dev/null
warm_up "$TMP/b-true" crun kb-warm-c
warm_up "$TMP/b-true" runc kb-warm-r
echo "run.sh: container start, $RUNS runs each, ours/crun/runc alternated" >&2
for ((i = 1; i <= RUNS; i++)); do
  ours start >>"$TMP/start-ours"
  (cd "$TMP/b-true" && "$KB" time crun run "kb-c$i") >>"$TMP/start-crun"
  (cd "$TMP/b-true" && "$KB" time runc run "kb-r$i") >>"$TMP/start-runc"
  ((i % 10)) || echo "  $i/$RUNS" >&2
done

# ---- 2. exec ----
echo "run.sh: exec, $EXEC_RUNS runs each, ours/crun alternated" >&2
(cd "$TMP/b-sleep" && crun run -d kb-exec </dev/null >/dev/null 2>&1)
for ((i = 1; i <= EXEC_RUNS; i++)); do
  ours exec >>"$TMP/exec-ours"
  "$KB" time crun exec kb-exec true >>"$TMP/exec-crun"
done
crun kill kb-exec KILL; sleep 0.2; crun delete -f kb-exec 2>/dev/null || true

# ---- 3. streaming ----
echo "run.sh: streaming $STREAM_BYTES bytes, $STREAM_ROUNDS rounds, ours/pipe alternated" >&2
for ((i = 1; i <= STREAM_ROUNDS; i++)); do
  ours "stream $STREAM_BYTES" >>"$TMP/stream-ours"
  "$KB" pipe "$PAYLOAD" "$STREAM_BYTES" 2>/dev/null >>"$TMP/stream-pipe"
done
awk -v n="$STREAM_BYTES" '$3 != n {print "run.sh: short stream: " $3 " bytes"; exit 1}' \
  "$TMP/stream-ours" "$TMP/stream-pipe" >&2

# ---- 4. footprint with FILL running containers ----
echo "run.sh: footprint with $FILL running containers" >&2
ours "fill $FILL" >/dev/null
read -r FULL_RSS FULL_PSS < <(smaps "$AGENT_PID")
ours clear >/dev/null
read -r AFTER_RSS AFTER_PSS < <(smaps "$AGENT_PID")
echo "quit" >&"$KB_IN"
wait "$KB_PID" 2>/dev/null || true
KB_PID=
kill -TERM "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null || true; AGENT_PID=
if [[ $HUGETLB_MOUNTED -eq 1 ]]; then
  umount /sys/fs/cgroup/hugetlb && rmdir /sys/fs/cgroup/hugetlb && HUGETLB_MOUNTED=0
fi
flock -u "$LOCKFD"

[[ -f $RV_BIN ]] || (cd "$ROOT" && cmake --preset riscv64 >/dev/null && cmake --build --preset riscv64 >/dev/null) || true
RV_SIZE=$(stat -c %s "$RV_BIN" 2>/dev/null || echo "")

# ---- 6. Health.Check (bench/health.sh) ----
if [[ $HEALTH -eq 1 ]]; then
  echo "run.sh: Health.Check via bench/health.sh --rounds $HEALTH_ROUNDS" >&2
  "$HERE/health.sh" --build-dir "$BUILD_DIR" --rounds "$HEALTH_ROUNDS" --out "$TMP/health.md" >/dev/null
fi

# ---- 7. boot time and footprint in the riscv64 guest (bench/boot.sh; it locks per boot) ----
if [[ $BOOT -eq 1 ]]; then
  echo "run.sh: riscv64 guest under qemu via bench/boot.sh --runs $BOOT_RUNS --fill $FILL" >&2
  "$HERE/boot.sh" --runs "$BOOT_RUNS" --fill "$FILL" --build-dir "$BUILD_DIR" --guest-dir "$GUEST_DIR" \
    --out "$TMP/boot.env" {LOCKFD}>&- >"$TMP/boot.md"
  # shellcheck disable=SC1091
  . "$TMP/boot.env"
fi
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---- statistics ----
# stats FILE COL -> "median min max mean"
stats() {
  awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{v[NR]=$1; s+=$1}
    END {m = (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; print m, v[1], v[NR], s/NR}'
}
ms() { awk -v v="$1" 'BEGIN {printf "%.2f", v/1000}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a/b; else print "n/a"}'; }
mib() { awk -v v="$1" 'BEGIN {printf "%.1f", v/1048576}'; }
gbps() { awk -v b="$STREAM_BYTES" -v us="$1" 'BEGIN {printf "%.2f", b/us/1000}'; } # GB/s from µs

read -r so_med so_min so_max _ < <(stats "$TMP/start-ours" 1); read -r _ _ _ so_cpu < <(stats "$TMP/start-ours" 2)
read -r sc_med sc_min sc_max _ < <(stats "$TMP/start-crun" 1); read -r _ _ _ sc_cpu < <(stats "$TMP/start-crun" 2)
read -r sr_med sr_min sr_max _ < <(stats "$TMP/start-runc" 1); read -r _ _ _ sr_cpu < <(stats "$TMP/start-runc" 2)
read -r eo_med eo_min eo_max _ < <(stats "$TMP/exec-ours" 1); read -r _ _ _ eo_cpu < <(stats "$TMP/exec-ours" 2)
read -r ec_med ec_min ec_max _ < <(stats "$TMP/exec-crun" 1); read -r _ _ _ ec_cpu < <(stats "$TMP/exec-crun" 2)
read -r to_med to_min to_max _ < <(stats "$TMP/stream-ours" 1); read -r _ _ _ to_cpu < <(stats "$TMP/stream-ours" 2)
read -r _ _ _ to_client_cpu < <(stats "$TMP/stream-ours" 4)
read -r tp_med tp_min tp_max _ < <(stats "$TMP/stream-pipe" 1); read -r _ _ _ tp_cpu < <(stats "$TMP/stream-pipe" 2)

CPU_MODEL=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//' || true)
MEM=$(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)
mkdir -p "$OUTDIR"
OUT=$OUTDIR/results.md
{
  echo "# kata-agent (C) benchmarks"
  echo
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo '?')."
  echo "Machine: $(nproc) CPUs ($CPU_MODEL), $MEM, $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r)."
  echo "$(crun --version | head -1), $(runc --version | head -1). Load average before/after: $LOAD_BEFORE / $LOAD_AFTER."
  echo "Our agent: native build, one ttrpc connection kept, own mount namespace, CreateSandbox once;"
  echo "container cgroups under \`$CG_OURS\` (v1). crun/runc: the same busybox rootfs, same namespaces (pid, ipc, uts, mount)"
  echo "and mounts, cgroups under \`$CG_OCI\`. Compared commands alternated run by run."
  echo "CPU is the mean per run over all runs (the agent's share comes from /proc/PID/stat in clock ticks, too coarse per run)."
  echo
  echo "| benchmark | ours | reference | ours/reference | ours min–max | reference min–max |"
  echo "|---|---:|---:|---:|---|---|"
  echo "| container start, wall ms (median of $RUNS) vs crun | $(ms "$so_med") | $(ms "$sc_med") | **$(ratio "$so_med" "$sc_med")x** | $(ms "$so_min")–$(ms "$so_max") | $(ms "$sc_min")–$(ms "$sc_max") |"
  echo "| container start, wall ms (median of $RUNS) vs runc | $(ms "$so_med") | $(ms "$sr_med") | **$(ratio "$so_med" "$sr_med")x** | | $(ms "$sr_min")–$(ms "$sr_max") |"
  echo "| container start, CPU ms per run vs crun | $(ms "$so_cpu") | $(ms "$sc_cpu") | $(ratio "$so_cpu" "$sc_cpu")x | | |"
  echo "| container start, CPU ms per run vs runc | $(ms "$so_cpu") | $(ms "$sr_cpu") | $(ratio "$so_cpu" "$sr_cpu")x | | |"
  echo "| exec \`true\`, wall ms (median of $EXEC_RUNS) vs \`crun exec\` | $(ms "$eo_med") | $(ms "$ec_med") | **$(ratio "$eo_med" "$ec_med")x** | $(ms "$eo_min")–$(ms "$eo_max") | $(ms "$ec_min")–$(ms "$ec_max") |"
  echo "| exec \`true\`, CPU ms per run vs \`crun exec\` | $(ms "$eo_cpu") | $(ms "$ec_cpu") | $(ratio "$eo_cpu" "$ec_cpu")x | | |"
  echo "| streaming $(mib "$STREAM_BYTES") MiB, GB/s (median of $STREAM_ROUNDS) vs raw pipe | $(gbps "$to_med") | $(gbps "$tp_med") | **$(ratio "$tp_med" "$to_med")x** | $(gbps "$to_max")–$(gbps "$to_min") | $(gbps "$tp_max")–$(gbps "$tp_min") |"
  echo "| streaming, CPU s per GiB vs raw pipe | $(awk -v c="$to_cpu" -v b="$STREAM_BYTES" 'BEGIN {printf "%.2f", c/1e6*1073741824/b}') | $(awk -v c="$tp_cpu" -v b="$STREAM_BYTES" 'BEGIN {printf "%.2f", c/1e6*1073741824/b}') | $(ratio "$to_cpu" "$tp_cpu")x | | |"
  echo "| ... of which the agent and the writer / the client (kabench: ttrpc and protobuf decoding), CPU s per GiB | $(awk -v c="$to_cpu" -v k="$to_client_cpu" -v b="$STREAM_BYTES" 'BEGIN {printf "%.2f / %.2f", (c-k)/1e6*1073741824/b, k/1e6*1073741824/b}') | | | | |"
  if [[ -n $RV_SIZE ]]; then
    echo "| static riscv64 binary, stripped, MB vs upstream Rust agent (published, not measured here) | $(awk -v v="$RV_SIZE" 'BEGIN {printf "%.2f", v/1e6}') | 14.8–23 | $(awk -v v="$RV_SIZE" 'BEGIN {printf "%.2f–%.2f", v/23e6, v/14.8e6}')x | | |"
  fi
  echo "| agent RSS / PSS, MiB, idle (sandbox, no container) | $(mib $((IDLE_RSS * 1024))) / $(mib $((IDLE_PSS * 1024))) | | | | |"
  echo "| agent RSS / PSS, MiB, $FILL running containers | $(mib $((FULL_RSS * 1024))) / $(mib $((FULL_PSS * 1024))) | | | | |"
  echo "| agent RSS / PSS, MiB, after removing them | $(mib $((AFTER_RSS * 1024))) / $(mib $((AFTER_PSS * 1024))) | | | | |"
  if [[ $BOOT -eq 1 ]]; then
    echo "| riscv64 guest (qemu TCG): qemu start → agent answers Health, ms (median of $BOOT_RUNS) vs trivial /init's marker | $BOOT_HEALTH_MED | $BOOT_TRIVIAL_MED | $(ratio "$BOOT_HEALTH_MED" "$BOOT_TRIVIAL_MED")x | $BOOT_HEALTH_MIN–$BOOT_HEALTH_MAX | $BOOT_TRIVIAL_MIN–$BOOT_TRIVIAL_MAX |"
    echo "| riscv64 guest: qemu start → first container output, ms (median of $BOOT_RUNS) vs trivial /init's marker | $BOOT_OUTPUT_MED | $BOOT_TRIVIAL_MED | $(ratio "$BOOT_OUTPUT_MED" "$BOOT_TRIVIAL_MED")x | $BOOT_OUTPUT_MIN–$BOOT_OUTPUT_MAX | |"
    echo "| riscv64 guest: **the agent's own boot cost** (Health − trivial /init, per round), ms | **$BOOT_COST_MED** | | | $BOOT_COST_MIN–$BOOT_COST_MAX | |"
    echo "| riscv64 guest, cgroup v2: **the agent's own boot cost** (Health − trivial /init, per round), ms | **${BOOT_V2_COST_MED:-?}** | | | ${BOOT_V2_COST_MIN:-?}–${BOOT_V2_COST_MAX:-?} | |"
    if [[ $BOOT_FOOTPRINT -eq 1 ]]; then
      echo "| riscv64 guest: agent (PID 1) RSS / PSS, MiB, idle (sandbox, no container) | $(mib $((GUEST_IDLE_RSS * 1024))) / $(mib $((GUEST_IDLE_PSS * 1024))) | | | | |"
      echo "| riscv64 guest: agent RSS / PSS, MiB, $BOOT_FILL running containers | $(mib $((GUEST_FULL_RSS * 1024))) / $(mib $((GUEST_FULL_PSS * 1024))) | | | | |"
      echo "| riscv64 guest: agent RSS / PSS, MiB, after removing them | $(mib $((GUEST_AFTER_RSS * 1024))) / $(mib $((GUEST_AFTER_PSS * 1024))) | | | | |"
    fi
  fi
  if [[ $HEALTH -eq 1 && -f $TMP/health.md ]]; then
    # rows of health.sh: | server | calls/s | p50 | p99 | calls per CPU-s | per round |
    hrow() { grep "^| $1" "$TMP/health.md" | awk -F'|' -v c="$2" '{gsub(/[ *x]/, "", $c); print $c}'; }
    echo "| Health.Check calls/s vs containerd ttrpc (Go), median of $HEALTH_ROUNDS rounds | $(hrow ours 3) | $(hrow 'go ' 3) | **$(hrow '\*\*ours' 3)x** | | |"
    echo "| Health.Check calls per server CPU-second vs Go | $(hrow ours 6) | $(hrow 'go ' 6) | $(hrow '\*\*ours' 6)x | | |"
    echo "| Health.Check p50 µs vs Go | $(hrow ours 4) | $(hrow 'go ' 4) | $(hrow '\*\*ours' 4)x | | |"
  fi
  echo
  echo "Streaming ratio is ours/pipe throughput (pipe time / our time): 1.00 means as fast as the raw pipe."
  echo "Targets: container start faster than crun ($(awk -v a="$so_med" -v b="$sc_med" 'BEGIN {print (a < b) ? "met" : "missed"}'));"
  echo "streaming at least half the raw pipe ($(awk -v a="$to_med" -v b="$tp_med" 'BEGIN {print (b / a >= 0.5) ? "met" : "missed"}'))."
  echo
  echo "![chart](chart.png)"
  if [[ $BOOT -eq 1 ]]; then
    echo
    echo "## Boot and footprint in the riscv64 guest (bench/boot.sh)"
    echo
    echo "qemu-system-riscv64 $(qemu-system-riscv64 --version | head -1 | sed 's/.*version //'), TCG, \`-machine virt -smp 1\`,"
    echo "the kernel and initrd of \`$(realpath --relative-to="$ROOT" "$GUEST_DIR" 2>/dev/null || echo "$GUEST_DIR")\` (image-builder), started by"
    echo "\`image-builder/launch.sh\` with the virtio-fs share in every variant; A/B/B0 alternated run by run."
    echo "B's initrd is ours with \`/init\` replaced by \`bench/trivial-init.c\` (prints a line, powers off), so"
    echo "A − B is the agent's own start-up; B0's holds only that \`/init\`. Footprint: \`/proc/1/smaps_rollup\`"
    echo "read through the debug console, -m $BOOT_FILL_MEM, the $BOOT_FILL containers (\`sleep\`) started by kabench on one"
    echo "connection in ${GUEST_FILL_S:-?} s."
    echo
    cat "$TMP/boot.md"
  fi
  if [[ $HEALTH -eq 1 && -f $TMP/health.md ]]; then
    echo
    echo "## Health.Check detail (bench/health.sh)"
    echo
    sed 1,2d "$TMP/health.md"
  fi
} >"$OUT"

# ---- chart ----
cat >"$TMP/lat.dat" <<EOF
"start" $(ms "$so_med") $(ms "$sc_med") $(ms "$sr_med")
"exec" $(ms "$eo_med") $(ms "$ec_med") 0
EOF
cat >"$TMP/tp.dat" <<EOF
"ours (ReadStdout)" $(gbps "$to_med")
"raw pipe" $(gbps "$tp_med")
EOF
PANELS=2 WIDTH=1000
if [[ $BOOT -eq 1 ]]; then
  cat >"$TMP/boot.dat" <<EOF
"B0: trivial\\n/init alone" $BOOT_BARE_MED
"B: trivial /init,\\nour initrd" $BOOT_TRIVIAL_MED
"A: agent\\nHealth" $BOOT_HEALTH_MED
"A: container\\noutput" $BOOT_OUTPUT_MED
EOF
  PANELS=3 WIDTH=1500
fi
gnuplot <<EOF
set terminal pngcairo size $WIDTH,420 font ",10"
set output "$OUTDIR/chart.png"
set multiplot layout 1,$PANELS
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set yrange [0:*]
set title "container start / exec, median wall ms (lower is better)"
set ylabel "ms"
plot "$TMP/lat.dat" using 2:xtic(1) title "ours", "" using 3 title "crun", "" using 4 title "runc (start only)"
set title "streaming $(mib "$STREAM_BYTES") MiB, GB/s (higher is better)"
set ylabel "GB/s"
set style histogram rowstacked
plot "$TMP/tp.dat" using 2:xtic(1) notitle
$([[ $BOOT -eq 1 ]] && printf '%s\n' 'set title "riscv64 guest under qemu TCG: qemu start to ..., median ms"' \
  'set ylabel "ms"' 'set bmargin 4' 'set offsets 0, 0, graph 0.08, 0' \
  "plot \"$TMP/boot.dat\" using 2:xtic(1) notitle, '' using 0:2:2 with labels offset 0,0.8 notitle")
unset multiplot
EOF
cat "$OUT"
echo >&2
echo "run.sh: written to $OUT and $OUTDIR/chart.png" >&2
