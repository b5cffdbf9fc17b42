#!/usr/bin/env bash
# demo_guard: run-demo.sh started while another run holds its lock, or while
# one of its ports is taken, exits 1 with a reason before it touches
# anything: the other run's demo/ folder (its databases and logs) is left as
# it was. Runs a copy of the script in a temp folder, so a real demo in the
# checkout is never disturbed.
# Usage: tests/demo_guard.sh SOURCE_DIR
set -euo pipefail
src=${1:?usage: demo_guard.sh SOURCE_DIR}
tmp=$(mktemp -d)
listener=
cleanup() {
    [ -n "$listener" ] && kill "$listener" 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
cp "$src/run-demo.sh" "$tmp/"
mkdir -p "$tmp/scripts" "$tmp/demo"
cp "$src/scripts/deps.sh" "$tmp/scripts/"
echo "the first run's data" >"$tmp/demo/sentinel"
failed=0

# expect NAME EXPECTED_TEXT: runs the copy, which must exit 1 saying
# EXPECTED_TEXT and leave demo/ as it was.
expect() {
    local out rc=0
    out=$(cd "$tmp" && timeout 60 ./run-demo.sh 2>&1) || rc=$?
    if [ "$rc" -ne 1 ] || ! grep -qF "$2" <<<"$out" ||
        [ "$(cat "$tmp/demo/sentinel" 2>/dev/null)" != "the first run's data" ]; then
        echo "FAIL: $1: exit $rc, output: $out" >&2
        failed=1
    else
        echo "ok: $1"
    fi
}

# 1. The lock is held (as a running demo holds it).
exec 8>>"$tmp/.demo.lock"
flock -n 8
expect "a second run while the first holds the lock" "another run-demo.sh is running"
exec 8>&-

# 2. A port of the demo is taken (by a listener of this test's own, unless
# something on this machine already holds it: the same outcome).
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", 7101)); s.listen(1)
except OSError:
    pass
print("ready", flush=True)
time.sleep(120)
' >"$tmp/listener.out" &
listener=$!
for _ in $(seq 1 500); do
    grep -q ready "$tmp/listener.out" 2>/dev/null && break
    sleep 0.01 # polling for the listener's "ready" line
done
expect "a run while port 7101 is taken" "port 7101 is in use"
exit "$failed"
