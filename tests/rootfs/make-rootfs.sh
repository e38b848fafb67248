#!/usr/bin/env bash
# make-rootfs.sh OUTDIR PAYLOAD
#
# Build the image-free container rootfs the integration tests run: Debian's
# static busybox plus the static test payload (tests/payload, ka-payload).
# OUTDIR is made from scratch each time, in OUTDIR.tmp, then swapped in.
#
#   /bin/busybox            from the busybox-static package, ~90 applets linked
#                           beside it (/bin/sh, /bin/ls, ...; list below)
#   /usr/bin/ka-payload     PAYLOAD, and /payload/bin/<cmd> -> it for every command
#                           (/payload/bin/id runs "ka-payload id")
#   /etc                    passwd, group, hostname, hosts, resolv.conf (empty)
#   /proc /sys /dev /run    empty mount points; /tmp and /var/tmp are 1777
#   /root /home/user        homes of root and user (1000:1000)
#
# Environment: KA_BUSYBOX=PATH uses another static busybox (skips the package
# check). Needs no network; runs as any user (ownership is set only as root).
set -euo pipefail

die() { echo "make-rootfs: $*" >&2; exit 1; }

[ $# -eq 2 ] || die "usage: make-rootfs.sh OUTDIR PAYLOAD"
out=${1%/}
payload=$2
[ -n "$out" ] && [ "$out" != / ] || die "refusing OUTDIR '$1'"

busybox=${KA_BUSYBOX:-/bin/busybox}
if [ -z "${KA_BUSYBOX:-}" ]; then
    # Debian's dynamic "busybox" package also installs /bin/busybox; only the
    # static one works inside a rootfs without libc.
    status=$(dpkg-query -W -f='${db:Status-Status}' busybox-static 2>/dev/null || true)
    if [ "$status" != installed ] || [ ! -x "$busybox" ]; then
        die "need a static /bin/busybox: install the Debian package busybox-static" \
            "(apt-get install busybox-static, or run tools/setup-debian.sh)"
    fi
fi
[ -x "$busybox" ] || die "$busybox is not an executable busybox"
[ -x "$payload" ] || die "payload '$payload' is not executable (build the ka-payload target)"
busybox=$(realpath -e -- "$busybox")
payload=$(realpath -e -- "$payload")

# Asking the binaries themselves keeps these lists in one place each.
mapfile -t applets < <("$busybox" --list) || true
mapfile -t commands < <("$payload" list) || true
[ ${#applets[@]} -gt 0 ] || die "'$busybox --list' printed no applets"
[ ${#commands[@]} -gt 0 ] || die "'$payload list' printed no commands"
# The applets linked into /bin: the required ones, and the useful ones this
# busybox has. Not all ~270: symlinks cost ~0.5 ms each on some file systems.
required=(sh ls cat echo true false sleep id env mount ps grep wc head tail stat hostname kill)
useful=(ash '[' '[[' test printf pwd mkdir rmdir rm cp mv ln touch chmod chown readlink
        realpath basename dirname seq tr cut sort uniq sed awk tee xargs find du df dd date
        uname whoami groups nproc mkfifo mknod umount nsenter unshare setpriv chroot timeout
        setsid stty tty sync truncate ip free top pidof killall dmesg sysctl which od
        hexdump xxd md5sum sha256sum yes expr diff cmp usleep mountpoint nc)
have=" ${applets[*]} "
bb_links=()
for a in "${required[@]}"; do
    [[ $have == *" $a "* ]] || die "$busybox has no '$a' applet"
    bb_links+=("$a")
done
for a in "${useful[@]}"; do
    [[ $have == *" $a "* ]] && bb_links+=("$a")
done

tmp=$out.tmp
old=$out.old
# A test that died may have left mounts (a bind of a host directory) in the old
# tree: deleting through them would delete host files.
abs=$(realpath -m -- "$out")
if [ -r /proc/self/mountinfo ] && awk -v p="$abs" '
        { for (i = 0; i < 3; i++) { q = p (i == 1 ? ".tmp" : i == 2 ? ".old" : "")
              if ($5 == q || index($5, q "/") == 1) { print "  " $5; found = 1 } } }
        END { exit !found }' /proc/self/mountinfo >&2; then
    die "mounts are left under $abs (listed above); unmount them first"
fi
rm -rf --one-file-system -- "$tmp" "$old"
mkdir -p -- "$tmp"
cd -- "$tmp"

mkdir -p bin sbin usr/bin usr/sbin payload/bin etc proc sys dev run var/tmp tmp root home/user
chmod 0755 . bin sbin usr usr/bin usr/sbin payload payload/bin etc proc sys dev run var home home/user
chmod 1777 tmp var/tmp
chmod 0700 root

cp -- "$busybox" bin/busybox
cp -- "$payload" usr/bin/ka-payload
chmod 0755 bin/busybox usr/bin/ka-payload

# TARGET DIR NAME...: symlinks DIR/NAME -> TARGET. One perl (Essential in Debian)
# instead of a few hundred ln processes; ln when perl is missing.
links() {
    local target=$1 dir=$2
    shift 2
    if command -v perl >/dev/null; then
        perl -e '($t, $d) = splice(@ARGV, 0, 2);
                 for (@ARGV) { symlink($t, "$d/$_") or die "make-rootfs: symlink $d/$_: $!\n" }' \
            "$target" "$dir" "$@"
    else
        local l
        for l; do ln -s -- "$target" "$dir/$l"; done
    fi
}
links busybox bin "${bb_links[@]}"
links ../../usr/bin/ka-payload payload/bin "${commands[@]}"

cat >etc/passwd <<'EOF'
root:x:0:0:root:/root:/bin/sh
user:x:1000:1000:user:/home/user:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >etc/group <<'EOF'
root:x:0:
wheel:x:10:user
audio:x:29:
users:x:100:
user:x:1000:
nogroup:x:65534:
EOF
echo ka-test >etc/hostname
cat >etc/hosts <<'EOF'
127.0.0.1	localhost
::1	localhost ip6-localhost ip6-loopback
EOF
: >etc/resolv.conf
chmod 0644 etc/passwd etc/group etc/hostname etc/hosts etc/resolv.conf

if [ "$(id -u)" -eq 0 ]; then
    chown -R 0:0 .
    chown 1000:1000 home/user
fi

cd - >/dev/null
if [ -e "$out" ]; then
    mv -T -- "$out" "$old"
    mv -T -- "$tmp" "$out"
    rm -rf --one-file-system -- "$old"
else
    mv -T -- "$tmp" "$out"
fi
