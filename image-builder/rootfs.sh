#!/usr/bin/env bash
# image-builder/rootfs.sh: an ext4 guest image (virtio-blk root) with a busybox
# userland and the agent, laid out as Kata's osbuilder lays out its images.
#
# Usage: rootfs.sh [--agent BIN] [--agent-ctl BIN] [--busybox BIN] [--kernel-dir KDIR]
#                  [--agent-init yes|no] [--hostname NAME] [--size MB] OUT.img
#
#   --agent-init yes  (default) /sbin/init -> /usr/bin/kata-agent: boots with or
#                     without init=/usr/bin/kata-agent (osbuilder's AGENT_INIT=yes
#                     moves the binary to /sbin/init instead; same effect)
#   --agent-init no   the agent is a service: kata-agent.service and
#                     kata-containers.target are what a systemd image runs; this
#                     image has no systemd, so /sbin/init is busybox init and
#                     /etc/inittab stands in for the units (API mounts, then the
#                     agent; power-off when it exits, like FailureAction=poweroff).
#                     Boot it with launch.sh --image OUT.img --init /sbin/init
#   --kernel-dir      a modular kernel (see initrd.sh): its modules and
#                     /etc/kata-agent/modules go in too. Booting the image still
#                     needs virtio-blk and ext4 in the kernel itself
#   --size MB         image size (default: contents x 1.5 + 16 MiB, at least 64 MiB;
#                     the file is sparse)
#
# Contents (the units and anything else under rootfs/ in the checkout are copied
# as they are):
#   /usr/bin/kata-agent, /usr/bin/agent-ctl     static (riscv64, or IB_ARCH), stripped
#   /bin/busybox + every applet link (busybox --list-full)
#   /usr/lib/systemd/system/kata-agent.service, kata-containers.target
#   /etc/systemd/system/basic.target.wants/kata-containers.target -> the target
#   /etc: hostname, passwd, group, hosts, empty resolv.conf (the agent bind-mounts
#   the container's over it); /var/tmp -> ../tmp; /dev/console and /dev/null nodes
# Built with `mke2fs -d` (e2fsprogs) and debugfs: no root, no loop device. The
# image is byte-reproducible (fixed UUID, hash seed and times). A stamp beside
# OUT.img makes a second run with the same inputs a no-op.
set -euo pipefail
IB_NAME=rootfs
source "$(dirname "$(realpath "${BASH_SOURCE[0]}")")/build.sh"

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }

agent=$IB_SRC/build/$IB_PRESET/kata-agent
ctl=$IB_SRC/build/$IB_PRESET/agent-ctl
busybox="" kdir="" agent_init=yes hostname=kata size="" out=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --agent) agent=${2:?}; shift ;;
    --agent-ctl) ctl=${2:?}; shift ;;
    --busybox) busybox=${2:?}; shift ;;
    --kernel-dir) kdir=${2:?}; shift ;;
    --agent-init) agent_init=${2:?}; shift ;;
    --hostname) hostname=${2:?}; shift ;;
    --size) size=${2:?}; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage >&2; exit 2 ;;
    *) [[ -z $out ]] || { usage >&2; exit 2; }; out=$1 ;;
    esac
    shift
done
[[ -n $out ]] || { usage >&2; exit 2; }
[[ $agent_init == yes || $agent_init == no ]] || ib_die "--agent-init takes yes or no"
[[ -z $size || $size =~ ^[0-9]+$ ]] || ib_die "--size takes MiB"
[[ -x $agent ]] || ib_die "agent '$agent' not found (cmake --preset $IB_PRESET && cmake --build --preset $IB_PRESET)"
[[ -x $ctl ]] || ib_die "agent-ctl '$ctl' not found"
[[ -n $busybox ]] || busybox=$(ib_busybox)
PATH=$PATH:/sbin:/usr/sbin
ib_need mke2fs e2fsprogs
ib_need debugfs e2fsprogs
mkdir -p "$(dirname -- "$out")"
out=$(realpath -- "$out")
units=$IB_SRC/rootfs

mod_inputs=()
if [[ -n $kdir ]]; then
    [[ -n $(ib_kernel_version "$kdir") ]] || ib_die "--kernel-dir $kdir has no modules/lib/modules/<version>/"
    m=$(ib_module_inputs "$kdir") || exit 1
    mapfile -t mod_inputs <<<"$m"
fi
mapfile -t unit_files < <(find "$units" -type f | LC_ALL=C sort)
key=$(ib_key "$IB_DIR/rootfs.sh" "$IB_DIR/build.sh" "$agent" "$ctl" "$busybox" \
    "agent_init=$agent_init" "hostname=$hostname" "size=$size" "$(mke2fs -V 2>&1 | head -n1)" \
    "${unit_files[@]}" ${mod_inputs[@]+"${mod_inputs[@]}"})
if ib_stamp_ok "$out" "$key"; then
    ib_log "up to date: $out ($(ib_size "$out"))"
    exit 0
fi
ib_stamp_clear "$out"

stage=$(mktemp -d "$out.stage.XXXXXX")
trap 'rm -rf -- "$stage" "$out.tmp"' EXIT
cd "$stage"
mkdir -p bin sbin usr/bin usr/sbin lib/modules etc proc sys dev run tmp var root mnt
chmod 1777 tmp
chmod 0700 root
ln -s ../tmp var/tmp

# The checkout's rootfs/ tree: the systemd units (and any minimal /etc it grows).
cp -a -- "$units/." .
mkdir -p etc/systemd/system/basic.target.wants
ln -sfn /usr/lib/systemd/system/kata-containers.target \
    etc/systemd/system/basic.target.wants/kata-containers.target

ib_strip "$agent" usr/bin/kata-agent
ib_strip "$ctl" usr/bin/agent-ctl
cp -- "$busybox" bin/busybox
chmod 0755 bin/busybox usr/bin/kata-agent usr/bin/agent-ctl
# Every applet, linked relative to /bin/busybox (one perl, not ~270 ln).
applets=$(ib_run_rv "$busybox" --list-full) || ib_die "cannot list the busybox applets"
mapfile -t applets <<<"$applets"
perl -e 'for (@ARGV) {
            next if $_ eq "bin/busybox" || -e $_ || -l $_;
            my $up = "../" x (tr{/}{} ); symlink("${up}bin/busybox", $_) or die "symlink $_: $!\n";
         }' "${applets[@]}"

rm -f sbin/init
if [[ $agent_init == yes ]]; then
    ln -s ../usr/bin/kata-agent sbin/init
else
    ln -s ../bin/busybox sbin/init
    mkdir -p etc/init.d
    # What systemd does for kata-containers.target here, in busybox init's terms.
    cat >etc/inittab <<'EOF'
# Stand-in for systemd (this image has none): basic.target, then kata-agent.service.
::sysinit:/etc/init.d/rcS
::once:/etc/init.d/kata-agent
::ctrlaltdel:/sbin/poweroff -f
::shutdown:/bin/sync
EOF
    cat >etc/init.d/rcS <<'EOF'
#!/bin/sh
# The API file systems systemd mounts before kata-agent.service starts.
mount -t proc -o nosuid,nodev,noexec proc /proc
mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
mount -t devtmpfs -o nosuid dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts -o nosuid,noexec devpts /dev/pts
mount -t tmpfs -o nosuid,nodev tmpfs /dev/shm
mount -t tmpfs -o nosuid,nodev,mode=755 tmpfs /run
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp
mount -t cgroup2 -o nosuid,nodev,noexec,relatime,nsdelegate cgroup2 /sys/fs/cgroup
if [ -f /etc/kata-agent/modules ]; then
    while read -r m; do modprobe "$m"; done </etc/kata-agent/modules
fi
hostname -F /etc/hostname
EOF
    cat >etc/init.d/kata-agent <<'EOF'
#!/bin/sh
# kata-agent.service: the agent on the console; when it stops, so does the VM.
/usr/bin/kata-agent
echo "kata-agent exited ($?): powering off"
sync
poweroff -f
EOF
    chmod 0755 etc/init.d/rcS etc/init.d/kata-agent
fi

printf '%s\n' "$hostname" >etc/hostname
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >etc/passwd
printf 'root:x:0:\nnogroup:x:65534:\n' >etc/group
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >etc/hosts
: >etc/resolv.conf

nmod=0
[[ -z $kdir ]] || nmod=$(ib_install_modules "$kdir" "$stage")
if [[ $(id -u) == 0 ]]; then chown -R 0:0 .; fi
find . -mindepth 1 -exec touch -h -d @0 {} +

used_kib=$(du -sk --apparent-size . | cut -f1)
nfiles=$(find . | wc -l)
if [[ -z $size ]]; then
    size=$(((used_kib * 3 / 2 + nfiles * 4) / 1024 + 16))
    ((size >= 64)) || size=64
fi
cd - >/dev/null

# Fixed UUID, hash seed and times: the same inputs give the same bytes.
rm -f -- "$out.tmp"
truncate -s "${size}M" "$out.tmp"
E2FSPROGS_FAKE_TIME=1 mke2fs -q -F -t ext4 -L kata-rootfs -m 0 \
    -U 6b617461-6167-656e-742d-7269736376a4 -E hash_seed=6b617461-6167-656e-742d-686173680000,root_owner=0:0 \
    -d "$stage" "$out.tmp" "${size}M"
# debugfs makes nodes in its current directory, with no permission bits.
E2FSPROGS_FAKE_TIME=1 debugfs -w -f - "$out.tmp" >/dev/null 2>&1 <<'EOF'
cd /dev
mknod console c 5 1
sif console mode 020600
mknod null c 1 3
sif null mode 020666
EOF
# libext2fs gives every inode a random i_generation: zero them (reproducible bytes).
(cd "$stage" && find . -printf 'sif "/%P" generation 0\n') |
    E2FSPROGS_FAKE_TIME=1 debugfs -w -f - "$out.tmp" >/dev/null 2>&1
debugfs -R "ls -l /dev" "$out.tmp" 2>/dev/null | grep -q ' 20600 .* console *$' ||
    ib_die "debugfs did not make /dev/console"
fsck.ext4 -fn "$out.tmp" >/dev/null 2>&1 || ib_die "fsck.ext4 finds $out.tmp inconsistent"
mv -f -- "$out.tmp" "$out"
ib_stamp_write "$out" "$key"
ib_log "wrote $out: ${size} MiB ext4 ($(du -k "$out" | cut -f1) KiB allocated; $((used_kib / 1024)) MiB in $nfiles files;" \
    "agent-init=$agent_init, $nmod modules)"
