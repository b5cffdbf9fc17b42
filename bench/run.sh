#!/usr/bin/env bash
# bench/run.sh: the speed of the sagas against the floor, in one run.
#
# Measures the floor (eda-floor: the saga's message pattern with no work,
# unpaced for throughput, one saga at a time for latency), then for each
# saga pattern and --sync mode starts the three services afresh on ipc://
# with file databases at --log-level warn and runs `eda bench` unpaced at
# each window (orders in flight), then paced at 2,000/s; and unpaced runs at
# the default --log-level info (choreography, sync full) for the cost of the
# log. Prints one table: sagas/s, its ratio to the floor at the same window,
# latency, each service's RSS and database size after the run.
# docs/performance.md says how to read it.
#
# Usage: bench/run.sh [--orders N] [--smoke] [--build DIR] [--sync full|normal|both]
#                     [--windows "W ..."] [--repeat K] [--json]
#   --orders N   orders of each unpaced run (default 100000); the paced runs
#                take 20000 (10 s at 2,000/s)
#   --windows L  the unpaced runs' windows (default "500 2000": eda bench's
#                default, and one deep enough to keep both cores busy)
#   --smoke      a few thousand orders, a 1 s paced run: does it all work
#   --build DIR  the build tree with the programs (default build)
#   --sync S     full, normal or both (default both)
#   --repeat K   everything K times, interleaved; the table gives medians
#   --json       also each run's JSON line, after the table
# Exit status: 0 when every run completed, 1 otherwise (never on speed).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/services.sh
. bench/services.sh

orders=100000
paced=20000
serial=5000
rate=2000
build=build
syncs="full normal"
json=0
repeat=1
windows="500 2000"
usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
    --orders)
        orders="${2:-}"
        shift
        ;;
    --smoke)
        orders=3000
        paced=2000
        serial=500
        ;;
    --build)
        build="${2:-}"
        shift
        ;;
    --sync)
        case "${2:-}" in
        full | normal) syncs="$2" ;;
        both) syncs="full normal" ;;
        *)
            echo "bench/run.sh: --sync takes full, normal or both" >&2
            exit 2
            ;;
        esac
        shift
        ;;
    --repeat)
        repeat="${2:-}"
        shift
        ;;
    --windows)
        windows="${2:-}"
        shift
        ;;
    --json) json=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "bench/run.sh: unknown option '$1' (try --help)" >&2
        exit 2
        ;;
    esac
    shift
done
# shellcheck disable=SC2086 # $windows is a list
for n in "$orders" "$repeat" $windows; do
    case "$n" in
    '' | *[!0-9]* | 0)
        echo "bench/run.sh: --orders, --repeat and --windows take positive whole numbers" >&2
        exit 2
        ;;
    esac
done
[ -n "${windows// /}" ] || {
    echo "bench/run.sh: --windows takes at least one window" >&2
    exit 2
}

eda="$build/tools/eda"
floor="$build/bench/eda-floor"
for p in "$eda" "$floor" "$build/order-service/order-service" \
    "$build/customer-service/customer-service" "$build/inventory-service/inventory-service"; do
    if [ ! -x "$p" ]; then
        echo "bench/run.sh: no $p: build first (cmake --build $build)" >&2
        exit 1
    fi
done

# Everything the script starts is killed on the way out, by its pid.
work=$(mktemp -d "${TMPDIR:-/tmp}/eda-bench-XXXXXX")
pids=()
stop_services() {
    local pid
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    pids=()
}
cleanup() {
    stop_services
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A number from eda's --json line: jget KEY LINE.
jget() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$2"; }
# Microseconds as milliseconds, 2 decimals.
ms() { awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; }
# a / b with 2 decimals, "-" when b is 0 or empty.
ratio() { awk -v a="$1" -v b="${2:-0}" 'BEGIN { if (b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
# One process's resident set, MB.
rss_mb() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# A database's size with its WAL, MB.
db_mb() {
    local total=0 f
    for f in "$1" "$1-wal"; do
        [ -f "$f" ] && total=$((total + $(stat -c %s "$f")))
    done
    awk -v b="$total" 'BEGIN { printf "%.1f", b / 1048576 }'
}

fail() {
    echo "bench/run.sh: $*" >&2
    local f
    for f in "$work"/run-*/*.log; do
        [ -s "$f" ] && { echo "--- last lines of $f:" >&2; tail -n 5 "$f" >&2; }
    done
    exit 1
}

echo "bench/run.sh: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg) at the start;" \
    "$orders orders unpaced at window(s) $windows, $paced paced at $rate/s, $repeat time(s)"

# Every measurement is a line of $results: KEY (what was run, tab-separated
# fields) then sagas/s, p50, p99, max (us), RSS o c i (MB), DB o c i (MB).
results="$work/results.tsv"
json_rows=()
# record KEY BENCH_JSON [RSS DB]: RSS and DB as "o/c/i".
record() {
    local key=$1 out=$2 rss=${3:-0/0/0} db=${4:-0/0/0}
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$key" "$(jget sagas_per_s "$out")" \
        "$(jget saga_p50_us "$out")" "$(jget saga_p99_us "$out")" \
        "$(jget saga_max_us "$out")" "${rss//\//$'\t'}" "${db//\//$'\t'}" >>"$results"
}
# median KEY COLUMN: the median of a column (1-based, after the key's 5
# fields) over the repeats of KEY.
median() {
    awk -F'\t' -v k="$1" -v c="$2" '$1"\t"$2"\t"$3"\t"$4"\t"$5 == k { print $(5 + c) }' \
        "$results" | sort -g | awk '{ v[NR] = $1 } END {
            if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# --- the floor ---------------------------------------------------------------
run_floor() {
    local saga out one paced_out window unpaced
    for saga in choreography orchestration; do
        unpaced=""
        for window in $windows; do
            out=$("$floor" --json --orders "$orders" --window "$window" --saga "$saga") ||
                fail "eda-floor --window $window --saga $saga failed"
            record "floor"$'\t'"$saga"$'\t-\t-\tw'"$window" "$out"
            unpaced+="${unpaced:+,}\"$window\":$out"
        done
        one=$("$floor" --json --serial --orders "$serial" --saga "$saga") ||
            fail "eda-floor --serial --saga $saga failed"
        paced_out=$("$floor" --json --rate "$rate" --orders "$paced" --saga "$saga") ||
            fail "eda-floor --rate $rate --saga $saga failed"
        record "floor"$'\t'"$saga"$'\t-\t-\tserial' "$one"
        record "floor"$'\t'"$saga"$'\t-\t-\tpaced' "$paced_out"
        json_rows+=("{\"run\":\"floor\",\"saga\":\"$saga\",\"unpaced\":{$unpaced},\"serial\":$one,\"paced\":$paced_out}")
    done
}

# --- the services ------------------------------------------------------------
n_run=0
# run_config SAGA SYNC LOG: fresh services, the unpaced runs (one per
# window), then (at warn) the paced one; RSS and database sizes after each.
run_config() {
    local saga=$1 sync=$2 log=$3 dir peers svc name pid
    n_run=$((n_run + 1))
    dir="$work/run-$n_run"
    mkdir -p "$dir"
    bench_peers "$dir"
    for name in order customer inventory; do
        bench_service "$name" "$dir" "$sync"
        [ "$log" = info ] || svc+=(--log-level "$log")
        [ "$name" = order ] && svc+=(--saga "$saga")
        "${svc[@]}" 2>"$dir/$name.log" &
        pids+=($!)
    done
    local tries=0 stats
    until "$eda" "${peers[@]}" --timeout 500 ping >/dev/null 2>&1; do
        tries=$((tries + 1))
        [ "$tries" -lt 20 ] || fail "the services did not answer ping ($saga, sync $sync)"
        sleep 0.25
    done
    # Ready when every service has caught up once from each peer it follows
    # (Stats shows the peer's epoch, "" before that first replay).
    tries=0
    until stats=$("$eda" "${peers[@]}" --timeout 500 --json stats 2>/dev/null) &&
        [ "$(grep -c . <<<"$stats")" -eq 3 ] && ! grep -q '"epoch":""' <<<"$stats"; do
        tries=$((tries + 1))
        [ "$tries" -lt 40 ] || fail "the services did not catch up from each other ($saga, sync $sync)"
        sleep 0.1 # the poll's period
    done

    local runs=() window
    for window in $windows; do
        runs+=("w$window:$orders:0:$window")
    done
    [ "$log" = info ] || runs+=("$rate/s:$paced:$rate:500")
    local r what n pace out rss db
    for r in "${runs[@]}"; do
        IFS=: read -r what n pace window <<<"$r"
        out=$("$eda" "${peers[@]}" --json bench --orders "$n" --rate "$pace" \
            --window "$window" --saga "$saga") ||
            fail "eda bench --orders $n --rate $pace --window $window --saga $saga (sync $sync, log $log) failed"
        rss=""
        db=""
        for pid in "${pids[@]}"; do
            rss+="${rss:+/}$(rss_mb "$pid")"
        done
        for name in order customer inventory; do
            db+="${db:+/}$(db_mb "$dir/$name.db")"
        done
        record "services"$'\t'"$saga"$'\t'"$sync"$'\t'"$log"$'\t'"$what" "$out" "$rss" "$db"
        json_rows+=("{\"run\":\"services\",\"saga\":\"$saga\",\"sync\":\"$sync\",\"log\":\"$log\",\"pace\":$pace,\"rss_mb\":\"$rss\",\"db_mb\":\"$db\",\"bench\":$out}")
    done
    stop_services
    rm -rf "$dir" # the info run's log is large
}

for ((round = 1; round <= repeat; round++)); do
    run_floor
    for saga in choreography orchestration; do
        for sync in $syncs; do
            run_config "$saga" "$sync" warn
        done
    done
    run_config choreography "${syncs%% *}" info
done

# --- the table (medians over the repeats) ------------------------------------
echo
echo "floor (eda-floor: the same messages, no work; $orders orders unpaced at each" \
    "window; one at a time: $serial orders; paced: $paced at $rate/s):"
declare -A floor_sps floor_one
for saga in choreography orchestration; do
    key="floor"$'\t'"$saga"$'\t-\t-'
    floor_one[$saga]=$(median "$key"$'\tserial' 2)
    for window in $windows; do
        floor_sps[$saga w$window]=$(median "$key"$'\tw'"$window" 1)
        printf '  %-13s w%-5s %9.0f sagas/s  p50 %s ms  p99 %s ms\n' "$saga" "$window" \
            "${floor_sps[$saga w$window]}" "$(ms "$(median "$key"$'\tw'"$window" 2)")" \
            "$(ms "$(median "$key"$'\tw'"$window" 3)")"
    done
    printf '  %-13s one at a time: p50 %s ms  p99 %s ms | %s/s: p50 %s ms  p99 %s ms\n' \
        "$saga" "$(ms "${floor_one[$saga]}")" "$(ms "$(median "$key"$'\tserial' 3)")" "$rate" \
        "$(ms "$(median "$key"$'\tpaced' 2)")" "$(ms "$(median "$key"$'\tpaced' 3)")"
done
echo
printf '%-13s %-6s %-4s %-7s %8s %9s %8s %8s %8s  %-15s %s\n' pattern sync log run \
    sagas/s "vs floor" "p50 ms" "p99 ms" "max ms" "RSS MB o/c/i" "DB+WAL MB o/c/i"
# The keys of the services' rows, in the order they ran.
while IFS= read -r key; do
    IFS=$'\t' read -r _ saga sync log what <<<"$key"
    sps=$(median "$key" 1)
    p50=$(median "$key" 2)
    # Unpaced: sagas/s over the floor's at the same window. Paced: p50
    # over the floor's latency, one saga at a time.
    if [ "${what#w}" != "$what" ]; then
        vs="$(ratio "$sps" "${floor_sps[$saga $what]}")"
    else
        vs="p50 x$(ratio "$p50" "${floor_one[$saga]}")"
    fi
    printf '%-13s %-6s %-4s %-7s %8.0f %9s %8s %8s %8s  %-15s %s\n' "$saga" "$sync" "$log" \
        "$what" "$sps" "$vs" "$(ms "$p50")" "$(ms "$(median "$key" 3)")" \
        "$(ms "$(median "$key" 4)")" \
        "$(median "$key" 5)/$(median "$key" 6)/$(median "$key" 7)" \
        "$(median "$key" 8)/$(median "$key" 9)/$(median "$key" 10)"
done < <(awk -F'\t' '$1 == "services" && !seen[$1"\t"$2"\t"$3"\t"$4"\t"$5]++ {
                print $1"\t"$2"\t"$3"\t"$4"\t"$5 }' "$results")
echo
echo "run: wN unpaced with N orders in flight; vs floor: sagas/s over the floor's at the"
echo "same window. Paced (window 500): p50 over the floor's p50 one saga at a time.$([ "$repeat" -gt 1 ] && echo " Medians of $repeat runs; the ratios are of the medians.")"
if [ "$json" -eq 1 ]; then
    printf '%s\n' "${json_rows[@]}"
fi
