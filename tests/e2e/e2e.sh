#!/usr/bin/env bash
# End to end: the riscv64 guest under qemu (TCG), driven from the host over the
# virtio-serial agent channel as the Kata runtime drives the agent over vsock.
#
# Usage: tests/e2e/e2e.sh [virtiofs|9p] [cgroup-v2]
#   cgroup-v2: boot with agent.unified_cgroup_hierarchy=1 and check v2 limits
# Needs: image-builder/build.sh done (build/guest), build/native/agent-ctl.
# Prints "e2e: boot to ready X s" and "N passed, N failed".
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
GUEST=${KA_GUEST_DIR:-$SRC/build/guest}
CTL=${KA_AGENT_CTL_BIN:-$SRC/build/native/agent-ctl}
FS=${1:-virtiofs}
CGV2=${2:-}
# The debug console also on vsock port 1026: a listener of PID 1 that a container in
# the guest must not reach (see "only the host" below).
extra_cmdline=(--cmdline agent.debug_console_vport=1026)
# cgroup v2 also runs the mem-agent (its periods at their 10-minute defaults until the
# memcg check below shortens them through MemAgentMemcgSet).
[[ $CGV2 != cgroup-v2 ]] ||
    extra_cmdline+=(--cmdline agent.unified_cgroup_hierarchy=1 --cmdline agent.mem_agent_enable=1)

# shellcheck source=tests/e2e/lib.sh
. "$SRC/tests/e2e/lib.sh"
e2e_setup e2e

# --- the shared directory, laid out as the Kata runtime lays it out --------------
# <shared>/<cid>/rootfs on the host is guest_rootfs <cid> in the guest.
for cid in c1 c2 c3 c4; do
    mkdir -p "$SHARED/$cid"
    cp -a "$GUEST/ctr-rootfs" "$SHARED/$cid/rootfs"
done

# --- disks (the virtio-fs run): the way the runtime hands block devices over -------
# rp1 (00:10.0): a cold-plugged virtio-blk disk behind a PCIe root port holding a
#   container rootfs in rootfs/ (the devmapper convention): storage "blk", "10/00"
# rp2 (00:11.0): empty; a disk is hotplugged there through the qemu monitor while
#   CreateContainer waits for "11/00"
# rp3 (00:12.0): a swap disk for AddSwap {PCIPath: [0x12, 0]}
# virtio-scsi: a disk at target 0, LUN 0 with another rootfs: storage "scsi", "0:0"
devices=0
[[ $FS == virtiofs && -z $CGV2 ]] && devices=1
if [[ $devices == 1 ]]; then
    for d in blk hot scsi; do
        mkdir -p "$WORK/stage-$d"
        cp -a "$GUEST/ctr-rootfs" "$WORK/stage-$d/rootfs"
        echo "marker-$d" >"$WORK/stage-$d/rootfs/marker"
        mkfs.ext4 -q -F -d "$WORK/stage-$d" "$WORK/$d.img" 48M
        rm -rf "$WORK/stage-$d"
    done
    truncate -s 16M "$WORK/swap.img" && mkswap -q "$WORK/swap.img"
    for a in -device pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=0x10 \
             -drive "file=$WORK/blk.img,if=none,id=hd1,format=raw" \
             -device virtio-blk-pci,drive=hd1,bus=rp1 \
             -device pcie-root-port,id=rp2,bus=pcie.0,chassis=2,addr=0x11 \
             -device pcie-root-port,id=rp3,bus=pcie.0,chassis=3,addr=0x12 \
             -drive "file=$WORK/swap.img,if=none,id=hd4,format=raw" \
             -device virtio-blk-pci,drive=hd4,bus=rp3 \
             -device virtio-scsi-pci,id=scsi0 \
             -drive "file=$WORK/scsi.img,if=none,id=hd3,format=raw" \
             -device scsi-hd,drive=hd3,bus=scsi0.0,scsi-id=0,lun=0 \
             -monitor "unix:$WORK/monitor.sock,server=on,wait=off"; do
        extra_cmdline+=(--qemu-arg "$a")
    done
    # Hotplug under TCG takes a few seconds (pciehp, then the virtio probe).
    extra_cmdline+=(--cmdline agent.hotplug_timeout=30)
fi
monitor() { printf '%s\n' "$@" | timeout 10 socat - "UNIX-CONNECT:$WORK/monitor.sock" >/dev/null 2>&1; }

# --- boot --------------------------------------------------------------------------
echo "e2e: booting the guest ($FS${CGV2:+, $CGV2})"
launch_vm boot "${extra_cmdline[@]}" --kernel "$GUEST/Image" --initrd "$GUEST/initrd.img" \
    --console-sock "$WORK/console.sock" --shared "$SHARED" --fs "$FS" --wait-ready 120 || exit 1
ready=$(grep -o 'agent ready after [0-9.]* s' <<<"$launch_out" || true)
echo "e2e: boot to ready ${ready#agent ready after }"
ok "boot: $ready"

check "Health" '"status": "SERVING"' "$(ctl check)"

# --- sandbox: the shared fs and the shm storage ----------------------------------------
if [[ $FS == virtiofs ]]; then
    shared_storage='{"driver": "virtio-fs", "source": "kataShared", "fstype": "virtiofs",
      "mount_point": "/run/kata-containers/shared/containers/"}'
else
    shared_storage='{"driver": "9p", "source": "kataShared", "fstype": "9p",
      "options": ["trans=virtio,version=9p2000.L,cache=mmap", "nodev"],
      "mount_point": "/run/kata-containers/shared/containers/"}'
fi
out=$(ctl call CreateSandbox "{\"hostname\": \"e2e-pod\", \"sandbox_id\": \"e2e\",
  \"dns\": [\"nameserver 10.0.2.3\"],
  \"storages\": [$shared_storage,
    {\"driver\": \"ephemeral\", \"source\": \"shm\", \"fstype\": \"tmpfs\",
     \"options\": [\"noexec\", \"nosuid\", \"nodev\", \"mode=1777\", \"size=67108864\"],
     \"mount_point\": \"/run/kata-containers/sandbox/shm\"}]}" 2>&1) &&
    ok "CreateSandbox with the $FS share and shm" || bad "CreateSandbox: $out"
check "GetGuestDetails" '"init_daemon": true' "$(ctl call GetGuestDetails '{"mem_block_size": true, "mem_hotplug_probe": true}')"
out=$(ctl call OnlineCPUMem '{}' && ctl call UpdateEphemeralMounts '{}') &&
    ok "OnlineCPUMem and UpdateEphemeralMounts" || bad "OnlineCPUMem/UpdateEphemeralMounts: $out"

# --- a Kubernetes pod, as CRI containerd and the Kata runtime drive it ---------------
# The pause container first (the runtime always creates it first, and the sandbox's
# pid namespace is the first container's), then two app containers in its IPC and
# UTS namespaces with CRI's /etc/hosts, /etc/hostname, /etc/resolv.conf and
# /dev/termination-log bound from files the runtime copied into the shared
# directory, /dev/shm bound from the sandbox shm, a memory-backed emptyDir (one
# `ephemeral` storage both carry) and a configmap (`watchable-bind`, its source
# updated here the way kubelet's atomic writer does). cgroupsPath in containerd's
# cgroupfs form on the v1 boot; the systemd driver's slice:prefix:name, with
# shareProcessNamespace, on the v2 boot. Then kubelet's stop path, and nothing of
# the pod may be left. Not on 9p: one pod per shared-fs kind is enough.
# Commands as the guest's root, over the debug console on console.0.
guest_sh() {
    { printf 'echo GUEST-SH-BEGIN; %s; echo GUEST-SH-END\n' "$1"; sleep 3; printf 'exit\n'; sleep 1; } |
        timeout 30 socat - "UNIX-CONNECT:$WORK/console.sock" 2>&1 | tr -d '\r' |
        sed -n '/GUEST-SH-BEGIN$/,/GUEST-SH-END$/p' || true
}
if [[ $FS == virtiofs ]]; then
    GS=/run/kata-containers/shared/containers
    pod_uid=e2e0uid7
    if [[ $CGV2 == cgroup-v2 ]]; then
        pod_cg=/kubepods-burstable-pod$pod_uid.slice/cri-containerd # as the agent (init) makes it
        cgpath() { echo "kubepods-burstable-pod$pod_uid.slice:cri-containerd:$1"; }
        app_pidns='{"type": "pid", "path": "/proc/1/ns/pid"}' # shareProcessNamespace
        cg_mem=/sys/fs/cgroup$pod_cg
        cg_limit=memory.max
    else
        pod_cg=/kubepods/burstable/pod$pod_uid
        cgpath() { echo "$pod_cg/$1"; }
        app_pidns='{"type": "pid"}'
        cg_mem=/sys/fs/cgroup/memory$pod_cg
        cg_limit=memory.limit_in_bytes
    fi
    bindm() { echo ", {\"destination\": \"$1\", \"type\": \"bind\", \"source\": \"$2\", \"options\": [\"rbind\", \"rprivate\", \"${3:-rw}\"]}"; }
    empty_dir=/run/kata-containers/sandbox/ephemeral/cache
    cm_mp=$GS/watchable/pod-app2-0123-config
    for c in pod-app1 pod-app2; do
        printf '127.0.0.1\tlocalhost\n10.244.0.7\te2e-pod\n' >"$SHARED/$c-0123-hosts"
        echo e2e-pod >"$SHARED/$c-0123-hostname"
        echo "nameserver 10.96.0.10" >"$SHARED/$c-0123-resolv.conf"
        : >"$SHARED/$c-0123-termination-log"
    done
    # kubelet's atomic writer: the data in a timestamped directory, ..data swapped
    # to it by a rename, the old one removed; "key" links through ..data.
    cm_write() { # cm_write STAMP VALUE [OLD-STAMP]
        local d=$SHARED/pod-app2-0123-config
        mkdir -p "$d/$1" && printf '%s' "$2" >"$d/$1/key"
        ln -s "$1" "$d/..data_tmp" && mv -T "$d/..data_tmp" "$d/..data"
        [[ -L $d/key ]] || ln -s ..data/key "$d/key"
        [[ -z ${3:-} ]] || rm -rf "${d:?}/$3"
    }
    cm_write ..2026_12_07_10_00_00.000000001 v1
    # CRI's mounts come after the defaults (the /dev tmpfs would hide /dev/termination-log).
    pod_bundle() { # pod_bundle CID ARGS-JSON sandbox|container [EXTRA-MOUNTS]
        local pidns='{"type": "pid"}' mounts="" res="\"cpu\": {\"shares\": 2}"
        if [[ $3 == container ]]; then
            pidns=$app_pidns
            res="\"cpu\": {\"shares\": 512}, \"memory\": {\"limit\": 67108864}"
            mounts="$(bindm /etc/hosts "$GS/$1-0123-hosts")$(bindm /etc/hostname "$GS/$1-0123-hostname")"
            mounts+="$(bindm /etc/resolv.conf "$GS/$1-0123-resolv.conf" ro)"
            mounts+="$(bindm /dev/termination-log "$GS/$1-0123-termination-log")$(bindm /cache "$empty_dir")${4:-}"
        fi
        local b
        b=$(bundle "$1" "$2")
        sed -i -e "s|{\"destination\": \"/dev/shm\"[^}]*}|$(bindm /dev/shm /run/kata-containers/sandbox/shm | cut -c3-)|" \
            -e "s|{\"destination\": \"/sys/fs/cgroup\"[^}]*}|&$mounts|" \
            -e "s|{\"type\": \"pid\"}|$pidns|" \
            -e "s|\"linux\": {|\"linux\": {\"cgroupsPath\": \"$(cgpath "$1")\", \"resources\": {$res},|" \
            -e "s|\"ociVersion\": \"1.0.2\",|&\n  \"annotations\": {\"io.kubernetes.cri.container-type\": \"$3\", \"io.kubernetes.cri.sandbox-id\": \"e2e\"},|" \
            "$b/config.json"
        echo "$b"
    }
    ephemeral="{\"driver\": \"ephemeral\", \"source\": \"tmpfs\", \"fstype\": \"tmpfs\",
                \"options\": [\"size=8388608\"], \"mount_point\": \"$empty_dir\"}"
    watchable="{\"driver\": \"watchable-bind\", \"source\": \"$GS/pod-app2-0123-config\",
                \"fstype\": \"bind\", \"mount_point\": \"$cm_mp\"}"
    b=$(pod_bundle e2e '["ka-payload", "pause"]' sandbox)
    out=$(ctl run -d --guest-rootfs "$(guest_rootfs c1)" "$b" e2e 2>&1) &&
        ok "pod: the pause container" || bad "pod: pause container: $out"
    b=$(pod_bundle pod-app1 '["sh", "-c", "stop() { echo stopped >/dev/termination-log; exit 0; }; trap stop TERM; echo from-app1 >/cache/shared; echo shm-app1 >/dev/shm/seg; while :; do sleep 1; done # app1-marker"]' container)
    out=$(ctl run -d --storage "$ephemeral" --guest-rootfs "$(guest_rootfs c1)" "$b" pod-app1 2>&1) &&
        ok "pod: app container 1" || bad "pod: app container 1: $out"
    b=$(pod_bundle pod-app2 '["sh", "-c", "stop() { exit 0; }; trap stop TERM; while :; do sleep 1; done"]' container \
        "$(bindm /etc/config "$cm_mp" ro)")
    out=$(ctl run -d --storage "$ephemeral" --storage "$watchable" --guest-rootfs "$(guest_rootfs c1)" "$b" pod-app2 2>&1) &&
        ok "pod: app container 2 (the emptyDir again, a configmap)" || bad "pod: app container 2: $out"

    nsids() { ctl exec "$1" -- sh -c 'hostname; for n in ipc uts pid; do readlink /proc/self/ns/$n; done' 2>&1 | tr '\n' ' '; }
    read -r hp ipcp utsp pidp <<<"$(nsids e2e)"
    read -r h1 ipc1 uts1 pid1 <<<"$(nsids pod-app1)"
    read -r h2 ipc2 uts2 pid2 <<<"$(nsids pod-app2)"
    [[ $hp == e2e-pod && $h1 == e2e-pod && $h2 == e2e-pod ]] &&
        ok "pod: one hostname (UTS) in all three" || bad "pod: hostnames $hp $h1 $h2"
    [[ $ipcp == ipc:* && $ipc1 == "$ipcp" && $ipc2 == "$ipcp" && $uts1 == "$utsp" && $uts2 == "$utsp" ]] &&
        ok "pod: the IPC and UTS namespaces are the pause's" || bad "pod: ipc $ipcp $ipc1 $ipc2, uts $utsp $uts1 $uts2"
    shm_out=$(ctl exec pod-app1 -- ka-payload sysv-shm create 0x6b61 2>&1 && ctl exec pod-app2 -- ka-payload sysv-shm find 0x6b61 2>&1)
    check "pod: a SysV shm segment made in app 1 is found in app 2" "id=" "$shm_out"
    seen=$(ctl exec pod-app2 -- sh -c "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -c 'app1-mark[e]r'" 2>&1 || true)
    if [[ $CGV2 == cgroup-v2 ]]; then
        [[ $pid1 == "$pidp" && $pid2 == "$pidp" && $seen == 1 ]] &&
            ok "pod: shareProcessNamespace: one pid namespace, app 1 seen from app 2" ||
            bad "pod: shared pid namespace: $pidp $pid1 $pid2, seen=$seen"
    else
        [[ $pid1 != "$pidp" && $pid2 != "$pidp" && $pid1 != "$pid2" && $seen == 0 ]] &&
            ok "pod: a pid namespace per container" || bad "pod: pid namespaces: $pidp $pid1 $pid2, seen=$seen"
    fi
    shared=""
    for _ in 1 2 3 4 5; do
        shared=$(ctl exec pod-app2 -- cat /cache/shared /dev/shm/seg 2>&1 || true)
        [[ $shared == *shm-app1* ]] && break
        sleep 1
    done
    check "pod: the emptyDir shared (app 1 wrote, app 2 reads)" "from-app1" "$shared"
    check "pod: /dev/shm shared (the sandbox shm)" "shm-app1" "$shared"
    check "pod: CRI's /etc/hosts, /etc/hostname, /etc/resolv.conf from the shared directory" \
        "$(printf '10.244.0.7\te2e-pod\ne2e-pod\nnameserver 10.96.0.10')" \
        "$(ctl exec pod-app1 -- cat /etc/hosts /etc/hostname /etc/resolv.conf 2>&1)"
    check "pod: the configmap" "v1" "$(ctl exec pod-app2 -- cat /etc/config/key 2>&1)"
    cm_write ..2026_12_07_10_01_00.000000002 v2-updated ..2026_12_07_10_00_00.000000001
    t0=$(date +%s%N) cm=""
    for _ in $(seq 1 20); do
        cm=$(ctl exec pod-app2 -- cat /etc/config/key 2>&1 || true)
        [[ $cm == v2-updated ]] && break
        sleep 0.5
    done
    check "pod: the configmap updated on the host is seen inside (after $((($(date +%s%N) - t0) / 1000000)) ms)" \
        "v2-updated" "$cm"
    cg=$(guest_sh "for c in e2e pod-app1 pod-app2; do [ -d $cg_mem/\$c ] && echo CG-\$c; done; echo LIMIT=\$(busybox cat $cg_mem/pod-app1/$cg_limit)")
    check "pod: the containers' cgroups below the pod's ($pod_cg)" "$(printf 'CG-pod-app1\nCG-pod-app2')" "$cg"
    check "pod: ... the pause's too" "CG-e2e" "$cg"
    check "pod: ... with the container's memory limit" "LIMIT=67108864" "$cg"

    # kubelet's StopContainer: SIGTERM to the init, wait, remove; then StopPodSandbox.
    for c in pod-app1 pod-app2; do
        ctl call SignalProcess "{\"container_id\": \"$c\", \"exec_id\": \"$c\", \"signal\": 15}" >/dev/null
        # (status 0 is the default value, which protobuf's JSON leaves out: "{}")
        check "pod: $c ends on SIGTERM (its trap ran: exit 0)" '{}' \
            "$(ctl call WaitProcess "{\"container_id\": \"$c\", \"exec_id\": \"$c\"}" 2>&1 | tr -d ' \n')"
        out=$(ctl call RemoveContainer "{\"container_id\": \"$c\"}" 2>&1) && ok "pod: $c removed" ||
            bad "pod: remove $c: $out"
    done
    check "pod: the termination message reached the host" "stopped" "$(cat "$SHARED/pod-app1-0123-termination-log")"
    ctl call SignalProcess '{"container_id": "e2e", "exec_id": "", "signal": 9}' >/dev/null
    check "pod: the pause ends on SIGKILL" '"status": 137' \
        "$(ctl call WaitProcess '{"container_id": "e2e", "exec_id": "e2e"}' 2>&1)"
    out=$(ctl call RemoveContainer '{"container_id": "e2e"}' 2>&1) && ok "pod: pause removed" ||
        bad "pod: remove the pause: $out"
    left=$(guest_sh "busybox grep -c -e ephemeral -e watchable/ -e pod-app /proc/mounts; busybox ls $cg_mem 2>&1; busybox cat /proc/[0-9]*/cmdline | busybox tr '\\0' ' ' | busybox grep -c -e 'app1-mark[e]r' -e 'ka-payload paus[e]'")
    check "pod: nothing left (no mount, no cgroup, no process)" "$(printf 'GUEST-SH-BEGIN\n0\n')" "$left"
    check "pod: ... the pod's cgroup is gone" "No such file" "$left"
    check "pod: ... no process" "$(printf '\n0\nGUEST-SH-END')" "$left"
fi

# --- a container: stdout, stderr, exit code --------------------------------------------
b=$(bundle c1 '["sh", "-c", "echo out-$(hostname); echo err >\&2; exit 3"]')
set +e
stdout=$(ctl run --guest-rootfs "$(guest_rootfs c1)" "$b" c1 2>"$WORK/c1.err")
rc=$?
set -e
check "container stdout (shared UTS: the sandbox hostname)" "out-e2e-pod" "$stdout"
check "container stderr" "err" "$(cat "$WORK/c1.err")"
[[ $rc == 3 ]] && ok "container exit code 3" || bad "container exit code: $rc"

# --- a second container, left running: exec, a tty, cgroups ----------------------------
b=$(bundle c2 '["sleep", "1000"]' false 67108864 50000)
out=$(ctl run -d --guest-rootfs "$(guest_rootfs c2)" "$b" c2 2>&1) &&
    ok "second container started" || bad "second container: $out"
check "exec" "uid=1000" "$(ctl exec -u 1000:1000 c2 -- id 2>&1)"
check "exec with a tty" "tty" "$(ctl exec -t c2 -- ka-payload isatty 0 2>&1)"
check "exec sees the init's pid namespace" "1 root" "$(ctl exec c2 -- ps -o pid,user,comm 2>&1 | grep sleep | sed 's/^ *//')"
if [[ $CGV2 == cgroup-v2 ]]; then
    mi=$(ctl exec c2 -- cat /proc/self/mountinfo 2>&1)
    check "cgroup v2 in the guest" "cgroup2" "$mi"
    check "... mounted favouring dynamic modifications (no RCU wait per cgroup move)" "favordynmods" "$mi"
    check "cgroup v2 memory limit in effect" "67108864" "$(ctl exec c2 -- cat /sys/fs/cgroup/memory.max 2>&1)"
    check "cgroup v2 cpu quota in effect" "50000 100000" "$(ctl exec c2 -- cat /sys/fs/cgroup/cpu.max 2>&1)"
    out=$(ctl call UpdateContainer '{"container_id": "c2", "resources": {"Pids": {"Limit": 16}}}' 2>&1) &&
        ok "UpdateContainer (pids limit 16)" || bad "UpdateContainer: $out"
    check "cgroup v2 pids limit in effect" "16" "$(ctl exec c2 -- cat /sys/fs/cgroup/pids.max 2>&1)"
    fb=$(ctl exec c2 -- ka-payload forkbomb 100 2>&1 || true)
    forks=$(sed -n 's/^forks=//p' <<<"$fb")
    [[ -n $forks && $forks -lt 16 ]] && ok "a fork bomb stops at the pids limit (forks=$forks)" ||
        bad "fork bomb under pids.max=16: $fb"
    out=$(ctl call UpdateContainer '{"container_id": "c2", "resources": {"BlockIO": {"Weight": 500},
        "HugepageLimits": [{"Pagesize": "2MB", "Limit": 4194304}]}}' 2>&1) &&
        ok "UpdateContainer (blkio weight, hugetlb)" || bad "UpdateContainer blkio/hugetlb: $out"
    check "cgroup v2 hugetlb limit in effect" "4194304" "$(ctl exec c2 -- cat /sys/fs/cgroup/hugetlb.2MB.max 2>&1)"
    check "cgroup v2 io weight in effect (blkio 500 -> io 4950)" "default 4950" "$(ctl exec c2 -- cat /sys/fs/cgroup/io.weight 2>&1)"
    check "StatsContainer (v2): memory usage reported" '"usage":' "$(ctl call StatsContainer '{"container_id": "c2"}' 2>&1)"
    out=$(ctl call PauseContainer '{"container_id": "c2"}' 2>&1) && ok "PauseContainer" || bad "PauseContainer: $out"
    check "paused: an exec is refused" "FAILED_PRECONDITION (9)" "$(ctl exec c2 -- id 2>&1 || true)"
    out=$(ctl call ResumeContainer '{"container_id": "c2"}' 2>&1) && ok "ResumeContainer" || bad "ResumeContainer: $out"
    check "exec after resume" "uid=0" "$(ctl exec c2 -- id 2>&1)"
    # The mem-agent's memcg reclaim on the real kernel: 16 MiB of a file on the share
    # read into c2's page cache (charged to its cgroup), then a 1 s period with no
    # aging wait set through MemAgentMemcgSet; the agent's memory.reclaim writes must
    # take the cgroup's file pages down. The period goes back to disabled afterwards.
    head -c 16777216 /dev/urandom >"$SHARED/c2/rootfs/pagecache.bin"
    file_kb() { ctl exec c2 -- sh -c "${1:-true}; grep '^file ' /sys/fs/cgroup/memory.stat" 2>&1 |
        awk '/^file /{print int($2 / 1024)}'; }
    before=$(file_kb 'cat /pagecache.bin >/dev/null')
    [[ -n $before && $before -ge 16384 ]] && ok "mem-agent: 16 MiB read into c2's page cache (file ${before} kB)" ||
        bad "mem-agent: page cache after reading 16 MiB: '${before}' kB"
    out=$(ctl call MemAgentMemcgSet '{"disabled": false, "period_secs": 1, "eviction_run_aging_count_min": 1}' 2>&1) &&
        ok "MemAgentMemcgSet: a 1 s period" || bad "MemAgentMemcgSet: $out"
    after=$before
    for _ in $(seq 1 20); do
        sleep 1
        after=$(file_kb)
        [[ -n $after && $after -lt 4096 ]] && break
    done
    [[ -n $after && $after -lt 4096 ]] &&
        ok "mem-agent: memory.reclaim took c2's file pages from ${before} kB to ${after} kB" ||
        bad "mem-agent: c2's file pages still ${after} kB (were ${before})"
    out=$(ctl call MemAgentMemcgSet '{"disabled": true}' 2>&1) && ok "MemAgentMemcgSet: disabled again" ||
        bad "MemAgentMemcgSet disabled: $out"
    rm -f "$SHARED/c2/rootfs/pagecache.bin"
else
    check "an exec is placed in the container's cgroup" ":/c2" "$(ctl exec c2 -- cat /proc/self/cgroup 2>&1)"
    check "cgroup v1 memory limit in effect" "67108864" "$(ctl exec c2 -- cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>&1)"
    check "cgroup v1 hierarchies favour dynamic modifications (no RCU wait per cgroup move)" "favordynmods" \
        "$(ctl exec c2 -- grep ' cgroup ' /proc/self/mountinfo 2>&1)"
fi
ctl call SignalProcess '{"container_id": "c2", "signal": 9}' >/dev/null
check "WaitProcess after SIGKILL" '"status": 137' "$(ctl call WaitProcess '{"container_id": "c2"}')"
out=$(ctl call RemoveContainer '{"container_id": "c2"}' 2>&1) && ok "RemoveContainer" || bad "RemoveContainer: $out"

# --- a third container with a tty from the start ----------------------------------------
b=$(bundle c3 '["sh", "-c", "ka-payload isatty 0; ka-payload winsize"]' true)
check "container with a tty" "tty" "$(ctl run --guest-rootfs "$(guest_rootfs c3)" "$b" c3 2>&1)"

# --- a memory limit enforced: the OOM kill, and GetOOMEvent reporting it -------------
b=$(bundle c4 '["ka-payload", "memhog", "128"]' false 33554432)
set +e
ctl run --guest-rootfs "$(guest_rootfs c4)" "$b" c4 >/dev/null 2>&1
rc=$?
set -e
[[ $rc == 137 ]] && ok "memhog over its memory limit is OOM-killed (137)" || bad "memhog exit: $rc"
check "GetOOMEvent names the container" '"container_id": "c4"' "$(ctl --timeout 20 call GetOOMEvent '{}' 2>&1)"

# --- block devices: by PCI path behind a root port, on SCSI, hotplugged, swap -------
if [[ $devices == 1 ]]; then
    storage() { # storage DRIVER SOURCE CID
        echo "{\"driver\": \"$1\", \"source\": \"$2\", \"fstype\": \"ext4\",
               \"mount_point\": \"/run/kata-containers/shared/containers/$3\"}"
    }
    b=$(bundle blk '["cat", "/marker"]')
    check "block-device rootfs by PCI path behind a root port (rootfs/ on ext4)" "marker-blk" \
        "$(ctl run --storage "$(storage blk 10/00 blk)" --guest-rootfs "$(guest_rootfs blk)" "$b" blk 2>&1)"
    b=$(bundle scsi '["cat", "/marker"]')
    check "rootfs on a virtio-scsi disk (storage scsi 0:0)" "marker-scsi" \
        "$(ctl run --storage "$(storage scsi 0:0 scsi)" --guest-rootfs "$(guest_rootfs scsi)" "$b" scsi 2>&1)"
    # CreateContainer waits for 11/00; the disk is hotplugged meanwhile.
    b=$(bundle hot '["cat", "/marker"]')
    ctl run --storage "$(storage blk 11/00 hot)" --guest-rootfs "$(guest_rootfs hot)" "$b" hot \
        >"$WORK/hot.out" 2>&1 &
    hot_pid=$!
    # (The agent channel takes one host connection at a time, as the runtime uses
    # it, so Health during the wait is checked natively: integration/test_devices.)
    sleep 2
    monitor "drive_add 0 if=none,id=hd2,file=$WORK/hot.img,format=raw" \
            "device_add virtio-blk-pci,drive=hd2,bus=rp2,id=hot2"
    wait "$hot_pid" || true
    check "a disk hotplugged during CreateContainer: found by its uevent, mounted, run" \
        "marker-hot" "$(cat "$WORK/hot.out")"
    out=$(ctl call AddSwap '{"PCIPath": [18, 0]}' 2>&1) && ok "AddSwap by PCI path" || bad "AddSwap: $out"
    b=$(bundle swap '["cat", "/proc/swaps"]')
    check "the swap disk is in use" "partition" "$(ctl run --guest-rootfs "$(guest_rootfs c1)" "$b" swap 2>&1)"
fi

# --- only the host may reach an agent listener: vsock loopback from inside the guest --
# The guest kernel has vsock loopback, so anything in the guest, a container included,
# can connect to the guest's own CID 1. The vsock listeners: the debug console of
# the agent (PID 1) on 1026 (booted with agent.debug_console_vport), a second agent
# serving ttrpc on 1025 with its log port on 1028, and a third on 1027 (log port 1029)
# with agent.vsock_allow_local, the test-only opening: it shows that the probes do
# reach a listener, and it keeps the vsock listener's Health path covered. The guest's
# root checks ttrpc with the guest's agent-ctl through the debug console on console.0;
# then an unprivileged container (uid 65534, no capabilities) probes them all.
console_out=$( (printf 'echo agent.log_vport=1028 >/tmp/refuse-local\n'
                printf 'echo agent.vsock_allow_local agent.log_vport=1029 >/tmp/allow-local\n'
                printf 'busybox setsid /init --server-addr vsock://-1:1025 --cmdline-file /tmp/refuse-local >/dev/null 2>&1 &\n'
                printf 'busybox setsid /init --server-addr vsock://-1:1027 --cmdline-file /tmp/allow-local >/dev/null 2>&1 &\n'
                sleep 2
                printf 'agent-ctl --addr vsock://1:1025 --timeout 10 check; echo DEFAULT-RC=$?\n'
                printf 'agent-ctl --addr vsock://1:1027 --timeout 10 check; echo ALLOW-LOCAL-RC=$?\n'
                sleep 6
                printf 'exit\n'; sleep 1) |
              timeout 30 socat - "UNIX-CONNECT:$WORK/console.sock" 2>&1 || true)
check "debug console shell on console.0" "ALLOW-LOCAL-RC=" "$console_out"
if [[ $console_out =~ DEFAULT-RC=[1-9] ]]; then ok "a loopback peer is refused by default (guest root, ttrpc on vsock 1:1025)"
else bad "loopback peer on vsock 1:1025 not refused: $(grep -a 'RC=' <<<"$console_out" | tr -d '\r')"; fi
check "with agent.vsock_allow_local a loopback peer is served (vsock 1:1027)" "SERVING" "$console_out"

b=$(bundle probe '["sh", "-c", "for p in 1025 1026 1027 1028 1029; do echo port-$p: $(ka-payload vsock-probe 1 $p); done"]')
sed -i -e 's|"user": {"uid": 0, "gid": 0}|"user": {"uid": 65534, "gid": 65534}|' \
    -e 's|\("[a-z]*"\): \["CAP_[^]]*\]|\1: []|g' "$b/config.json"
probe=$(ctl run --guest-rootfs "$(guest_rootfs c1)" "$b" probe 2>&1 || true)
check "a container (uid 65534, no caps) is refused by the agent's ttrpc on vsock 1:1025" "port-1025: closed" "$probe"
check "a container is refused by the debug console on vsock 1:1026 (no root shell)" "port-1026: closed" "$probe"
check "a container is refused by a log port on vsock 1:1028 (no agent log)" "port-1028: closed" "$probe"
check "the container's probe does reach a listener that admits it (vsock 1:1027)" "port-1027: answered=" "$probe"
check "... and a log port that admits it (vsock 1:1029)" "port-1029: answered=" "$probe"
check "the agent logs the refusal" "only the host may connect" "$(cat "$WORK/console.log")"
check "the host is still served (Health over the agent channel)" '"status": "SERVING"' "$(ctl check)"

# --- DestroySandbox powers the VM off ----------------------------------------------
out=$(ctl call DestroySandbox 2>&1) && ok "DestroySandbox answered" || bad "DestroySandbox: $out"
expect_power_off "" 100 && rm -f "$PIDFILE"
grep -q "Kernel panic" "$WORK/console.log" && bad "kernel panic in the guest" || ok "no kernel panic"

echo "e2e ($FS): $passed passed, $failed failed"
[[ $failed == 0 ]]
