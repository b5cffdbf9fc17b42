#!/usr/bin/env bash
# bench/instructions.sh: the instructions each service executes per saga.
#
# Time on a shared machine moves by 20% from one run to the next; the
# instructions a service executes for the same sagas move by about 1%. So a
# change to the hot path is measured here first (A/B: run it on both
# builds), and its effect on sagas/s with bench/run.sh.
#
# It starts the three services under valgrind's callgrind on ipc:// in a
# temporary folder, runs `eda bench` against them, and divides each
# service's instructions (all its threads, user space only: no system call
# is counted) by the sagas. Counting starts after the services are up.
#
# Usage: bench/instructions.sh [--build DIR] [--orders N] [--saga PATTERN]
#                              [--sync full|normal] [--log-level LEVEL] [--keep]
#   --build DIR      the build to measure (default: build)
#   --orders N       sagas (default 3000; about 10 s)
#   --saga PATTERN   choreography (default) or orchestration
#   --sync MODE      the services' --sync (default full)
#   --log-level L    the services' log level (default warn)
#   --keep           keep the folder with callgrind's files, for
#                    callgrind_annotate, and print its path
#
# Needs valgrind (installed when missing, as the other scripts do).
set -euo pipefail
# shellcheck source=bench/services.sh
. "$(dirname "$0")/services.sh"

build=build orders=3000 saga=choreography sync=full level=warn keep=0
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
    --build) build=$2; shift ;;
    --orders) orders=$2; shift ;;
    --saga) saga=$2; shift ;;
    --sync) sync=$2; shift ;;
    --log-level) level=$2; shift ;;
    --keep) keep=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "bench/instructions.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
case $orders in '' | *[!0-9]* | 0) echo "bench/instructions.sh: --orders wants a positive number" >&2; exit 2 ;; esac
if ! command -v valgrind >/dev/null; then
    echo "bench/instructions.sh: installing valgrind" >&2
    apt-get install -y -qq valgrind >/dev/null
fi
eda="$build/tools/eda"
for p in "$eda" "$build"/{order,customer,inventory}-service/*-service; do
    [ -x "$p" ] || { echo "bench/instructions.sh: $p is missing: build first" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/eda-instructions.XXXXXX")
declare -A pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    [ "$keep" -eq 1 ] || rm -rf "$work"
}
trap cleanup EXIT

bench_peers "$work"
for name in order customer inventory; do
    bench_service "$name" "$work" "$sync"
    valgrind --tool=callgrind --callgrind-out-file="$work/$name.out" \
        "${svc[@]}" --log-level "$level" 2>"$work/$name.log" &
    pids[$name]=$!
done
# Under valgrind a service takes seconds to start: wait for all three.
"$eda" "${peers[@]}" --timeout 30000 ping >/dev/null ||
    { echo "bench/instructions.sh: the services did not start" >&2; exit 1; }
for name in order customer inventory; do callgrind_control -z "${pids[$name]}" >/dev/null 2>&1; done
"$eda" "${peers[@]}" --timeout 20000 bench --orders "$orders" --saga "$saga" | head -1
for name in order customer inventory; do callgrind_control -d "${pids[$name]}" >/dev/null 2>&1; done
for name in order customer inventory; do
    # the dump is written by the service's own thread: wait until its last
    # line, the totals, is there
    total=
    for _ in $(seq 100); do
        total=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$work/$name.out.1" 2>/dev/null)
        [ -n "$total" ] && break
        sleep 0.05
    done
    [ -n "$total" ] || { echo "bench/instructions.sh: no callgrind totals for $name-service" >&2; exit 1; }
    printf '%-18s %8d instructions per saga\n' "$name-service" $((total / orders))
done
[ "$keep" -eq 0 ] || echo "callgrind files: $work (callgrind_annotate --inclusive=yes $work/order.out.1)"
