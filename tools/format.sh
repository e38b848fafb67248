#!/usr/bin/env bash
# Format the project's own C code with clang-format and the committed .clang-format.
#   tools/format.sh           reformat in place
#   tools/format.sh --check   change nothing; list the files that differ, exit 1 if any
#   tools/format.sh --diff    change nothing; show what would change, exit 1 if anything
# Extra arguments after the mode limit the run to those files.
# Generated code lives under build/ and is never touched. The layout clang-format
# produces differs between its major versions: we use Debian 12's clang-format 14
# (override with CLANG_FORMAT=...).
set -euo pipefail
cd "$(dirname "$0")/.."

mode=fix
case "${1:-}" in
--check) mode=check; shift ;;
--diff) mode='diff'; shift ;;
-h | --help) sed -n '2,9p' "$0"; exit 0 ;;
-*) echo "format: unknown option $1 (try --help)" >&2; exit 2 ;;
esac

cf=${CLANG_FORMAT:-}
if [ -z "$cf" ]; then
    for c in clang-format-14 clang-format; do
        if command -v "$c" >/dev/null; then cf=$c; break; fi
    done
fi
if [ -z "$cf" ]; then
    echo "format: clang-format not found (apt-get install clang-format)" >&2
    exit 2
fi
case "$("$cf" --version)" in
*"version 14."*) ;;
*) echo "format: warning: $("$cf" --version) is not clang-format 14; the layout may differ" >&2 ;;
esac

# The project's own C files: tracked and new (not ignored) ones in the source dirs.
project_files() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files --cached --others --exclude-standard -- \
            'agent/*.[ch]' 'init/*.[ch]' 'tools/*.[ch]' 'tests/*.[ch]' 'bench/*.[ch]' |
            while read -r f; do [ -f "$f" ] && echo "$f"; done
    else
        find agent init tools tests bench -name '*.[ch]' -type f
    fi | sort -u
}

if [ $# -gt 0 ]; then
    files=("$@")
else
    mapfile -t files < <(project_files)
fi

if [ "$mode" = fix ]; then
    changed=0
    for f in "${files[@]}"; do
        if ! "$cf" --style=file "$f" | cmp -s - "$f"; then
            "$cf" --style=file -i "$f"
            echo "formatted $f"
            changed=$((changed + 1))
        fi
    done
    echo "format: $changed of ${#files[@]} files reformatted"
    exit 0
fi

bad=0
for f in "${files[@]}"; do
    if ! "$cf" --style=file "$f" | cmp -s - "$f"; then
        bad=$((bad + 1))
        if [ "$mode" = diff ]; then
            "$cf" --style=file "$f" | diff -u --label "$f" --label "$f (formatted)" "$f" - || true
        else
            echo "$f: $("$cf" --style=file "$f" | diff "$f" - | grep -c '^<') lines differ"
        fi
    fi
done
if [ "$bad" -gt 0 ]; then
    echo "format: $bad of ${#files[@]} files are not formatted; run tools/format.sh"
    exit 1
fi
echo "format: all ${#files[@]} files formatted"
