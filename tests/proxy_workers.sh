#!/bin/bash
# zkrouterd --workers 2: connections spread over both worker threads (the
# per-worker series of /metrics), /metrics totals equal to the sums of the
# per-worker series, a table change in service on both workers by the time
# /routers reports its digest, and SIGHUP and SIGTERM with requests in
# flight on both workers: none lost, none cut, every access-log line whole.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

zk_require
command -v python3 >/dev/null || skip "python3 not installed"
proxy_setup --workers 2 --drain-delay-ms 300 --drain-timeout-ms 20000
CTL=$BUILD/zkrouterctl
[ -x "$CTL" ] || hard_error "zkrouterctl is not built"

start_backend w1
app_add w.test
register w.test w1 "$BACKEND_PORT"
wait_instance w.test w1

metrics() { curl -s --max-time 5 "http://$ADMIN/metrics"; }
# metric NAME [LABELS]: its value in $T/m (a saved /metrics).
metric() {
	local k=$1
	[ -n "${2:-}" ] && k="$1{$2}"
	awk -v k="$k" '$1 == k { print $2 }' "$T/m"
}
# The sum of a per-worker series in $T/m.
worker_sum() { awk -v k="$1{worker=" 'index($1, k) == 1 { s += $2 } END { print s + 0 }' "$T/m"; }

metrics >"$T/m"
[ "$(metric zkrouter_workers)" = 2 ] || fail "zkrouter_workers is not 2: $(grep workers "$T/m")"

log "64 keep-alive connections, one request each: both workers hold some"
# hold.py: opens N connections, sends one request on each, reads each
# answer, writes "ready" and keeps them open until the file STOP exists.
cat >"$T/hold.py" <<'EOF'
import os, socket, sys, time
port, n, host, stop = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
socks = []
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    s.sendall(("GET /echo HTTP/1.1\r\nHost: %s\r\n\r\n" % host).encode())
    socks.append(s)
ok = 0
for s in socks:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    ok += data.startswith(b"HTTP/1.1 200")
print("ready %d" % ok, flush=True)
for _ in range(600):
    if os.path.exists(stop):
        break
    time.sleep(0.1)
EOF
spawn hold python3 "$T/hold.py" "$PROXY_PORT" 64 w.test "$T/hold.stop"
HOLD_PID=$SPAWNED_PID
wait_for 20 grep -q '^ready' "$T/hold.log" || fail "the 64 connections were not answered: $(cat "$T/hold.log")"
grep -q '^ready 64$' "$T/hold.log" || fail "not every answer was 200: $(cat "$T/hold.log")"
metrics >"$T/m"
c0=$(metric zkrouter_worker_client_connections 'worker="0"')
c1=$(metric zkrouter_worker_client_connections 'worker="1"')
log "client connections: worker 0: $c0, worker 1: $c1"
[ "${c0:-0}" -gt 0 ] && [ "${c1:-0}" -gt 0 ] || fail "connections not spread over both workers: $c0 / $c1"
[ "$(worker_sum zkrouter_worker_client_connections)" = "$(metric zkrouter_client_connections)" ] ||
	fail "zkrouter_client_connections $(metric zkrouter_client_connections) is not the workers' sum"
r0=$(metric zkrouter_worker_requests_total 'worker="0"')
r1=$(metric zkrouter_worker_requests_total 'worker="1"')
[ "${r0:-0}" -gt 0 ] && [ "${r1:-0}" -gt 0 ] || fail "requests not served by both workers: $r0 / $r1"
[ "$(worker_sum zkrouter_worker_requests_total)" = "$(metric zkrouter_requests_total)" ] ||
	fail "zkrouter_requests_total $(metric zkrouter_requests_total) is not the workers' sum $r0 + $r1"
[ "$(metric zkrouter_responses_total 'class="2xx"')" = "$(metric zkrouter_requests_total)" ] ||
	fail "2xx responses and requests disagree"
touch "$T/hold.stop"
stop_pid "$HOLD_PID"

log "a table change is in service on both workers once /routers reports it"
routers_digest() {
	"$CTL" --zk "$ZK/zkrouter" --timeout 10000 --json routers 2>/dev/null |
		tr -d ' \n' | grep -o '"digest":"[0-9a-f]*"' | head -n 1 | cut -d'"' -f4
}
# The app first, without instances (its requests get 503), and /routers
# reporting that table; then one instance, one table change.
start_backend w2
app_add new.test
wait_app new.test
routes_digest() { routes | tr -d ' \n' | grep -o '"digest":"[0-9a-f]*"' | head -n 1 | cut -d'"' -f4; }
for _ in $(seq 1 150); do
	old=$(routers_digest)
	[ -n "$old" ] && [ "$(routes_digest)" = "$old" ] && break
	sleep 0.1
done
[ -n "$old" ] && [ "$(routes_digest)" = "$old" ] ||
	fail "/routers ($old) never reported the table of /routes ($(routes_digest))"
[ "$(pcurl new.test /echo -o /dev/null -w '%{http_code}')" = 503 ] || fail "new.test without instances is not 503"
register new.test n1 "$BACKEND_PORT"
for _ in $(seq 1 150); do
	now=$(routers_digest)
	[ -n "$now" ] && [ "$now" != "$old" ] && break
	sleep 0.1
done
[ "$now" != "$old" ] || fail "/routers never reported a new digest"
# At once, over 32 new connections (both workers): every one routes the app.
cat >"$T/burst.py" <<'EOF'
import socket, sys
port, n, host = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
socks = [socket.create_connection(("127.0.0.1", port), timeout=20) for _ in range(n)]
for s in socks:
    s.sendall(("GET /echo HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % host).encode())
codes = []
for s in socks:
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    codes.append(data.split(b" ", 2)[1].decode() if data else "none")
print(" ".join(codes))
EOF
codes=$(python3 "$T/burst.py" "$PROXY_PORT" 32 new.test) || fail "burst client failed"
[ "$(echo "$codes" | tr ' ' '\n' | grep -c '^200$')" = 32 ] ||
	fail "a worker did not serve the new table when /routers reported it: $codes"
metrics >"$T/m"
routes | tr -d ' \n' | grep -q "\"digest\":\"$now" || fail "/routes does not report the digest /routers has"

# slow N: N requests that each take 2.5 s, over their own connections.
slow() {
	local i
	for i in $(seq 1 "$1"); do
		curl -s -o /dev/null -w '%{http_code}\n' --max-time 30 -H 'Host: w.test' \
			"http://$PROXY/slow?ms=2500" >>"$T/slow.codes" &
		SLOW_PIDS="$SLOW_PIDS $!"
	done
}
both_busy() {
	metrics >"$T/m"
	[ "$(metric zkrouter_worker_active_requests 'worker="0"')" -gt 0 ] &&
		[ "$(metric zkrouter_worker_active_requests 'worker="1"')" -gt 0 ]
}
slow_wait() {
	local pid
	for pid in $SLOW_PIDS; do
		wait "$pid"
	done
	SLOW_PIDS=
}

log "SIGHUP with requests in flight on both workers: none lost, the log reopened"
: >"$T/slow.codes"
SLOW_PIDS=
# Counted before the first starts: on a loaded machine the first can end
# before the last is in flight.
metrics >"$T/m"
before=$(metric zkrouter_requests_total)
slow 24
wait_for 10 both_busy || fail "slow requests not in flight on both workers: $(grep worker_active "$T/m")"
mv "$T/access.log" "$T/access.log.1"
kill -HUP "$ROUTER_PID"
wait_for 10 grep -q 'SIGHUP' "$T/zkrouterd.log" || fail "no SIGHUP line"
slow_wait
[ "$(grep -c '^200$' "$T/slow.codes")" = 24 ] || fail "requests lost across SIGHUP: $(sort "$T/slow.codes" | uniq -c)"
router_alive
metrics >"$T/m"
total=$(metric zkrouter_requests_total)
[ "$((total - before))" = 24 ] || fail "$((total - before)) requests counted across SIGHUP, not 24"
# Lines are flushed at least every 200 ms: wait until all are written.
lines() { cat "$T/access.log.1" "$T/access.log" 2>/dev/null | wc -l; }
wait_for 10 sh -c "[ \$(cat '$T/access.log.1' '$T/access.log' 2>/dev/null | wc -l) -ge $total ]" ||
	fail "access log lines $(lines), requests $total"
[ "$(lines)" = "$total" ] || fail "access log lines $(lines), requests $total"
[ -s "$T/access.log" ] || fail "nothing written to the reopened access log"
bad=$(cat "$T/access.log.1" "$T/access.log" | grep -cv '^time=[^ ]* client=.* rid=[^ ]* total_ms=[0-9.]* upstream_ms=[-0-9.]*$')
[ "$bad" = 0 ] || fail "$bad access-log lines are not whole lines"
log "access log: $(wc -l <"$T/access.log.1") lines before the reopen, $(wc -l <"$T/access.log") after"

log "SIGTERM with requests in flight on both workers: all answered, exit 0"
: >"$T/slow.codes"
slow 24
wait_for 10 both_busy || fail "slow requests not in flight on both workers: $(grep worker_active "$T/m")"
kill -TERM "$ROUTER_PID"
slow_wait
[ "$(grep -c '^200$' "$T/slow.codes")" = 24 ] || fail "requests lost in the drain: $(sort "$T/slow.codes" | uniq -c)"
wait_for 20 sh -c "! kill -0 $ROUTER_PID 2>/dev/null" || fail "zkrouterd did not exit after the drain"
rc=0
wait "$ROUTER_PID" || rc=$?
[ "$rc" = 0 ] || fail "zkrouterd exited with $rc after the drain"
grep -q 'drained in' "$T/zkrouterd.log" || fail "no drain line in the log"
log "ok: $(grep -o 'drained in .*' "$T/zkrouterd.log")"
