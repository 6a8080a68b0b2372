#!/bin/bash
# A SIGTERM drain on a PROXY protocol listener ("ADDR:PORT,proxy") serves
# connections accepted before the listeners closed, as on a plain
# listener: one that had sent nothing yet and one whose header was partly
# received both get their request answered (with "Connection: close")
# when the header and request follow just after the close, instead of
# being closed unanswered with the listeners.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_require
zk_require
command -v python3 >/dev/null || skip "python3 not installed"

PP_PORT=$(free_port) || hard_error "no free port"
proxy_setup --listen "127.0.0.1:$PP_PORT,proxy" --drain-delay-ms 0 --drain-timeout-ms 10000
start_backend a1
app_add app.test
register app.test a1 "$BACKEND_PORT"
wait_instance app.test a1

python3 - "$PP_PORT" "$ROUTER_PID" "$T/zkrouterd.log" >"$T/client.out" 2>&1 <<'PY'
import os, signal, socket, sys, time

port, pid, logf = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
hdr = b"PROXY TCP4 203.0.113.9 198.51.100.1 40001 80\r\n"
req = b"GET / HTTP/1.1\r\nHost: app.test\r\n\r\n"

def wait_log(text, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open(logf, "rb") as f:
            if text in f.read():
                return True
        time.sleep(0.005)
    return False

def answer(s):
    s.settimeout(10)
    got = b""
    try:
        while True:
            b = s.recv(4096)
            if not b:
                break
            got += b
    except OSError as e:
        return got, str(e)
    return got, "closed"

quiet = socket.create_connection(("127.0.0.1", port))
partial = socket.create_connection(("127.0.0.1", port))
partial.sendall(hdr[:10])
time.sleep(0.2)   # both accepted (or queued in the kernel): either way ours
os.kill(pid, signal.SIGTERM)
if not wait_log(b"listeners closed", 10):
    print("FAIL: the router never closed its listeners")
    sys.exit(1)
quiet.sendall(hdr + req)
partial.sendall(hdr[10:] + req)
bad = 0
for name, s in (("quiet", quiet), ("partial", partial)):
    got, end = answer(s)
    head = got.split(b"\r\n", 1)[0]
    print("%s: %r (%s)" % (name, head, end))
    if not head.startswith(b"HTTP/1.1 200") or b"Connection: close" not in got:
        print("FAIL: %s: connection accepted before the close got %r, %s" % (name, got[:200], end))
        bad += 1
sys.exit(1 if bad else 0)
PY
crc=$?
cat "$T/client.out"
[ "$crc" = 0 ] || fail "connections on the PROXY listener were cut by the drain"
rc=0
wait "$ROUTER_PID" || rc=$?
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $ROUTER_PID / /")
[ "$rc" = 0 ] || fail "zkrouterd exited $rc after SIGTERM, want 0"
grep -q 'drained in' "$T/zkrouterd.log" || fail "no drain line in the log"
log "ok"
