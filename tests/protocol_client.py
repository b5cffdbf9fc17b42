#!/usr/bin/python3
"""End-to-end protocol test, written from docs/protocol.md only.

Usage: /usr/bin/python3 tests/protocol_client.py BUILD_DIR

Starts the three real service binaries on ipc:// endpoints in a temporary
directory, drives every command over a DEALER and over a REQ socket, follows
every service's event stream exactly once (seq order, gap repair with
ReplayEvents), checks the events of each choreography scenario field by
field, and checks the error replies. Prints "N passed, M failed" last and
exits non-zero on any failure. Needs Debian's python3-zmq and python3-msgpack.
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
}

ORDER_KEYS = {"order_id", "customer_id", "status", "reason", "saga", "items", "total",
              "created_ts"}

STATS_KEYS = {"service", "epoch", "last_seq", "uptime_s", "commands_in", "replies_out",
              "replies_dropped", "events_published", "events_applied", "events_ignored",
              "duplicates_dropped", "gaps_detected", "gaps_repaired", "replays_requested",
              "bad_input", "commits_failed", "batches", "batch_max", "batch_avg_x100",
              "handler_us_avg", "handler_us_max", "peers"}


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
              and set(hb.get("data", {})) == {"last_seq"}, repr(hb))
        check(f"{s} deliberately lost events were replayed", not f.drop_live, repr(f.drop_live))
        check(f"{s} a gap was detected and repaired", f.gaps >= 1 and f.replays >= 2,
              f"gaps {f.gaps}, replays {f.replays}")
    check_eq("order epoch prefix in order ids", oa.split("-")[1],
             followers["order-service"].epoch[:12])
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
        d = expect_ok(f"ListOrders REJECTED {label}", cl["order-service"].call(
            "ListOrders", {"status": "REJECTED"}))
        check_eq(f"ListOrders REJECTED {label}", [o["order_id"] for o in d.get("orders", [])],
                 all_ids[1:])
        d = expect_ok(f"ListOrders REJECTED limit 2 {label}", cl["order-service"].call(
            "ListOrders", {"status": "REJECTED", "limit": 2}))
        check_eq(f"ListOrders REJECTED limit 2 {label}",
                 [o["order_id"] for o in d.get("orders", [])], all_ids[1:3])
        d = expect_ok(f"ListOrders limit 1 {label}", cl["order-service"].call(
            "ListOrders", {"limit": 1, "status": None}))
        check_eq(f"ListOrders limit 1 {label}", [o["order_id"] for o in d.get("orders", [])],
                 all_ids[:1])
        d = expect_ok(f"ListOrders CANCELLED {label}", cl["order-service"].call(
            "ListOrders", {"status": "CANCELLED"}))
        check_eq(f"ListOrders CANCELLED {label}", d.get("orders"), [])
        for bad in ({"status": "DONE"}, {"limit": 0}, {"limit": 10001}, {"limit": -1},
                    {"limit": "5"}):
            expect_error(f"ListOrders {bad} {label}", cl["order-service"].call("ListOrders", bad),
                         "BAD_REQUEST")

    # --- ReplayEvents over both socket types --------------------------------------
    for label, cl in both:
        for s in SERVICES:
            f = followers[s]
            d = expect_ok(f"ReplayEvents {s} {label}", cl[s].call(
                "ReplayEvents", {"after_seq": 0, "limit": 1000}))
            check_eq(f"ReplayEvents {s} {label} keys", set(d), {"epoch", "last_seq", "events"})
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
            check_eq(f"Stats {s} {label} keys", set(d), STATS_KEYS)
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
        env = command("CancelOrder", {"order_id": oa})
        r = refused(env, "CancelOrder")
        expect_error(f"CancelOrder not in this version {label}", r, "UNKNOWN_COMMAND")
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
                    {"customer_id": "alice", "items": good, "saga": "orchestration"},
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

    # All three still alive.
    for s in SERVICES:
        check(f"{s} still running", procs[s].poll() is None)


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
