#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the normal build, the
# ASan + UBSan build, Release builds of the programs with gcc and clang
# (warnings are errors: each compiler warns about other things),
# 10 s of each fuzzer (fuzz/), and the format check.
# Usage: ./run-tests.sh [--quick]   (--quick: normal build only)
set -euo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh

quick=0
case "${1:-}" in
--quick) quick=1 ;;
-h | --help)
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
"") ;;
*)
    echo "run-tests.sh: unknown option '$1' (try --help)" >&2
    exit 2
    ;;
esac

# clang and its runtime libraries (libFuzzer) for scripts/fuzz.sh only.
eda_install_deps python3-zmq python3-msgpack clang libclang-rt-dev
status=0

echo "== format check (clang-format)"
if ! git ls-files '*.c' '*.h' | xargs -r clang-format --dry-run --Werror; then
    echo "format check failed: run clang-format -i on the files above" >&2
    status=1
fi

echo "== normal build"
eda_build build -DEDA_WERROR=ON
(cd build && ctest --output-on-failure -j 2) || status=1
# The speed tooling must keep working; it asserts nothing about speed.
echo "== bench/run.sh --smoke (floor and eda bench, both patterns)"
bench/run.sh --smoke --build build || status=1

if [ "$quick" -eq 0 ]; then
    echo "== sanitizer build (ASan + UBSan)"
    eda_build build-asan -DEDA_SANITIZE=ON -DEDA_WERROR=ON
    (cd build-asan &&
        ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
            ctest --output-on-failure -j 2) || status=1

    # -O2 and another compiler find warnings the RelWithDebInfo gcc build
    # does not; only the programs and libeda, to stay quick.
    echo "== Release builds, gcc and clang (warnings are errors)"
    eda_build build-gcc-release -DCMAKE_C_COMPILER=gcc -DCMAKE_BUILD_TYPE=Release \
        -DEDA_TESTS=OFF -DEDA_WERROR=ON || status=1
    eda_build build-clang-release -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Release \
        -DEDA_TESTS=OFF -DEDA_WERROR=ON || status=1

    echo "== fuzzing (libFuzzer, 10 s a harness)"
    scripts/fuzz.sh 10 || status=1
fi

[ "$status" -eq 0 ] && echo "all test suites passed" || echo "some tests FAILED" >&2
exit "$status"
