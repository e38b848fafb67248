# Shared helpers for fetching Debian 13 (trixie) packages without apt.
# Sourced (not run) by cmake/fetch-sysroot.sh and image-builder/kernel.sh.
#
# Why not apt: Debian 12 has no riscv64 architecture, and `apt-get update` on
# trixie fails on these machines (the served Packages.xz does not match its
# InRelease).  So the Packages.xz index is parsed here directly and every .deb
# is checked against the SHA256 the index gives for it.  No host name is ever
# written into the repository: the archive URL comes from the apt sources.
#
# The caller must run bash with `set -euo pipefail` and may set:
#   DF_TAG               prefix of log lines (default: debian-fetch)
#   KATA_DEBIAN_MIRROR   Debian archive base URL (default: read from the apt sources)
#
# Functions (all log to stderr; "die" exits the shell, or the $(...) subshell,
# which `set -e` then turns into an exit of the caller):
#   df_log MSG... / df_die MSG...
#   df_find_mirror                   candidate archive URLs from the apt sources
#   df_mirror                        sets MIRROR (KATA_DEBIAN_MIRROR or apt sources)
#   df_fetch URL OUT                 curl with retries via OUT.part
#   df_get_index DIR SUITE ARCH      DIR/Packages-ARCH.xz (downloaded once, kept)
#   df_parse_index IDX NAME...       "name arch version filename sha256" per stanza
#   df_parse_index_re IDX ERE        the same for package names matching ERE
#   df_select_pkgs IDX NAME...       highest version of each NAME, in the order given
#   df_select_highest IDX ERE        highest version among names matching ERE
#   df_sha256 FILE
#   df_get_deb DEBDIR FILENAME SHA256   path of a verified .deb (cached in DEBDIR)
#
# Index refresh: the index is downloaded once and kept (so builds are
# reproducible); delete it to pick up newer package versions.

df_log() { printf '%s: %s\n' "${DF_TAG:-debian-fetch}" "$*" >&2; }
df_die() { df_log "ERROR: $*"; exit 1; }

# The "debian" archive (URI path ending in /debian, so not debian-security and not
# third-party repos) from deb822 .sources files or classic sources.list lines.
df_find_mirror() {
    local f
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        # deb822: one stanza per blank-line-separated paragraph; skip "Enabled: no".
        # (field names are case-insensitive; mawk has no IGNORECASE, hence tolower)
        awk 'BEGIN { RS = ""; FS = "\n" }
             {
               enabled = 1; uris = ""
               for (i = 1; i <= NF; i++) {
                 l = tolower($i)
                 if (l ~ /^enabled:[ \t]*no/) enabled = 0
                 if (l ~ /^uris:/) { uris = $i; sub(/^[^:]*:[ \t]*/, "", uris) }
               }
               if (enabled) { n = split(uris, u, /[ \t]+/); for (j = 1; j <= n; j++) print u[j] }
             }' "$f"
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        # "deb [options] URL suite components"
        sed -n -E 's/^[[:space:]]*deb[[:space:]]+(\[[^]]*\][[:space:]]+)?([^[:space:]]+).*/\2/p' "$f"
    done
}

df_mirror() {
    if [[ -n ${KATA_DEBIAN_MIRROR:-} ]]; then
        MIRROR=${KATA_DEBIAN_MIRROR%/}
    else
        MIRROR=$(df_find_mirror | sed 's:/*$::' | grep -E '^(https?|ftp|file)://.*/debian$' | head -n1 || true)
        [[ -n $MIRROR ]] || df_die "no Debian archive found in the apt sources; set KATA_DEBIAN_MIRROR"
    fi
}

# curl with retries; writes to .part and renames, so a cut download never looks complete.
df_fetch() {
    local url=$1 out=$2
    if ! curl -fsSL --retry 3 --connect-timeout 20 -o "$out.part" "$url"; then
        rm -f "$out.part"; df_log "download failed: $url"; return 1
    fi
    mv -f "$out.part" "$out"
}

# Needs MIRROR (df_mirror).  Callers sharing DIR should hold a lock around this.
df_get_index() {
    local dir=$1 suite=$2 arch=$3 idx
    idx=$dir/Packages-$arch.xz
    DF_INDEX_DIR=$dir   # named in df_get_deb's hint when a pool file is gone
    mkdir -p "$dir"
    if [[ ! -s $idx ]]; then
        df_log "index $arch: downloading"
        df_fetch "$MIRROR/dists/$suite/main/binary-$arch/Packages.xz" "$idx" || exit 1
    fi
    xz -t "$idx" 2>/dev/null || { rm -f "$idx"; df_die "corrupt index $idx (deleted; re-run)"; }
}

# Print "name arch version filename sha256" for every stanza whose Package is one of
# the given names (mode "names") or matches an ERE (mode "re").  Packages may be
# listed more than once (several versions): all are printed.
_df_parse() {
    local idx=$1 mode=$2 want=$3
    # want goes through the environment: awk -v would mangle backslashes in an ERE.
    xz -dc "$idx" | DF_MODE=$mode DF_WANT=$want awk '
        BEGIN { RS = ""; FS = "\n"; mode = ENVIRON["DF_MODE"]; want = ENVIRON["DF_WANT"]
                if (mode == "names") { n = split(want, w, " "); for (i = 1; i <= n; i++) W[w[i]] = 1 } }
        {
          p = a = v = f = s = ""
          for (i = 1; i <= NF; i++) {
            if ($i ~ /^Package: /)      p = substr($i, 10)
            if ($i ~ /^Architecture: /) a = substr($i, 15)
            if ($i ~ /^Version: /)      v = substr($i, 10)
            if ($i ~ /^Filename: /)     f = substr($i, 11)
            if ($i ~ /^SHA256: /)       s = substr($i, 9)
          }
          if (mode == "names" ? (p in W) : (p ~ want)) print p, a, v, f, s
        }'
}
df_parse_index()    { local idx=$1; shift; _df_parse "$idx" names "$*"; }
df_parse_index_re() { _df_parse "$1" re "$2"; }

# Highest version (dpkg --compare-versions) among "name arch version ..." lines on stdin.
_df_highest() {
    local best="" bestv="" p a v f s
    while read -r p a v f s; do
        [[ -n $p ]] || continue
        if [[ -z $best ]] || dpkg --compare-versions "$v" gt "$bestv"; then
            best="$p $a $v $f $s"; bestv=$v
        fi
    done
    [[ -n $best ]] && echo "$best"
}

# Pick the highest version of each wanted package; output lines in the order given.
df_select_pkgs() {
    local idx=$1; shift
    local cands name best
    cands=$(df_parse_index "$idx" "$@")
    for name in "$@"; do
        best=$(awk -v n="$name" '$1 == n' <<<"$cands" | _df_highest) ||
            df_die "package $name not found in $idx"
        echo "$best"
    done
}

# The highest-version stanza among all packages whose name matches ERE.
df_select_highest() {
    local idx=$1 re=$2
    df_parse_index_re "$idx" "$re" | _df_highest || df_die "no package matching /$re/ in $idx"
}

df_sha256() { sha256sum "$1" | cut -d' ' -f1; }

# Needs MIRROR.  Prints the path of the verified .deb; a cached file with the wrong
# hash is replaced.
df_get_deb() {
    local debdir=$1 filename=$2 sha=$3 deb
    mkdir -p "$debdir"
    deb=$debdir/$(basename "$filename")
    if [[ -f $deb ]]; then
        if [[ $(df_sha256 "$deb") == "$sha" ]]; then echo "$deb"; return; fi
        df_log "WARNING: cached $(basename "$deb") has the wrong SHA256; deleting and re-fetching"
        rm -f "$deb"
    fi
    df_log "get $(basename "$deb")"
    df_fetch "$MIRROR/$filename" "$deb" ||
        df_die "if the index is stale, delete ${DF_INDEX_DIR:-the Packages index} and re-run"
    if [[ $(df_sha256 "$deb") != "$sha" ]]; then
        rm -f "$deb"
        df_die "SHA256 mismatch for $MIRROR/$filename (expected $sha; file deleted)"
    fi
    echo "$deb"
}
