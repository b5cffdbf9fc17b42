#!/usr/bin/env bash
# chaos.sh: the long chaos run, for figures (tests/test_e2e_chaos.c is the
# short one that ctest runs). Starts the three services of a build on ipc://
# endpoints in a temp folder (file databases), drives a stream of orders with
# `eda bench` (which resends by request_id, so a killed order-service does
# not stall it) and a side loop of `eda place-order --request-id` whose
# customers and stock run short (so some orders are rejected), while random
# services are killed with SIGKILL (and restarted on the same database) or
# frozen with SIGSTOP (then SIGCONT). Then it waits until the system is quiet
# and checks the invariants of DESIGN section 4 over the protocol; prints
# one summary and exits 1 on any failure.
set -u

usage() {
    cat <<'EOF'
usage: scripts/chaos.sh [--saga choreography|orchestration] [--seconds N]
                        [--build DIR] [--rate R] [--seed S] [--keep]

  --saga P      saga pattern of order-service and of every order
                (default choreography)
  --seconds N   how long the chaos lasts (default 120)
  --build DIR   the build folder holding the binaries (default ./build)
  --rate R      orders per second of `eda bench` (default 100)
  --seed S      the seed of the random faults (default: from the clock;
                printed, so that a run's choices can be replayed)
  --keep        keep the temp folder (logs, databases) even on success

Every 0.5-3 s a random running service is killed with SIGKILL (order-service
is restarted at once, a participant after 0.2-3 s) or frozen with SIGSTOP for
0.5-5 s. At the end every service is back, every side order is asked for
again by its request_id, and once the system is quiet (no order PENDING, no
saga in flight, every peer has applied every event) the script checks over
the protocol:
  - every order is APPROVED, REJECTED or CANCELLED; there are exactly as many
    orders as requests (bench's and the side loop's), and a request asked
    again answers the order it made first;
  - each customer's reserved credit is the total of its APPROVED orders;
  - each SKU's reserved stock is the quantity in APPROVED orders, and
    available + reserved is all the stock added;
  - each service's event log runs 1..last_seq with no gap and no order
    decided twice.
Uses jq and a python3 with the zmq and msgpack modules (Debian's jq,
python3-zmq and python3-msgpack: installed when missing). Exits 0 when
every check passes, 1 when one fails (the temp folder is then kept), 2 on
bad arguments.
EOF
}

SAGA=choreography
SECONDS_RUN=120
BUILD=
RATE=100
SEED=
KEEP=0
while [ $# -gt 0 ]; do
    case "$1" in
    --saga) SAGA=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --seconds) SECONDS_RUN=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --build) BUILD=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --rate) RATE=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --seed) SEED=${2:-}; shift 2 || { usage >&2; exit 2; } ;;
    --keep) KEEP=1; shift ;;
    --help | -h) usage; exit 0 ;;
    *) echo "chaos.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
done
case "$SAGA" in choreography | orchestration) ;; *)
    echo "chaos.sh: --saga must be choreography or orchestration" >&2; exit 2 ;;
esac
for n in "$SECONDS_RUN" "$RATE"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || { echo "chaos.sh: '$n' is not a positive number" >&2; exit 2; }
done
[ -z "$SEED" ] || [[ "$SEED" =~ ^[0-9]+$ ]] || { echo "chaos.sh: --seed must be a number" >&2; exit 2; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${BUILD:-$ROOT/build}" 2>/dev/null && pwd) || { echo "chaos.sh: no build folder" >&2; exit 2; }
EDA=$BUILD/tools/eda
NAMES=(order-service customer-service inventory-service)
for n in "${NAMES[@]}"; do
    [ -x "$BUILD/$n/$n" ] || { echo "chaos.sh: $BUILD/$n/$n is missing: build first" >&2; exit 2; }
done
[ -x "$EDA" ] || { echo "chaos.sh: $EDA is missing: build first" >&2; exit 2; }
. "$ROOT/scripts/deps.sh"
eda_install_deps jq python3-zmq python3-msgpack
PY=
for p in /usr/bin/python3 python3; do
    if "$p" -c 'import zmq, msgpack' 2>/dev/null; then PY=$p; break; fi
done
[ -n "$PY" ] || { echo "chaos.sh: needs python3 with zmq and msgpack (python3-zmq, python3-msgpack)" >&2; exit 2; }

SEED=${SEED:-$(( $(date +%s%N) % 1000000007 ))}
RANDOM=$((SEED % 32768))
# $RANDOM alone is 15 bits: two draws make the 0..max ranges below fine.
rnd() { # rnd LO HI: a uniform integer in LO..HI
    echo $(( $1 + ((RANDOM << 15) | RANDOM) % ($2 - $1 + 1) ))
}
now_ms() {
    local t=${EPOCHREALTIME/./}
    echo $((t / 1000))
}
log() { echo "chaos.sh: [$(( ($(now_ms) - START_MS) / 1000 ))s] $*" >&2; }

T=$(mktemp -d "${TMPDIR:-/tmp}/eda-chaos.XXXXXX")
PIDS=(0 0 0)     # each service's pid, 0 when down
STOPPED=(0 0 0)  # 1 while SIGSTOPped
RESTART_AT=(0 0 0)
CONTINUE_AT=(0 0 0)
BENCH_PID=0
SIDE_PID=0
FAILED=0
PEERS=()
for i in 0 1 2; do
    PEERS+=(--peer "${NAMES[i]}=ipc://$T/${NAMES[i]}.events,ipc://$T/${NAMES[i]}.commands")
done
export EDA_PEER="${PEERS[1]};${PEERS[3]};${PEERS[5]}"

cleanup() {
    # SIGCONT first: a frozen process dies of SIGKILL but would hold a
    # SIGTERM until continued.
    for i in 0 1 2; do
        if [ "${PIDS[i]}" != 0 ]; then
            kill -CONT "${PIDS[i]}" 2>/dev/null
            kill -KILL "${PIDS[i]}" 2>/dev/null
            wait "${PIDS[i]}" 2>/dev/null
        fi
    done
    for p in "$BENCH_PID" "$SIDE_PID"; do
        if [ "$p" != 0 ]; then
            kill -KILL "$p" 2>/dev/null
            wait "$p" 2>/dev/null
        fi
    done
    if [ "$KEEP" = 1 ] || [ "$FAILED" = 1 ]; then
        echo "chaos.sh: kept $T (logs: $T/*.log)" >&2
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'FAILED=1; exit 1' INT TERM HUP

fail() {
    FAILED=1
    echo "chaos.sh: FAILED: $*" >&2
}

# start I: starts service I on its database and waits until it answers Ping.
start_svc() {
    local i=$1 name=${NAMES[$1]} extra=()
    [ "$i" = 0 ] && extra=(--saga "$SAGA")
    "$BUILD/$name/$name" --events "ipc://$T/$name.events" --commands "ipc://$T/$name.commands" \
        --db "$T/$name.db" "${PEERS[@]}" --log-level warn "${extra[@]}" >>"$T/$name.log" 2>&1 &
    PIDS[i]=$!
    local deadline=$(( $(now_ms) + 30000 ))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        if ! kill -0 "${PIDS[i]}" 2>/dev/null; then
            wait "${PIDS[i]}"
            fail "$name exited with status $? before it answered Ping (see $T/$name.log)"
            PIDS[i]=0
            return 1
        fi
        "$EDA" --timeout 300 ping "$name" >/dev/null 2>&1 && return 0
    done
    fail "$name did not answer Ping within 30 s"
    return 1
}

kill_svc() {
    kill -KILL "${PIDS[$1]}" 2>/dev/null
    wait "${PIDS[$1]}" 2>/dev/null
    PIDS[$1]=0
    STOPPED[$1]=0
    CONTINUE_AT[$1]=0
}

# One call that must succeed (setup, before any fault).
must() {
    "$@" >/dev/null || { fail "$*"; exit 1; }
}

START_MS=$(now_ms)
echo "chaos.sh: seed $SEED, saga $SAGA, $SECONDS_RUN s, bench at $RATE orders/s, build $BUILD, dir $T" >&2
for i in 0 1 2; do start_svc "$i" || exit 1; done

# The side loop's shop: "side-poor" and "side-pear" run short, so that some
# of its orders are rejected for credit and some for stock.
must "$EDA" customer create side-rich --name rich --credit 100000000
must "$EDA" customer create side-poor --name poor --credit 5000
must "$EDA" stock add side-apple 1000000
must "$EDA" stock add side-pear 40
SIDE_STOCK='{"side-apple":1000000,"side-pear":40}'

BENCH_ORDERS=$((SECONDS_RUN * RATE))
# A 3 s timeout: an order silent for 6 s is sent again, and bench gives up
# only after 18 s with nothing from order-service (a SIGSTOP lasts 5 s at
# most, but faults overlap).
"$EDA" --timeout 3000 bench --orders "$BENCH_ORDERS" --rate "$RATE" --window 100000 \
    --saga "$SAGA" >"$T/bench.out" 2>&1 &
BENCH_PID=$!

# side_place K: places side order K by its request_id until answered; prints
# "K ORDER_ID" (or "K -" when it never was: the final resend places it).
side_place() {
    local k=$1 customer=side-rich items=(--item side-apple:2:150) out deadline
    [ $((k % 3)) = 0 ] && customer=side-poor
    [ $((k % 4)) = 0 ] && items+=(--item side-pear:1:500)
    deadline=$(( $(now_ms) + 60000 ))
    while [ "$(now_ms)" -lt "$deadline" ]; do
        if out=$("$EDA" --json --timeout 1000 place-order --customer "$customer" "${items[@]}" \
            --request-id "side-$k" --saga "$SAGA" 2>/dev/null); then
            echo "$k $(jq -r .order_id <<<"$out")"
            return 0
        fi
    done
    echo "$k -"
}

END_MS=$(( START_MS + SECONDS_RUN * 1000 ))
(
    k=0
    while [ "$(now_ms)" -lt "$END_MS" ]; do
        side_place "$k"
        k=$((k + 1))
        sleep 0.1
    done
) >"$T/side.txt" 2>/dev/null &
SIDE_PID=$!

# The bench has made its customer and stock once its first order exists:
# only then may the faults begin.
BENCH_CUSTOMER=
for _ in $(seq 100); do
    BENCH_CUSTOMER=$("$EDA" --json orders --limit 1000 2>/dev/null |
        jq -r '[.[] | select(.customer_id | startswith("bench-"))][0].customer_id // empty')
    [ -n "$BENCH_CUSTOMER" ] && break
    sleep 0.1
done
[ -n "$BENCH_CUSTOMER" ] || { fail "eda bench placed no order: $(cat "$T/bench.out")"; exit 1; }

# The chaos. Its waits (when, whom, which fault, how long) are drawn from the
# RNG: they are the input of the run, not waits for anything to be ready.
KILLS=0
STOPS=0
LAST_FAULT=0
NEXT_FAULT=$(( $(now_ms) + $(rnd 500 3000) ))
heal() { # heal ALL: ends the faults that are due (every one with ALL=1)
    local i now
    for i in 0 1 2; do
        now=$(now_ms)
        if [ "${CONTINUE_AT[i]}" != 0 ] && { [ "$1" = 1 ] || [ "$now" -ge "${CONTINUE_AT[i]}" ]; }; then
            kill -CONT "${PIDS[i]}"
            STOPPED[i]=0
            CONTINUE_AT[i]=0
        fi
        if [ "${RESTART_AT[i]}" != 0 ] && { [ "$1" = 1 ] || [ "$now" -ge "${RESTART_AT[i]}" ]; }; then
            RESTART_AT[i]=0
            start_svc "$i" || exit 1
        fi
    done
}
while [ "$(now_ms)" -lt "$END_MS" ]; do
    now=$(now_ms)
    if [ "$now" -ge "$NEXT_FAULT" ]; then
        first=$(rnd 0 2)
        victim=-1
        for k in 0 1 2; do
            j=$(( (first + k) % 3 ))
            if [ "${PIDS[j]}" != 0 ]; then victim=$j; break; fi
        done
        action=$(rnd 0 1)
        if [ "$victim" -ge 0 ]; then
            if [ "${STOPPED[victim]}" = 1 ] || [ "$action" = 1 ]; then
                kill_svc "$victim"
                KILLS=$((KILLS + 1))
                log "kill -9 ${NAMES[victim]}"
                if [ "$victim" = 0 ]; then
                    start_svc 0 || exit 1
                else
                    RESTART_AT[victim]=$(( now + $(rnd 200 3000) ))
                fi
            else
                kill -STOP "${PIDS[victim]}"
                STOPPED[victim]=1
                CONTINUE_AT[victim]=$(( now + $(rnd 500 5000) ))
                STOPS=$((STOPS + 1))
                log "SIGSTOP ${NAMES[victim]} for $(( CONTINUE_AT[victim] - now )) ms"
            fi
            LAST_FAULT=$now
        fi
        NEXT_FAULT=$(( now + $(rnd 500 3000) ))
    fi
    heal 0
    sleep 0.05
done
heal 1
BACK_MS=$(now_ms)
log "chaos over: $KILLS kills, $STOPS stops; every service is back"

# The stream ends: bench finishes its orders (resending what the faults
# lost), the side loop its last one.
wait "$SIDE_PID"
SIDE_PID=0
BENCH_DEADLINE=$(( $(now_ms) + 300000 ))
while kill -0 "$BENCH_PID" 2>/dev/null && [ "$(now_ms)" -lt "$BENCH_DEADLINE" ]; do
    sleep 0.2 # polling for bench's end, bounded
done
if kill -0 "$BENCH_PID" 2>/dev/null; then
    fail "eda bench did not finish within 300 s of the chaos"
    kill -KILL "$BENCH_PID"
fi
wait "$BENCH_PID"
BENCH_RC=$?
BENCH_PID=0
[ "$BENCH_RC" = 0 ] || fail "eda bench exited $BENCH_RC: $(tr '\n' ' ' <"$T/bench.out")"

# Quiet: no order PENDING, no saga in flight, every peer has applied every
# event of every log, and nothing moved between two looks.
quiet_once() {
    local pending stats
    pending=$("$EDA" --json orders --status PENDING --limit 1 2>/dev/null | jq length) || return 1
    [ "$pending" = 0 ] || { WHY="orders still PENDING"; return 1; }
    stats=$("$EDA" --json stats 2>/dev/null) || { WHY="a service did not answer Stats"; return 1; }
    WHY=$(jq -rs '
        (map({key: .service, value: .}) | from_entries) as $s
        | [ (if ($s["order-service"].own.sagas_in_flight // 0) > 0
             then "\($s["order-service"].own.sagas_in_flight) sagas in flight" else empty end),
            (.[] | .service as $me | (.peers // {}) | to_entries[]
             | select(.value.epoch != $s[.key].epoch or .value.last_seq != $s[.key].last_seq)
             | "\($me) has applied \(.key) #\(.value.last_seq) of #\($s[.key].last_seq)") ]
        | if length == 0 then "quiet " + ($s | map_values(.last_seq) | tostring)
          else .[0] end' <<<"$stats")
    [[ "$WHY" == quiet* ]]
}
# wait_quiet: polls until quiet (120 s at most); sets QUIET_AT. 0 or 1.
wait_quiet() {
    local prev= deadline=$(( $(now_ms) + 120000 ))
    QUIET_AT=0
    while [ "$(now_ms)" -lt "$deadline" ]; do
        if quiet_once; then
            [ "$WHY" = "$prev" ] && { QUIET_AT=$(now_ms); return 0; }
            prev=$WHY
        else
            prev=
        fi
        sleep 0.1 # polling for quiet, bounded by the deadline
    done
    fail "not quiet within 120 s: $WHY"
    return 1
}
# The settle figure: from the end of the faults until quiet, the stream's
# own resends (bench's, the side loop's last order) included.
wait_quiet
QUIET_MS=$QUIET_AT

# Every side request again by its request_id: one never answered is placed
# now; one answered must answer the same order. Then quiet once more for the
# orders this placed.
SIDE_N=0
while read -r k id; do
    SIDE_N=$((SIDE_N + 1))
    again=$(side_place "$k")
    again=${again#* }
    if [ "$again" = - ]; then
        fail "side-$k: no reply within 60 s"
    elif [ "$id" != - ] && [ "$again" != "$id" ]; then
        fail "side-$k made $id first and now answers $again: a doubled order"
    fi
done <"$T/side.txt"
wait_quiet

# The invariants, over the protocol (ListOrders paged, GetCustomer,
# GetStock, ReplayEvents): a small client after tests/protocol_client.py.
cat >"$T/check.py" <<'EOF'
import json, os, sys, time, msgpack, zmq

tmp, bench_orders, side_n, stock = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
ctx = zmq.Context()
socks = {}
n = [0]

def call(svc, type_, data):
    if svc not in socks:
        s = ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect(f"ipc://{tmp}/{svc}.commands")
        socks[svc] = s
    n[0] += 1
    cid = f"chaos-check-{os.getpid()}-{n[0]}"
    env = {"v": 1, "kind": "command", "type": type_, "id": cid, "source": "chaos-check",
           "ts": int(time.time() * 1e6), "correlation_id": None, "causation_id": None, "data": data}
    socks[svc].send(msgpack.packb(env, use_bin_type=True))
    while True:
        if not socks[svc].poll(10000):
            raise SystemExit(f"no reply to {type_} from {svc}")
        r = msgpack.unpackb(socks[svc].recv(), raw=False, strict_map_key=False)
        if r.get("causation_id") == cid:
            if not r.get("ok"):
                raise SystemExit(f"{type_} refused by {svc}: {r.get('error')}")
            return r["data"]

faults = []
orders, after = [], 0
while True:
    d = call("order-service", "ListOrders", {"limit": 10000, "after": after})
    orders += d["orders"]
    if not d["more"]:
        break
    after = d["next"]
status = {}
credit, held = {}, {}
for o in orders:
    status[o["status"]] = status.get(o["status"], 0) + 1
    credit.setdefault(o["customer_id"], 0)
    for it in o["items"]:
        held.setdefault(it["sku"], 0)
    if o["status"] == "APPROVED":
        credit[o["customer_id"]] += o["total"]
        for it in o["items"]:
            held[it["sku"]] += it["qty"]
if len(orders) != bench_orders + side_n:
    faults.append(f"{len(orders)} orders for {bench_orders} bench and {side_n} side requests")
if len({o["order_id"] for o in orders}) != len(orders):
    faults.append("an order id is listed twice")
for s in status:
    if s not in ("APPROVED", "REJECTED", "CANCELLED"):
        faults.append(f"{status[s]} orders {s}")
for c, want in sorted(credit.items()):
    got = call("customer-service", "GetCustomer", {"customer_id": c})["reserved"]
    if got != want:
        faults.append(f"customer {c}: reserved {got}, APPROVED orders total {want}")
for sku, want in sorted(held.items()):
    d = call("inventory-service", "GetStock", {"sku": sku})
    added = stock.get(sku, bench_orders if sku.startswith("bench-") else None)
    if d["reserved"] != want:
        faults.append(f"sku {sku}: reserved {d['reserved']}, APPROVED orders hold {want}")
    if added is not None and d["available"] + d["reserved"] != added:
        faults.append(f"sku {sku}: available {d['available']} + reserved {d['reserved']} != {added} added")
groups = {"OrderCreated": "created", "OrderApproved": "verdict", "OrderRejected": "verdict",
          "OrderCancelled": "cancelled", "CreditReserved": "credit", "CreditRejected": "credit",
          "CreditReleased": "released", "StockReserved": "stock", "StockRejected": "stock",
          "StockReleased": "stock-released"}
events = {}
for svc in ("order-service", "customer-service", "inventory-service"):
    seen, nxt, last, epoch = set(), 1, None, None
    while last is None or nxt <= last:
        d = call(svc, "ReplayEvents", {"after_seq": nxt - 1, "limit": 1000})
        last = d["last_seq"]
        if epoch is not None and d["epoch"] != epoch:
            faults.append(f"{svc} changed epoch while read"); break
        epoch = d["epoch"]
        if not d["events"] and nxt <= last:
            faults.append(f"{svc} replays nothing after #{nxt - 1} of #{last}"); break
        for b in d["events"]:
            e = msgpack.unpackb(b, raw=False, strict_map_key=False)
            if e.get("seq") != nxt or e.get("epoch") != epoch:
                faults.append(f"{svc} log: expected #{nxt}, found #{e.get('seq')}"); last = -1; break
            g = groups.get(e.get("type"))
            if g:
                key = (g, e.get("correlation_id"))
                if key in seen:
                    faults.append(f"{svc} log: order {key[1]} has two '{g}' events (#{nxt} {e['type']})")
                seen.add(key)
            nxt += 1
    events[svc] = last
print(json.dumps({"orders": len(orders), "status": status, "events": events, "faults": faults}))
sys.exit(1 if faults else 0)
EOF
CHECK=$("$PY" "$T/check.py" "$T" "$BENCH_ORDERS" "$SIDE_N" "$SIDE_STOCK" 2>&1)
CHECK_RC=$?
if [ "$CHECK_RC" != 0 ]; then
    fail "invariants: $(jq -r '.faults | join("; ")' <<<"$CHECK" 2>/dev/null || echo "$CHECK")"
fi

# A clean stop: each service exits 0 on SIGTERM, with no sanitizer report.
for i in 0 1 2; do
    kill -TERM "${PIDS[i]}"
    wait "${PIDS[i]}"
    rc=$?
    PIDS[i]=0
    [ "$rc" = 0 ] || fail "${NAMES[i]} exited $rc on SIGTERM"
done
if grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T"/*.log >/dev/null 2>&1; then
    fail "a sanitizer report in $(grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$T"/*.log | tr '\n' ' ')"
fi

SETTLE_FAULT=$(( QUIET_MS > 0 ? QUIET_MS - LAST_FAULT : -1 ))
SETTLE_BACK=$(( QUIET_MS > 0 ? QUIET_MS - BACK_MS : -1 ))
echo "chaos.sh summary: saga $SAGA, seed $SEED, $SECONDS_RUN s of chaos"
echo "  orders      $(jq -r '"\(.orders) (" + (.status | to_entries | map("\(.value) \(.key)") | join(", ")) + ")"' <<<"$CHECK" 2>/dev/null || echo "?") from $BENCH_ORDERS bench + $SIDE_N side requests"
echo "  bench       $(head -1 "$T/bench.out" 2>/dev/null); $(grep -o 'resent [0-9]* times' "$T/bench.out" 2>/dev/null)"
echo "  faults      $KILLS kills, $STOPS stops"
echo "  settle      quiet $SETTLE_FAULT ms after the last fault began, $SETTLE_BACK ms after every service was back (bench finishing its resends included)"
echo "  events      $(jq -c .events <<<"$CHECK" 2>/dev/null || echo "?")"
if [ "$FAILED" = 0 ]; then
    echo "  invariants  OK"
    exit 0
fi
echo "  invariants  FAILED (see above; logs in $T)"
exit 1
