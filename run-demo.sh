#!/usr/bin/env bash
# EDA Shop demo: installs what is missing, builds, starts the three services
# on their default loopback endpoints with fresh databases under demo/, seeds
# customers and stock, and plays the place-order saga scenarios, each followed
# by the event flow it caused. Exits 0 only if every scenario ends as expected.
# Usage: ./run-demo.sh [--keep]   (--keep: leave demo/ and the logs behind)
set -uo pipefail
cd "$(dirname "$0")"
. scripts/deps.sh

keep=0
case "${1:-}" in
--keep) keep=1 ;;
-h | --help)
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
"") ;;
*)
    echo "run-demo.sh: unknown option '$1' (try --help)" >&2
    exit 2
    ;;
esac

start_time=$(date +%s)
if [ -t 1 ]; then
    bold=$'\033[1m' green=$'\033[32m' red=$'\033[31m' off=$'\033[0m'
else
    bold="" green="" red="" off=""
fi

eda_install_deps || {
    echo "run-demo.sh: could not install the packages it needs" >&2
    exit 1
}
echo "building..."
eda_build_programs build >/dev/null || {
    echo "run-demo.sh: the build failed" >&2
    exit 1
}

bin=$PWD/build
demo=$PWD/demo
eda="$bin/tools/eda --timeout 3000"
declare -A pids=()
failures=0

stop_all() {
    for name in "${!pids[@]}"; do
        kill -TERM "${pids[$name]}" 2>/dev/null
    done
    for name in "${!pids[@]}"; do
        wait "${pids[$name]}" 2>/dev/null
    done
    pids=()
}
cleanup() {
    stop_all
    [ "$keep" -eq 1 ] || rm -rf "$demo"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

# start NAME: starts one service on its default endpoints and its demo db,
# then waits until it answers Ping.
start() {
    local name=$1
    "$bin/$name/$name" --db "$demo/${name%-service}.db" --log-level warn \
        2>>"$demo/logs/$name.log" &
    pids[$name]=$!
    for _ in $(seq 1 100); do
        $eda --timeout 200 ping "$name" >/dev/null 2>&1 && return 0
        kill -0 "${pids[$name]}" 2>/dev/null || break
    done
    echo "${red}$name did not start:${off} $(tail -n 1 "$demo/logs/$name.log")" >&2
    exit 1
}

announce() { printf '\n%s== %s%s\n' "$bold" "$*" "$off"; }

# expect WHAT ACTUAL WANTED: one line, green when they agree.
expect() {
    if [ "$2" = "$3" ]; then
        printf '   %s✔ %s: %s%s\n' "$green" "$1" "$2" "$off"
    else
        printf '   %s✘ %s: %s, expected %s%s\n' "$red" "$1" "$2" "$3" "$off"
        failures=$((failures + 1))
    fi
}

# field JSON KEY: the value of a top-level string or number key.
field() { sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" <<<"$1" | head -n 1; }

# settle ORDER_ID: waits until the order has left PENDING, prints its status.
settle() {
    local json status
    for _ in $(seq 1 150); do
        json=$($eda --json order "$1" 2>/dev/null)
        status=$(field "$json" status)
        [ -n "$status" ] && [ "$status" != PENDING ] && break
        sleep 0.02 # the demo polls the read model, as a client would
    done
    echo "$status"
}

# order CUSTOMER ITEMS...: places an order, prints its id.
order() {
    local customer=$1
    shift
    local args=()
    for item in "$@"; do args+=(--item "$item"); done
    field "$($eda --json place-order --customer "$customer" "${args[@]}")" order_id
}

# scenario TITLE CUSTOMER ITEM... -- WANT_STATUS [WANT_REASON]
scenario() {
    local title=$1 customer=$2
    shift 2
    local items=()
    while [ "$1" != "--" ]; do
        items+=("$1")
        shift
    done
    shift
    announce "$title"
    local id
    id=$(order "$customer" "${items[@]}")
    if [ -z "$id" ]; then
        expect "order placed" "no order id" "an order id"
        return
    fi
    local status
    status=$(settle "$id")
    $bin/tools/eda trace "$id" | sed 's/^/   /'
    expect "order $id" "$status" "$1"
    if [ -n "${2:-}" ]; then
        expect "reason" "$(field "$($eda --json order "$id")" reason)" "$2"
    fi
}

reserved_of() { field "$($eda --json customer show "$1")" reserved; }

rm -rf "$demo"
mkdir -p "$demo/logs"
for port in 7101 7102 7201 7202 7301 7302; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "run-demo.sh: port $port is in use: is another EDA Shop running?" >&2
        exit 1
    fi
done

announce "Starting order-service, customer-service and inventory-service (logs in demo/logs)"
start order-service
start customer-service
start inventory-service
$bin/tools/eda ping | sed 's/^/   /'

announce "Seeding customers and stock"
$eda customer create alice --name "Alice Liddell" --credit 50000 | sed 's/^/   /'
$eda customer create bob --name "Bob Marley" --credit 1000 | sed 's/^/   /'
$eda stock add book 50 | sed 's/^/   /'
$eda stock add lamp 2 | sed 's/^/   /'
$eda stock add pen 500 | sed 's/^/   /'

scenario "1. Alice orders 2 books and a pen: approved" \
    alice book:2:1500 pen:1:250 -- APPROVED

scenario "2. Bob orders a lamp he cannot afford: refused for credit" \
    bob lamp:1:4500 -- REJECTED CREDIT_LIMIT_EXCEEDED

before=$(reserved_of alice)
scenario "3. Alice orders 5 lamps, only 2 in stock: refused for stock, credit released" \
    alice lamp:5:4500 -- REJECTED OUT_OF_STOCK
expect "alice's reserved credit after the release" "$(reserved_of alice)" "$before"

scenario "4. Carol, who is no customer, orders a pen: refused" \
    carol pen:1:250 -- REJECTED UNKNOWN_CUSTOMER

announce "5. customer-service is killed with kill -9 while 20 orders arrive, then restarted"
ids=()
for i in $(seq 1 20); do
    ids+=("$(order alice pen:1:100)")
    if [ "$i" -eq 8 ]; then
        kill -9 "${pids[customer-service]}"
        wait "${pids[customer-service]}" 2>/dev/null
        unset 'pids[customer-service]'
        echo "   customer-service killed after order 8; orders keep being accepted"
    fi
done
pending=$($eda --json orders --status PENDING | grep -o '"order_id"' | wc -l)
echo "   $pending orders PENDING while customer-service is down"
start customer-service
echo "   customer-service restarted: it catches up from order-service's event log"
settled=0
for id in "${ids[@]}"; do
    [ "$(settle "$id")" = APPROVED ] && settled=$((settled + 1))
done
expect "orders approved after the restart" "$settled" 20
$bin/tools/eda trace "${ids[12]}" | sed 's/^/   /'
expect "alice's reserved credit = her approved orders (nothing applied twice)" \
    "$(field "$($eda --json customer show alice)" reserved)" \
    "$((1500 * 2 + 250 + 20 * 100))"

announce "Orders"
$eda orders | sed 's/^/   /'
announce "Customers"
for c in alice bob; do $eda customer show $c | sed 's/^/   /'; done
announce "Stock"
for s in book lamp pen; do $eda stock show $s | sed 's/^/   /'; done

stop_all
elapsed=$(($(date +%s) - start_time))
echo
if [ "$failures" -eq 0 ]; then
    echo "${green}${bold}Every scenario ended as expected${off} (${elapsed} s)."
    exit 0
fi
echo "${red}${bold}$failures check(s) failed${off} (${elapsed} s); logs are in demo/logs." >&2
keep=1
exit 1
