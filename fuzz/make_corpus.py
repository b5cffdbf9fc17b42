#!/usr/bin/env python3
"""Writes the seed corpus of each harness under fuzz/corpus/<target>/.

Run it again after changing it (python3 fuzz/make_corpus.py); files it does
not write, such as a crash-* kept after a fix, are left alone. It packs
msgpack itself, so that it needs nothing but python3 and can write odd but
valid encodings on purpose.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


class Raw(bytes):
    """Bytes written as they are, already msgpack."""


class F32(float):
    """A float packed as float32."""


def pack(o):
    if isinstance(o, Raw):
        return bytes(o)
    if o is None:
        return b"\xc0"
    if o is True:
        return b"\xc3"
    if o is False:
        return b"\xc2"
    if isinstance(o, int):
        if 0 <= o < 0x80:
            return bytes([o])
        if -32 <= o < 0:
            return struct.pack("b", o)
        if 0 <= o < 1 << 8:
            return b"\xcc" + struct.pack(">B", o)
        if 0 <= o < 1 << 16:
            return b"\xcd" + struct.pack(">H", o)
        if 0 <= o < 1 << 32:
            return b"\xce" + struct.pack(">I", o)
        if o >= 0:
            return b"\xcf" + struct.pack(">Q", o)
        if o >= -(1 << 7):
            return b"\xd0" + struct.pack(">b", o)
        if o >= -(1 << 15):
            return b"\xd1" + struct.pack(">h", o)
        if o >= -(1 << 31):
            return b"\xd2" + struct.pack(">i", o)
        return b"\xd3" + struct.pack(">q", o)
    if isinstance(o, F32):
        return b"\xca" + struct.pack(">f", o)
    if isinstance(o, float):
        return b"\xcb" + struct.pack(">d", o)
    if isinstance(o, str):
        b = o.encode()
        n = len(b)
        if n < 32:
            return bytes([0xA0 | n]) + b
        if n < 1 << 8:
            return b"\xd9" + bytes([n]) + b
        return b"\xda" + struct.pack(">H", n) + b
    if isinstance(o, bytes):
        return b"\xc4" + bytes([len(o)]) + o
    if isinstance(o, list):
        head = bytes([0x90 | len(o)]) if len(o) < 16 else b"\xdc" + struct.pack(">H", len(o))
        return head + b"".join(pack(x) for x in o)
    if isinstance(o, dict):
        n = len(o)
        head = bytes([0x80 | n]) if n < 16 else b"\xde" + struct.pack(">H", n)
        return head + b"".join(pack(k) + pack(v) for k, v in o.items())
    raise TypeError(o)


EPOCH = "0123456789abcdef"
ITEMS = [{"sku": "BOOK-1", "qty": 2, "price": 1250}, {"sku": "PEN-7", "qty": 1, "price": 99}]


def envelope(kind, type_, last, **extra):
    e = {"v": 1, "kind": kind, "type": type_, "id": "m-" + type_, "source": "order-service",
         "ts": 1700000000000000, "correlation_id": "o-1", "causation_id": None}
    e.update(extra)
    e.update(last)
    return e


ENVELOPES = {
    "event": envelope("event", "OrderPlaced", {"data": {
        "order_id": "o-1", "customer_id": "c-1", "items": ITEMS, "total": 2599}},
        seq=1, epoch=EPOCH),
    "command": envelope("command", "PlaceOrder", {"data": {
        "customer_id": "c-1", "items": ITEMS, "saga": "orchestration"}}, source=None,
        correlation_id=None),
    "reply_ok": envelope("reply", "ReserveCredit", {"ok": True, "data": {
        "order_id": "o-1", "reserved": True}}),
    "reply_error": envelope("reply", "ReserveStock", {"ok": False, "error": {
        "code": "CONFLICT", "message": "out of stock: PEN-7"}}),
    "heartbeat": envelope("heartbeat", "Heartbeat", {"data": {"seq": 42}}, epoch=EPOCH),
    "event_odd_values": envelope("event", "StockReserved", {"data": {
        "order_id": "o-2", "ratio": 0.5, "f32": F32(1.5), "neg": -7, "big": 1 << 40,
        "bin": b"\x00\x01", "nested": {"a": [1, None, True, "x y"]}, "empty": "",
        "spaced": "two words", "quoted": 'say "hi"', 7: "int key"}},
        seq=18446744073709551615, epoch=EPOCH),
    "version_2": dict(envelope("event", "OrderPlaced", {"data": {}}, seq=1, epoch=EPOCH),
                      v=2),
    "wrong_type": envelope("command", "PlaceOrder", {"data": ["not", "a", "map"]}),
}


def items_seeds():
    priced = pack(ITEMS)
    plain = pack([{"sku": "BOOK-1", "qty": 2}, {"sku": "MUG", "qty": 10}])
    return {
        "priced": priced,
        "plain": plain,
        "mixed": pack([{"sku": "BOOK-1", "qty": 2, "price": 0}, {"sku": "MUG", "qty": 1}]),
        "in_data": pack({"order_id": "o-1", "items": ITEMS}),
        "hundred": pack([{"sku": "S%d" % i, "qty": i + 1, "price": i} for i in range(100)]),
        "bad_qty": pack([{"sku": "BOOK-1", "qty": 0, "price": 5}]),
        "bad_price": pack([{"sku": "BOOK-1", "qty": 1, "price": -1}]),
        "empty": pack([]),
        "truncated": priced[: len(priced) // 2],
    }


ZPL_GOOD = """# the topology of the three services
order-service
    events = tcp://10.0.0.1:7101
    commands = tcp://10.0.0.1:7102
    db = /var/lib/eda/order.db
    log-level = debug
    log-format = json
    saga = orchestration
    saga-deadline = 5000
customer-service
    events = tcp://10.0.0.2:7201
    commands = tcp://10.0.0.2:7202
inventory-service
    events = "tcp://10.0.0.3:7301"
    commands = 'tcp://10.0.0.3:7302'
shipping-service
    events = ipc:///tmp/shipping-events
    commands = ipc:///tmp/shipping-commands
"""

CONFIG_SEEDS = {
    "good.zpl": ZPL_GOOD,
    "unknown_setting.zpl": "order-service\n    colour = blue\n",
    "bad_level.zpl": "order-service\n    log-level = loud\n",
    "bad_indent.zpl": "order-service\n  events = tcp://x:1\n\tcommands\n",
    "nested.zpl": "a\n    b\n        c = 1\n    events = tcp://a:1\n",
    "peers.txt": ("customer-service=tcp://h:7201,tcp://h:7202\n"
                  "new-peer=ipc:///e,ipc:///c\n"
                  "order-service=tcp://own:1,tcp://own:2\n"
                  "=x,y\nnoequals\nname=onlyevents\n"
                  "log-level debug\nsaga choreography\nsaga-deadline 0\n"
                  "events tcp://*:7101\n"),
}


def write(target, name, blob):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(blob, str):
        blob = blob.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)


def main():
    for name, env in ENVELOPES.items():
        blob = pack(env)
        for target in ("envelope", "log"):
            write(target, name, blob)
    event = pack(ENVELOPES["event"])
    write("envelope", "event_truncated", event[:-7])
    write("envelope", "event_trailing", event + b"\xc0")
    write("envelope", "not_a_map", pack(["v", 1]))
    write("log", "refused_named", pack({"v": 1, "kind": "command", "type": "Place\nOrder",
                                        "id": "id\x1b[31m"}))
    for name, blob in items_seeds().items():
        write("items", name, blob)
    for name, text in CONFIG_SEEDS.items():
        write("config", name, text)


if __name__ == "__main__":
    main()
