#!/usr/bin/env bash
# image-builder/launch.sh: boot the guest under qemu (TCG) the way the Kata
# runtime would, with the agent's ttrpc channel on a virtio-serial port.
#
# Usage:
#   launch.sh [--arch riscv64|x86_64|aarch64] --agent-sock PATH [--console-sock PATH] [--shared DIR] [--fs virtiofs|9p]
#             [--kernel Image --initrd initrd.img | --image rootfs.img [--init PATH]]
#             [--mem MB] [--smp N] [--cmdline EXTRA] [--debug] [--log FILE] [--serial-sock PATH]
#             [--pidfile F --background] [--wait-ready SECONDS] [--ctl AGENT-CTL]
#             [--virtiofsd PATH] [--qemu-arg ARG]... [--t0-file F] [--kata-config FILE]
#             [--accel kvm|tcg]
#   launch.sh --stop --pidfile F
#
#   --arch A        the guest's architecture (default riscv64): riscv64 boots
#                   qemu-system-riscv64 -machine virt, x86_64 qemu-system-x86_64
#                   -machine q35, aarch64 qemu-system-aarch64 -machine virt -cpu max
#                   (GICv3); the defaults of --kernel/--initrd/--virtiofsd come from
#                   build/guest (riscv64) or build/guest-A (image-builder/build.sh --arch A)
#   --kata-config FILE  boot what a Kata runtime configuration file describes (the
#                   files image-builder/package.sh generates, for the Go runtime or
#                   runtime-rs): [hypervisor.qemu] path, kernel, initrd or image (with
#                   root=/dev/vda1 read-only, as the runtime attaches an image without
#                   NVDIMM), machine_type (virt or q35), default_memory, default_vcpus,
#                   kernel_params, enable_debug, shared_fs, virtio_fs_daemon and its
#                   cache and extra args, and [agent.kata] enable_debug and
#                   debug_console_enabled, with the kernel parameters the runtime adds
#                   itself (kata_agent.go, qemu*.go; runtime-rs kernel_param.rs). What
#                   differs from a real runtime, and is logged: the agent stays on the
#                   virtio-serial port (no vhost-vsock here), the console is ttyS0
#                   (ttyAMA0 on aarch64) rather than hvc0, TCG replaces KVM unless the
#                   host is of --arch's architecture and has /dev/kvm, and on another
#                   architecture the host's virtiofsd (--virtiofsd, default
#                   build/guest[-A]/bin/virtiofsd) replaces the configuration's. An
#                   x86_64 or aarch64 configuration needs --arch (its qemu and
#                   machine_type must be that architecture's). Explicit --kernel,
#                   --initrd, --image, --mem, --smp and --virtiofsd win over the file.
#
#   --agent-sock    unix socket (qemu is the server) behind the virtio-serial port
#                   agent.channel.0; the agent serves ttrpc there
#                   (agent.server_addr=serial://agent.channel.0). Talk to it with
#                   build/native/agent-ctl --addr unix://PATH
#   --console-sock  a second port, console.0, behind another unix socket: the agent's
#                   debug console (adds agent.debug_console agent.debug_console_port=
#                   console.0; a shell per host connection); connect with
#                   socat -,raw,echo=0 UNIX-CONNECT:PATH
#   --shared DIR    exported with tag kataShared, by virtio-fs (default; virtiofsd is
#                   started on a private socket and stopped with qemu) or 9p. The agent
#                   mounts it when CreateSandbox names it (guest path
#                   /run/kata-containers/shared/containers/)
#   --kernel, --initrd  default build/guest/Image and build/guest/initrd.img
#   --image IMG     boot rootfs.img instead (virtio-blk /dev/vda, opened snapshot=on so
#                   the file is never written): root=/dev/vda rw rootfstype=ext4 and
#                   init=/usr/bin/kata-agent (init=/sbin/init if the image has no
#                   /usr/bin/kata-agent), or systemd.unit=kata-containers.target when
#                   the image has /usr/lib/systemd/systemd. --init PATH overrides (e.g.
#                   --init /sbin/init for an --agent-init no image). The kernel needs
#                   virtio-blk and ext4 built in (or give an --initrd that mounts root).
#                   Partitioned images (osbuilder's): add --cmdline root=/dev/vda1
#   --mem MB        guest RAM (default 512); --smp N vCPUs (default 1)
#   --cmdline EXTRA appended to the kernel command line; --debug drops "quiet"
#   --log FILE      guest console (ttyS0) to FILE; default: the terminal in the
#                   foreground, PIDFILE-without-.pid + .console.log in the background
#   --serial-sock P the guest console on a unix socket too (still logged to --log, if
#                   any): the agent's debug console runs a shell there when
#                   agent.debug_console has no vsock port (socat -,raw,echo=0 UNIX-CONNECT:P)
#   --background    return once qemu runs (needs --pidfile); qemu and virtiofsd stay
#                   up until the guest powers off or `launch.sh --stop --pidfile F`
#   --wait-ready S  poll grpc.Health/Check over --agent-sock with the native agent-ctl
#                   (--ctl, default build/native/agent-ctl) for up to S seconds and print
#                   "agent ready after X.XX s" (from qemu's start); exit 1 if it never
#                   answers (the qemu is stopped then)
#   --qemu-arg ARG  one more qemu argument (repeat as needed)
#   --accel kvm|tcg with --kata-config: KVM (default when the host is of --arch's
#                   architecture and /dev/kvm is there, as the runtime) or TCG (where
#                   /dev/kvm exists but does not run guests, e.g. a nested host; the
#                   end-to-end tests use it). Without --kata-config it is always TCG.
#   --t0-file F     write the time qemu is started (date +%s.%N) to F, for boot-time
#                   measurements from qemu's start (bench/boot.sh)
#
# Exit status: foreground, qemu's (a guest power-off is 0); background, 0 once
# started (and ready, with --wait-ready).
# shellcheck disable=SC2054  # qemu arguments are comma-separated property lists
set -euo pipefail
IB_DIR=$(dirname "$(realpath "${BASH_SOURCE[0]}")")
IB_SRC=$(dirname "$IB_DIR")
GUEST=$IB_SRC/build/guest   # per --arch below

log() { printf 'launch: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;/^# shellcheck/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# A pid from a pid file is ours only if it still runs what we started.
pid_is() {   # PID PATTERN
    [[ $1 =~ ^[0-9]+$ && -r /proc/$1/cmdline ]] &&
        { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -q -- "$2"
}
stop_pid() {   # PID PATTERN NAME: SIGTERM, then SIGKILL after 10 s
    local pid=$1 i
    pid_is "$pid" "$2" || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        pid_is "$pid" "$2" || return 0
        sleep 0.1
    done
    log "$3 ($pid) did not stop on SIGTERM; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
}
# Pid file: "qemu PID", "virtiofsd PID", "rundir DIR", one per line.
pidfile_get() { awk -v k="$1" '$1 == k { print $2 }' "$2"; }

# --- --kata-config: a Kata runtime configuration file -----------------------------------
# Sets kc_* (the values the boot uses) and, unless given on the command line, kernel,
# initrd or image, mem, smp, fs and virtiofsd. TOML is read with Python's tomllib.
read_kata_config() {   # FILE
    local f=$1 vars
    [[ -f $f ]] || die "--kata-config $f not found"
    command -v python3 >/dev/null || die "python3 not found (install the Debian package python3)"
    vars=$(python3 - "$f" <<'PY'
import shlex, sys, tomllib
with open(sys.argv[1], "rb") as fh:
    c = tomllib.load(fh)
h = c.get("hypervisor", {}).get("qemu")
if h is None:
    sys.exit("no [hypervisor.qemu] section")
a = c.get("agent", {}).get("kata", {})
r = c.get("runtime", {})
def out(name, value):
    if isinstance(value, bool):
        value = "true" if value else "false"
    if isinstance(value, list):
        print("kc_%s=(%s)" % (name, " ".join(shlex.quote(str(v)) for v in value)))
    else:
        print("kc_%s=%s" % (name, shlex.quote(str(value))))
for k, d in [("path", ""), ("kernel", ""), ("initrd", ""), ("image", ""), ("machine_type", ""),
             ("kernel_params", ""), ("default_vcpus", 1), ("default_maxvcpus", 0),
             ("default_memory", 2048), ("enable_debug", False), ("shared_fs", "virtio-fs"),
             ("virtio_fs_daemon", ""), ("virtio_fs_cache", "auto"), ("virtio_fs_extra_args", []),
             ("disable_image_nvdimm", False), ("rootfs_type", "ext4"),
             ("disable_guest_selinux", True)]:
    out(k, h.get(k, d))
out("agent_debug", a.get("enable_debug", False))
out("debug_console", a.get("debug_console_enabled", False))
# runtime-rs names itself in [runtime]; the Go runtime's file has no such keys.
out("runtime", "rs" if "name" in r or "hypervisor_name" in r else "go")
PY
) || die "$f: cannot read it as a Kata configuration"
    # The variables the Python above prints (declared here for readers and shellcheck).
    kc_path="" kc_kernel="" kc_initrd="" kc_image="" kc_machine_type="" kc_kernel_params=""
    kc_default_vcpus="" kc_default_maxvcpus="" kc_default_memory="" kc_enable_debug=""
    kc_shared_fs="" kc_virtio_fs_daemon="" kc_virtio_fs_cache="" kc_virtio_fs_extra_args=()
    kc_disable_image_nvdimm="" kc_rootfs_type="" kc_disable_guest_selinux="" kc_agent_debug=""
    kc_debug_console="" kc_runtime=""
    eval "$vars"
    local which="Go runtime"
    [[ $kc_runtime == go ]] || which=runtime-rs
    log "kata config $f ($which)"
    [[ -n $kc_initrd && -z $kc_image || -z $kc_initrd && -n $kc_image ]] ||
        die "$f: exactly one of initrd and image must be set"
    [[ $kc_machine_type == "${machine%%,*}" ]] ||
        die "$f: machine_type '$kc_machine_type': $arch boots ${machine%%,*} here"
    [[ -n $kc_path ]] || die "$f: no hypervisor path"
    [[ $(basename -- "$kc_path") == "$qemu_bin" ]] ||
        die "$f: qemu $kc_path is not $arch's $qemu_bin (--arch)"
    qemu_bin=$kc_path
    if [[ -z $kernel && -z $initrd && -z $image ]]; then
        kernel=$kc_kernel initrd=$kc_initrd image=$kc_image
    else
        log "--kernel/--initrd/--image given: the configuration's guest is not used"
    fi
    if [[ -n $image && -n $kc_image && $kc_disable_image_nvdimm != true ]]; then
        die "$f: an image needs disable_image_nvdimm = true (this launcher attaches no NVDIMM)"
    fi
    mem=${mem:-$kc_default_memory} smp=${smp:-${kc_default_vcpus%.*}}
    case $kc_shared_fs in
    virtio-fs) fs=virtiofs ;;
    virtio-9p) fs=9p ;;
    *) die "$f: shared_fs '$kc_shared_fs' is not virtio-fs or virtio-9p" ;;
    esac
    if [[ $(uname -m) == "$arch" ]]; then
        virtiofsd=${virtiofsd:-$kc_virtio_fs_daemon}
    elif [[ -n $shared && $fs == virtiofs ]]; then
        log "this host is $(uname -m): the configuration's virtiofsd ($kc_virtio_fs_daemon) is for" \
            "$arch; using the host's, ${virtiofsd:-$GUEST/bin/virtiofsd}"
    fi
    kc_accel=()
    if [[ $accel == tcg ]]; then
        log "--accel tcg: TCG (the runtime would use accel=kvm)"
    elif [[ $(uname -m) == "$arch" && -w /dev/kvm ]]; then
        kc_accel=(-accel kvm -cpu host)
    elif [[ $accel == kvm ]]; then
        die "--accel kvm: no KVM for $arch on this host ($(uname -m), /dev/kvm)"
    else
        log "no KVM for $arch on this host ($(uname -m)): TCG (the runtime would use accel=kvm)"
    fi
    log "the agent channel is the virtio-serial port agent.channel.0, not vsock" \
        "(no vhost-vsock here); the console is $console, not hvc0"
}

# The kernel command line the runtime of the configuration would give, with this
# launcher's serial agent channel in place of vsock.
kata_cmdline() {
    local -a p=()
    local dbg=$debug maxcpus=${kc_default_maxvcpus%.*}
    [[ $kc_enable_debug != true ]] || dbg=1
    [[ $maxcpus -gt 0 ]] || maxcpus=$(nproc)
    local -a root=()
    [[ -z $image ]] || root=(root=/dev/vda1 "rootflags=data=ordered,errors=remount-ro ro" "rootfstype=$kc_rootfs_type")
    if [[ $kc_runtime == go ]]; then
        # qemu_<arch>.go's kernelParams, then qemu_arch_base.go's and qemu.go's (4.1)
        local -a archp=()
        case $arch in
        riscv64) archp=(numa=off) ;;
        x86_64) archp=(tsc=reliable no_timer_check rcupdate.rcu_expedited=1 i8042.direct=1
                       i8042.dumbkbd=1 i8042.nopnp=1 i8042.noaux=1 noreplace-smp reboot=k
                       cryptomgr.notests net.ifnames=0 pci=lastbus=0) ;;
        aarch64) archp=(iommu.passthrough=0) ;;
        esac
        p+=("${archp[@]}" ${root[@]+"${root[@]}"})
        if [[ $dbg == 1 ]]; then
            p+=(debug)
            [[ -z $image ]] || p+=(systemd.show_status=true systemd.log_level=debug)
        else
            p+=(quiet)
            [[ -z $image ]] || p+=(systemd.show_status=false)
        fi
        p+=("console=$console" panic=1 "nr_cpus=$maxcpus")
        [[ $kc_disable_guest_selinux != true ]] || p+=(selinux=0)
    else
        # runtime-rs kernel_param.rs (4.1)
        p+=(reboot=k panic=1 systemd.unit=kata-containers.target systemd.mask=systemd-networkd.service
            systemd.mask=systemd-networkd.socket)
        [[ $dbg == 0 ]] || p+=(agent.log_vport=1025)
        p+=(${root[@]+"${root[@]}"} "console=$console")
        [[ $dbg == 1 ]] || p+=(quiet)
    fi
    # kata_agent.go KataAgentKernelParams
    [[ $kc_agent_debug != true ]] || p+=(agent.log=debug)
    if [[ -n $console_sock ]]; then
        p+=(agent.debug_console agent.debug_console_port=console.0)
    elif [[ -n $serial_sock ]]; then
        p+=(agent.debug_console)
    elif [[ $kc_debug_console == true ]]; then
        p+=(agent.debug_console agent.debug_console_vport=1026)
    fi
    # The configuration's own parameters come last, so they win.
    [[ -z $kc_kernel_params ]] || p+=("$kc_kernel_params")
    p+=(agent.server_addr=serial://agent.channel.0)
    printf '%s' "${p[*]}"
}

agent_sock="" console_sock="" serial_sock="" shared="" fs=virtiofs kernel="" initrd="" image="" init=""
mem="" smp="" extra="" debug=0 logf="" pidfile="" background=0 wait_ready="" stop=0
ctl=$IB_SRC/build/native/agent-ctl virtiofsd="" qemu_extra=() base="" t0_file="" kata_config=""
arch=riscv64 accel=""
while [[ $# -gt 0 ]]; do
    case $1 in
    --arch) arch=${2:?}; shift ;;
    --agent-sock) agent_sock=${2:?}; shift ;;
    --console-sock) console_sock=${2:?}; shift ;;
    --serial-sock) serial_sock=${2:?}; shift ;;
    --shared) shared=${2:?}; shift ;;
    --fs) fs=${2:?}; shift ;;
    --kernel) kernel=${2:?}; shift ;;
    --initrd) initrd=${2:?}; shift ;;
    --image) image=${2:?}; shift ;;
    --init) init=${2:?}; shift ;;
    --mem) mem=${2:?}; shift ;;
    --smp) smp=${2:?}; shift ;;
    --cmdline) extra+=" ${2:?}"; shift ;;
    --debug) debug=1 ;;
    --log) logf=${2:?}; shift ;;
    --pidfile) pidfile=${2:?}; shift ;;
    --background) background=1 ;;
    --wait-ready) wait_ready=${2:?}; shift ;;
    --ctl) ctl=${2:?}; shift ;;
    --virtiofsd) virtiofsd=${2:?}; shift ;;
    --qemu-arg) qemu_extra+=("${2?}"); shift ;;
    --t0-file) t0_file=${2:?}; shift ;;
    --accel) accel=${2:?}; shift; [[ $accel == kvm || $accel == tcg ]] || die "--accel takes kvm or tcg" ;;
    --kata-config) kata_config=${2:?}; shift ;;
    --stop) stop=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    shift
done

if [[ $stop == 1 ]]; then
    [[ -n $pidfile ]] || die "--stop needs --pidfile"
    [[ -f $pidfile ]] || { log "no pid file $pidfile: nothing to stop"; exit 0; }
    qpid=$(pidfile_get qemu "$pidfile") vpid=$(pidfile_get virtiofsd "$pidfile")
    rundir=$(pidfile_get rundir "$pidfile")
    stop_pid "$qpid" qemu-system- qemu
    [[ -z $vpid ]] || stop_pid "$vpid" virtiofsd virtiofsd
    [[ -n $rundir && -d $rundir && $rundir == */ka-vm.* ]] && rm -rf -- "$rundir"
    rm -f -- "$pidfile"
    log "stopped (qemu ${qpid:-?}${vpid:+, virtiofsd $vpid})"
    exit 0
fi

[[ -n $agent_sock ]] || { usage >&2; exit 2; }
# Per architecture: the qemu, its machine (Kata's machine type for the arch) and the
# firmware options, and where image-builder/build.sh --arch put the guest.
case $arch in
riscv64) qemu_bin=qemu-system-riscv64 machine=virt mach_args=(-bios default) qemu_pkg=qemu-system-misc console=ttyS0 ;;
x86_64) qemu_bin=qemu-system-x86_64 machine=q35 mach_args=() qemu_pkg=qemu-system-x86 console=ttyS0 ;;
aarch64) qemu_bin=qemu-system-aarch64 machine=virt,gic-version=3 mach_args=(-cpu max) qemu_pkg=qemu-system-arm console=ttyAMA0 ;;
*) die "--arch takes riscv64, x86_64 or aarch64" ;;
esac
[[ $arch == riscv64 ]] || GUEST=$IB_SRC/build/guest-$arch
[[ -z $kata_config ]] || read_kata_config "$kata_config"
mem=${mem:-512} smp=${smp:-1}
[[ $fs == virtiofs || $fs == 9p ]] || die "--fs takes virtiofs or 9p"
[[ $background == 0 || -n $pidfile ]] || die "--background needs --pidfile"
[[ $mem =~ ^[0-9]+$ && $smp =~ ^[0-9]+$ ]] || die "--mem and --smp take numbers"
command -v "$qemu_bin" >/dev/null || die "$qemu_bin not found: install $qemu_pkg"
if [[ -n $image ]]; then
    [[ -f $image ]] || die "image $image not found"
else
    kernel=${kernel:-$GUEST/Image} initrd=${initrd:-$GUEST/initrd.img}
    [[ -f $initrd ]] || die "initrd $initrd not found (image-builder/build.sh makes it)"
fi
kernel=${kernel:-$GUEST/Image}
[[ -f $kernel ]] || die "kernel $kernel not found (image-builder/build.sh makes it)"
if [[ -n $wait_ready ]]; then
    [[ -x $ctl ]] || die "$ctl not found (cmake --preset native && cmake --build --preset native)"
fi
if [[ -n $shared ]]; then
    [[ -d $shared ]] || die "--shared $shared is not a directory"
    shared=$(realpath -- "$shared")
    if [[ $fs == virtiofs ]]; then
        virtiofsd=${virtiofsd:-$GUEST/bin/virtiofsd}
        [[ -x $virtiofsd ]] || die "$virtiofsd not found (image-builder/virtiofsd.sh makes it)"
    fi
fi
if [[ -n $pidfile ]]; then
    if [[ -f $pidfile ]] && pid_is "$(pidfile_get qemu "$pidfile")" "$qemu_bin"; then
        die "$pidfile: qemu $(pidfile_get qemu "$pidfile") still runs (launch.sh --stop --pidfile $pidfile)"
    fi
    pidfile=$(realpath -m -- "$pidfile")
    base=${pidfile%.pid}
fi
for s in "$agent_sock" ${console_sock:+"$console_sock"} ${serial_sock:+"$serial_sock"}; do
    [[ ${#s} -lt 100 ]] || die "socket path too long for a unix socket: $s"
    [[ ! -e $s || -S $s ]] || die "$s exists and is not a socket"
    rm -f -- "$s"   # a stale socket from a previous run
done
if [[ $background == 1 ]]; then logf=${logf:-$base.console.log}; fi
rundir=$(mktemp -d "${TMPDIR:-/tmp}/ka-vm.XXXXXX")
qpid="" vpid=""

# Foreground (or a failed start): take everything down with us.
# shellcheck disable=SC2317  # run from the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [[ -z $qpid ]] || stop_pid "$qpid" "$qemu_bin" qemu
    [[ -z $vpid ]] || stop_pid "$vpid" virtiofsd virtiofsd
    rm -rf -- "$rundir"
    [[ -z $pidfile ]] || rm -f -- "$pidfile"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- Kernel command line: what the runtime gives, plus the serial agent channel.
if [[ -n $kata_config ]]; then
    cmdline=$(kata_cmdline)
else
    cmdline="console=$console panic=1"
    [[ $debug == 1 ]] || cmdline+=" quiet"
    cmdline+=" agent.server_addr=serial://agent.channel.0 agent.log=debug"
    [[ -z $console_sock && -z $serial_sock ]] || cmdline+=" agent.debug_console"
    # No host vsock here: the agent serves the debug console on the virtio-serial port.
    [[ -z $console_sock ]] || cmdline+=" agent.debug_console_port=console.0"
fi

args=(-machine "$machine" ${mach_args[@]+"${mach_args[@]}"} -nodefaults -display none -no-reboot
      -m "${mem}M" -smp "$smp" -kernel "$kernel")
[[ -z $kata_config ]] || args+=("${kc_accel[@]}")
[[ -z $initrd ]] || args+=(-initrd "$initrd")
if [[ -n $image && -n $kata_config ]]; then
    # As the runtime attaches an image when NVDIMM is off: read-only virtio-blk; the
    # root= and rootflags are in kata_cmdline, init is the image's own /sbin/init.
    args+=(-drive "file=$(realpath -- "$image"),if=none,id=image,format=raw,readonly=on"
           -device virtio-blk-pci,drive=image)
elif [[ -n $image ]]; then
    if [[ -z $init ]]; then
        # The image's own choice: systemd if it has it, else the agent; no init= at
        # all for an osbuilder AGENT_INIT=yes image (the agent *is* /sbin/init).
        init=/usr/bin/kata-agent
        if command -v debugfs >/dev/null; then
            in_image() { debugfs -R "stat $1" "$image" 2>/dev/null | grep -q '^Inode:'; }
            if in_image /usr/lib/systemd/systemd; then
                init=systemd
            elif ! in_image /usr/bin/kata-agent && in_image /sbin/init; then
                init=/sbin/init
            fi
        fi
    fi
    cmdline+=" root=/dev/vda rw rootfstype=ext4"
    if [[ $init == systemd ]]; then
        cmdline+=" systemd.unit=kata-containers.target systemd.mask=systemd-networkd.service"
        cmdline+=" systemd.mask=systemd-networkd.socket systemd.show_status=false"
    else
        cmdline+=" init=$init"
    fi
    args+=(-drive "file=$(realpath -- "$image"),if=none,id=rootfs,format=raw,snapshot=on"
           -device virtio-blk-pci,drive=rootfs)
fi
cmdline+="$extra"
args+=(-append "$cmdline")

# Agent channel first, so that it is vport0p1 in the guest.
args+=(-device virtio-serial-pci,id=vser0
       -chardev "socket,id=agentch,path=$agent_sock,server=on,wait=off"
       -device virtserialport,bus=vser0.0,chardev=agentch,name=agent.channel.0)
if [[ -n $console_sock ]]; then
    args+=(-chardev "socket,id=dbgcon,path=$console_sock,server=on,wait=off"
           -device virtserialport,bus=vser0.0,chardev=dbgcon,name=console.0)
fi

if [[ -n $shared && $fs == 9p ]]; then
    args+=(-fsdev "local,id=shared9p,path=$shared,security_model=none,multidevs=remap"
           -device virtio-9p-pci,fsdev=shared9p,mount_tag=kataShared)
elif [[ -n $shared ]]; then
    vsock=$rundir/virtiofsd.sock
    vlog=${base:+$base.virtiofsd.log}
    vlog=${vlog:-$rundir/virtiofsd.log}
    # Kata's options: one request thread, submounts announced; as root the default
    # sandbox (a private mount namespace) applies.
    vargs=(--cache=auto --announce-submounts --thread-pool-size=1)
    [[ -z $kata_config ]] || vargs=(--cache="$kc_virtio_fs_cache" ${kc_virtio_fs_extra_args[@]+"${kc_virtio_fs_extra_args[@]}"})
    setsid "$virtiofsd" --socket-path="$vsock" --shared-dir="$shared" "${vargs[@]}" </dev/null >"$vlog" 2>&1 &
    vpid=$!
    for ((i = 0; i < 100; i++)); do
        [[ -S $vsock ]] && break
        kill -0 "$vpid" 2>/dev/null || { cat "$vlog" >&2; vpid=""; die "virtiofsd exited"; }
        sleep 0.05
    done
    [[ -S $vsock ]] || { cat "$vlog" >&2; die "virtiofsd made no socket in 5 s"; }
    args+=(-object "memory-backend-memfd,id=mem,size=${mem}M,share=on" -numa node,memdev=mem
           -chardev "socket,id=vfs,path=$vsock"
           -device vhost-user-fs-pci,queue-size=1024,chardev=vfs,tag=kataShared)
fi
args+=(${qemu_extra[@]+"${qemu_extra[@]}"})

if [[ -n $serial_sock ]]; then
    [[ -z $logf ]] || : >"$logf"
    args+=(-chardev "socket,id=ser0,path=$serial_sock,server=on,wait=off${logf:+,logfile=$logf}"
           -serial chardev:ser0)
elif [[ -n $logf ]]; then
    : >"$logf"
    args+=(-serial "file:$logf")
else
    args+=(-serial stdio)
fi

log "$qemu_bin -smp $smp -m ${mem}M, kernel $kernel,${image:+ image $image}${initrd:+ initrd $initrd}," \
    "agent on $agent_sock${console_sock:+, console.0 on $console_sock}${serial_sock:+, $console on $serial_sock}${shared:+, $shared over $fs}"
log "cmdline: $cmdline"
t0=$(now)
[[ -z $t0_file ]] || echo "$t0" >"$t0_file"
if [[ $background == 1 ]]; then
    setsid "$qemu_bin" "${args[@]}" </dev/null >"$base.qemu.log" 2>&1 &
else
    # An asynchronous command gets /dev/null as stdin unless told otherwise; the
    # guest console (and a debug shell on it) needs the terminal.
    exec 3<&0
    "$qemu_bin" "${args[@]}" <&3 3<&- &
    exec 3<&-
fi
qpid=$!
if [[ -n $pidfile ]]; then
    {
        echo "qemu $qpid"
        [[ -z $vpid ]] || echo "virtiofsd $vpid"
        echo "rundir $rundir"
    } >"$pidfile"
fi

if [[ -n $wait_ready ]]; then
    ready=0
    deadline=$(awk -v a="$t0" -v s="$wait_ready" 'BEGIN { printf "%.3f", a + s }')
    while awk -v d="$deadline" -v n="$(now)" 'BEGIN { exit !(n < d) }'; do
        if ! kill -0 "$qpid" 2>/dev/null; then
            wait "$qpid" && rc=0 || rc=$?
            qpid=""
            [[ -z $logf ]] || tail -n 30 "$logf" >&2
            die "qemu exited (status $rc) before the agent answered"
        fi
        if [[ -S $agent_sock ]] && "$ctl" --addr "unix://$agent_sock" --timeout 2 check >/dev/null 2>&1; then
            ready=1
            break
        fi
        sleep 0.05
    done
    if [[ $ready == 0 ]]; then
        [[ -z $logf ]] || tail -n 30 "$logf" >&2
        die "the agent did not answer Health within $wait_ready s"
    fi
    log "agent ready after $(since "$t0") s"
fi

if [[ $background == 1 ]]; then
    log "running: qemu $qpid${vpid:+, virtiofsd $vpid}; console log $logf;" \
        "stop with: $0 --stop --pidfile $pidfile"
    trap - EXIT INT TERM
    exit 0
fi
wait "$qpid" && rc=0 || rc=$?
qpid=""
exit "$rc"
