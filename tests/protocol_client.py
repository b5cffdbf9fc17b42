#!/usr/bin/python3
"""End-to-end protocol test, written from docs/protocol.md only.

Usage: /usr/bin/python3 tests/protocol_client.py BUILD_DIR

Starts the three real service binaries on ipc:// endpoints in a temporary
directory, drives every command over a DEALER and over a REQ socket, follows
every service's event stream exactly once (seq order, gap repair with
ReplayEvents), checks the events of each scenario field by field in both saga
patterns (choreography, then orchestration), cancels an approved order of
each pattern and checks that the balances come back, calls the participant
commands (ReserveCredit, ReleaseCredit, ReserveStock, ReleaseStock) directly
to check that a repeat answers the first outcome and publishes nothing, pages
ListOrders with its cursor, and checks the error replies (ids holding control
characters or invalid UTF-8 included). Prints "N passed, M failed" last and exits non-zero
on any failure. Needs Debian's python3-zmq and python3-msgpack.
"""
import itertools
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

import msgpack
import zmq

SERVICES = ["order-service", "customer-service", "inventory-service"]
POLL_MS = 20            # outcome polling interval
OUTCOME_DEADLINE = 10.0  # seconds to wait for an outcome
REPLY_TIMEOUT_MS = 2000  # one command round trip
REFUSED_TIMEOUT_MS = 1000  # a refused command's reply (no work to commit)

passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {name}" + (f": {detail}" if detail else ""), flush=True)
    return cond


def check_eq(name, got, want):
    return check(name, got == want, f"got {got!r}, want {want!r}")


_ids = itertools.count(1)


def new_id():
    return f"pc-{os.getpid()}-{next(_ids)}"


def pack(obj):
    return msgpack.packb(obj, use_bin_type=True)


def unpack(b):
    return msgpack.unpackb(b, raw=False, strict_map_key=False)


def command(type_, data, **extra):
    env = {"v": 1, "kind": "command", "type": type_, "id": new_id(),
           "source": "protocol-client", "ts": int(time.time() * 1e6),
           "correlation_id": None, "causation_id": None, "data": data}
    env.update(extra)
    return env


class Client:
    """A REQ or DEALER client of one service's commands endpoint."""

    def __init__(self, ctx, endpoint, kind):
        self.ctx, self.endpoint, self.kind = ctx, endpoint, kind
        self.sock = None
        self._open()

    def _open(self):
        if self.sock is not None:
            self.sock.close(0)
        self.sock = self.ctx.socket(self.kind)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(self.endpoint)

    def close(self):
        self.sock.close(0)

    def send_frames(self, frames, match_id=None, timeout_ms=REPLY_TIMEOUT_MS):
        """Sends raw frames; returns the list of reply frames (None on timeout).
        On a DEALER, replies whose causation_id is not match_id are skipped."""
        self.sock.send_multipart(frames)
        deadline = time.monotonic() + timeout_ms / 1000.0
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0 or not self.sock.poll(left, zmq.POLLIN):
                self._open()  # REQ is stuck without a reply; DEALER gets a clean slate
                return None
            reply = self.sock.recv_multipart()
            if self.kind == zmq.DEALER and match_id is not None:
                try:
                    body = unpack(reply[-1])
                except Exception:
                    return reply
                if body.get("causation_id") != match_id:
                    continue  # a stale reply to an earlier request
            return reply

    def call_env(self, env, timeout_ms=REPLY_TIMEOUT_MS):
        frames = self.send_frames([pack(env)], env.get("id"), timeout_ms)
        if frames is None:
            raise TimeoutError(f"no reply to {env.get('type')} from {self.endpoint}")
        if len(frames) != 1:
            raise AssertionError(f"reply of {len(frames)} frames")
        return unpack(frames[0])

    def call_refused(self, frames, match_id, what):
        """Sends a message the service refuses before any handler runs and
        returns the reply. The doc says it is answered at once: a reply held
        back is a failure; it is then fetched by flushing with a Ping on a
        probe DEALER (a REQ socket has lost it) so its content can be checked."""
        reply = self.send_frames(frames, match_id, REFUSED_TIMEOUT_MS)
        if check(f"{what}: answered within {REFUSED_TIMEOUT_MS} ms", reply is not None,
                 "no reply until another command opened a transaction"):
            return unpack(reply[-1])
        probe = Client(self.ctx, self.endpoint, zmq.DEALER)
        try:
            probe.sock.send_multipart(frames)
            flush = command("Ping", {})
            probe.sock.send_multipart([pack(flush)])
            deadline = time.monotonic() + REPLY_TIMEOUT_MS / 1000.0
            while probe.sock.poll(max(1, int((deadline - time.monotonic()) * 1000)), zmq.POLLIN):
                r = unpack(probe.sock.recv_multipart()[-1])
                if r.get("causation_id") != flush["id"]:
                    return r
            return {}
        finally:
            probe.close()

    def call(self, type_, data=None, **extra):
        env = command(type_, {} if data is None else data, **extra)
        reply = self.call_env(env)
        check_reply_envelope(type_, env, reply)
        return reply


def check_reply_envelope(type_, env, reply):
    """Every reply: kind reply, type echoed, causation_id = command id."""
    name = f"reply envelope of {type_}"
    ok = (reply.get("v") == 1 and reply.get("kind") == "reply" and reply.get("type") == type_
          and reply.get("causation_id") == env["id"] and isinstance(reply.get("id"), str)
          and isinstance(reply.get("ts"), int) and isinstance(reply.get("ok"), bool))
    if reply.get("ok"):
        ok = ok and isinstance(reply.get("data"), dict) and "error" not in reply
    else:
        err = reply.get("error")
        ok = ok and isinstance(err, dict) and isinstance(err.get("code"), str) \
            and isinstance(err.get("message"), str) and "data" not in reply
    check(name, ok, repr(reply))


def expect_ok(name, reply):
    check(name + " ok", reply.get("ok") is True, repr(reply))
    return reply.get("data") or {}


def expect_error(name, reply, code):
    check_eq(name + " ok false", reply.get("ok"), False)
    check_eq(name + " error code", (reply.get("error") or {}).get("code"), code)


class Follower:
    """Follows one service's events exactly once, as docs/protocol.md 6.4 says."""

    def __init__(self, ctx, name, events_ep, commands_ep, replay_limit=3):
        self.ctx, self.name = ctx, name
        self.sub = ctx.socket(zmq.SUB)
        self.sub.setsockopt(zmq.LINGER, 0)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        self.sub.connect(events_ep)
        self.client = Client(ctx, commands_ep, zmq.DEALER)
        self.replay_limit = replay_limit
        self.epoch = None
        self.last = 0
        self.events = []        # applied envelopes, in seq order
        self.raw = {}           # seq -> exact envelope bytes
        self.heartbeats = 0
        self.duplicates = 0
        self.gaps = 0
        self.replays = 0
        self.drop_live = set()  # seqs to lose on purpose when seen live
        self.errors = []

    def close(self):
        self.sub.close(0)
        self.client.close()

    def _offer(self, env, body):
        """1 applied, 0 duplicate, -1 gap or epoch change."""
        if env.get("epoch") != self.epoch:
            return -1
        seq = env["seq"]
        if seq <= self.last:
            self.duplicates += 1
            return 0
        if seq > self.last + 1:
            return -1
        self.events.append(env)
        self.raw[seq] = body
        self.last = seq
        return 1

    def replay(self):
        while True:
            after = self.last if self.epoch is not None else 0
            self.replays += 1
            reply = self.client.call("ReplayEvents", {"after_seq": after,
                                                      "limit": self.replay_limit})
            if not reply.get("ok"):
                self.errors.append(f"ReplayEvents refused: {reply!r}")
                return
            d = reply["data"]
            if d["epoch"] != self.epoch:
                self.epoch, self.last = d["epoch"], 0
                if after != 0:
                    continue
            for b in d["events"]:
                if not isinstance(b, bytes):
                    self.errors.append(f"replayed event is not bin: {b!r}")
                    return
                env = unpack(b)
                if env.get("kind") != "event" or env.get("source") != self.name:
                    self.errors.append(f"bad replayed event {env!r}")
                    return
                if self._offer(env, b) < 0:
                    break
            if self.last >= d["last_seq"]:
                return

    def _on_message(self, frames):
        if len(frames) != 2:
            self.errors.append(f"event message of {len(frames)} frames")
            return
        topic, body = frames
        env = unpack(body)
        if env.get("source") != self.name or topic.decode() != env.get("type"):
            self.errors.append(f"topic/source mismatch: {topic!r} {env!r}")
            return
        if env.get("kind") == "heartbeat":
            self.heartbeats += 1
            self.last_heartbeat = env
            if env.get("epoch") != self.epoch or env["data"]["last_seq"] > self.last:
                self.replay()
            return
        if env.get("kind") != "event":
            self.errors.append(f"unexpected kind {env!r}")
            return
        if env["seq"] in self.drop_live:
            self.drop_live.discard(env["seq"])  # simulate a lost message
            return
        if env.get("epoch") == self.epoch and env["seq"] > self.last + 1:
            self.gaps += 1
        if self._offer(env, body) < 0:
            self.replay()

    def pump(self, timeout_ms=0):
        """Handles every message ready within timeout_ms."""
        if self.sub.poll(timeout_ms, zmq.POLLIN):
            while self.sub.poll(0, zmq.POLLIN):
                self._on_message(self.sub.recv_multipart())

    def by_order(self, order_id):
        return [e for e in self.events if e.get("correlation_id") == order_id]


def pump_all(followers, timeout_ms):
    deadline = time.monotonic() + timeout_ms / 1000.0
    first = True
    while first or time.monotonic() < deadline:
        first = False
        for f in followers.values():
            f.pump(0)
        left = int((deadline - time.monotonic()) * 1000)
        if left > 0:
            poller = zmq.Poller()
            for f in followers.values():
                poller.register(f.sub, zmq.POLLIN)
            poller.poll(min(left, POLL_MS))


def wait_until(name, fn, followers, deadline_s=OUTCOME_DEADLINE):
    deadline = time.monotonic() + deadline_s
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            check(name, False, "timed out")
            return value
        pump_all(followers, POLL_MS)


# --- process management ------------------------------------------------------

def start_services(build, tmp):
    eps = {s: (f"ipc://{tmp}/{s}.ev", f"ipc://{tmp}/{s}.cmd") for s in SERVICES}
    peers = []
    for s in SERVICES:
        peers += ["--peer", f"{s}={eps[s][0]},{eps[s][1]}"]
    procs = {}
    for s in SERVICES:
        binary = os.path.join(build, s, s)
        log = open(os.path.join(tmp, f"{s}.log"), "wb")
        procs[s] = subprocess.Popen(
            [binary, "--events", eps[s][0], "--commands", eps[s][1],
             "--db", os.path.join(tmp, f"{s}.db"), "--log-level", "debug"] + peers,
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()
    return eps, procs


def stop_services(procs):
    for p in procs.values():
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 5.0
    for p in procs.values():
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
    return {s: p.returncode for s, p in procs.items()}


def wait_ready(ctx, eps, procs):
    for s in SERVICES:
        c = Client(ctx, eps[s][1], zmq.DEALER)
        try:
            ok = False
            for _ in range(50):
                if procs[s].poll() is not None:
                    break
                env = command("Ping", {})
                frames = c.send_frames([pack(env)], env["id"], timeout_ms=200)
                if frames is not None and unpack(frames[-1]).get("ok"):
                    ok = True
                    break
            if not ok:
                raise RuntimeError(f"{s} did not answer Ping")
        finally:
            c.close()


# --- the test ---------------------------------------------------------------

EVENT_FIELDS = {
    "OrderCreated": {"order_id", "customer_id", "items", "total", "saga"},
    "OrderApproved": {"order_id", "saga"},
    "OrderRejected": {"order_id", "reason", "saga"},
    "CustomerCreated": {"customer_id", "name", "credit_limit"},
    "CreditReserved": {"order_id", "customer_id", "amount", "saga"},
    "CreditRejected": {"order_id", "customer_id", "reason", "amount", "available", "saga"},
    "CreditReleased": {"order_id", "amount"},
    "StockAdded": {"sku", "qty", "available"},
    "StockReserved": {"order_id", "items", "saga"},
    "StockRejected": {"order_id", "reason", "sku", "requested", "available", "saga"},
    "StockReleased": {"order_id"},
    "OrderCancelled": {"order_id", "saga"},
}

ORDER_KEYS = {"order_id", "customer_id", "status", "reason", "saga", "items", "total",
              "created_ts"}

STATS_KEYS = {"service", "epoch", "last_seq", "uptime_s", "commands_in", "replies_out",
              "replies_dropped", "events_published", "events_applied", "events_ignored",
              "duplicates_dropped", "gaps_detected", "gaps_repaired", "replays_requested",
              "bad_input", "commits_failed", "batches", "batch_max", "batch_avg_x100",
              "handler_us_avg", "handler_us_p50", "handler_us_p99", "handler_us_max",
              "commit_us_p50", "commit_us_p99", "commit_us_max", "wal_pages", "wal_restarts",
              "wal_checkpoints", "wal_checkpoint_waits", "wal_checkpoint_failures",
              "commands_sent", "commands_dropped",
              "replies_received", "events_dropped", "fds_used", "fds_limit",
              "reply_backlog_bytes", "peers"}
# order-service adds its orchestrator's counters as a map under "own".
STATS_OWN = {"order-service"}
OWN_KEYS = {"sagas_started", "sagas_in_flight", "saga_commands_sent", "saga_retries",
            "saga_timeouts", "saga_failed_replies", "saga_late_replies",
            "saga_deadlines_passed", "saga_compensations"}


def run(ctx, eps, procs):
    # Clients: one DEALER and one REQ per service.
    dealer = {s: Client(ctx, eps[s][1], zmq.DEALER) for s in SERVICES}
    req = {s: Client(ctx, eps[s][1], zmq.REQ) for s in SERVICES}
    both = [("dealer", dealer), ("req", req)]
    followers = {}
    try:
        _run(ctx, eps, procs, dealer, req, both, followers)
    finally:
        for c in list(dealer.values()) + list(req.values()):
            c.close()
        for f in followers.values():
            f.close()


def _run(ctx, eps, procs, dealer, req, both, followers):
    # --- Ping and Stats over both socket types ------------------------------
    for label, cl in both:
        for s in SERVICES:
            d = expect_ok(f"Ping {s} {label}", cl[s].call("Ping"))
            check_eq(f"Ping {s} {label} service", d.get("service"), s)
            check(f"Ping {s} {label} fields", set(d) == {"service", "version", "uptime_s"}
                  and isinstance(d["version"], str) and isinstance(d["uptime_s"], int), repr(d))

    # Setup before the followers exist, so that catching up by replay is exercised.
    d = expect_ok("CreateCustomer alice (dealer)", dealer["customer-service"].call(
        "CreateCustomer", {"customer_id": "alice", "name": "Alice", "credit_limit": 10000}))
    check_eq("CreateCustomer reply", d, {"customer_id": "alice"})
    d = expect_ok("AddStock apple (dealer)", dealer["inventory-service"].call(
        "AddStock", {"sku": "apple", "qty": 10}))
    check_eq("AddStock reply", d, {"sku": "apple", "available": 10})

    # --- followers ------------------------------------------------------------
    for s in SERVICES:
        followers[s] = Follower(ctx, s, eps[s][0], eps[s][1])
    for f in followers.values():
        f.replay()  # catch up first (slow joiner)
    # A heartbeat proves the SUB is connected, so live events will be seen.
    wait_until("a heartbeat from every service",
               lambda: all(f.heartbeats for f in followers.values()), followers, 5.0)
    check_eq("customer follower caught up CustomerCreated",
             [e["type"] for e in followers["customer-service"].events], ["CustomerCreated"])
    check_eq("inventory follower caught up StockAdded",
             [e["type"] for e in followers["inventory-service"].events], ["StockAdded"])
    # Lose some live events on purpose: gap repair must bring them back.
    followers["customer-service"].drop_live.update({2, 3})
    followers["inventory-service"].drop_live.add(2)
    followers["order-service"].drop_live.add(1)

    # --- customer and inventory commands over REQ ------------------------------
    d = expect_ok("CreateCustomer bob (req)", req["customer-service"].call(
        "CreateCustomer", {"customer_id": "bob", "name": "Bob", "credit_limit": 100}))
    check_eq("CreateCustomer bob reply", d, {"customer_id": "bob"})
    for label, cl in both:
        d = expect_ok(f"GetCustomer alice {label}", cl["customer-service"].call(
            "GetCustomer", {"customer_id": "alice"}))
        check_eq(f"GetCustomer alice {label}", d, {"customer_id": "alice", "name": "Alice",
                                                   "credit_limit": 10000, "reserved": 0,
                                                   "available": 10000})
    d = expect_ok("AddStock pear (req)", req["inventory-service"].call(
        "AddStock", {"sku": "pear", "qty": 1}))
    check_eq("AddStock pear reply", d, {"sku": "pear", "available": 1})
    d = expect_ok("AddStock apple again (req)", req["inventory-service"].call(
        "AddStock", {"sku": "apple", "qty": 5}))
    check_eq("AddStock apple again reply", d, {"sku": "apple", "available": 15})
    for label, cl in both:
        d = expect_ok(f"GetStock apple {label}", cl["inventory-service"].call(
            "GetStock", {"sku": "apple"}))
        check_eq(f"GetStock apple {label}", d, {"sku": "apple", "available": 15, "reserved": 0})

    # --- orders ---------------------------------------------------------------
    oid_re = re.compile(r"^o-[0-9a-f]{12}-[0-9]+$")
    orders = {}

    def place(label, cl, data):
        env = command("PlaceOrder", data)
        reply = cl["order-service"].call_env(env)
        check_reply_envelope("PlaceOrder", env, reply)
        d = expect_ok(f"PlaceOrder {label}", reply)
        check(f"PlaceOrder {label} reply fields", set(d) == {"order_id", "status"}, repr(d))
        check_eq(f"PlaceOrder {label} status", d.get("status"), "PENDING")
        check(f"PlaceOrder {label} order id shape", bool(oid_re.match(d.get("order_id", ""))),
              d.get("order_id"))
        return d.get("order_id"), env["id"]

    orders["approved"] = place("approved (dealer, request_id)", dealer, {
        "customer_id": "alice", "request_id": "req-approved",
        "items": [{"sku": "apple", "qty": 2, "price": 150},
                  {"sku": "pear", "qty": 1, "price": 100},
                  {"sku": "apple", "qty": 1, "price": 150}]})
    orders["credit"] = place("credit refused (req)", req, {
        "customer_id": "bob", "items": [{"sku": "apple", "qty": 1, "price": 500}]})
    orders["stock"] = place("stock refused (dealer)", dealer, {
        "customer_id": "alice", "items": [{"sku": "apple", "qty": 4, "price": 10},
                                          {"sku": "pear", "qty": 1, "price": 100},
                                          {"sku": "apple", "qty": 9, "price": 10}]})
    orders["unknown"] = place("unknown customer (req, request_id)", req, {
        "customer_id": "nobody", "request_id": "req-unknown",
        "items": [{"sku": "apple", "qty": 1, "price": 7}]})
    orders["nosku"] = place("unknown sku (dealer)", dealer, {
        "customer_id": "alice", "saga": "choreography",
        "items": [{"sku": "ghost", "qty": 3, "price": 1}]})

    want_status = {"approved": ("APPROVED", None), "credit": ("REJECTED", "CREDIT_LIMIT_EXCEEDED"),
                   "stock": ("REJECTED", "OUT_OF_STOCK"), "unknown": ("REJECTED", "UNKNOWN_CUSTOMER"),
                   "nosku": ("REJECTED", "UNKNOWN_SKU")}
    final = {}
    for key, (oid, _) in orders.items():
        def settled(oid=oid):
            r = dealer["order-service"].call("GetOrder", {"order_id": oid})
            if r.get("ok") and r["data"]["status"] != "PENDING":
                return r["data"]
            return None
        final[key] = wait_until(f"order {key} settles", settled, followers) or {}
        check_eq(f"order {key} status", final[key].get("status"), want_status[key][0])
        check_eq(f"order {key} reason", final[key].get("reason"), want_status[key][1])

    o = final["approved"]
    check_eq("order object keys", set(o), ORDER_KEYS)
    check_eq("order items as placed", o.get("items"), [
        {"sku": "apple", "qty": 2, "price": 150}, {"sku": "pear", "qty": 1, "price": 100},
        {"sku": "apple", "qty": 1, "price": 150}])
    check_eq("order total", o.get("total"), 550)
    check_eq("order saga", o.get("saga"), "choreography")
    check_eq("order customer", o.get("customer_id"), "alice")
    check("order created_ts", isinstance(o.get("created_ts"), int) and o["created_ts"] > 10**15,
          repr(o.get("created_ts")))

    # GetOrder over REQ as well.
    d = expect_ok("GetOrder (req)", req["order-service"].call(
        "GetOrder", {"order_id": orders["credit"][0]}))
    check_eq("GetOrder (req) same as dealer", d, final["credit"])

    # request_id repeats: the first order, current status, nothing created.
    for label, cl in both:
        d = expect_ok(f"PlaceOrder repeat request_id {label}", cl["order-service"].call(
            "PlaceOrder", {"request_id": "req-approved", "customer_id": "zed",
                           "items": [{"sku": "x", "qty": 1, "price": 1}]}))
        check_eq(f"PlaceOrder repeat {label}", d,
                 {"order_id": orders["approved"][0], "status": "APPROVED"})
    d = expect_ok("PlaceOrder repeat request_id, no payload", dealer["order-service"].call(
        "PlaceOrder", {"request_id": "req-unknown"}))
    check_eq("PlaceOrder repeat no payload", d,
             {"order_id": orders["unknown"][0], "status": "REJECTED"})

    # Wait for the event streams to hold every expected event.
    expected = {
        "approved": {"order-service": ["OrderCreated", "OrderApproved"],
                     "customer-service": ["CreditReserved"],
                     "inventory-service": ["StockReserved"]},
        "credit": {"order-service": ["OrderCreated", "OrderRejected"],
                   "customer-service": ["CreditRejected"], "inventory-service": []},
        "stock": {"order-service": ["OrderCreated", "OrderRejected"],
                  "customer-service": ["CreditReserved", "CreditReleased"],
                  "inventory-service": ["StockRejected"]},
        "unknown": {"order-service": ["OrderCreated", "OrderRejected"],
                    "customer-service": ["CreditRejected"], "inventory-service": []},
        "nosku": {"order-service": ["OrderCreated", "OrderRejected"],
                  "customer-service": ["CreditReserved", "CreditReleased"],
                  "inventory-service": ["StockRejected"]},
    }

    def all_seen():
        for key, per in expected.items():
            for s, types in per.items():
                if len(followers[s].by_order(orders[key][0])) < len(types):
                    return False
        return True
    wait_until("all scenario events arrive", all_seen, followers)
    # Quiet period: heartbeats (every second) must find nothing more missing.
    pump_all(followers, 1300)
    for key, per in expected.items():
        for s, types in per.items():
            got = [e["type"] for e in followers[s].by_order(orders[key][0])]
            check_eq(f"{key}: {s} events", got, types)

    def ev(key, s, type_):
        for e in followers[s].by_order(orders[key][0]):
            if e["type"] == type_:
                return e
        return {"data": {}}

    # Exact fields of every event.
    for s, f in followers.items():
        for e in f.events:
            check_eq(f"{s} {e['type']} #{e['seq']} data keys", set(e["data"]),
                     EVENT_FIELDS.get(e["type"], set()))
            check_eq(f"{s} #{e['seq']} id", e.get("id"), f"{f.epoch}-{e['seq']}")
            check(f"{s} #{e['seq']} envelope", e.get("v") == 1 and e.get("kind") == "event"
                  and e.get("source") == s and isinstance(e.get("ts"), int), repr(e))

    oa = orders["approved"][0]
    e = ev("approved", "order-service", "OrderCreated")
    check_eq("OrderCreated data", e["data"], {
        "order_id": oa, "customer_id": "alice", "total": 550, "saga": "choreography",
        "items": [{"sku": "apple", "qty": 2, "price": 150}, {"sku": "pear", "qty": 1, "price": 100},
                  {"sku": "apple", "qty": 1, "price": 150}]})
    check_eq("OrderCreated causation = PlaceOrder id", e.get("causation_id"), orders["approved"][1])
    check_eq("OrderCreated correlation", e.get("correlation_id"), oa)
    cr = ev("approved", "customer-service", "CreditReserved")
    check_eq("CreditReserved data", cr["data"], {"order_id": oa, "customer_id": "alice",
                                                 "amount": 550, "saga": "choreography"})
    check_eq("CreditReserved causation", cr.get("causation_id"), e.get("id"))
    sr = ev("approved", "inventory-service", "StockReserved")
    check_eq("StockReserved data", sr["data"], {
        "order_id": oa, "saga": "choreography",
        "items": [{"sku": "apple", "qty": 3}, {"sku": "pear", "qty": 1}]})
    check("StockReserved causation", sr.get("causation_id") in (cr.get("id"), e.get("id")),
          repr(sr.get("causation_id")))
    oap = ev("approved", "order-service", "OrderApproved")
    check_eq("OrderApproved data", oap["data"], {"order_id": oa, "saga": "choreography"})
    check_eq("OrderApproved causation", oap.get("causation_id"), sr.get("id"))

    oc = orders["credit"][0]
    check_eq("CreditRejected (limit) data", ev("credit", "customer-service", "CreditRejected")["data"],
             {"order_id": oc, "customer_id": "bob", "reason": "CREDIT_LIMIT_EXCEEDED",
              "amount": 500, "available": 100, "saga": "choreography"})
    check_eq("OrderRejected (limit) data", ev("credit", "order-service", "OrderRejected")["data"],
             {"order_id": oc, "reason": "CREDIT_LIMIT_EXCEEDED", "saga": "choreography"})

    os_ = orders["stock"][0]
    check_eq("CreditReserved (stock) data", ev("stock", "customer-service", "CreditReserved")["data"],
             {"order_id": os_, "customer_id": "alice", "amount": 230, "saga": "choreography"})
    check_eq("StockRejected data", ev("stock", "inventory-service", "StockRejected")["data"],
             {"order_id": os_, "reason": "OUT_OF_STOCK", "sku": "apple", "requested": 13,
              "available": 12, "saga": "choreography"})
    orj = ev("stock", "order-service", "OrderRejected")
    check_eq("OrderRejected (stock) data", orj["data"],
             {"order_id": os_, "reason": "OUT_OF_STOCK", "saga": "choreography"})
    crl = ev("stock", "customer-service", "CreditReleased")
    check_eq("CreditReleased data", crl["data"], {"order_id": os_, "amount": 230})
    check_eq("CreditReleased causation = OrderRejected", crl.get("causation_id"), orj.get("id"))

    ou = orders["unknown"][0]
    check_eq("CreditRejected (unknown) data", ev("unknown", "customer-service", "CreditRejected")["data"],
             {"order_id": ou, "customer_id": "nobody", "reason": "UNKNOWN_CUSTOMER",
              "amount": 7, "available": 0, "saga": "choreography"})
    check_eq("OrderRejected (unknown) data", ev("unknown", "order-service", "OrderRejected")["data"],
             {"order_id": ou, "reason": "UNKNOWN_CUSTOMER", "saga": "choreography"})

    on = orders["nosku"][0]
    check_eq("StockRejected (unknown sku) data", ev("nosku", "inventory-service", "StockRejected")["data"],
             {"order_id": on, "reason": "UNKNOWN_SKU", "sku": "ghost", "requested": 3,
              "available": 0, "saga": "choreography"})
    check_eq("CreditReleased (unknown sku) data", ev("nosku", "customer-service", "CreditReleased")["data"],
             {"order_id": on, "amount": 3})

    # Non-order events.
    cc = [e for e in followers["customer-service"].events if e["type"] == "CustomerCreated"]
    check_eq("CustomerCreated events", [e["data"] for e in cc], [
        {"customer_id": "alice", "name": "Alice", "credit_limit": 10000},
        {"customer_id": "bob", "name": "Bob", "credit_limit": 100}])
    check("CustomerCreated correlation nil", all(e.get("correlation_id") is None for e in cc))
    sa = [e for e in followers["inventory-service"].events if e["type"] == "StockAdded"]
    check_eq("StockAdded events", [e["data"] for e in sa], [
        {"sku": "apple", "qty": 10, "available": 10}, {"sku": "pear", "qty": 1, "available": 1},
        {"sku": "apple", "qty": 5, "available": 15}])

    # Follower bookkeeping: every seq once, in order; gaps were repaired.
    for s, f in followers.items():
        check_eq(f"{s} seqs 1..N once", [e["seq"] for e in f.events],
                 list(range(1, len(f.events) + 1)))
        check_eq(f"{s} follower errors", f.errors, [])
        check(f"{s} heartbeats seen", f.heartbeats >= 1)
        hb = getattr(f, "last_heartbeat", {})
        check(f"{s} heartbeat envelope", hb.get("kind") == "heartbeat" and hb.get("type") == "Heartbeat"
              and hb.get("epoch") == f.epoch and "seq" not in hb
              and set(hb.get("data", {})) == {"last_seq", "applied", "applied_epoch"}
              and set(hb["data"]["applied"]) == set(hb["data"]["applied_epoch"]), repr(hb))
        check(f"{s} deliberately lost events were replayed", not f.drop_live, repr(f.drop_live))
        check(f"{s} a gap was detected and repaired", f.gaps >= 1 and f.replays >= 2,
              f"gaps {f.gaps}, replays {f.replays}")
    check("order ids are o-<12 hex>-<n>",
          re.fullmatch(r"o-[0-9a-f]{12}-[0-9]+", oa) is not None, oa)
    # Total events per service.
    check_eq("order-service event count", len(followers["order-service"].events), 10)
    check_eq("customer-service event count", len(followers["customer-service"].events), 9)
    check_eq("inventory-service event count", len(followers["inventory-service"].events), 6)

    # Final balances.
    d = expect_ok("GetCustomer alice final", req["customer-service"].call(
        "GetCustomer", {"customer_id": "alice"}))
    check_eq("alice reserved = approved total", (d.get("reserved"), d.get("available")), (550, 9450))
    d = expect_ok("GetCustomer bob final", dealer["customer-service"].call(
        "GetCustomer", {"customer_id": "bob"}))
    check_eq("bob nothing reserved", d.get("reserved"), 0)
    d = expect_ok("GetStock apple final", req["inventory-service"].call("GetStock", {"sku": "apple"}))
    check_eq("apple final", d, {"sku": "apple", "available": 12, "reserved": 3})
    d = expect_ok("GetStock pear final", dealer["inventory-service"].call("GetStock", {"sku": "pear"}))
    check_eq("pear final", d, {"sku": "pear", "available": 0, "reserved": 1})

    # --- ListOrders -------------------------------------------------------------
    all_ids = [orders[k][0] for k in ("approved", "credit", "stock", "unknown", "nosku")]
    for label, cl in both:
        d = expect_ok(f"ListOrders {label}", cl["order-service"].call("ListOrders", {}))
        check_eq(f"ListOrders {label} oldest first", [o["order_id"] for o in d.get("orders", [])],
                 all_ids)
        check(f"ListOrders {label} order objects", all(set(o) == ORDER_KEYS for o in d.get("orders", [])))
        # `more` is always there; `next` only when more is true (docs 5.1).
        check_eq(f"ListOrders {label} more", (d.get("more"), "next" in d), (False, False))
        d = expect_ok(f"ListOrders REJECTED {label}", cl["order-service"].call(
            "ListOrders", {"status": "REJECTED"}))
        check_eq(f"ListOrders REJECTED {label}", [o["order_id"] for o in d.get("orders", [])],
                 all_ids[1:])
        d = expect_ok(f"ListOrders REJECTED limit 2 {label}", cl["order-service"].call(
            "ListOrders", {"status": "REJECTED", "limit": 2}))
        check_eq(f"ListOrders REJECTED limit 2 {label}",
                 [o["order_id"] for o in d.get("orders", [])], all_ids[1:3])
        check_eq(f"ListOrders REJECTED limit 2 {label} more", d.get("more"), True)
        check(f"ListOrders REJECTED limit 2 {label} next", isinstance(d.get("next"), int),
              repr(d))
        d = expect_ok(f"ListOrders REJECTED after next {label}", cl["order-service"].call(
            "ListOrders", {"status": "REJECTED", "limit": 2, "after": d.get("next")}))
        check_eq(f"ListOrders REJECTED after next {label}",
                 [o["order_id"] for o in d.get("orders", [])], all_ids[3:5])
        check_eq(f"ListOrders REJECTED after next {label} more",
                 (d.get("more"), "next" in d), (False, False))
        # Paging with the cursor: after = next until more is false.
        pages, after = [], None
        for _ in range(len(all_ids) + 1):
            page = {"limit": 2} if after is None else {"limit": 2, "after": after}
            d = expect_ok(f"ListOrders page {len(pages) + 1} {label}",
                          cl["order-service"].call("ListOrders", page))
            pages.append([o["order_id"] for o in d.get("orders", [])])
            if d.get("more") is not True:
                check_eq(f"ListOrders last page {label}", (d.get("more"), "next" in d),
                         (False, False))
                break
            if not check(f"ListOrders page {len(pages)} {label} next",
                         isinstance(d.get("next"), int), repr(d)):
                break
            after = d["next"]
        check_eq(f"ListOrders pages {label}", pages, [all_ids[0:2], all_ids[2:4], all_ids[4:]])
        d = expect_ok(f"ListOrders limit exactly all {label}", cl["order-service"].call(
            "ListOrders", {"limit": len(all_ids), "after": None}))
        check_eq(f"ListOrders limit exactly all {label}",
                 ([o["order_id"] for o in d.get("orders", [])], d.get("more"), "next" in d),
                 (all_ids, False, False))
        d = expect_ok(f"ListOrders limit 1 {label}", cl["order-service"].call(
            "ListOrders", {"limit": 1, "status": None}))
        check_eq(f"ListOrders limit 1 {label}", [o["order_id"] for o in d.get("orders", [])],
                 all_ids[:1])
        check_eq(f"ListOrders limit 1 {label} more", d.get("more"), True)
        d = expect_ok(f"ListOrders CANCELLED {label}", cl["order-service"].call(
            "ListOrders", {"status": "CANCELLED"}))
        check_eq(f"ListOrders CANCELLED {label}", d.get("orders"), [])
        check_eq(f"ListOrders CANCELLED {label} more", (d.get("more"), "next" in d),
                 (False, False))
        for bad in ({"status": "DONE"}, {"limit": 0}, {"limit": 10001}, {"limit": -1},
                    {"limit": "5"}, {"after": -1}, {"after": "3"}, {"after": 1.5},
                    {"after": 2**63}):
            expect_error(f"ListOrders {bad} {label}", cl["order-service"].call("ListOrders", bad),
                         "BAD_REQUEST")

    # --- ReplayEvents over both socket types --------------------------------------
    for label, cl in both:
        for s in SERVICES:
            f = followers[s]
            d = expect_ok(f"ReplayEvents {s} {label}", cl[s].call(
                "ReplayEvents", {"after_seq": 0, "limit": 1000}))
            check_eq(f"ReplayEvents {s} {label} keys", set(d),
                     {"epoch", "last_seq", "first_seq", "events", "applied", "applied_epoch"})
            check_eq(f"ReplayEvents {s} {label} epoch", d.get("epoch"), f.epoch)
            check_eq(f"ReplayEvents {s} {label} last_seq", d.get("last_seq"), f.last)
            check_eq(f"ReplayEvents {s} {label} exact bytes", d.get("events"),
                     [f.raw[i] for i in range(1, f.last + 1)])
            d = expect_ok(f"ReplayEvents {s} {label} default", cl[s].call("ReplayEvents", {}))
            check_eq(f"ReplayEvents {s} {label} default all", len(d.get("events", [])), f.last)
            d = expect_ok(f"ReplayEvents {s} {label} window", cl[s].call(
                "ReplayEvents", {"after_seq": 2, "limit": 2}))
            check_eq(f"ReplayEvents {s} {label} window", d.get("events"), [f.raw[3], f.raw[4]])
            d = expect_ok(f"ReplayEvents {s} {label} past end", cl[s].call(
                "ReplayEvents", {"after_seq": f.last}))
            check_eq(f"ReplayEvents {s} {label} past end", d.get("events"), [])
        for bad in ({"limit": 0}, {"limit": 1001}, {"after_seq": -1}, {"after_seq": "x"}):
            expect_error(f"ReplayEvents {bad} {label}",
                         cl["order-service"].call("ReplayEvents", bad), "BAD_REQUEST")

    # --- Stats ---------------------------------------------------------------------
    want_peers = {"order-service": {"customer-service", "inventory-service"},
                  "customer-service": {"order-service"},
                  "inventory-service": {"order-service", "customer-service"}}
    for label, cl in both:
        for s in SERVICES:
            d = expect_ok(f"Stats {s} {label}", cl[s].call("Stats"))
            want = STATS_KEYS | ({"own"} if s in STATS_OWN else set())
            check_eq(f"Stats {s} {label} keys", set(d), want)
            check_eq(f"Stats {s} {label} service", d.get("service"), s)
            check_eq(f"Stats {s} {label} epoch", d.get("epoch"), followers[s].epoch)
            check_eq(f"Stats {s} {label} last_seq", d.get("last_seq"), followers[s].last)
            check_eq(f"Stats {s} {label} peers", set(d.get("peers", {})), want_peers[s])
            for p, pos in d.get("peers", {}).items():
                check_eq(f"Stats {s} {label} peer {p} position",
                         (pos.get("epoch"), pos.get("last_seq")),
                         (followers[p].epoch, followers[p].last))
            check(f"Stats {s} {label} counters", all(isinstance(d[k], int) for k in STATS_KEYS
                                                      if k not in ("service", "epoch", "peers")))
            if s in STATS_OWN:
                own = d.get("own") or {}
                check_eq(f"Stats {s} {label} own keys", set(own), OWN_KEYS)
                check(f"Stats {s} {label} own counters",
                      all(isinstance(v, int) for v in own.values()), repr(own))
                check_eq(f"Stats {s} {label} no saga yet", own.get("sagas_started"), 0)
            else:
                check_eq(f"Stats {s} {label} sends no commands",
                         (d.get("commands_sent"), d.get("commands_dropped"),
                          d.get("replies_received")), (0, 0, 0))

    # --- errors ----------------------------------------------------------------------
    for label, cl in both:
        c = cl["order-service"]
        def refused(env, what):
            return c.call_refused([pack(env)], env.get("id"), f"{what} {label}")
        env = command("NoSuchCommand", {})
        r = refused(env, "unknown command")
        expect_error(f"unknown command {label}", r, "UNKNOWN_COMMAND")
        check_eq(f"unknown command {label} type echoed", r.get("type"), "NoSuchCommand")
        check_eq(f"unknown command {label} causation", r.get("causation_id"), env["id"])
        # CancelOrder refusals (docs 5.1): unknown, not APPROVED, bad order_id.
        expect_error(f"CancelOrder unknown {label}",
                     c.call("CancelOrder", {"order_id": "o-none-1"}), "NOT_FOUND")
        for key in ("credit", "nosku"):
            expect_error(f"CancelOrder REJECTED {key} {label}",
                         c.call("CancelOrder", {"order_id": orders[key][0]}), "CONFLICT")
        for bad in ({}, {"order_id": ""}, {"order_id": 5}, {"order_id": None}):
            expect_error(f"CancelOrder {bad} {label}", c.call("CancelOrder", bad), "BAD_REQUEST")
        # Participant commands: validation (docs 5.2, 5.3).
        cc, ic = cl["customer-service"], cl["inventory-service"]
        for bad in ({}, {"customer_id": "alice", "amount": 1},
                    {"order_id": "x-1", "amount": 1}, {"order_id": "x-1", "customer_id": "alice"},
                    {"order_id": "x-1", "customer_id": "alice", "amount": -1},
                    {"order_id": "x-1", "customer_id": "alice", "amount": "5"},
                    {"order_id": "x-1", "customer_id": "alice", "amount": 1.5}):
            expect_error(f"ReserveCredit {bad} {label}", cc.call("ReserveCredit", bad),
                         "BAD_REQUEST")
        for bad in ({}, {"order_id": ""}, {"order_id": 1}):
            expect_error(f"ReleaseCredit {bad} {label}", cc.call("ReleaseCredit", bad),
                         "BAD_REQUEST")
            expect_error(f"ReleaseStock {bad} {label}", ic.call("ReleaseStock", bad),
                         "BAD_REQUEST")
        for bad in ({"items": [{"sku": "apple", "qty": 1}]}, {"order_id": "x-1"},
                    {"order_id": "x-1", "items": []},
                    {"order_id": "x-1", "items": [{"sku": "apple", "qty": 0}]},
                    {"order_id": "x-1", "items": [{"qty": 1}]},
                    {"order_id": "x-1", "items": [{"sku": "apple", "qty": 1, "price": -1}]},
                    {"order_id": "x-1", "items": [{"sku": "apple", "qty": 1}] * 101}):
            expect_error(f"ReserveStock {str(bad)[:50]} {label}", ic.call("ReserveStock", bad),
                         "BAD_REQUEST")
        # Garbage bytes: BAD_REQUEST, causation nil, type Unknown.
        r = c.call_refused([b"\xc1garbage"], None, f"garbage bytes {label}")
        expect_error(f"garbage bytes {label}", r, "BAD_REQUEST")
        check_eq(f"garbage bytes {label} causation nil", r.get("causation_id", "absent"), None)
        check_eq(f"garbage bytes {label} type", r.get("type"), "Unknown")
        # Empty body frame.
        r = c.call_refused([b""], None, f"empty body {label}")
        expect_error(f"empty body {label}", r, "BAD_REQUEST")
        # Not a map.
        r = c.call_refused([pack([1, 2, 3])], None, f"not a map {label}")
        expect_error(f"not a map {label}", r, "BAD_REQUEST")
        # v = 2: UNSUPPORTED_VERSION, still answered by id.
        env = command("Ping", {}, v=2)
        r = refused(env, "v=2")
        expect_error(f"v=2 {label}", r, "UNSUPPORTED_VERSION")
        check_eq(f"v=2 {label} causation", r.get("causation_id"), env["id"])
        # v = 2 with otherwise broken keys: v is checked first.
        env = command("Ping", {}, v=2, kind=7)
        r = refused(env, "v=2 with bad kind")
        expect_error(f"v=2 checked first {label}", r, "UNSUPPORTED_VERSION")
        env = command("Ping", {}, v="1")
        expect_error(f"v not uint {label}", refused(env, "v not uint"), "BAD_REQUEST")
        # Missing required keys.
        for key in ("kind", "type", "id", "data"):
            env = command("Ping", {})
            del env[key]
            expect_error(f"missing {key} {label}", refused(env, f"missing {key}"), "BAD_REQUEST")
        # Wrong kind.
        r = refused(command("Ping", {}, kind="event"), "kind event")
        expect_error(f"kind event {label}", r, "BAD_REQUEST")
        # Strings: 64 bytes fine, 65 too long, NUL refused.
        r = c.call("Ping", {}, source="s" * 64)
        check_eq(f"64-byte source {label}", r.get("ok"), True)
        r = refused(command("Ping", {}, source="s" * 65), "65-byte source")
        expect_error(f"65-byte source {label}", r, "BAD_REQUEST")
        r = refused(command("Ping", {}, correlation_id="a\x00b"), "NUL in string")
        expect_error(f"NUL in string {label}", r, "BAD_REQUEST")
        # Forward compatibility: unknown keys ignored; nil optional keys fine.
        r = c.call("Ping", {"future": 1}, x_future_key={"a": [1]}, source=None)
        check_eq(f"unknown keys ignored {label}", r.get("ok"), True)
        # Non-str key: BAD_REQUEST.
        env = command("Ping", {})
        env[5] = "x"
        expect_error(f"non-str key {label}", refused(env, "non-str key"), "BAD_REQUEST")
        # ts nil means absent: fine in a command (docs 2.1).
        check_eq(f"ts nil {label}", c.call_env(command("Ping", {}, ts=None)).get("ok"), True)
        # Without ts (optional).
        env = command("Ping", {})
        del env["ts"]
        check_eq(f"no ts {label}", c.call_env(env).get("ok"), True)
        # correlation_id is echoed.
        r = c.call("Ping", {}, correlation_id="corr-1")
        check_eq(f"correlation echoed {label}", r.get("correlation_id"), "corr-1")

        # NOT_FOUND.
        expect_error(f"GetOrder unknown {label}", c.call("GetOrder", {"order_id": "o-none-1"}),
                     "NOT_FOUND")
        expect_error(f"GetCustomer unknown {label}",
                     cl["customer-service"].call("GetCustomer", {"customer_id": "ghost"}),
                     "NOT_FOUND")
        expect_error(f"GetStock unknown {label}",
                     cl["inventory-service"].call("GetStock", {"sku": "ghost"}), "NOT_FOUND")
        # CONFLICT.
        expect_error(f"duplicate customer {label}", cl["customer-service"].call(
            "CreateCustomer", {"customer_id": "alice", "name": "Again", "credit_limit": 1}),
            "CONFLICT")
        # Validation.
        for bad in ({"customer_id": "bob", "name": "B", "credit_limit": -1},
                    {"customer_id": "", "name": "B", "credit_limit": 1},
                    {"customer_id": "carl", "credit_limit": 1},
                    {"customer_id": "carl", "name": "C"}):
            expect_error(f"CreateCustomer {bad} {label}",
                         cl["customer-service"].call("CreateCustomer", bad), "BAD_REQUEST")
        for bad in ({"sku": "apple", "qty": 0}, {"sku": "", "qty": 1}, {"qty": 1},
                    {"sku": "apple"}, {"sku": "apple", "qty": 1.5}):
            expect_error(f"AddStock {bad} {label}",
                         cl["inventory-service"].call("AddStock", bad), "BAD_REQUEST")
        # Ids with a control character or invalid UTF-8 (docs 2, 5): BAD_REQUEST.
        # bytes values go out as msgpack str (use_bin_type=False), not as bin.
        def call_str(client, type_, data):
            env = command(type_, data)
            frames = client.send_frames([msgpack.packb(env, use_bin_type=False)], env["id"])
            return {} if frames is None else unpack(frames[-1])
        for bad_id in ("a\nb", "a\x1b[2Jb", "a\tb", "a\x7fb", "a\u009bb", b"a\xffb",
                       b"a\xc0\xafb", b"a\xed\xa0\x80b", b"a\xe2\x82"):
            expect_error(f"CreateCustomer customer_id {bad_id!r} {label}",
                         call_str(cl["customer-service"], "CreateCustomer",
                                  {"customer_id": bad_id, "name": "X", "credit_limit": 1}),
                         "BAD_REQUEST")
            expect_error(f"AddStock sku {bad_id!r} {label}",
                         call_str(cl["inventory-service"], "AddStock",
                                  {"sku": bad_id, "qty": 1}), "BAD_REQUEST")
            expect_error(f"PlaceOrder request_id {bad_id!r} {label}",
                         call_str(c, "PlaceOrder",
                                  {"customer_id": "alice", "request_id": bad_id,
                                   "items": [{"sku": "apple", "qty": 1, "price": 1}]}),
                         "BAD_REQUEST")
        expect_error(f"GetOrder no id {label}", c.call("GetOrder", {}), "BAD_REQUEST")
        good = [{"sku": "apple", "qty": 1, "price": 1}]
        for bad in ({"items": good},
                    {"customer_id": "alice", "items": []},
                    {"customer_id": "alice", "items": good * 101},
                    {"customer_id": "alice", "items": [{"sku": "apple", "qty": 0, "price": 1}]},
                    {"customer_id": "alice", "items": [{"sku": "apple", "qty": 1, "price": -1}]},
                    {"customer_id": "alice", "items": [{"sku": "apple", "qty": 1}]},
                    {"customer_id": "alice", "items": [{"sku": "apple", "qty": 2,
                                                        "price": 2**62}]},
                    {"customer_id": "alice", "items": good, "saga": "other"},
                    {"customer_id": "alice", "items": good, "saga": "Orchestration"},
                    {"customer_id": "alice", "items": good, "saga": ""},
                    {"customer_id": "alice", "items": good, "saga": 7},
                    {"customer_id": "alice", "items": good, "request_id": "r" * 65}):
            expect_error(f"PlaceOrder invalid {str(bad)[:60]} {label}",
                         c.call("PlaceOrder", bad), "BAD_REQUEST")

    # DEALER: routing frames before the body are echoed unchanged.
    env = command("Ping", {})
    frames = dealer["order-service"].send_frames([b"tag-1", b"", pack(env)], env["id"])
    check("DEALER extra frames echoed", frames is not None and frames[:2] == [b"tag-1", b""]
          and unpack(frames[2]).get("ok") is True, repr(frames))

    # Errors publish nothing: no new events after all of the above.
    pump_all(followers, 300)
    for s in SERVICES:
        d = expect_ok(f"Stats {s} after errors", dealer[s].call("Stats"))
        check_eq(f"{s} no events from refused commands", d.get("last_seq"), followers[s].last)
        check(f"{s} bad input counted", s != "order-service" or d.get("bad_input", 0) > 0,
              repr(d.get("bad_input")))

    _orchestration(dealer, req, followers, orders, place)
    _cancel(dealer, req, followers, orders)
    _participants(dealer, req, followers)
    _final_checks(dealer, followers)

    # All three still alive.
    for s in SERVICES:
        check(f"{s} still running", procs[s].poll() is None)


def last_seqs(dealer):
    """Every service's last_seq, from Stats (events are committed before the reply)."""
    return {s: dealer[s].call("Stats").get("data", {}).get("last_seq") for s in SERVICES}


def settle(name, dealer, followers, oid):
    def decided():
        r = dealer["order-service"].call("GetOrder", {"order_id": oid})
        if r.get("ok") and r["data"]["status"] != "PENDING":
            return r["data"]
        return None
    return wait_until(f"{name} settles", decided, followers) or {}


def wait_events(name, followers, expected):
    """expected: {order_id: {service: [types]}}; waits, then a quiet period, then
    checks the exact lists."""
    def all_seen():
        return all(len(followers[s].by_order(oid)) >= len(types)
                   for oid, per in expected.items() for s, types in per.items())
    wait_until(f"{name}: events arrive", all_seen, followers)
    pump_all(followers, 1300)  # heartbeats find nothing more
    for oid, per in expected.items():
        for s, types in per.items():
            check_eq(f"{name}: {oid} {s} events", [e["type"] for e in followers[s].by_order(oid)],
                     types)


def ev_of(followers, s, oid, type_):
    for e in followers[s].by_order(oid):
        if e["type"] == type_:
            return e
    return {"data": {}}


def own_stats(dealer):
    d = expect_ok("Stats order-service own", dealer["order-service"].call("Stats"))
    return d, d.get("own") or {}


def _orchestration(dealer, req, followers, orders, place):
    """Orchestrated orders (docs 9): approved, refused for credit, for stock, for an
    unknown customer and an unknown SKU; their events carry saga orchestration."""
    O = "orchestration"
    check_eq("CreateCustomer dora", expect_ok("CreateCustomer dora", dealer["customer-service"].call(
        "CreateCustomer", {"customer_id": "dora", "name": "Dora", "credit_limit": 2000})),
        {"customer_id": "dora"})
    check_eq("AddStock kiwi", expect_ok("AddStock kiwi", req["inventory-service"].call(
        "AddStock", {"sku": "kiwi", "qty": 10})), {"sku": "kiwi", "available": 10})

    # One at a time, so that each decision sees the balances left by the one before.
    plan = [
        ("o_ok", dealer, {"customer_id": "dora", "saga": O, "request_id": "req-orch-ok",
                          "items": [{"sku": "kiwi", "qty": 2, "price": 300},
                                    {"sku": "kiwi", "qty": 1, "price": 300}]},
         ("APPROVED", None)),
        ("o_credit", req, {"customer_id": "dora", "saga": O,
                           "items": [{"sku": "kiwi", "qty": 1, "price": 5000}]},
         ("REJECTED", "CREDIT_LIMIT_EXCEEDED")),
        ("o_stock", dealer, {"customer_id": "dora", "saga": O,
                             "items": [{"sku": "kiwi", "qty": 5, "price": 10},
                                       {"sku": "kiwi", "qty": 3, "price": 10}]},
         ("REJECTED", "OUT_OF_STOCK")),
        ("o_nocust", req, {"customer_id": "nobody", "saga": O,
                           "items": [{"sku": "kiwi", "qty": 1, "price": 1}]},
         ("REJECTED", "UNKNOWN_CUSTOMER")),
        ("o_nosku", dealer, {"customer_id": "dora", "saga": O,
                             "items": [{"sku": "ghost", "qty": 1, "price": 1}]},
         ("REJECTED", "UNKNOWN_SKU")),
    ]
    for key, cl, data, (status, reason) in plan:
        orders[key] = place(f"{key} (orchestration)", cl, data)
        o = settle(key, dealer, followers, orders[key][0])
        check_eq(f"{key} status", (o.get("status"), o.get("reason")), (status, reason))
        check_eq(f"{key} saga", o.get("saga"), O)
        check_eq(f"{key} order object keys", set(o), ORDER_KEYS)

    d = expect_ok("PlaceOrder repeat request_id (orchestration)", dealer["order-service"].call(
        "PlaceOrder", {"request_id": "req-orch-ok"}))
    check_eq("PlaceOrder repeat (orchestration)", d,
             {"order_id": orders["o_ok"][0], "status": "APPROVED"})

    oid = {k: orders[k][0] for k, *_ in plan}
    os_, cs, is_ = "order-service", "customer-service", "inventory-service"
    wait_events("orchestration", followers, {
        oid["o_ok"]: {os_: ["OrderCreated", "OrderApproved"], cs: ["CreditReserved"],
                      is_: ["StockReserved"]},
        oid["o_credit"]: {os_: ["OrderCreated", "OrderRejected"], cs: ["CreditRejected"],
                          is_: []},
        oid["o_stock"]: {os_: ["OrderCreated", "OrderRejected"],
                         cs: ["CreditReserved", "CreditReleased"], is_: ["StockRejected"]},
        oid["o_nocust"]: {os_: ["OrderCreated", "OrderRejected"], cs: ["CreditRejected"],
                          is_: []},
        oid["o_nosku"]: {os_: ["OrderCreated", "OrderRejected"],
                         cs: ["CreditReserved", "CreditReleased"], is_: ["StockRejected"]},
    })

    def ev(key, s, type_):
        return ev_of(followers, s, oid[key], type_)

    o = oid["o_ok"]
    oc = ev("o_ok", os_, "OrderCreated")
    check_eq("orch OrderCreated data", oc["data"], {
        "order_id": o, "customer_id": "dora", "total": 900, "saga": O,
        "items": [{"sku": "kiwi", "qty": 2, "price": 300}, {"sku": "kiwi", "qty": 1, "price": 300}]})
    check_eq("orch OrderCreated causation = PlaceOrder id", oc.get("causation_id"),
             orders["o_ok"][1])
    cr = ev("o_ok", cs, "CreditReserved")
    check_eq("orch CreditReserved data", cr["data"],
             {"order_id": o, "customer_id": "dora", "amount": 900, "saga": O})
    event_ids = {e["id"] for f in followers.values() for e in f.events}
    check("orch CreditReserved caused by a command, not an event",
          isinstance(cr.get("causation_id"), str) and cr["causation_id"] not in event_ids,
          repr(cr.get("causation_id")))
    check_eq("orch CreditReserved correlation", cr.get("correlation_id"), o)
    sr = ev("o_ok", is_, "StockReserved")
    check_eq("orch StockReserved data", sr["data"],
             {"order_id": o, "items": [{"sku": "kiwi", "qty": 3}], "saga": O})
    check("orch StockReserved caused by a command, not an event",
          isinstance(sr.get("causation_id"), str) and sr["causation_id"] not in event_ids,
          repr(sr.get("causation_id")))
    check_eq("orch OrderApproved data", ev("o_ok", os_, "OrderApproved")["data"],
             {"order_id": o, "saga": O})

    o = oid["o_credit"]
    check_eq("orch CreditRejected (limit) data", ev("o_credit", cs, "CreditRejected")["data"],
             {"order_id": o, "customer_id": "dora", "reason": "CREDIT_LIMIT_EXCEEDED",
              "amount": 5000, "available": 1100, "saga": O})
    check_eq("orch OrderRejected (limit) data", ev("o_credit", os_, "OrderRejected")["data"],
             {"order_id": o, "reason": "CREDIT_LIMIT_EXCEEDED", "saga": O})

    o = oid["o_stock"]
    check_eq("orch CreditReserved (stock) data", ev("o_stock", cs, "CreditReserved")["data"],
             {"order_id": o, "customer_id": "dora", "amount": 80, "saga": O})
    check_eq("orch StockRejected data", ev("o_stock", is_, "StockRejected")["data"],
             {"order_id": o, "reason": "OUT_OF_STOCK", "sku": "kiwi", "requested": 8,
              "available": 7, "saga": O})
    check_eq("orch OrderRejected (stock) data", ev("o_stock", os_, "OrderRejected")["data"],
             {"order_id": o, "reason": "OUT_OF_STOCK", "saga": O})
    check_eq("orch CreditReleased (compensation) data", ev("o_stock", cs, "CreditReleased")["data"],
             {"order_id": o, "amount": 80})

    o = oid["o_nocust"]
    check_eq("orch CreditRejected (unknown) data", ev("o_nocust", cs, "CreditRejected")["data"],
             {"order_id": o, "customer_id": "nobody", "reason": "UNKNOWN_CUSTOMER", "amount": 1,
              "available": 0, "saga": O})
    o = oid["o_nosku"]
    check_eq("orch StockRejected (unknown sku) data", ev("o_nosku", is_, "StockRejected")["data"],
             {"order_id": o, "reason": "UNKNOWN_SKU", "sku": "ghost", "requested": 1,
              "available": 0, "saga": O})
    check_eq("orch CreditReleased (unknown sku) data", ev("o_nosku", cs, "CreditReleased")["data"],
             {"order_id": o, "amount": 1})

    # Balances: only the approved order holds anything.
    check_eq("dora after orchestration", expect_ok("GetCustomer dora", dealer[cs].call(
        "GetCustomer", {"customer_id": "dora"})),
        {"customer_id": "dora", "name": "Dora", "credit_limit": 2000, "reserved": 900,
         "available": 1100})
    check_eq("kiwi after orchestration", expect_ok("GetStock kiwi", dealer[is_].call(
        "GetStock", {"sku": "kiwi"})), {"sku": "kiwi", "available": 7, "reserved": 3})

    # The orchestrator's counters (docs 4): 10 first sends, 2 compensations.
    wait_until("no saga in flight", lambda: own_stats(dealer)[1].get("sagas_in_flight") == 0,
               followers)
    d, own = own_stats(dealer)
    check_eq("own sagas_started", own.get("sagas_started"), 5)
    check_eq("own saga_compensations", own.get("saga_compensations"), 2)
    check_eq("own saga_deadlines_passed", own.get("saga_deadlines_passed"), 0)
    check_eq("own saga_commands_sent = first sends + retries", own.get("saga_commands_sent"),
             10 + own.get("saga_retries", 0))
    check_eq("commands_sent + commands_dropped = saga_commands_sent",
             d.get("commands_sent", 0) + d.get("commands_dropped", 0),
             own.get("saga_commands_sent"))
    check("replies_received covers every first send", d.get("replies_received", 0) >= 10,
          repr(d.get("replies_received")))


def _cancel(dealer, req, followers, orders):
    """CancelOrder in each pattern (docs 5.1, 8, 9): the balances come back."""
    os_, cs, is_ = "order-service", "customer-service", "inventory-service"
    targets = [("approved", dealer, "choreography", "alice", 550,
                {"apple": (12, 3), "pear": (0, 1)}),
               ("o_ok", req, "orchestration", "dora", 900, {"kiwi": (7, 3)})]
    for key, cl, saga, customer, amount, stock in targets:
        o = orders[key][0]
        c = expect_ok(f"GetCustomer {customer} before cancel", dealer[cs].call(
            "GetCustomer", {"customer_id": customer}))
        check_eq(f"{customer} holds the order before cancel", c.get("reserved"), amount)
        for sku, (avail, res) in stock.items():
            check_eq(f"{sku} before cancel {key}", expect_ok(f"GetStock {sku}", dealer[is_].call(
                "GetStock", {"sku": sku})), {"sku": sku, "available": avail, "reserved": res})
        env = command("CancelOrder", {"order_id": o})
        reply = cl[os_].call_env(env)
        check_reply_envelope("CancelOrder", env, reply)
        check_eq(f"CancelOrder {saga}", expect_ok(f"CancelOrder {saga}", reply),
                 {"order_id": o, "status": "CANCELLED"})
        wait_events(f"cancel {saga}", followers, {o: {
            os_: ["OrderCreated", "OrderApproved", "OrderCancelled"],
            cs: ["CreditReserved", "CreditReleased"],
            is_: ["StockReserved", "StockReleased"]}})
        ocx = ev_of(followers, os_, o, "OrderCancelled")
        check_eq(f"OrderCancelled {saga} data", ocx["data"], {"order_id": o, "saga": saga})
        check_eq(f"OrderCancelled {saga} causation = CancelOrder id", ocx.get("causation_id"),
                 env["id"])
        crl = ev_of(followers, cs, o, "CreditReleased")
        srl = ev_of(followers, is_, o, "StockReleased")
        check_eq(f"CreditReleased (cancel {saga}) data", crl["data"],
                 {"order_id": o, "amount": amount})
        check_eq(f"StockReleased (cancel {saga}) data", srl["data"], {"order_id": o})
        if saga == "choreography":
            check_eq("choreography: CreditReleased caused by OrderCancelled",
                     crl.get("causation_id"), ocx.get("id"))
            check_eq("choreography: StockReleased caused by OrderCancelled",
                     srl.get("causation_id"), ocx.get("id"))
        got = expect_ok(f"GetOrder cancelled {saga}", dealer[os_].call("GetOrder", {"order_id": o}))
        check_eq(f"order {key} cancelled", (got.get("status"), got.get("reason"), got.get("saga")),
                 ("CANCELLED", None, saga))
        # The balances come back (the releases were published, then acknowledged).
        c = expect_ok(f"GetCustomer {customer} after cancel", dealer[cs].call(
            "GetCustomer", {"customer_id": customer}))
        check_eq(f"{customer} credit back after cancel {saga}", c.get("reserved"), 0)
        for sku, (avail, res) in stock.items():
            check_eq(f"{sku} back after cancel {saga}", expect_ok(f"GetStock {sku}", dealer[is_].call(
                "GetStock", {"sku": sku})), {"sku": sku, "available": avail + res, "reserved": 0})

    # A repeat on a CANCELLED order is ok and changes nothing.
    wait_until("cancel compensation acknowledged",
               lambda: own_stats(dealer)[1].get("sagas_in_flight") == 0, followers)
    before = last_seqs(dealer)
    for key, cl, saga, *_ in targets:
        for label, c in (("dealer", dealer), ("req", req)):
            d = expect_ok(f"CancelOrder repeat {saga} {label}", c[os_].call(
                "CancelOrder", {"order_id": orders[key][0]}))
            check_eq(f"CancelOrder repeat {saga} {label}", d,
                     {"order_id": orders[key][0], "status": "CANCELLED"})
    expect_error("CancelOrder REJECTED orchestrated",
                 dealer[os_].call("CancelOrder", {"order_id": orders["o_credit"][0]}), "CONFLICT")
    check_eq("CancelOrder repeat publishes nothing", last_seqs(dealer), before)
    d = expect_ok("ListOrders CANCELLED", req[os_].call("ListOrders", {"status": "CANCELLED"}))
    check_eq("ListOrders CANCELLED", [o["order_id"] for o in d.get("orders", [])],
             [orders["approved"][0], orders["o_ok"][0]])
    _, own = own_stats(dealer)
    check_eq("own after cancel: 2 more first sends", own.get("saga_commands_sent"),
             12 + own.get("saga_retries", 0))
    check_eq("own after cancel: no new compensation counted", own.get("saga_compensations"), 2)


def _participants(dealer, req, followers):
    """The four participant commands sent directly (docs 5.2, 5.3, 5.4)."""
    cs, is_ = "customer-service", "inventory-service"
    O = "orchestration"
    ids = {}

    def call(label, cl, s, type_, data, want, publishes):
        before = last_seqs(dealer)
        env = command(type_, data)
        reply = cl[s].call_env(env)
        check_reply_envelope(type_, env, reply)
        check_eq(f"{label} reply", expect_ok(label, reply), want)
        after = last_seqs(dealer)
        want_seqs = dict(before)
        if publishes:
            want_seqs[s] = before[s] + 1
        check_eq(f"{label} publishes {'one event' if publishes else 'nothing'}", after, want_seqs)
        ids[label] = env["id"]

    def balance(label, s, type_, data, want):
        check_eq(label, expect_ok(label, dealer[s].call(type_, data)), want)

    # --- credit ---
    call("ReserveCredit c1", dealer, cs, "ReserveCredit",
         {"order_id": "direct-c1", "customer_id": "alice", "amount": 100},
         {"order_id": "direct-c1", "outcome": "RESERVED"}, True)
    call("ReserveCredit c1 duplicate", req, cs, "ReserveCredit",
         {"order_id": "direct-c1", "customer_id": "alice", "amount": 999},
         {"order_id": "direct-c1", "outcome": "RESERVED"}, False)
    balance("alice holds c1", cs, "GetCustomer", {"customer_id": "alice"},
            {"customer_id": "alice", "name": "Alice", "credit_limit": 10000, "reserved": 100,
             "available": 9900})
    call("ReleaseCredit c1", req, cs, "ReleaseCredit", {"order_id": "direct-c1"},
         {"order_id": "direct-c1", "released": True}, True)
    call("ReleaseCredit c1 duplicate", dealer, cs, "ReleaseCredit", {"order_id": "direct-c1"},
         {"order_id": "direct-c1", "released": True}, False)
    call("ReserveCredit c1 after release", dealer, cs, "ReserveCredit",
         {"order_id": "direct-c1", "customer_id": "alice", "amount": 100},
         {"order_id": "direct-c1", "outcome": "RESERVED"}, False)
    balance("alice after c1", cs, "GetCustomer", {"customer_id": "alice"},
            {"customer_id": "alice", "name": "Alice", "credit_limit": 10000, "reserved": 0,
             "available": 10000})
    refused = {"order_id": "direct-c2", "outcome": "REJECTED", "reason": "CREDIT_LIMIT_EXCEEDED",
               "available": 100}
    call("ReserveCredit c2 over the limit", dealer, cs, "ReserveCredit",
         {"order_id": "direct-c2", "customer_id": "bob", "amount": 101}, refused, True)
    call("ReserveCredit c2 duplicate", req, cs, "ReserveCredit",
         {"order_id": "direct-c2", "customer_id": "bob", "amount": 1}, refused, False)
    call("ReleaseCredit c2 (refused: nothing held)", dealer, cs, "ReleaseCredit",
         {"order_id": "direct-c2"}, {"order_id": "direct-c2", "released": False}, False)
    call("ReserveCredit c2 after release", dealer, cs, "ReserveCredit",
         {"order_id": "direct-c2", "customer_id": "bob", "amount": 101}, refused, False)
    call("ReserveCredit c3 unknown customer", req, cs, "ReserveCredit",
         {"order_id": "direct-c3", "customer_id": "ghost", "amount": 5},
         {"order_id": "direct-c3", "outcome": "REJECTED", "reason": "UNKNOWN_CUSTOMER",
          "available": 0}, True)
    call("ReleaseCredit c4 before any reservation", dealer, cs, "ReleaseCredit",
         {"order_id": "direct-c4"}, {"order_id": "direct-c4", "released": False}, False)
    call("ReserveCredit c4 after its release", dealer, cs, "ReserveCredit",
         {"order_id": "direct-c4", "customer_id": "alice", "amount": 1},
         {"order_id": "direct-c4", "outcome": "REJECTED", "reason": "ALREADY_RELEASED",
          "available": 10000}, False)
    balance("alice after c4", cs, "GetCustomer", {"customer_id": "alice"},
            {"customer_id": "alice", "name": "Alice", "credit_limit": 10000, "reserved": 0,
             "available": 10000})
    balance("bob untouched", cs, "GetCustomer", {"customer_id": "bob"},
            {"customer_id": "bob", "name": "Bob", "credit_limit": 100, "reserved": 0,
             "available": 100})

    # --- stock ---
    call("ReserveStock s1", dealer, is_, "ReserveStock",
         {"order_id": "direct-s1", "items": [{"sku": "apple", "qty": 2},
                                             {"sku": "apple", "qty": 1, "price": 5}]},
         {"order_id": "direct-s1", "outcome": "RESERVED"}, True)
    call("ReserveStock s1 duplicate", req, is_, "ReserveStock",
         {"order_id": "direct-s1", "items": [{"sku": "pear", "qty": 1}]},
         {"order_id": "direct-s1", "outcome": "RESERVED"}, False)
    balance("apple holds s1", is_, "GetStock", {"sku": "apple"},
            {"sku": "apple", "available": 12, "reserved": 3})
    balance("pear untouched by the duplicate", is_, "GetStock", {"sku": "pear"},
            {"sku": "pear", "available": 1, "reserved": 0})
    call("ReleaseStock s1", req, is_, "ReleaseStock", {"order_id": "direct-s1"},
         {"order_id": "direct-s1", "released": True}, True)
    call("ReleaseStock s1 duplicate", dealer, is_, "ReleaseStock", {"order_id": "direct-s1"},
         {"order_id": "direct-s1", "released": True}, False)
    balance("apple after s1", is_, "GetStock", {"sku": "apple"},
            {"sku": "apple", "available": 15, "reserved": 0})
    out = {"order_id": "direct-s2", "outcome": "REJECTED", "reason": "OUT_OF_STOCK", "sku": "pear"}
    call("ReserveStock s2 out of stock", dealer, is_, "ReserveStock",
         {"order_id": "direct-s2", "items": [{"sku": "apple", "qty": 1}, {"sku": "pear", "qty": 5}]},
         out, True)
    call("ReserveStock s2 duplicate", req, is_, "ReserveStock",
         {"order_id": "direct-s2", "items": [{"sku": "apple", "qty": 1}]}, out, False)
    call("ReserveStock s3 unknown sku", dealer, is_, "ReserveStock",
         {"order_id": "direct-s3", "items": [{"sku": "ghost", "qty": 2}]},
         {"order_id": "direct-s3", "outcome": "REJECTED", "reason": "UNKNOWN_SKU", "sku": "ghost"},
         True)
    call("ReleaseStock s4 before any reservation", req, is_, "ReleaseStock",
         {"order_id": "direct-s4"}, {"order_id": "direct-s4", "released": False}, False)
    call("ReserveStock s4 after its release", dealer, is_, "ReserveStock",
         {"order_id": "direct-s4", "items": [{"sku": "apple", "qty": 1}]},
         {"order_id": "direct-s4", "outcome": "REJECTED", "reason": "ALREADY_RELEASED"}, False)
    balance("apple after s4", is_, "GetStock", {"sku": "apple"},
            {"sku": "apple", "available": 15, "reserved": 0})

    # Their events, as the followers saw them; nobody reacted to them by choreography.
    wait_events("participant commands", followers, {
        "direct-c1": {cs: ["CreditReserved", "CreditReleased"], is_: [], "order-service": []},
        "direct-c2": {cs: ["CreditRejected"]},
        "direct-c3": {cs: ["CreditRejected"]},
        "direct-c4": {cs: []},
        "direct-s1": {is_: ["StockReserved", "StockReleased"], "order-service": []},
        "direct-s2": {is_: ["StockRejected"], "order-service": []},
        "direct-s3": {is_: ["StockRejected"]},
        "direct-s4": {is_: []},
    })
    e = ev_of(followers, cs, "direct-c1", "CreditReserved")
    check_eq("direct CreditReserved data", e["data"],
             {"order_id": "direct-c1", "customer_id": "alice", "amount": 100, "saga": O})
    check_eq("direct CreditReserved causation = the command", e.get("causation_id"),
             ids["ReserveCredit c1"])
    e = ev_of(followers, cs, "direct-c1", "CreditReleased")
    check_eq("direct CreditReleased data", e["data"], {"order_id": "direct-c1", "amount": 100})
    check_eq("direct CreditReleased causation = the command", e.get("causation_id"),
             ids["ReleaseCredit c1"])
    check_eq("direct CreditRejected data", ev_of(followers, cs, "direct-c2", "CreditRejected")["data"],
             {"order_id": "direct-c2", "customer_id": "bob", "reason": "CREDIT_LIMIT_EXCEEDED",
              "amount": 101, "available": 100, "saga": O})
    check_eq("direct CreditRejected (unknown) data",
             ev_of(followers, cs, "direct-c3", "CreditRejected")["data"],
             {"order_id": "direct-c3", "customer_id": "ghost", "reason": "UNKNOWN_CUSTOMER",
              "amount": 5, "available": 0, "saga": O})
    e = ev_of(followers, is_, "direct-s1", "StockReserved")
    check_eq("direct StockReserved data", e["data"],
             {"order_id": "direct-s1", "items": [{"sku": "apple", "qty": 3}], "saga": O})
    check_eq("direct StockReserved causation = the command", e.get("causation_id"),
             ids["ReserveStock s1"])
    check_eq("direct StockReleased data", ev_of(followers, is_, "direct-s1", "StockReleased")["data"],
             {"order_id": "direct-s1"})
    check_eq("direct StockRejected data", ev_of(followers, is_, "direct-s2", "StockRejected")["data"],
             {"order_id": "direct-s2", "reason": "OUT_OF_STOCK", "sku": "pear", "requested": 5,
              "available": 1, "saga": O})
    check_eq("direct StockRejected (unknown) data",
             ev_of(followers, is_, "direct-s3", "StockRejected")["data"],
             {"order_id": "direct-s3", "reason": "UNKNOWN_SKU", "sku": "ghost", "requested": 2,
              "available": 0, "saga": O})
    check_eq("direct events: correlation = order_id",
             {e.get("correlation_id") for s in (cs, is_) for e in followers[s].events
              if str(e["data"].get("order_id", "")).startswith("direct-")},
             {"direct-c1", "direct-c2", "direct-c3", "direct-s1", "direct-s2", "direct-s3"})


def _final_checks(dealer, followers):
    """Every event of the whole run: exact fields, every seq once, Stats agree."""
    pump_all(followers, 1300)
    for s, f in followers.items():
        for e in f.events:
            check_eq(f"final {s} {e['type']} #{e['seq']} data keys", set(e["data"]),
                     EVENT_FIELDS.get(e["type"], set()))
        check_eq(f"final {s} seqs 1..N once", [e["seq"] for e in f.events],
                 list(range(1, len(f.events) + 1)))
        check_eq(f"final {s} follower errors", f.errors, [])
        d = expect_ok(f"final Stats {s}", dealer[s].call("Stats"))
        check_eq(f"final Stats {s} last_seq", d.get("last_seq"), f.last)
    _, own = own_stats(dealer)
    check_eq("final sagas_in_flight", own.get("sagas_in_flight"), 0)
    check_eq("final saga_deadlines_passed", own.get("saga_deadlines_passed"), 0)


def main():
    if len(sys.argv) != 2:
        print("usage: protocol_client.py BUILD_DIR", file=sys.stderr)
        return 2
    build = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="eda-proto-")
    ctx = zmq.Context()
    procs = {}
    try:
        eps, procs = start_services(build, tmp)
        wait_ready(ctx, eps, procs)
        run(ctx, eps, procs)
    except Exception:
        traceback.print_exc()
        check("test ran to the end", False)
    finally:
        if procs:
            codes = stop_services(procs)
            for s, rc in codes.items():
                check_eq(f"{s} exits 0 on SIGTERM", rc, 0)
        if failed:
            for s in SERVICES:
                path = os.path.join(tmp, f"{s}.log")
                if os.path.exists(path):
                    with open(path, "rb") as fh:
                        tail = fh.read()[-3000:].decode(errors="replace")
                    print(f"--- {s} log (tail) ---\n{tail}")
        ctx.destroy(linger=0)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
