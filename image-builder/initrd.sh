#!/usr/bin/env bash
# image-builder/initrd.sh: the initramfs whose /init is the static kata-agent.
#
# Usage: initrd.sh [--agent BIN] [--agent-ctl BIN] [--busybox BIN] [--kernel-dir KDIR]
#                  [--hostname NAME] [--shell-init] OUT.img
#
#   --agent      static kata-agent (default build/<preset>/kata-agent: riscv64, or the
#                preset of IB_ARCH as build.sh --arch sets it, e.g. x86_64-static)
#   --agent-ctl  static agent-ctl (default build/<preset>/agent-ctl)
#   --busybox    static busybox (default: Debian 13's busybox-static for IB_ARCH, cached)
#   --kernel-dir a modular kernel as kernel.sh --debian makes it: the modules named in
#                KDIR/modules.list and their dependencies go to /lib/modules/<ver>/
#                (as they are, with a modules.dep for them and modules.builtin) and
#                the names, in order, to /etc/kata-agent/modules, which the agent
#                loads as PID 1 (init/modules.c). Leave it out for a kernel with
#                everything built in.
#   --hostname   /etc/hostname (default "kata")
#   --shell-init debugging aid (it was the stand-in until init/ landed): /init is a
#                busybox script that does the PID 1 mounts, loads /etc/kata-agent/modules
#                (busybox modprobe), starts a shell on the virtio-serial port console.0
#                when the cmdline has agent.debug_console, and execs the agent, which
#                is then at /usr/bin/kata-agent
#
# The archive (newc cpio, gzip, byte-reproducible; owner root) holds only:
#   /init                      the agent, stripped (the kernel runs it as PID 1)
#   /usr/bin/agent-ctl         for checks from the debug console
#   /bin/busybox, /bin/sh      the debug console's shell (`busybox --install -s` in the
#                              guest adds the other applets)
#   /etc/hostname, /etc/kata-agent/modules (modular kernels), /lib/modules/<ver>/...
#   /dev/console               (character device 5:1, for the kernel's initial console)
#   empty /proc /sys /dev /run /tmp /sbin /usr/sbin /lib/modules /var
# A stamp beside OUT.img makes a second run with the same inputs a no-op.
set -euo pipefail
IB_NAME=initrd
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/build.sh"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

agent=$IB_SRC/build/$IB_PRESET/kata-agent
ctl=$IB_SRC/build/$IB_PRESET/agent-ctl
busybox="" kdir="" hostname=kata shell_init=0 out=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --agent) agent=${2:?}; shift ;;
    --agent-ctl) ctl=${2:?}; shift ;;
    --busybox) busybox=${2:?}; shift ;;
    --kernel-dir) kdir=${2:?}; shift ;;
    --hostname) hostname=${2:?}; shift ;;
    --shell-init) shell_init=1 ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) [[ -z $out ]] || { usage >&2; exit 2; }; out=$1 ;;
    esac
    shift
done
[[ -n $out ]] || { usage >&2; exit 2; }
[[ -x $agent ]] || ib_die "agent '$agent' not found (cmake --preset $IB_PRESET && cmake --build --preset $IB_PRESET)"
[[ -x $ctl ]] || ib_die "agent-ctl '$ctl' not found"
[[ -n $busybox ]] || busybox=$(ib_busybox)
ib_need cpio cpio
ib_need gzip gzip
mkdir -p "$(dirname -- "$out")"
out=$(realpath -- "$out")

mod_inputs=()
if [[ -n $kdir ]]; then
    [[ -n $(ib_kernel_version "$kdir") ]] || ib_die "--kernel-dir $kdir has no modules/lib/modules/<version>/"
    m=$(ib_module_inputs "$kdir") || exit 1
    mapfile -t mod_inputs <<<"$m"
fi

# Everything the archive depends on; same key = same bytes, nothing to do.
key=$(ib_key "$IB_DIR/initrd.sh" "$IB_DIR/build.sh" "$agent" "$ctl" "$busybox" \
    "hostname=$hostname" "shell_init=$shell_init" ${mod_inputs[@]+"${mod_inputs[@]}"})
if ib_stamp_ok "$out" "$key"; then
    ib_log "up to date: $out ($(ib_size "$out"))"
    exit 0
fi
ib_stamp_clear "$out"

stage=$(mktemp -d "$out.stage.XXXXXX")
trap 'rm -rf -- "$stage" "$out.tmp"' EXIT
cd "$stage"
mkdir -p proc sys dev run tmp etc bin sbin usr/bin usr/sbin lib/modules var
chmod 1777 tmp

if [[ $shell_init == 1 ]]; then
    ib_strip "$agent" usr/bin/kata-agent
    cat >init <<'EOF'
#!/bin/sh
# initrd.sh --shell-init (debugging aid): the PID 1 start-up of
# reference/AGENT-PROTOCOL.md section 5.1 done by busybox, then the agent.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
bb=/bin/busybox
$bb mount -t proc -o nosuid,nodev,noexec proc /proc
$bb mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
$bb mount -t devtmpfs -o nosuid dev /dev
$bb mkdir -p /dev/pts /dev/shm
$bb mount -t devpts -o nosuid,noexec devpts /dev/pts
$bb mount -t tmpfs -o nosuid,nodev tmpfs /dev/shm
$bb mount -t tmpfs -o nosuid,nodev tmpfs /run
if [ -f /etc/kata-agent/modules ]; then
    while read -r m; do
        $bb modprobe "$m" || echo "init: modprobe $m failed"
    done </etc/kata-agent/modules
fi
# A root shell on the virtio-serial port console.0 (launch.sh --console-sock).
case " $($bb cat /proc/cmdline) " in
*" agent.debug_console "*)
    for p in /sys/class/virtio-ports/*; do
        [ "$($bb cat "$p/name" 2>/dev/null)" = console.0 ] || continue
        dev=/dev/${p##*/}
        $bb setsid /bin/sh -c "while :; do /bin/sh -i <>$dev >&0 2>&0; $bb sleep 1; done" &
    done ;;
esac
exec /usr/bin/kata-agent
EOF
    chmod 0755 init
else
    ib_strip "$agent" init
    chmod 0755 init
fi
ib_strip "$ctl" usr/bin/agent-ctl
cp -- "$busybox" bin/busybox
chmod 0755 bin/busybox usr/bin/agent-ctl
ln -s busybox bin/sh
printf '%s\n' "$hostname" >etc/hostname

nmod=0
[[ -z $kdir ]] || nmod=$(ib_install_modules "$kdir" "$stage")

# newc entry for a character device, written by hand so that no mknod (root) is
# needed: 110-byte header, NUL-terminated name padded to 4 bytes, no data.
cpio_chardev() {   # NAME MODE MAJOR MINOR
    local name=$1 n
    n=$((${#name} + 1))
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
        1 $((0020000 | $2)) 0 0 1 0 0 0 0 "$3" "$4" "$n" 0
    printf '%s\0' "$name"
    head -c $(((4 - (110 + n) % 4) % 4)) /dev/zero
}
cpio_trailer() {
    printf '070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X' \
        0 0 0 0 1 0 0 0 0 0 0 11 0
    printf 'TRAILER!!!\0'
    head -c 3 /dev/zero
}

# Reproducible: fixed timestamps, sorted names, owner 0:0, gzip without a name/time.
find . -mindepth 1 -exec touch -h -d @0 {} +
{
    find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort |
        cpio -o -H newc --reproducible --owner 0:0 --quiet
    cpio_chardev dev/console 0600 5 1
    cpio_trailer
} | gzip -n -6 >"$out.tmp"   # -9: 0.3% smaller, 8x slower
mv -f -- "$out.tmp" "$out"
ib_stamp_write "$out" "$key"

nfiles=$(find . -mindepth 1 | wc -l)
ib_log "wrote $out: $(ib_size "$out") ($((nfiles + 1)) entries, $(ib_size "$stage") unpacked;" \
    "/init $(ib_size "$stage/init"), agent-ctl $(ib_size usr/bin/agent-ctl), busybox $(ib_size bin/busybox)," \
    "$nmod modules)"
