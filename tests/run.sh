#!/usr/bin/env bash
# The test command: build every preset (native, static riscv64, sanitizers,
# fuzzers) and run the whole suite natively (unit, integration, interop, the
# riscv64 binary under qemu-user), then again under ASan+UBSan, then each fuzzer
# for a bounded time. Run as root.
set -euo pipefail
cd "$(dirname "$0")/.."

jobs=$(nproc)
for preset in native riscv64 asan fuzz; do
    echo "=== build: $preset"
    cmake --preset "$preset" >/dev/null
    cmake --build --preset "$preset" -j "$jobs"
    if [ "$preset" = native ]; then
        echo "=== static checks: clang-format and cppcheck (uses build/native's compile database)"
        tools/static-checks.sh build/native
    fi
done

echo "=== test: native"
ctest --preset native
echo "=== test: asan"
ctest --preset asan
echo "=== fuzz: each libFuzzer harness for a bounded time (KA_FUZZ_SECONDS)"
ctest --preset fuzz
