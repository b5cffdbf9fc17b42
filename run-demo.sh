#!/usr/bin/env bash
# EDA Shop demo: installs what is missing, builds, starts the three services
# on their default loopback endpoints with fresh databases under demo/, seeds
# customers and stock, and plays each scenario in both saga patterns on the
# same data: choreography (events only) and orchestration (order-service
# sends commands). After each scenario it prints the two flows side by side,
# with the events and commands each used. Exits 0 only if every scenario
# ends as expected.
# Usage: ./run-demo.sh [--keep] [--secure] [--console]
#   --keep    leave demo/, its logs and flows behind
#   --secure  CURVE security: make keys with `eda keys init demo/keys`, start
#             every service with --keys and run every eda command with --keys
#   --console after the scenarios keep the services running with `eda console`
#             in front of them (http://127.0.0.1:8088/) until Ctrl-C
set -uo pipefail
cd "$(dirname "$0")" || exit 1
# shellcheck source=scripts/deps.sh
. scripts/deps.sh

keep=0 secure=0 console=0
for arg in "$@"; do
    case "$arg" in
    --keep) keep=1 ;;
    --secure) secure=1 ;;
    --console) console=1 ;;
    -h | --help)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
        exit 0
        ;;
    *)
        echo "run-demo.sh: unknown option '$arg' (try --help)" >&2
        exit 2
        ;;
    esac
done

# Before anything is touched (demo/, build/): one run at a time, and the
# default ports free. The lock is outside demo/, which a run deletes; it is
# held on descriptor 9 until this script exits, and the services do not
# inherit it (9>&- in start).
exec 9>>.demo.lock
if ! flock -n 9; then
    echo "run-demo.sh: another run-demo.sh is running here (it holds $PWD/.demo.lock)" >&2
    exit 1
fi
console_port=8088
ports=(7101 7102 7201 7202 7301 7302)
[ "$console" -eq 1 ] && ports+=("$console_port")
for port in "${ports[@]}"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "run-demo.sh: port $port is in use: is another EDA Shop running?" >&2
        exit 1
    fi
done

# now_ms: wall-clock milliseconds (EPOCHREALTIME uses the locale's decimal mark).
now_ms() {
    local us=${EPOCHREALTIME//[.,]/}
    echo $((us / 1000))
}
start_ms=$(now_ms)
if [ -t 1 ]; then
    bold=$'\033[1m' green=$'\033[32m' red=$'\033[31m' off=$'\033[0m'
else
    bold="" green="" red="" off=""
fi

# shellcheck disable=SC2119 # no packages beyond the build's
eda_install_deps || {
    echo "run-demo.sh: could not install the packages it needs" >&2
    exit 1
}
echo "building..."
eda_build_programs build >/dev/null || {
    echo "run-demo.sh: the build failed" >&2
    exit 1
}
built_ms=$(now_ms)

bin=$PWD/build
demo=$PWD/demo
keys=() # --keys DIR for every service and every eda command, with --secure
[ "$secure" -eq 1 ] && keys=(--keys "$demo/keys")
eda="$bin/tools/eda ${keys[*]} --timeout 3000"
sagas=(choreography orchestration)
# order-service's orchestrator, made quick for the demo: a command unanswered
# for 300 ms is retried (after 100, 200, 400 ms ...); a saga still waiting
# after 4 s is rejected PARTICIPANT_UNAVAILABLE and compensated.
command_timeout=300
saga_deadline=4000
width=77 # of each of the two flow columns: 3 + 77 + 3 + 77 = 160 columns
declare -A pids=()
declare -A ord=() # the order id of the current scenario, per pattern
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
# shellcheck disable=SC2317 # run by the trap
cleanup() {
    stop_all
    [ "$keep" -eq 1 ] || rm -rf "$demo"
}
trap cleanup EXIT
trap 'echo; echo "interrupted"; exit 130' INT TERM

# poll TRIES COMMAND...: runs COMMAND until it succeeds, at most TRIES times,
# 20 ms apart; fails if it never does.
poll() {
    local tries=$1
    shift
    for _ in $(seq 1 "$tries"); do
        "$@" && return 0
        sleep 0.02
    done
    return 1
}

# start NAME: starts one service on its default endpoints and its demo db, at
# --log-level info so that its event-flow lines go to demo/logs/NAME.log,
# then waits until it answers Ping.
start() {
    local name=$1 extra=()
    [ "$name" = order-service ] &&
        extra=(--command-timeout "$command_timeout" --saga-deadline "$saga_deadline")
    "$bin/$name/$name" --db "$demo/${name%-service}.db" --log-level info "${keys[@]}" \
        "${extra[@]}" 2>>"$demo/logs/$name.log" 9>&- &
    pids[$name]=$!
    for _ in $(seq 1 100); do
        $eda --timeout 200 ping "$name" >/dev/null 2>&1 && return 0
        kill -0 "${pids[$name]}" 2>/dev/null || break
    done
    echo "${red}$name did not start:${off} $(tail -n 1 "$demo/logs/$name.log")" >&2
    exit 1
}

# stop NAME [SIGNAL]: stops one service, by default cleanly (SIGTERM).
stop() {
    kill -"${2:-TERM}" "${pids[$1]}"
    wait "${pids[$1]}" 2>/dev/null
    unset "pids[$1]"
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

status_of() { field "$($eda --json order "$1" 2>/dev/null)" status; }
reserved_of() { field "$($eda --json customer show "$1" 2>/dev/null)" reserved; }
stock_reserved_of() { field "$($eda --json stock show "$1" 2>/dev/null)" reserved; }

# settle ORDER_ID: waits until the order has left PENDING (for 10 s at most:
# past the saga deadline, for scenario 7), prints its status.
settle() {
    local status=""
    for _ in $(seq 1 400); do
        status=$(status_of "$1")
        [ -n "$status" ] && [ "$status" != PENDING ] && break
        sleep 0.02 # the demo polls the read model, as a client would
    done
    echo "$status"
}

# place SAGA CUSTOMER ITEMS...: places an order in that pattern, prints its id.
place() {
    local saga=$1 customer=$2
    shift 2
    local args=()
    for item in "$@"; do args+=(--item "$item"); done
    field "$($eda --json place-order --customer "$customer" --saga "$saga" "${args[@]}")" \
        order_id
}

# check SAGA ORDER_ID WANT_STATUS [WANT_REASON]: waits for the order to
# settle and checks how it ended.
check() {
    local saga=$1 id=$2
    if [ -z "$id" ]; then
        expect "$saga order placed" "no order id" "an order id"
        return 1
    fi
    expect "$saga order $id" "$(settle "$id")" "$3"
    if [ -n "${4:-}" ]; then
        expect "reason" "$(field "$($eda --json order "$id")" reason)" "$4"
    fi
}

# is_quiet: every event published has been applied by every service that
# subscribes to its source, and order-service has no saga in flight (no
# command awaiting its answer, no compensation still to be acknowledged).
# shellcheck disable=SC2317 # run by poll
is_quiet() {
    $eda --json stats 2>/dev/null | awk '
        function num(s, key,   i) {
            i = index(s, "\"" key "\":")
            return i ? substr(s, i + length(key) + 3) + 0 : -1
        }
        {
            name = $0
            sub(/^\{"service":"/, "", name)
            sub(/".*/, "", name)
            last[name] = num($0, "last_seq")
            if (name == "order-service")
                busy = num($0, "sagas_in_flight")
            p = $0
            sub(/.*"peers":/, "", p)
            while (match(p, /"[a-z-]+":\{"epoch":"[^"]*","last_seq":[0-9]+/)) {
                m = substr(p, RSTART, RLENGTH)
                p = substr(p, RSTART + RLENGTH)
                n++
                peer[n] = substr(m, 2, index(m, "\":") - 2)
                seen[n] = substr(m, index(m, "last_seq") + 10) + 0
            }
        }
        END {
            if (NR < 3 || busy != 0)
                exit 1
            for (i = 1; i <= n; i++)
                if (!(peer[i] in last) || seen[i] != last[peer[i]])
                    exit 1
        }'
}

# quiet: waits until the services are quiet, then pings each once more: a
# service writes its log lines before it waits for its next message, so the
# lines of everything it reported are then in demo/logs.
quiet() {
    if ! poll 250 is_quiet; then
        expect "every event applied, no saga in flight" "still busy after 5 s" "quiet"
        return 1
    fi
    $eda ping >/dev/null
}

# logged SERVICE ERE: does the service's log have a line matching ERE?
# shellcheck disable=SC2317 # run by poll
logged() { grep -qE -- "$2" "$demo/logs/$1.log"; }

# flow ORDER_ID: the order's event-flow lines from the three service logs,
# merged in time order, shortened for a column: no clock, no order id (the
# column header has it), no saga, items as sku×qty. The logs tell the time to
# the millisecond; within a millisecond or two a line that answers another
# (an event applied, a command answered, order-service's next step after a
# command it sent) is put after it. Timeouts (·), the deadline (!) and
# restarts of a service (▶) during the flow are shown too.
# shellcheck disable=SC2016 # awk's own $fields
flow_awk='
function ms(t) {
    return int(((substr(t, 1, 2) * 60 + substr(t, 4, 2)) * 60 + substr(t, 7)) * 1000 + 0.5)
}
function items(s) {
    gsub(/,"price":[0-9]+/, "", s)
    gsub(/\{"sku":"/, "", s)
    gsub(/","qty":/, "×", s)
    gsub(/\[|\]|\}/, "", s)
    return s
}
function ready(s, i,   k, y) {
    k = K[s, i]
    y = Y[s, i]
    if (k == "apply")
        return pubs[y] > applied[s, y]
    if (k == "cmd")
        return s == 1 || sends[y] > answered[y]
    if (s != 1)
        return 1
    # order-service goes on once its command is answered; the participant
    # answers a batch of commands and publishes its events before it sends
    # the replies.
    return waiting == "" && !(by && h[by] <= n[by] && T[by, h[by]] <= T[s, i] + 1 &&
                              (K[by, h[by]] == "pub" || K[by, h[by]] == "cmd"))
}
function emit(s, i,   k, y) {
    k = K[s, i]
    y = Y[s, i]
    if (k == "pub")
        pubs[y]++
    else if (k == "apply")
        applied[s, y]++
    else if (k == "send") {
        sends[y]++
        waiting = y
    } else if (k == "cmd" && s != 1) {
        answered[y]++
        if (y == waiting) {
            waiting = ""
            by = s
        }
    }
    print L[s, i]
}
BEGIN {
    S["order-service"] = 1
    S["customer-service"] = 2
    S["inventory-service"] = 3
}
!($2 in S) || $1 !~ /^[0-9][0-9]:[0-9][0-9]:[0-9][0-9]\.[0-9]+$/ { next }
{
    s = S[$2]
    name = $2
    sub(/-service$/, "", name)
    y = ""
    if ($3 == "info" || $3 == "warn" || $3 == "error") {
        if ($4 == id ":") {
            k = "note"
            line = sprintf("%-9s %s %s", name, ($3 == "info" ? "·" : "!"),
                           substr($0, index($0, id ": ") + length(id) + 2))
        } else if ($4 == "ready:" || ($4 == "stopped" && NF == 4)) {
            k = "life"
            line = sprintf("%-9s %s", name, ($4 == "stopped" ? "■ stopped" : "▶ started"))
        } else
            next
    } else if ($6 == id && $5 != "GetOrder") {
        k = $4
        y = $5
        rest = ""
        for (j = 7; j <= NF && $j != "(from"; j++) {
            f = $j
            if ((j == 7 && f ~ /^#[0-9]+$/) || f ~ /^(saga|customer_id)=/)
                continue
            if (f ~ /^items=\[/)
                f = items(substr(f, 7))
            sub(/^(outcome|reason)=/, "", f)
            sub(/^available=/, "avail=", f)
            rest = rest (rest == "" ? "" : " ") f
        }
        line = sprintf("%-9s %s %-5s %-14s %s", name, $3, $4, $5, rest)
        sub(/ +$/, "", line)
    } else
        next
    i = ++n[s]
    T[s, i] = ms($1)
    K[s, i] = k
    Y[s, i] = y
    L[s, i] = line
    if (k != "life") {
        if (!have || T[s, i] < lo)
            lo = T[s, i]
        if (!have || T[s, i] > hi)
            hi = T[s, i]
        have = 1
    }
}
END {
    if (!have)
        exit
    for (s = 1; s <= 3; s++)
        h[s] = 1
    for (;;) {
        found = 0
        for (s = 1; s <= 3; s++) {
            while (h[s] <= n[s] && K[s, h[s]] == "life" && (T[s, h[s]] < lo || T[s, h[s]] > hi))
                h[s]++
            if (h[s] <= n[s] && (!found || T[s, h[s]] < min)) {
                min = T[s, h[s]]
                found = 1
            }
        }
        if (!found)
            break
        best = 0
        for (s = 1; s <= 3; s++)
            if (h[s] <= n[s] && T[s, h[s]] <= min + 1 && ready(s, h[s]) &&
                (!best || T[s, h[s]] < T[best, h[best]]))
                best = s
        if (!best)
            for (s = 3; s >= 1; s--)
                if (h[s] <= n[s] && T[s, h[s]] == min)
                    best = s
        emit(best, h[best]++)
    }
}'
flow() {
    LC_ALL=C awk -v id="$1" "$flow_awk" "$demo/logs/order-service.log" \
        "$demo/logs/customer-service.log" "$demo/logs/inventory-service.log"
}

# side_by_side W HEAD_A HEAD_B FILE_A FILE_B: two columns of W characters.
# shellcheck disable=SC2016
side_awk='
function width(s,   t) {
    t = s
    return length(s) - gsub(/[\200-\277]/, "", t)
}
function fit(s,   out, i, c, k) {
    if (width(s) <= w)
        return s
    for (i = 1; i <= length(s); i++) {
        c = substr(s, i, 1)
        if (c !~ /[\200-\277]/ && ++k > w - 1)
            break
        out = out c
    }
    return out "…"
}
function pad(s) {
    s = fit(s)
    return s substr(blank, 1, w - width(s))
}
BEGIN {
    blank = sprintf("%" w "s", "")
    for (i = 0; i < w; i++)
        rule = rule "─"
}
FILENAME == ARGV[1] { a[++na] = $0; next }
{ b[++nb] = $0 }
END {
    print "   " pad(ha) " │ " fit(hb)
    print "   " rule "─┼─" rule
    for (i = 1; i <= na || i <= nb; i++) {
        line = "   " pad(a[i]) " │ " fit(b[i])
        sub(/ +$/, "", line)
        print line
    }
}'

# used FLOW_FILE: what the flow used: events published, commands answered.
used() {
    local events commands timeouts s1="s" s2="s" more=""
    events=$(grep -cF ' → pub ' "$1")
    commands=$(grep -cF ' ⇐ cmd ' "$1")
    timeouts=$(grep -cF ' timed out ' "$1")
    [ "$events" -eq 1 ] && s1=""
    [ "$commands" -eq 1 ] && s2=""
    [ "$timeouts" -gt 0 ] && more=" ($timeouts timed out)"
    echo "$events event$s1, $commands command$s2$more"
}

# compare: once the services are quiet, prints the flows of the scenario's
# choreographed and orchestrated orders side by side, then what each used.
compare() {
    local c=${ord[choreography]:-} o=${ord[orchestration]:-}
    [ -n "$c" ] && [ -n "$o" ] || return
    quiet
    mkdir -p "$demo/flows"
    flow "$c" >"$demo/flows/$c.txt"
    flow "$o" >"$demo/flows/$o.txt"
    echo
    LC_ALL=C awk -v w="$width" -v ha="choreography  $c" -v hb="orchestration  $o" \
        "$side_awk" "$demo/flows/$c.txt" "$demo/flows/$o.txt"
    printf '   %-*s   %s\n' "$width" "choreography: $(used "$demo/flows/$c.txt")" \
        "orchestration: $(used "$demo/flows/$o.txt")"
}

# pair TITLE CUSTOMER ITEM... -- WANT_STATUS [WANT_REASON]: the same order in
# each pattern, one after the other. A rejected order of a known customer must
# leave the customer's reserved credit where it was.
pair() {
    local title=$1 customer=$2
    shift 2
    local items=()
    while [ "$1" != "--" ]; do
        items+=("$1")
        shift
    done
    shift
    announce "$title"
    local saga before
    for saga in "${sagas[@]}"; do
        before=$(reserved_of "$customer")
        ord[$saga]=$(place "$saga" "$customer" "${items[@]}")
        check "$saga" "${ord[$saga]}" "$@" || continue
        if [ "$1" = REJECTED ] && [ -n "$before" ]; then
            quiet
            expect "$customer's reserved credit, as before the order" \
                "$(reserved_of "$customer")" "$before"
        fi
    done
    compare
}

# crash SAGA: 20 orders of 1 pen for alice; customer-service is killed with
# kill -9 after the 8th and restarted after the 20th.
crash() {
    local saga=$1 before ids=() i id pending approved=0
    before=$(reserved_of alice)
    echo "   $saga:"
    for i in $(seq 1 20); do
        ids+=("$(place "$saga" alice pen:1:100)")
        if [ "$i" -eq 8 ]; then
            stop customer-service KILL
            echo "   customer-service killed after order 8; orders keep being accepted"
        fi
    done
    pending=$($eda --json orders --status PENDING | grep -o '"order_id"' | wc -l)
    echo "   $pending orders PENDING while customer-service is down"
    start customer-service
    if [ "$saga" = choreography ]; then
        echo "   customer-service restarted: it catches up from order-service's event log"
    else
        echo "   customer-service restarted: order-service's retried ReserveCredit commands reach it"
    fi
    for id in "${ids[@]}"; do
        [ "$(settle "$id")" = APPROVED ] && approved=$((approved + 1))
    done
    expect "$saga orders approved after the restart" "$approved" 20
    quiet
    expect "alice's reserved credit grew by the 20 orders (nothing applied twice)" \
        "$(reserved_of alice)" "$((before + 20 * 100))"
    ord[$saga]=${ids[12]}
}

# acked ORDER_ID: the release commands the participants answered for the order.
acked() {
    grep -hE "⇐ cmd +Release(Credit|Stock) +$1 " "$demo/logs/customer-service.log" \
        "$demo/logs/inventory-service.log" | awk '{ print $5 }' | sort -u | paste -sd ' ' -
}

rm -rf "$demo"
mkdir -p "$demo/logs"

if [ "$secure" -eq 1 ]; then
    announce "Making CURVE keys in demo/keys"
    "$bin/tools/eda" keys init "$demo/keys" | sed 's/^/   /'
    [ -r "$demo/keys/client.cert_secret" ] || {
        echo "run-demo.sh: eda keys init made no keys" >&2
        exit 1
    }
fi

announce "Starting order-service, customer-service and inventory-service (logs in demo/logs)"
start order-service
start customer-service
start inventory-service
$eda ping | sed 's/^/   /'
[ "$secure" -eq 1 ] &&
    echo "   secured: every socket speaks CURVE; only holders of a key in demo/keys get in"
echo "   orchestration: commands time out after ${command_timeout} ms, sagas after ${saga_deadline} ms"

announce "Seeding customers and stock"
$eda customer create alice --name "Alice Liddell" --credit 50000 | sed 's/^/   /'
$eda customer create bob --name "Bob Marley" --credit 1000 | sed 's/^/   /'
$eda stock add book 50 | sed 's/^/   /'
$eda stock add lamp 2 | sed 's/^/   /'
$eda stock add pen 500 | sed 's/^/   /'

pair "1. Alice orders 2 books and a pen: approved" \
    alice book:2:1500 pen:1:250 -- APPROVED

pair "2. Bob orders a lamp he cannot afford: refused for credit" \
    bob lamp:1:4500 -- REJECTED CREDIT_LIMIT_EXCEEDED

pair "3. Alice orders 5 lamps, only 2 in stock: refused for stock, credit released" \
    alice lamp:5:4500 -- REJECTED OUT_OF_STOCK

pair "4. Carol, who is no customer, orders a pen: refused" \
    carol pen:1:250 -- REJECTED UNKNOWN_CUSTOMER

announce "5. customer-service is killed with kill -9 while 20 orders arrive, then restarted"
for saga in "${sagas[@]}"; do crash "$saga"; done
echo "   the 13th order of each run:"
compare

announce "6. inventory-service is down for about 1.5 s while an order of each pattern waits"
stop inventory-service
echo "   inventory-service stopped"
for saga in "${sagas[@]}"; do ord[$saga]=$(place "$saga" alice book:1:1500); done
c=${ord[choreography]} o=${ord[orchestration]}
poll 150 logged customer-service "→ pub +CreditReserved +$c " &&
    poll 150 logged order-service "$o: ReserveStock timed out \(attempt 3\)"
expect "order-service's timeouts of ReserveStock for $o so far" \
    "$(grep -cF "$o: ReserveStock timed out" "$demo/logs/order-service.log")" 3
expect "choreography order $c, inventory-service down" "$(status_of "$c")" PENDING
expect "orchestration order $o, inventory-service down" "$(status_of "$o")" PENDING
start inventory-service
echo "   inventory-service restarted: it catches up from the event logs (choreography)"
echo "   and answers the ReserveStock commands order-service retries (orchestration)"
check choreography "$c" APPROVED
check orchestration "$o" APPROVED
compare

announce "7. inventory-service is down past the ${saga_deadline} ms saga deadline"
credit_before=$(reserved_of alice)
stock_before=$(stock_reserved_of book)
stop inventory-service
echo "   inventory-service stopped"
for saga in "${sagas[@]}"; do ord[$saga]=$(place "$saga" alice book:1:1500); done
c=${ord[choreography]} o=${ord[orchestration]}
check orchestration "$o" REJECTED PARTICIPANT_UNAVAILABLE
expect "choreography order $c (no deadline: it waits)" "$(status_of "$c")" PENDING
start inventory-service
echo "   inventory-service restarted"
check choreography "$c" APPROVED
quiet
expect "release commands acknowledged for $o" "$(acked "$o")" "ReleaseCredit ReleaseStock"
expect "alice's reserved credit: before + the choreographed order's" \
    "$(reserved_of alice)" "$((credit_before + 1500))"
expect "book's reserved stock: before + the choreographed order's" \
    "$(stock_reserved_of book)" "$((stock_before + 1))"
compare

announce "8. Alice orders 2 books, then cancels the approved order"
for saga in "${sagas[@]}"; do
    credit_before=$(reserved_of alice)
    stock_before=$(stock_reserved_of book)
    ord[$saga]=$(place "$saga" alice book:2:1500)
    check "$saga" "${ord[$saga]}" APPROVED || continue
    $eda cancel "${ord[$saga]}" | sed 's/^/   /'
    quiet
    expect "$saga order ${ord[$saga]}" "$(status_of "${ord[$saga]}")" CANCELLED
    expect "alice's reserved credit, as before the order" "$(reserved_of alice)" "$credit_before"
    expect "book's reserved stock, as before the order" "$(stock_reserved_of book)" "$stock_before"
done
compare

announce "Orders"
$eda orders | sed 's/^/   /'
announce "Customers"
for c in alice bob; do $eda customer show $c | sed 's/^/   /'; done
announce "Stock"
for s in book lamp pen; do $eda stock show $s | sed 's/^/   /'; done
announce "order-service's saga counters"
$eda --json stats order-service | sed -n 's/.*"own":{\([^}]*\)}.*/\1/p' | tr -d '"' |
    tr ',' '\n' | awk -F: '{ printf "   %-24s %s\n", $1, $2 }'

# serve_console: the services stay up with eda console in front of them
# until Ctrl-C (or SIGTERM); cleanup then stops them all.
serve_console() {
    announce "The live console: http://127.0.0.1:$console_port/ (Ctrl-C stops everything)"
    "$bin/tools/eda" "${keys[@]}" console --listen "127.0.0.1:$console_port" \
        >"$demo/logs/console.out" 2>>"$demo/logs/console.log" 9>&- &
    pids[console]=$!
    # Ready when it printed its URL, which it does once it listens.
    if ! poll 250 grep -q '^console: ' "$demo/logs/console.out"; then
        echo "${red}eda console did not start:${off} $(tail -n 1 "$demo/logs/console.log")" >&2
        return 1
    fi
    echo "   open $(sed -n 's/^console: //p' "$demo/logs/console.out") in a browser:" \
        "the services, the live flow, any order's diagram"
    echo "   place orders from another terminal: build/tools/eda${keys[*]:+ ${keys[*]}} place-order ..."
    trap 'echo; echo "stopping"; exit "$result"' INT TERM
    wait "${pids[console]}"
}

[ "$console" -eq 1 ] || stop_all
end_ms=$(now_ms)
elapsed=$(awk -v a="$start_ms" -v b="$built_ms" -v c="$end_ms" \
    'BEGIN { printf "%.1f s, %.1f s once built", (c - a) / 1000, (c - b) / 1000 }')
echo
result=0
if [ "$failures" -eq 0 ]; then
    echo "${green}${bold}Every scenario ended as expected${off} ($elapsed)."
else
    echo "${red}${bold}$failures check(s) failed${off} ($elapsed); logs are in demo/logs." >&2
    keep=1
    result=1
fi
[ "$console" -eq 1 ] && { serve_console || result=1; }
exit "$result"
