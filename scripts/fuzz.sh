#!/usr/bin/env bash
# Builds the libFuzzer harnesses of fuzz/ into build-fuzz (clang, ASan + UBSan)
# and runs each for SECONDS (default 10) over a scratch copy of its corpus.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]   (targets: envelope items config log)
# Exits non-zero when a harness finds a crash, a leak or a timeout, and says
# where the input is. New inputs go to build-fuzz/, never into fuzz/corpus/.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
-h | --help)
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
esac
secs=${1:-10}
[ $# -gt 0 ] && shift
if ! [[ "$secs" =~ ^[0-9]+$ ]] || [ "$secs" -eq 0 ]; then
    echo "fuzz.sh: SECONDS must be a positive number, not '$secs'" >&2
    exit 2
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(envelope items config log)
for t in "${targets[@]}"; do
    if [ ! -d "fuzz/corpus/$t" ]; then
        echo "fuzz.sh: no harness '$t' (try envelope, items, config, log)" >&2
        exit 2
    fi
done

cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DEDA_FUZZ=ON -DEDA_TESTS=OFF >/dev/null
cmake --build build-fuzz -j "$(nproc)" --target "${targets[@]/#/fuzz_}" -- --no-print-directory

status=0
for t in "${targets[@]}"; do
    work=build-fuzz/fuzz-runs/$t
    rm -rf "$work"
    mkdir -p "$work/corpus" "$work/artifacts"
    cp fuzz/corpus/"$t"/* "$work/corpus/"
    log=$work/fuzz.log
    # -timeout: an input that takes 10 s is a hang; -close_fd_mask=1 silences
    # what the code under test prints on stdout, not the fuzzer's report.
    if ./build-fuzz/fuzz/fuzz_"$t" -max_total_time="$secs" -timeout=10 \
        -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 -close_fd_mask=1 \
        -artifact_prefix="$work/artifacts/" "$work/corpus" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        echo "fuzz $t: ok, ${runs:-?} runs in ${secs}s (${rate:-?}/s)"
        continue
    fi
    status=1
    echo "fuzz $t: FAILED (the whole output is in $log)" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*check failed|.*runtime error)' "$log" | head -5 >&2 || true
    for found in "$work"/artifacts/*; do
        [ -e "$found" ] || continue
        kind=$(basename "$found" | cut -d- -f1)
        cat >&2 <<MSG
  input: $found
  replay it:   ./build-fuzz/fuzz/fuzz_$t $found
  once fixed, keep it in the corpus so that it stays fixed:
               cp $found fuzz/corpus/$t/$kind-<short-name>
MSG
    done
done
exit "$status"
