# The helpers the end-to-end scripts share (tests/e2e/e2e.sh, arch.sh, install.sh):
# a work dir removed on exit with the guest stopped, pass/fail counting, the
# agent-ctl wrapper, the container bundle, launching and stopping the guest.
# Sourced after the script has set SRC, GUEST and CTL; then `e2e_setup NAME`.
# shellcheck shell=bash disable=SC2034  # WORK, SHARED, launch_out are the callers'

# e2e_setup NAME: WORK (a fresh /tmp/ka-NAME.XXXXXX), SHARED (the dir the guest
# sees as its share), PIDFILE (launch.sh's), the counters, and the exit trap.
e2e_setup() {
    WORK=$(mktemp -d "/tmp/ka-$1.XXXXXX")
    SHARED=$WORK/shared
    PIDFILE=$WORK/qemu.pid
    passed=0 failed=0
    trap e2e_cleanup EXIT
}

stop_vm() { "$SRC/image-builder/launch.sh" --stop --pidfile "$PIDFILE" >/dev/null 2>&1 || true; }

# A failed run shows the end of the guest console: the first thing to read.
# (Also a run stopped by set -e: a failed agent-ctl call outside a check.)
e2e_cleanup() {
    local rc=$?
    if [[ -f $PIDFILE ]]; then
        stop_vm
    fi
    if [[ ($failed -gt 0 || $rc != 0) && -f $WORK/console.log ]]; then
        echo "--- guest console (last 40 lines)"
        tail -n 40 "$WORK/console.log"
    fi
    rm -rf "$WORK"
}

ok() { passed=$((passed + 1)); echo "ok   $*"; }
bad() { failed=$((failed + 1)); echo "FAIL $*"; }
check() { # check NAME WANT GOT: GOT must contain WANT
    if [[ $3 == *"$2"* ]]; then ok "$1"; else bad "$1: wanted '$2', got '$3'"; fi
}
ctl() { timeout 120 "$CTL" --addr "unix://$WORK/agent.sock" "$@"; }

# <shared>/<cid>/rootfs on the host is this path in the guest (the Kata runtime's layout).
guest_rootfs() { echo "/run/kata-containers/shared/containers/$1/rootfs"; }

# bundle CID ARGS-JSON [TERMINAL] [MEMORY-LIMIT-BYTES] [CPU-QUOTA]: a bundle dir
# from agent-ctl's example config.json; prints its path.
bundle() {
    mkdir -p "$WORK/bundle-$1"
    local resources=""
    [[ -z ${4:-} ]] || resources="\"resources\": {\"memory\": {\"limit\": $4}${5:+, \"cpu\": {\"quota\": $5, \"period\": 100000\}}},"
    sed -e "s|\"args\": \\[\"sh\"\\]|\"args\": $2|" \
        -e "s|\"terminal\": false|\"terminal\": ${3:-false}|" \
        -e "s|\"linux\": {|\"linux\": {$resources|" \
        "$SRC/tools/agent-ctl/examples/config.json" >"$WORK/bundle-$1/config.json"
    echo "$WORK/bundle-$1"
}

# launch_vm LABEL LAUNCH-ARGS...: boots the guest in the background with launch.sh
# (the agent socket, console log and pidfile in WORK), waiting for the agent as
# the args say; its output in launch_out.  On failure prints it, counts LABEL as
# failed and returns 1.
launch_vm() {
    local label=$1
    shift
    if ! launch_out=$("$SRC/image-builder/launch.sh" "$@" --agent-sock "$WORK/agent.sock" \
        --log "$WORK/console.log" --pidfile "$PIDFILE" --background --ctl "$CTL" 2>&1); then
        echo "$launch_out"
        bad "$label"
        return 1
    fi
}

# expect_power_off PREFIX TRIES: the guest's qemu must exit within TRIES * 0.2 s
# (after DestroySandbox); counted as "PREFIXthe VM powered off".  Returns 1 if not.
expect_power_off() {
    local qpid
    # The pidfile is "qemu PID / virtiofsd PID / rundir DIR" lines: the qemu line's pid.
    qpid=$(awk '$1 == "qemu" { print $2 }' "$PIDFILE" 2>/dev/null || true)
    if ! [[ $qpid =~ ^[0-9]+$ ]]; then
        bad "${1}no qemu pid in $PIDFILE"
        return 1
    fi
    for _ in $(seq 1 "$2"); do kill -0 "$qpid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$qpid" 2>/dev/null; then
        bad "${1}the VM did not power off"
        return 1
    fi
    ok "${1}the VM powered off"
}
