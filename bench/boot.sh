#!/usr/bin/env bash
# Boot time and guest footprint of our agent in the guest (riscv64 by default; --arch x86_64|aarch64) under qemu (TCG).
#
# Usage: bench/boot.sh [options]      (as root; bench/run.sh calls it; see bench/README.md)
#
# Boot, alternated run by run (A, A2, B, B0, then A2, B, B0, A: the order rotates each
# round), every VM started by
# image-builder/launch.sh with the same kernel, memory, devices and virtio-fs share:
#   A   our initrd (/init = the agent): qemu start -> the agent answers Health (one
#       Check sent as soon as qemu's socket exists; it waits in the virtio-serial port
#       until the agent opens it), and qemu start -> the first stdout line of a
#       container (CreateSandbox with the share, then `agent-ctl run` of `echo`)
#   A2  the same as A with cgroup v2 only (systemd.unified_cgroup_hierarchy=1
#       cgroup_no_v1=all, what runtime-rs passes)
#   B   the same initrd with /init replaced by bench/trivial-init.c (an appended cpio
#       overrides it): qemu start -> its marker on the console. A - B is the agent's
#       own cost; the archive to unpack is the same
#   B0  an initrd holding only the trivial /init: what the rest of our initrd
#       (agent, agent-ctl, busybox) costs to unpack shows as B - B0
# Footprint: one more boot (--fill-mem), PID 1's Rss/Pss from /proc/1/smaps_rollup read
# through the debug console: idle (sandbox, no container), with --fill containers
# running `sleep` (kabench on one connection), after removing them.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)

BUILD_DIR=$ROOT/build/native
GUEST=${KA_GUEST_DIR:-}
ARCH=riscv64
RUNS=5
MEM=512
FILL=100
FILL_MEM=1024
FOOTPRINT=1
OUT=
LOCK=/tmp/ka-test.lock
MARKER='ka-trivial-init: up'

usage() {
  cat <<EOF
Usage: bench/boot.sh [options]         (as root)
  --runs N          boots per variant, alternated A/A2/B/B0, rotated per round (default $RUNS)
  --mem MB          guest RAM for the boot runs (default $MEM, launch.sh's default)
  --fill N          running containers for the loaded footprint (default $FILL)
  --fill-mem MB     guest RAM for the footprint boot (default $FILL_MEM)
  --no-footprint    boot times only
  --build-dir DIR   native build with agent-ctl and kabench (default build/native)
  --arch A          the guest's architecture: riscv64 (default), x86_64, aarch64
                    (image-builder/build.sh --arch A, launch.sh --arch A)
  --guest-dir DIR   image-builder output (default build/guest[-A], or \$KA_GUEST_DIR);
                    image-builder/build.sh --out DIR makes it when it is missing
  --out FILE        also write the results as shell assignments (for bench/run.sh)
The boots, then the footprint boot, hold $LOCK (flock), as the e2e tests do.
EOF
}

while [[ $# -gt 0 ]]; do
  case $1 in
    --runs) RUNS=$2; shift 2;;
    --mem) MEM=$2; shift 2;;
    --fill) FILL=$2; shift 2;;
    --fill-mem) FILL_MEM=$2; shift 2;;
    --no-footprint) FOOTPRINT=0; shift;;
    --build-dir) BUILD_DIR=$2; shift 2;;
    --guest-dir) GUEST=$2; shift 2;;
    --arch) ARCH=$2; shift 2;;
    --out) OUT=$2; shift 2;;
    -h|--help) usage; exit 0;;
    *) echo "boot.sh: unknown option $1" >&2; usage >&2; exit 2;;
  esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ && $FILL =~ ^[0-9]+$ ]] || { echo "boot.sh: --runs and --fill take numbers" >&2; exit 2; }
[[ $(id -u) -eq 0 ]] || { echo "boot.sh: run as root (virtiofsd)" >&2; exit 1; }
case $ARCH in
  riscv64) GUEST=${GUEST:-$ROOT/build/guest} CC_TRIVIAL=riscv64-linux-gnu-gcc ;;
  x86_64) GUEST=${GUEST:-$ROOT/build/guest-x86_64} CC_TRIVIAL=gcc ;;
  aarch64) GUEST=${GUEST:-$ROOT/build/guest-aarch64} CC_TRIVIAL=aarch64-linux-gnu-gcc ;;
  *) echo "boot.sh: --arch takes riscv64, x86_64 or aarch64" >&2; exit 2;;
esac
for t in "qemu-system-$ARCH" socat cpio gzip "$CC_TRIVIAL"; do
  command -v "$t" >/dev/null || { echo "boot.sh: no $t (see image-builder/README.md for the packages)" >&2; exit 1; }
done
CTL=$BUILD_DIR/agent-ctl
[[ -x $CTL ]] || { echo "boot.sh: no $CTL: cmake --preset native && cmake --build --preset native" >&2; exit 1; }
if [[ $FOOTPRINT -eq 1 ]]; then
  "$HERE/build-kabench.sh" "$BUILD_DIR"
fi
if [[ ! -f $GUEST/Image || ! -f $GUEST/initrd.img || ! -x $GUEST/ctr-rootfs/bin/busybox ||
      ! -x $GUEST/bin/virtiofsd ]]; then
  echo "boot.sh: guest images missing in $GUEST; image-builder/build.sh --out $GUEST" >&2
  "$ROOT/image-builder/build.sh" --arch "$ARCH" --out "$GUEST" >&2
fi

TMP=$(mktemp -d /tmp/ka-boot.XXXXXX)
LAUNCH=$ROOT/image-builder/launch.sh
PIDFILE=$TMP/qemu.pid
exec {LOCKFD}>"$LOCK"
cleanup() {
  local rc=$?
  [[ -n ${CON_PID:-} ]] && { kill "$CON_PID" 2>/dev/null || true; }
  [[ -n ${KB_PID:-} ]] && { kill "$KB_PID" 2>/dev/null || true; }
  [[ -f $PIDFILE ]] && { "$LAUNCH" --stop --pidfile "$PIDFILE" >/dev/null 2>&1 || true; }
  wait 2>/dev/null || true
  rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Private copies of what is booted, so that a rebuild of the guest during the run
# changes nothing.
cp "$GUEST/Image" "$TMP/Image"
cp "$GUEST/initrd.img" "$TMP/initrd-agent.img"
cp "$CTL" "$TMP/agent-ctl"; CTL=$TMP/agent-ctl
[[ $FOOTPRINT -eq 0 ]] || { cp "$BUILD_DIR/kabench" "$TMP/kabench"; KB=$TMP/kabench; }

# ---- the trivial /init, static riscv64 with the flags of cmake/riscv64-linux-gnu.cmake
# (Debian 13's static glibc, linked by binutils 2.44; see image-builder/ctr-rootfs.sh) ----
# (x86_64: the host gcc and Debian 12's static glibc, as the x86_64-static preset;
# aarch64: the arm64 sysroot, as cmake/aarch64-linux-gnu.cmake) ----
CACHE=${KATA_AGENT_CACHE:-$HOME/.cache/kata-agent-c}
mkdir -p "$TMP/trivial"
if [[ $ARCH == riscv64 ]]; then
  bash "$ROOT/cmake/fetch-sysroot.sh" "$CACHE" >&2
  SR=$CACHE/sysroot LIB=$CACHE/sysroot/usr/lib/riscv64-linux-gnu
  riscv64-linux-gnu-gcc --sysroot="$SR" -nostdinc -isystem "$(riscv64-linux-gnu-gcc -print-file-name=include)" \
    -isystem "$SR/usr/include/riscv64-linux-gnu" -isystem "$SR/usr/include" \
    -std=gnu11 -Os -Wall -Wextra -Werror -static -B"$LIB/" -L"$LIB" -B"$CACHE/bin/" -s \
    -o "$TMP/trivial/init" "$HERE/trivial-init.c"
elif [[ $ARCH == aarch64 ]]; then
  bash "$ROOT/cmake/fetch-sysroot-arm64.sh" "$CACHE" >&2
  SR=$CACHE/sysroot-aarch64 LIB=$CACHE/sysroot-aarch64/usr/lib/aarch64-linux-gnu
  aarch64-linux-gnu-gcc --sysroot="$SR" -nostdinc -isystem "$(aarch64-linux-gnu-gcc -print-file-name=include)" \
    -isystem "$SR/usr/include/aarch64-linux-gnu" -isystem "$SR/usr/include" \
    -std=gnu11 -Os -Wall -Wextra -Werror -static -B"$LIB/" -L"$LIB" -s \
    -o "$TMP/trivial/init" "$HERE/trivial-init.c"
else
  gcc -std=gnu11 -Os -Wall -Wextra -Werror -static -s -o "$TMP/trivial/init" "$HERE/trivial-init.c"
fi
# newc cpio, gzip: the kernel unpacks concatenated archives in order, a later file
# replacing an earlier one of the same name.
(cd "$TMP/trivial" && echo init | cpio -o -H newc --owner 0:0 --quiet | gzip -n) >"$TMP/trivial.cpio.gz"
cat "$TMP/initrd-agent.img" "$TMP/trivial.cpio.gz" >"$TMP/initrd-trivial.img"
# The kernel opens /dev/console for init before devtmpfs is mounted anywhere: the bare
# archive needs the node too.
mkdir -p "$TMP/bare/dev"
cp "$TMP/trivial/init" "$TMP/bare/init"
mknod -m 600 "$TMP/bare/dev/console" c 5 1
(cd "$TMP/bare" && printf '%s\n' dev dev/console init | cpio -o -H newc --owner 0:0 --quiet | gzip -n) >"$TMP/initrd-bare.img"

# ---- the share: a container rootfs as the Kata runtime lays it out ----
SHARED=$TMP/shared
mkdir -p "$SHARED/boot" "$SHARED/fill"
cp -a "$GUEST/ctr-rootfs" "$SHARED/boot/rootfs"
cp -a "$GUEST/ctr-rootfs" "$SHARED/fill/rootfs"
GUEST_SHARED=/run/kata-containers/shared/containers
mkdir -p "$TMP/bundle"
sed -e 's|"args": \["sh"\]|"args": ["echo", "ka-container-output"]|' \
    -e 's|"readonly": false|"readonly": true|' \
    "$ROOT/tools/agent-ctl/examples/config.json" >"$TMP/bundle/config.json"
SANDBOX="{\"hostname\": \"boot\", \"sandbox_id\": \"boot\", \"storages\": [{\"driver\": \"virtio-fs\",
  \"source\": \"kataShared\", \"fstype\": \"virtiofs\", \"mount_point\": \"$GUEST_SHARED/\"}]}"

ctl() { timeout 120 "$CTL" --addr "unix://$TMP/agent.sock" "$@"; }
# µs from the qemu start launch.sh recorded to T (an $EPOCHREALTIME taken at the event)
since_t0() { awk -v a="$(cat "$TMP/t0")" -v b="$1" 'BEGIN {printf "%d", (b - a) * 1e6}'; }
# A sleep without a fork per call (the host has few CPUs and qemu needs one): a read
# that times out on a fifo nobody writes to.
mkfifo "$TMP/nap"
exec {NAPFD}<>"$TMP/nap"
nap() { read -r -t "$1" -u "$NAPFD" _ || true; }
# The lock is held for the whole series of boots (a minute or so) rather than per boot:
# fewer waits behind test runs, and no test competing for the CPUs between A and B.
lock() { flock -n "$LOCKFD" || { echo "boot.sh: waiting for $LOCK (a test run holds it)" >&2; flock "$LOCKFD"; }; }
unlock() { flock -u "$LOCKFD"; }
boot() { # INITRD MEM [launch.sh args]: start the VM in the background
  local initrd=$1 mem=$2; shift 2
  rm -f "$TMP/console.log" "$TMP/t0"
  "$LAUNCH" --arch "$ARCH" --virtiofsd "$GUEST/bin/virtiofsd" --agent-sock "$TMP/agent.sock" --shared "$SHARED" --kernel "$TMP/Image" \
    --initrd "$initrd" --mem "$mem" --log "$TMP/console.log" --pidfile "$PIDFILE" \
    --background --t0-file "$TMP/t0" --ctl "$CTL" "$@" {LOCKFD}>&- {NAPFD}>&- 2>"$TMP/launch.log" ||
    { cat "$TMP/launch.log" >&2; exit 1; }
}
qemu_pid() { awk '$1 == "qemu" {print $2}' "$PIDFILE"; }
shutdown_vm() { # [wait]: stop qemu; wait: first give a guest that
  # powers itself off (the trivial init) up to 5 s to do so
  local q i
  q=$(qemu_pid)
  if [[ ${1:-} == wait ]]; then
    for ((i = 0; i < 250; i++)); do [[ -d /proc/$q ]] || break; sleep 0.02; done
  fi
  "$LAUNCH" --stop --pidfile "$PIDFILE" >/dev/null 2>&1 || true
}
fail() { echo "boot.sh: $*" >&2; [[ -f $TMP/console.log ]] && tail -n 20 "$TMP/console.log" >&2; exit 1; }

run_agent() { # [launch.sh args] -> "health_us output_us"
  local health output line now
  boot "$TMP/initrd-agent.img" "$MEM" "$@"
  for ((i = 0; i < 1000; i++)); do [[ -S $TMP/agent.sock ]] && break; nap 0.005; done
  # One Check, sent at once: the request waits in the port until the agent opens it.
  ctl --timeout 60 check >/dev/null || fail "no Health answer"
  now=$EPOCHREALTIME
  health=$(since_t0 "$now")
  ctl call CreateSandbox "$SANDBOX" >/dev/null || fail "CreateSandbox failed"
  line=$(ctl run --guest-rootfs "$GUEST_SHARED/boot/rootfs" "$TMP/bundle" c1 |
         { IFS= read -r l; t=$EPOCHREALTIME; cat >/dev/null; echo "$(since_t0 "$t") $l"; }) ||
    fail "container failed"
  [[ $line == *" ka-container-output" ]] || fail "container output: '$line'"
  output=${line%% *}
  shutdown_vm
  # The agent's boot timeline (agent.log=debug, launch.sh's default), kept per boot.
  [[ $# -gt 0 ]] || cp "$TMP/console.log" "$TMP/console-agent-$r.log"
  echo "$health $output"
}
run_trivial() { # INITRD -> "marker_us"
  local t="" q con line buf="" gone=0 now
  boot "$1" "$MEM"
  q=$(qemu_pid)
  # Follow the console log (launch.sh creates it before starting qemu) from an open
  # fd: each read returns what is new; a line may come in pieces.
  exec {con}<"$TMP/console.log"
  for ((i = 0; i < 3000; i++)); do
    while IFS= read -r line <&"$con"; do buf+=$line; [[ $buf == *"$MARKER"* ]] && break 2; buf=""; done
    buf+=$line
    [[ $buf == *"$MARKER"* || $gone == 1 ]] && break
    [[ -d /proc/$q ]] || gone=1   # one more look at the log, then give up
    nap 0.005
  done
  now=$EPOCHREALTIME
  [[ $buf == *"$MARKER"* ]] && t=$(since_t0 "$now")
  exec {con}<&-
  [[ -n $t ]] || fail "no marker from the trivial init"
  shutdown_vm wait
  echo "$t"
}

# A2: our agent with cgroup v2 only, as runtime-rs boots it.
V2_CMDLINE="systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all"
echo "boot.sh: $RUNS boots each, A (agent) / A2 (agent, cgroup v2) / B (trivial /init, same initrd) / B0 (trivial /init alone) alternated, -m $MEM" >&2
lock
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
# The order rotates each round (A A2 B B0, A2 B B0 A, ...), so that no variant always
# boots right after the same one: with A always first, A − B read 47 ms and A2 − B
# 23 ms for the same binary (15 rounds); rotated, 44 and 36 (12 rounds).
run_variant() {
  case $1 in
    0) run_agent >>"$TMP/res-agent" ;;
    1) run_agent --cmdline "$V2_CMDLINE" >>"$TMP/res-agent-v2" ;;
    2) run_trivial "$TMP/initrd-trivial.img" >>"$TMP/res-trivial" ;;
    3) run_trivial "$TMP/initrd-bare.img" >>"$TMP/res-bare" ;;
  esac
}
for ((r = 1; r <= RUNS; r++)); do
  for ((v = 0; v < 4; v++)); do run_variant $(((r - 1 + v) % 4)); done
  echo "  $r/$RUNS: A $(tail -n1 "$TMP/res-agent") A2 $(tail -n1 "$TMP/res-agent-v2") B $(tail -n1 "$TMP/res-trivial") B0 $(tail -n1 "$TMP/res-bare") (µs)" >&2
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
unlock

# ---- footprint ----
if [[ $FOOTPRINT -eq 1 ]]; then
  echo "boot.sh: footprint, -m $FILL_MEM, $FILL containers" >&2
  lock
  boot "$TMP/initrd-agent.img" "$FILL_MEM" --console-sock "$TMP/console.sock" --wait-ready 60
  ctl call CreateSandbox "$SANDBOX" >/dev/null || fail "CreateSandbox failed"
  # The debug console on console.0: a shell; one connection for the whole phase.
  # (fifos rather than a second coproc: bash keeps only one)
  mkfifo "$TMP/con.in" "$TMP/con.out"
  socat - "UNIX-CONNECT:$TMP/console.sock" <"$TMP/con.in" >"$TMP/con.out" 2>/dev/null {LOCKFD}>&- &
  CON_PID=$!
  exec {CON_IN}>"$TMP/con.in" {CON_OUT}<"$TMP/con.out"
  smaps() { # -> "rss_kB pss_kB" of the guest's PID 1
    local line
    echo "busybox awk '/^Rss:/ {r=\$2} /^Pss:/ {p=\$2} END {print \"KA-\" \"SMAPS\", r, p}' /proc/1/smaps_rollup" >&"$CON_IN"
    while IFS= read -r -t 30 line <&"$CON_OUT"; do
      [[ $line =~ KA-SMAPS\ ([0-9]+)\ ([0-9]+) ]] && { echo "${BASH_REMATCH[1]} ${BASH_REMATCH[2]}"; return; }
    done
    fail "no answer from the debug console"
  }
  maps() { # STATE -> "STATE mapping kB ..." of the guest's PID 1: Rss by mapping (heap,
    # anonymous, stack, the binary), to see what holds the footprint
    local line out="$1"
    echo "busybox awk '/^[0-9a-f]+-[0-9a-f]+ / {n = (\$6 == \"\") ? \"anon\" : \$6} /^Rss:/ {r[n] += \$2} END {for (n in r) if (r[n]) printf \"%s=%d \", n, r[n]; print \"KA-\" \"MAPS\"}' /proc/1/smaps" >&"$CON_IN"
    while IFS= read -r -t 30 line <&"$CON_OUT"; do
      [[ $line =~ ^(.*)KA-MAPS ]] && { echo "$out ${BASH_REMATCH[1]}"; return; }
    done
    fail "no answer from the debug console"
  }
  read -r IDLE_RSS IDLE_PSS < <(smaps)
  MAPS_IDLE=$(maps idle)
  coproc KBP { exec "$KB" agent "unix://$TMP/agent.sock" "$(qemu_pid)" "$GUEST_SHARED/fill/rootfs" /ka-bench no-sandbox {LOCKFD}>&-; }
  # shellcheck disable=SC2153  # KBP_PID is set by coproc
  KB_PID=$KBP_PID
  exec {KB_IN}>&"${KBP[1]}" {KB_OUT}<&"${KBP[0]}"
  kb() { local l; echo "$1" >&"$KB_IN"; read -r -t 900 l <&"$KB_OUT" || fail "kabench died on '$1'"; }
  t=$EPOCHREALTIME
  kb "fill $FILL"
  FILL_S=$(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.1f", b - a}')
  read -r FULL_RSS FULL_PSS < <(smaps)
  MAPS_FULL=$(maps "$FILL-running")
  kb clear
  read -r AFTER_RSS AFTER_PSS < <(smaps)
  MAPS_AFTER=$(maps after-removal)
  echo quit >&"$KB_IN"; wait "$KB_PID" 2>/dev/null || true; KB_PID=
  exec {CON_IN}>&-; kill "$CON_PID" 2>/dev/null || true; wait "$CON_PID" 2>/dev/null || true; CON_PID=
  shutdown_vm
  unlock
  echo "boot.sh: guest PID 1 Rss/Pss kB: idle $IDLE_RSS/$IDLE_PSS, $FILL containers" \
       "$FULL_RSS/$FULL_PSS (started in $FILL_S s), after removing them $AFTER_RSS/$AFTER_PSS" >&2
fi


# ---- statistics (µs in, ms out) ----
stats() { # FILE COL -> "median min max" in ms
  awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{v[NR] = $1}
    END {m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
         printf "%.0f %.0f %.0f\n", m / 1000, v[1] / 1000, v[NR] / 1000}'
}
read -r HEALTH_MED HEALTH_MIN HEALTH_MAX < <(stats "$TMP/res-agent" 1)
read -r OUTPUT_MED OUTPUT_MIN OUTPUT_MAX < <(stats "$TMP/res-agent" 2)
read -r V2_HEALTH_MED V2_HEALTH_MIN V2_HEALTH_MAX < <(stats "$TMP/res-agent-v2" 1)
read -r V2_OUTPUT_MED V2_OUTPUT_MIN V2_OUTPUT_MAX < <(stats "$TMP/res-agent-v2" 2)
read -r TRIVIAL_MED TRIVIAL_MIN TRIVIAL_MAX < <(stats "$TMP/res-trivial" 1)
read -r BARE_MED BARE_MIN BARE_MAX < <(stats "$TMP/res-bare" 1)
# The agent's own cost: the median of the per-round differences A - B (each round's
# pair ran back to back) next to the difference of the medians.
paste "$TMP/res-agent" "$TMP/res-trivial" | awk '{print $1 - $3}' >"$TMP/res-diff"
read -r COST_MED COST_MIN COST_MAX < <(stats "$TMP/res-diff" 1)
paste "$TMP/res-agent-v2" "$TMP/res-trivial" | awk '{print $1 - $3}' >"$TMP/res-diff-v2"
read -r V2_COST_MED V2_COST_MIN V2_COST_MAX < <(stats "$TMP/res-diff-v2" 1)

# The timeline of the boot whose Health time is the median (the lower middle one for an
# even count): the agent's "boot step" lines, each step's own ms and when it ended in ms
# since the kernel started (CLOCK_BOOTTIME).
MEDIAN_ROUND=$(awk '{print NR, $1}' "$TMP/res-agent" | sort -k2,2g | awk -v n="$RUNS" 'NR == int((n + 1) / 2) {print $1}')
timeline() {
  sed -n 's/.*"msg":"boot step".*"step":"\([^"]*\)","ms":"\([0-9.]*\)","since_boot_ms":"\([0-9.]*\)".*/\1|\2|\3/p' \
    "$TMP/console-agent-$MEDIAN_ROUND.log" | awk -F'|' '
    NR == 1 {printf "| kernel start → agent process start | | %.1f |\n", $3 - $2}
    {printf "| %s | %.1f | %.1f |\n", $1, $2, $3}'
}
TIMELINE=$(timeline)

{
  echo "Host load average before/after the boots: $LOAD_BEFORE / $LOAD_AFTER (TCG runs at the host's pace: a busy host slows every variant)."
  echo
  echo "| boot (qemu-system-$ARCH TCG, -smp 1 -m $MEM), ms | median | min | max |"
  echo "|---|---:|---:|---:|"
  echo "| A: qemu start → our agent answers Health | $HEALTH_MED | $HEALTH_MIN | $HEALTH_MAX |"
  echo "| A: qemu start → first output of a container (\`echo\`) | $OUTPUT_MED | $OUTPUT_MIN | $OUTPUT_MAX |"
  echo "| A2 (cgroup v2: $V2_CMDLINE): qemu start → Health | $V2_HEALTH_MED | $V2_HEALTH_MIN | $V2_HEALTH_MAX |"
  echo "| A2: qemu start → first output of a container | $V2_OUTPUT_MED | $V2_OUTPUT_MIN | $V2_OUTPUT_MAX |"
  echo "| B: qemu start → trivial /init's marker (same initrd) | $TRIVIAL_MED | $TRIVIAL_MIN | $TRIVIAL_MAX |"
  echo "| B0: qemu start → trivial /init's marker (initrd with only it) | $BARE_MED | $BARE_MIN | $BARE_MAX |"
  echo "| **the agent's own cost, A(Health) − B, per round** | **$COST_MED** | $COST_MIN | $COST_MAX |"
  echo "| **the agent's own cost with cgroup v2, A2(Health) − B, per round** | **$V2_COST_MED** | $V2_COST_MIN | $V2_COST_MAX |"
  echo
  if [[ -n $TIMELINE ]]; then
    echo "The agent's boot timeline in the median boot (round $MEDIAN_ROUND; steps after \"listener\" run on the loop or before the first request that needs them):"
    echo
    echo "| step | ms | ends at, ms since the kernel started |"
    echo "|---|---:|---:|"
    echo "$TIMELINE"
  else
    echo "No boot timeline in the median boot's console log (an agent without ka_boot_mark, or not agent.log=debug)."
  fi
  if [[ $FOOTPRINT -eq 1 ]]; then
    echo
    echo "Guest PID 1 (the agent), /proc/1/smaps_rollup, kB (-m $FILL_MEM): idle Rss $IDLE_RSS Pss $IDLE_PSS;"
    echo "$FILL running containers Rss $FULL_RSS Pss $FULL_PSS; after removing them Rss $AFTER_RSS Pss $AFTER_PSS."
    echo
    echo "Rss by mapping, kB (/proc/1/smaps):"
    echo
    echo '```'
    printf '%s\n' "$MAPS_IDLE" "$MAPS_FULL" "$MAPS_AFTER"
    echo '```'
  fi
}
if [[ -n $OUT ]]; then
  {
    for v in RUNS MEM FILL FILL_MEM FOOTPRINT HEALTH_MED HEALTH_MIN HEALTH_MAX OUTPUT_MED OUTPUT_MIN OUTPUT_MAX \
             TRIVIAL_MED TRIVIAL_MIN TRIVIAL_MAX BARE_MED BARE_MIN BARE_MAX COST_MED COST_MIN COST_MAX \
             V2_HEALTH_MED V2_HEALTH_MIN V2_HEALTH_MAX V2_OUTPUT_MED V2_OUTPUT_MIN V2_OUTPUT_MAX \
             V2_COST_MED V2_COST_MIN V2_COST_MAX; do
      echo "BOOT_$v=${!v}"
    done
    if [[ $FOOTPRINT -eq 1 ]]; then
      for v in IDLE_RSS IDLE_PSS FULL_RSS FULL_PSS AFTER_RSS AFTER_PSS FILL_S; do echo "GUEST_$v=${!v}"; done
    fi
  } >"$OUT"
fi
