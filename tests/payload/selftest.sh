#!/usr/bin/env bash
# selftest.sh PAYLOAD ROOTFS: check ka-payload's commands and output formats on
# the host, the rootfs layout make-rootfs.sh produced, and (as root) a few
# commands run chrooted into that rootfs.
set -uo pipefail

[ $# -eq 2 ] || { echo "usage: selftest.sh PAYLOAD ROOTFS" >&2; exit 2; }
P=$(realpath -- "$1")
R=$(realpath -m -- "$2")
failures=0
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
# expect WANT_RC WANT_STDOUT CMD...: run CMD, compare exit status and stdout.
expect() {
    local want_rc=$1 want_out=$2 out rc
    shift 2
    out=$("$@" 2>"$scratch/stderr")
    rc=$?
    if [ "$rc" -ne "$want_rc" ] || [ "$out" != "$want_out" ]; then
        fail "$* -> rc=$rc (want $want_rc), stdout:"$'\n'"$out"$'\n'"want:"$'\n'"$want_out"$'\n'"stderr: $(cat "$scratch/stderr")"
    fi
}
# expect_match REGEX CMD...: CMD exits 0 and some stdout line matches REGEX.
expect_match() {
    local re=$1 out
    shift
    out=$("$@" 2>&1) || { fail "$* -> rc=$?: $out"; return; }
    grep -Eq -- "$re" <<<"$out" || fail "$*: no line matches /$re/ in:"$'\n'"$out"
}

# -- the binary
if command -v file >/dev/null; then
    file -L "$P" | grep -q 'statically linked' || fail "$P is not statically linked: $(file -L "$P")"
fi

# -- dispatch
expect 0 "hi there" "$P" echo hi there
expect 0 "-n x" "$P" echo -n x
expect 2 "" "$P" no-such-command
expect 2 "" "$P"
ln -s "$P" "$scratch/echo"
expect 0 "via link" "$scratch/echo" via link
ln -s "$P" "$scratch/exit"
expect 3 "" "$scratch/exit" 3

# -- simple commands
expect 0 "" "$P" true
expect 1 "" "$P" false
expect 7 "" "$P" exit 7
expect 44 "" "$P" exit 300
expect 2 "" "$P" exit x
expect 0 "" "$P" echo-stderr to stderr
[ "$(cat "$scratch/stderr")" = "to stderr" ] || fail "echo-stderr wrote '$(cat "$scratch/stderr")'"
expect 0 $'a\nb' bash -c "printf 'a\nb\n' | '$P' cat"
expect 0 "" "$P" sleep 0.05
expect 2 "" "$P" sleep soon
expect 0 $'A=1\nB=two words' env -i A=1 "B=two words" "$P" env
expect 0 "/" bash -c "cd / && '$P' cwd"
expect 0 "$(printf 'uid=%s\neuid=%s\nsuid=%s\ngid=%s\negid=%s\nsgid=%s' \
    "$(id -ru)" "$(id -u)" "$(id -u)" "$(id -rg)" "$(id -g)" "$(id -g)")" bash -c "'$P' id | head -6"
expect_match '^groups=([0-9]+(,[0-9]+)*)?$' "$P" id
expect 0 $'pid=\nppid=' bash -c "'$P' pid | sed 's/=[0-9]*$/=/'"
expect 0 "$(hostname)" "$P" hostname

# -- /proc views
expect 0 $'CapInh\nCapPrm\nCapEff\nCapBnd\nCapAmb\nNoNewPrivs' bash -c "'$P' caps | cut -d: -f1"
expect 0 $'Name:\tka-payload' "$P" status-field Name
expect 0 $'Name:\tka-payload' "$P" status-field Name:
expect 1 "" "$P" status-field NoSuchField
expect 0 "$(for n in pid ipc uts mnt net cgroup; do readlink /proc/self/ns/$n; done)" "$P" ns
expect 0 "$(readlink /proc/self/ns/user)" "$P" ns user
expect_match '^0 -> /dev/null$' bash -c "exec '$P' fds </dev/null"
expect_match '^9 -> .*/scratch-file$' bash -c "exec 9>'$scratch/scratch-file'; exec '$P' fds"
expect_match '^[0-9]+ [0-9]+ [0-9:]+ / / ' "$P" mounts

# -- rlimits
expect 0 "$(ulimit -Sn) $(ulimit -Hn)" "$P" rlimit NOFILE
expect 0 "$(ulimit -Sn) $(ulimit -Hn)" "$P" rlimit rlimit_nofile
expect 0 "0 0" bash -c "ulimit -c 0; '$P' rlimit CORE"
expect 0 "unlimited unlimited" bash -c "ulimit -t unlimited 2>/dev/null; '$P' rlimit CPU"
expect 2 "" "$P" rlimit BOGUS
expect_match '^NOFILE [0-9]+ [0-9]+$' "$P" rlimit

# -- terminals
expect 1 "notty" bash -c "'$P' isatty 0 </dev/null"
expect 1 "ENOTTY" bash -c "'$P' winsize </dev/null"
if command -v script >/dev/null; then
    out=$(script -qec "stty rows 33 cols 101; '$P' isatty 0; '$P' winsize" /dev/null </dev/null | tr -d '\r')
    [ "$out" = $'tty\nrows=33 cols=101' ] || fail "isatty/winsize on a pty: '$out'"
fi

# -- files
expect 0 "ok" "$P" write-file "$scratch/f" "some text"
expect 0 "some text" "$P" read-file "$scratch/f"
expect 1 "ENOENT" "$P" write-file "$scratch/no/such/f" x
expect 1 "ENOENT" "$P" read-file "$scratch/nothing"
expect 0 $'type=chr\nmode=0666\nmajor=1\nminor=3' bash -c "'$P' stat /dev/null | grep -E '^(type|mode|major|minor)='"
expect 0 $'type=dir\nmode=1777' bash -c "'$P' stat /tmp | grep -E '^(type|mode)='"
ln -s /dev/null "$scratch/lnk"
expect 0 "type=lnk" bash -c "'$P' stat --no-follow '$scratch/lnk' | head -1"
expect 0 "type=chr" bash -c "'$P' stat '$scratch/lnk' | head -1"
expect 1 "ENOENT" "$P" stat "$scratch/nothing"

# -- streams
expect 0 $'10485760\npattern=ok' bash -c "'$P' write-bytes 10M 2>/dev/null | '$P' read-bytes --verify"
expect 0 $'1000\npattern=ok' bash -c "'$P' write-bytes 1000 7 2>/dev/null | '$P' read-bytes --verify"
expect 1 $'101\npattern=mismatch offset=61' bash -c "{ '$P' write-bytes 61; echo; '$P' write-bytes 39; } 2>/dev/null | '$P' read-bytes --verify"
expect 0 "0" bash -c "'$P' read-bytes </dev/null"
expect 0 "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxy0123" bash -c "'$P' write-bytes 65 2>/dev/null"

# -- signals and processes
expect 143 "" "$P" kill-self TERM
expect 137 "" "$P" kill-self 9
expect 139 "" "$P" kill-self SIGSEGV
expect 1 "survived=SIGCHLD" "$P" kill-self CHLD
expect 2 "" "$P" kill-self NOTASIGNAL
"$P" pause --handle-term >"$scratch/pause.out" &
pid=$!
for _ in $(seq 100); do [ -s "$scratch/pause.out" ] && break; sleep 0.02; done
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 0 ] && [ "$(cat "$scratch/pause.out")" = $'ready\nSIGTERM' ] ||
    fail "pause --handle-term: rc=$rc, '$(cat "$scratch/pause.out")'"
"$P" pause >"$scratch/pause.out" &
pid=$!
for _ in $(seq 100); do [ -s "$scratch/pause.out" ] && break; sleep 0.02; done
kill -TERM $pid
wait $pid
rc=$?
[ $rc -eq 143 ] || fail "pause: SIGTERM gave rc=$rc"
expect 0 $'forks=3\nerrno=none' "$P" forkbomb 3
expect 0 $'mb=1\nmb=2\ndone' "$P" memhog 2

# -- the rootfs
if [ ! -d "$R" ]; then
    fail "no rootfs at $R"
else
    for d in bin proc sys dev tmp etc root home/user run var payload/bin usr/bin; do
        [ -d "$R/$d" ] || fail "rootfs: no /$d"
    done
    [ "$(stat -c %a "$R/tmp")" = 1777 ] || fail "rootfs: /tmp is not 1777"
    [ -x "$R/bin/busybox" ] || fail "rootfs: no /bin/busybox"
    for a in sh ls cat echo true false sleep id env mount ps grep wc head tail stat hostname kill; do
        [ "$(readlink "$R/bin/$a")" = busybox ] || fail "rootfs: /bin/$a is not a link to busybox"
    done
    cmp -s "$P" "$R/usr/bin/ka-payload" || fail "rootfs: /usr/bin/ka-payload differs from $P"
    for c in $("$P" list); do
        [ "$(readlink "$R/payload/bin/$c")" = ../../usr/bin/ka-payload ] || fail "rootfs: /payload/bin/$c"
    done
    expect 0 "from the rootfs" "$R/payload/bin/echo" from the rootfs
    grep -qx 'root:x:0:0:root:/root:/bin/sh' "$R/etc/passwd" || fail "rootfs: passwd has no root"
    grep -qx 'user:x:1000:1000:user:/home/user:/bin/sh' "$R/etc/passwd" || fail "rootfs: passwd has no user"
    grep -q '^nobody:x:65534:65534:' "$R/etc/passwd" || fail "rootfs: passwd has no nobody"
    for g in root:x:0: wheel:x:10:user users:x:100: user:x:1000: audio:x:29:; do
        grep -qx "$g" "$R/etc/group" || fail "rootfs: group has no '$g'"
    done
    [ -s "$R/etc/hostname" ] || fail "rootfs: empty /etc/hostname"
    [ -f "$R/etc/resolv.conf" ] && [ ! -s "$R/etc/resolv.conf" ] || fail "rootfs: resolv.conf not an empty file"
    if [ "$(id -u)" -eq 0 ] && command -v chroot >/dev/null; then
        [ "$(stat -c %u:%g "$R/home/user")" = 1000:1000 ] || fail "rootfs: /home/user not owned by 1000:1000"
        expect 0 "hi" chroot "$R" /bin/sh -c 'echo hi'
        expect 0 $'uid=1000\ngroups=10,29' bash -c \
            "chroot --userspec=1000:1000 --groups=10,29 '$R' /payload/bin/id | grep -E '^(uid|groups)='"
        expect 0 "/" chroot "$R" /payload/bin/cwd
        expect 0 "ok" chroot "$R" /payload/bin/write-file /tmp/x y
        rm -f "$R/tmp/x"
    fi
fi

if [ $failures -ne 0 ]; then
    echo "selftest: $failures failure(s)" >&2
    exit 1
fi
echo "selftest: ok"
