#!/usr/bin/python3
"""eda console's page in a real browser: headless Chromium over the DevTools
protocol.

Usage: /usr/bin/python3 tests/console_browser.py BUILD_DIR [--screenshot PNG]

Starts the three real services on ipc:// endpoints in a temporary folder,
`eda console --listen 127.0.0.1:0` in front of them (the URL it prints says
the port) and Chromium with a temporary profile, loads the page, then places
an order with the eda binary and checks, by evaluating in the page:

  - within 1 s of the order being placed (place-order's reply) the swim lanes
    show its four events, each in its service's lane, with the full order id
    as text a person can search the page for;
  - within 1 s of a click on that id the sequence diagram shows its steps
    (PlaceOrder, then each event, OrderCreated dashed to both participants);
  - an orchestrated order opened by its URL (/#order=ID) shows the inferred
    ReserveCredit and ReserveStock commands.

With --screenshot it then plays a few demo orders (both patterns, refusals, a
cancellation), opens one and saves the page as a PNG (docs/console.png).

Chromium (Debian `chromium`) and python3-websocket are installed with apt-get
when missing; when that is impossible (not root, no network) the test is
skipped: exit 77, with the reason. Chromium, the console and the services are
always stopped. Prints "N passed, M failed" last; exits 1 on any failure.
"""
import base64
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

SKIP = 77
SERVICES = ["order-service", "customer-service", "inventory-service"]
LIVE_S = 1.0     # the contract: the page shows an order within a second
START_S = 20.0   # a process getting ready (ASan builds are slow)
POLL_S = 0.02    # how often the page is asked

passed = 0
failed = 0


def check(name, cond, detail=""):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok: {name}", flush=True)
    else:
        failed += 1
        print(f"FAIL: {name}" + (f": {detail}" if detail else ""), flush=True)
    return cond


def skip(why):
    print(f"SKIP: {why}", flush=True)
    sys.exit(SKIP)


# --- what the test needs ------------------------------------------------------

def ensure_packages():
    """Installs chromium and python3-websocket when missing, or skips."""
    need = []
    if not shutil.which("chromium"):
        need.append("chromium")
    try:
        import websocket  # noqa: F401
    except ImportError:
        need.append("python3-websocket")
    if not need:
        return
    if os.geteuid() != 0:
        skip(f"{' and '.join(need)} missing and not root: apt-get install -y {' '.join(need)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + need
    print(f"installing {' '.join(need)}...", flush=True)
    if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, stdout=subprocess.DEVNULL)
        if subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL).returncode != 0:
            skip(f"cannot install {' '.join(need)} with apt-get")
    if not shutil.which("chromium"):
        skip("chromium is still not on PATH after apt-get")


# --- processes ----------------------------------------------------------------

class Run:
    """Everything started, to be stopped whatever happens."""

    def __init__(self, build, tmp):
        self.build = build
        self.tmp = tmp
        self.procs = {}  # name -> Popen
        eps = {s: (f"ipc://{tmp}/{s}.ev", f"ipc://{tmp}/{s}.cmd") for s in SERVICES}
        self.peers = []
        for s in SERVICES:
            self.peers += ["--peer", f"{s}={eps[s][0]},{eps[s][1]}"]
        self.eps = eps

    def eda(self, *args, check_rc=True):
        cmd = [os.path.join(self.build, "tools", "eda"), *args, *self.peers]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if check_rc and r.returncode != 0:
            raise RuntimeError(f"eda {' '.join(args)}: exit {r.returncode}: {r.stderr.strip()}")
        return r

    def start_services(self):
        for s in SERVICES:
            cmd = [os.path.join(self.build, s, s), "--events", self.eps[s][0],
                   "--commands", self.eps[s][1], "--db", os.path.join(self.tmp, f"{s}.db"),
                   "--log-level", "warn", *self.peers]
            if s == "order-service":  # quick sagas, as in run-demo.sh
                cmd += ["--command-timeout", "300", "--saga-deadline", "4000"]
            log = open(os.path.join(self.tmp, f"{s}.log"), "wb")
            self.procs[s] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
            log.close()
        deadline = time.monotonic() + START_S
        while self.eda("--timeout", "300", "ping", check_rc=False).returncode != 0:
            for s, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{s} exited {p.returncode}")
            if time.monotonic() > deadline:
                raise RuntimeError("the services do not answer Ping")

    def start_console(self):
        err = open(os.path.join(self.tmp, "console.err"), "wb")
        p = subprocess.Popen(
            [os.path.join(self.build, "tools", "eda"), "console", "--listen",
             "127.0.0.1:0", *self.peers], stdout=subprocess.PIPE, stderr=err,
            stdin=subprocess.DEVNULL)
        err.close()
        self.procs["console"] = p
        ready, _, _ = select.select([p.stdout], [], [], START_S)
        line = p.stdout.readline().decode() if ready else ""
        m = re.match(r"console: (http://127\.0\.0\.1:\d+/)", line)
        if not m:
            raise RuntimeError(f"eda console printed {line!r}")
        # Ready when it heard every service (a heartbeat comes each second):
        # its SUBs get every event from then on.
        url = m.group(1)
        deadline = time.monotonic() + START_S
        while True:
            stats = json.load(urllib.request.urlopen(url + "api/stats", timeout=10))
            if all(s["heard_ms_ago"] >= 0 for s in stats["services"]):
                return url
            if time.monotonic() > deadline:
                raise RuntimeError(f"eda console does not hear every service: {stats}")
            time.sleep(POLL_S)

    def start_chromium(self):
        profile = os.path.join(self.tmp, "profile")
        log = open(os.path.join(self.tmp, "chromium.log"), "wb")
        args = ["chromium", "--headless=new", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--remote-debugging-port=0", "--remote-allow-origins=*",
                f"--user-data-dir={profile}", "--window-size=1400,1000", "about:blank"]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium's sandbox refuses root
        # Its own session: the whole tree (zygote, renderers) goes with one kill.
        self.procs["chromium"] = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        log.close()
        port_file = os.path.join(profile, "DevToolsActivePort")
        deadline = time.monotonic() + START_S
        while True:
            if os.path.exists(port_file):
                lines = open(port_file).read().split("\n")
                if lines[0].isdigit():
                    return int(lines[0])
            if self.procs["chromium"].poll() is not None or time.monotonic() > deadline:
                tail = open(os.path.join(self.tmp, "chromium.log"), errors="replace").read()[-2000:]
                raise RuntimeError(f"chromium did not start:\n{tail}")
            time.sleep(POLL_S)

    def stop(self):
        """Stops everything; returns the exit status of each (None: killed)."""
        status = {}
        chromium = self.procs.pop("chromium", None)
        if chromium and chromium.poll() is None:
            try:
                os.killpg(chromium.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if chromium:
            chromium.wait(timeout=10)
        for name, p in self.procs.items():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 10
        for name, p in self.procs.items():
            try:
                status[name] = p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
                status[name] = None
            if p.stdout:
                p.stdout.close()
        self.procs = {}
        return status


# --- the DevTools protocol -------------------------------------------------------

class Page:
    """One page target, driven over its WebSocket."""

    def __init__(self, port):
        import websocket
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                                   timeout=10))
        page = next(t for t in targets if t.get("type") == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30,
                                              suppress_origin=True)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                      awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def until(self, expression, deadline):
        """Evaluates until the value is truthy or the deadline (monotonic)
        passes; returns the last value."""
        while True:
            value = self.eval(expression)
            if value or time.monotonic() >= deadline:
                return value
            time.sleep(POLL_S)

    def close(self):
        self.ws.close()


def lanes_of(order):
    """JS: the [type, source, lane] of each row of the order in the lanes."""
    return ("Array.from(document.querySelectorAll('#rows .row')).filter(r => "
            f"r.dataset.order === {json.dumps(order)}).map(r => [r.dataset.type, "
            "r.dataset.source, Array.from(r.children).findIndex(c => c.querySelector('.ev'))])")


def steps_of():
    """JS: the type of each step drawn, in order (one per arrow or note)."""
    return ("Array.from(document.querySelectorAll('#diagram g.step')).map(g => "
            "g.dataset.kind + ':' + g.dataset.type)")


def dedupe(seq):
    out = []
    for x in seq:
        if not out or out[-1] != x:
            out.append(x)
    return out


# --- the checks -------------------------------------------------------------------

LANE = {s: i + 1 for i, s in enumerate(SERVICES)}  # the time column is 0
CHOREOGRAPHY = ["OrderCreated", "CreditReserved", "StockReserved", "OrderApproved"]


def place(run, *args):
    r = run.eda("--json", "place-order", *args)
    return json.loads(r.stdout)["order_id"]


def check_live_order(run, page):
    order = place(run, "--customer", "ada", "--item", "apple:1:150", "--saga", "choreography")
    placed = time.monotonic()
    rows = page.until(f"(() => {{ const r = {lanes_of(order)}; "
                      f"return r.length >= 4 ? r : null; }})()", placed + LIVE_S)
    took = time.monotonic() - placed
    rows = rows or page.eval(lanes_of(order))
    check(f"the lanes show the order's four events within {LIVE_S} s",
          sorted(t for t, _, _ in rows) == sorted(CHOREOGRAPHY),
          f"after {took:.3f} s: {rows}")
    check("the lanes are in causal order", [t for t, _, _ in rows] == CHOREOGRAPHY, str(rows))
    check("each event is in its service's lane",
          all(lane == LANE.get(src) for _, src, lane in rows), str(rows))
    check("the full order id is text on the page (find-in-page finds it)",
          page.eval(f"document.body.innerText.includes({json.dumps(order)})"))

    page.eval("(() => { const r = Array.from(document.querySelectorAll('#rows .row'))"
              f".find(r => r.dataset.order === {json.dumps(order)}); "
              "r.querySelector('button.oid').click(); return true; })()")
    clicked = time.monotonic()
    want = ["command:PlaceOrder"] + [f"event:{t}" for t in CHOREOGRAPHY]
    steps = page.until(f"(() => {{ const s = {steps_of()}; "
                       f"return s.length >= 6 ? s : null; }})()", clicked + LIVE_S)
    took = time.monotonic() - clicked
    steps = steps or page.eval(steps_of())
    check(f"a click shows its sequence diagram within {LIVE_S} s", dedupe(steps) == want,
          f"after {took:.3f} s: {steps}")
    check("OrderCreated is drawn as two arrows, one to each participant",
          steps.count("event:OrderCreated") == 2, str(steps))
    check("the diagram's arrows: commands solid, events dashed",
          page.eval("(() => { const g = Array.from(document.querySelectorAll('#diagram g.step'));"
                    " const dash = (x) => x.querySelector('line').getAttribute('stroke-dasharray');"
                    " const c = g.filter(x => x.dataset.kind === 'command' && x.querySelector('line'));"
                    " const e = g.filter(x => x.dataset.kind === 'event' && x.querySelector('line'));"
                    " return c.length > 0 && e.length > 0 && c.every(x => dash(x) === 'none') &&"
                    " e.every(x => dash(x) !== 'none'); })()"))
    check("the URL names the order", page.eval("location.hash") == "#order=" + order,
          page.eval("location.hash"))
    check("the order's status is shown",
          "APPROVED" in (page.eval("document.getElementById('meta').textContent") or ""))
    return order


def check_order_by_url(run, page, url):
    order = place(run, "--customer", "ada", "--item", "apple:1:150", "--saga",
                  "orchestration", "--wait")
    page.call("Page.navigate", url=url + "#order=" + order)
    deadline = time.monotonic() + 5
    steps = page.until(f"(() => {{ const s = {steps_of()}; "
                       "return s.includes('command:ReserveStock') ? s : null; })()", deadline)
    steps = steps or page.eval(steps_of())
    check("/#order=ID opens an orchestrated order with its inferred commands",
          "command:ReserveCredit" in steps and "command:ReserveStock" in steps, str(steps))
    check("orchestrated events are notes, not arrows (nobody reacts to them)",
          page.eval("Array.from(document.querySelectorAll('#diagram g.step'))"
                    ".filter(g => g.dataset.kind === 'event').every(g => !g.querySelector('line'))"))


def demo(run, page, url, png):
    """A few demo orders, one of them opened, saved as a PNG."""
    run.eda("customer", "create", "alice", "--name", "Alice Liddell", "--credit", "50000")
    run.eda("customer", "create", "bob", "--name", "Bob Marley", "--credit", "1000")
    for sku, qty in (("book", "50"), ("lamp", "2"), ("pen", "500")):
        run.eda("stock", "add", sku, qty)
    shown = None
    for saga in ("orchestration", "choreography"):
        run.eda("place-order", "--customer", "bob", "--item", "lamp:1:4500", "--saga", saga,
                "--wait", check_rc=False)
        run.eda("place-order", "--customer", "alice", "--item", "lamp:5:4500", "--saga", saga,
                "--wait", check_rc=False)
        order = place(run, "--customer", "alice", "--item", "book:2:1500", "--item",
                      "pen:1:250", "--saga", saga, "--wait")
        run.eda("cancel", order)
        shown = order  # the choreographed one, cancelled: dashed arrows, releases
    page.call("Emulation.setDeviceMetricsOverride", width=1440, height=1000,
              deviceScaleFactor=1, mobile=False)
    page.call("Page.navigate", url=url + "#order=" + shown)
    page.until(f"document.querySelectorAll('#diagram g.step').length >= 11 && "
               f"document.querySelectorAll('#rows .row').length > 20 && "
               f"!document.getElementById('count').textContent.startsWith('0')",
               time.monotonic() + 5)
    time.sleep(1.2)  # one more Stats poll, so the counters are the latest
    shot = page.call("Page.captureScreenshot", format="png")
    with open(png, "wb") as f:
        f.write(base64.b64decode(shot["data"]))
    print(f"screenshot: {png}", flush=True)


def main():
    args = sys.argv[1:]
    png = None
    if "--screenshot" in args:
        i = args.index("--screenshot")
        png = os.path.abspath(args[i + 1])
        del args[i:i + 2]
    if len(args) != 1:
        print(__doc__)
        return 2
    build = os.path.abspath(args[0])
    ensure_packages()
    tmp = tempfile.mkdtemp(prefix="eda-console-browser-")
    run = Run(build, tmp)
    page = None
    status = {}
    try:
        run.start_services()
        run.eda("customer", "create", "ada", "--name", "Ada", "--credit", "10000000")
        run.eda("stock", "add", "apple", "100000")
        url = run.start_console()
        page = Page(run.start_chromium())
        page.call("Page.enable")
        page.call("Runtime.enable")
        page.call("Page.navigate", url=url)
        live = page.until("document.body && document.body.dataset.live === '1'",
                          time.monotonic() + START_S)
        if check("the page loads and its event stream opens", live):
            check_live_order(run, page)
            check_order_by_url(run, page, url)
            if png:
                demo(run, page, url, png)
    except Exception as e:  # a failure to set up is a failure, said
        check("the run", False, f"{type(e).__name__}: {e}")
    finally:
        if page:
            page.close()
        status = run.stop()
        err = ""
        path = os.path.join(tmp, "console.err")
        if os.path.exists(path):
            err = open(path, errors="replace").read()
        check("eda console stopped cleanly on SIGTERM", status.get("console") == 0,
              f"status {status.get('console')}: {err[-2000:]}")
        check("eda console reported nothing (no sanitizer report)",
              "Sanitizer" not in err and "runtime error" not in err, err[-2000:])
        for s in SERVICES:
            check(f"{s} stopped cleanly", status.get(s) == 0, f"status {status.get(s)}")
        if failed and os.environ.get("EDA_TEST_KEEP"):
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
