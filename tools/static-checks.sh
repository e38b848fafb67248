#!/usr/bin/env bash
# Static checks on the project's own C code (not the generated protobuf code):
#  1. formatting: tools/format.sh --check (clang-format 14, the committed .clang-format);
#  2. cppcheck (Debian 12: 2.10) with --enable=warning,portability,performance: every
#     finding fails. A false positive is suppressed inline, on the line before it, with
#     "/* cppcheck-suppress <id> ; why */", or, for a check that is wrong for the whole
#     code base, in tools/cppcheck-suppressions.txt with the reason.
# Usage: tools/static-checks.sh [--no-format|--no-cppcheck] [BUILD_DIR]
# BUILD_DIR (default build/native) is a built native build: cppcheck takes each
# file's flags from its compile_commands.json and reads the generated protobuf headers
# from it. Files the build does not compile (bench/, tests/fuzz/) get the common flags.
# Exits 0 when clean, 1 on any finding, 2 when a tool is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd -P)

do_format=1
do_cppcheck=1
while [ $# -gt 0 ]; do
    case "$1" in
    --no-format) do_format=0 ;;
    --no-cppcheck) do_cppcheck=0 ;;
    -h | --help) sed -n '2,12p' "$0"; exit 0 ;;
    -*) echo "static-checks: unknown option $1 (try --help)" >&2; exit 2 ;;
    *) break ;;
    esac
    shift
done
build=${1:-build/native}

failed=()

if [ "$do_format" = 1 ]; then
    echo "--- static-checks: clang-format"
    rc=0
    tools/format.sh --check || rc=$?
    [ "$rc" = 0 ] || failed+=("clang-format (fix with tools/format.sh)")
    [ "$rc" = 2 ] && exit 2
fi

if [ "$do_cppcheck" = 1 ]; then
    echo "--- static-checks: cppcheck"
    if ! command -v cppcheck >/dev/null; then
        echo "static-checks: cppcheck not found (apt-get install cppcheck)" >&2
        exit 2
    fi
    case "$(cppcheck --version)" in
    "Cppcheck 2.10"*) ;;
    *) echo "static-checks: warning: $(cppcheck --version) is not Debian 12's 2.10;" \
        "findings may differ" >&2 ;;
    esac
    if [ ! -f "$build/CMakeCache.txt" ]; then
        echo "static-checks: $build is not a configured build (cmake --preset native first)" >&2
        exit 2
    fi
    build=$(cd "$build" && pwd -P)
    db=$build/compile_commands.json
    if [ ! -f "$db" ]; then
        # Only adds the export to the existing cache: no flag changes, nothing rebuilt.
        cmake -S . -B "$build" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
    fi
    mapfile -t in_db < <(sed -n 's/^ *"file": "\(.*\)",\{0,1\}$/\1/p' "$db" | sort -u)
    # Generated sources and headers appear at build time; cppcheck needs them all.
    for f in "${in_db[@]}"; do
        if [ ! -f "$f" ]; then
            echo "static-checks: $f is missing: build $build first (cmake --build $build)" >&2
            exit 2
        fi
    done

    common=(
        '--enable=warning,portability,performance'
        --inline-suppr --suppressions-list=tools/cppcheck-suppressions.txt
        --error-exitcode=1 --quiet -j "$(nproc)"
        --template='{file}:{line}:{column}: {severity}: {message} [{id}]'
        # Generated code is not ours to fix.
        -i"$build"
        # cppcheck does not read system headers, so the version guard at the top of
        # each generated .pb-c.h would otherwise hit its #error and stop the analysis
        # of every file that includes one. These are libprotobuf-c 1.4's values.
        -DPROTOBUF_C_VERSION_NUMBER=1004001 -DPROTOBUF_C_MIN_COMPILER_VERSION=1000000
        -DPROTOBUF_C__BEGIN_DECLS= -DPROTOBUF_C__END_DECLS=
    )
    # Not --library=posix: it reads every fd held by a cleanup attribute
    # (agent/core/util.h) as leaked, and asks for the deprecated readdir_r.

    out=$(mktemp)
    trap 'rm -f "$out"' EXIT
    rc=0
    cppcheck "${common[@]}" --project="$db" 2>>"$out" || rc=$?

    # The project's C files that the build does not compile.
    extra=()
    while read -r f; do
        case " ${in_db[*]} " in
        *" $root/$f "*) ;;
        *) extra+=("$f") ;;
        esac
    done < <(git ls-files --cached --others --exclude-standard -- \
        'agent/*.c' 'init/*.c' 'tools/*.c' 'tests/*.c' 'bench/*.c' 2>/dev/null ||
        find agent init tools tests bench -name '*.c')
    if [ ${#extra[@]} -gt 0 ]; then
        cppcheck "${common[@]}" -D_GNU_SOURCE -Ulinux -Iagent -I. -Itools/agent-ctl \
            -I"$build/proto-gen" "${extra[@]}" 2>>"$out" || rc=$?
    fi
    sed "s|^$root/||" "$out"
    n=$(grep -c '\[[A-Za-z0-9_]*\]$' "$out" || true)
    echo "cppcheck: $n findings (${#extra[@]} files outside the build checked with common flags)"
    [ "$rc" = 0 ] || failed+=("cppcheck ($n findings)")
fi

if [ ${#failed[@]} -gt 0 ]; then
    printf 'static-checks: FAILED: %s\n' "${failed[@]}" >&2
    exit 1
fi
echo "static-checks: clean"
