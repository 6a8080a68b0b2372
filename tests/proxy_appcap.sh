#!/bin/bash
# The per-app concurrency cap (AppConfig max_concurrent_requests, set with
# `zkrouterctl app set`): with 2 requests of an app in flight across its
# two instances, the next one waits in the app's queue
# (max_queued_requests 1) and is sent once a slot frees; one more is
# answered 503 app_overloaded at once (error code, request id). Another
# app is not held back. A request that waits longer than
# --app-queue-timeout-ms (reloaded by SIGHUP) gets 503 app_overloaded.
# Raising the cap sends a waiting request at once. /routes shows the
# app's requests in flight and waiting, /metrics the totals.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"
# The limit this test asserts is per worker until it becomes process-wide
# state shared by the workers: its router runs one worker until then.
WORKERS_ARG=--workers=1

CTL=$top_builddir/zkrouterctl
[ -x "$CTL" ] || hard_error "zkrouterctl not built"
ctl() { "$CTL" --zk "$ZK/zkrouter" --timeout 5000 "$@"; }

echo "app-queue-timeout-ms = 20000" >"$T/zkrouterd.conf"
proxy_setup --config "$T/zkrouterd.conf"
start_backend c1
P1=$BACKEND_PORT
start_backend c2
P2=$BACKEND_PORT
app_add c.test
app_add d.test
register c.test c1 "$P1"
register c.test c2 "$P2"
register d.test d1 "$P1"
wait_instance c.test c2
wait_instance d.test d1

log "zkrouterctl app set --max-concurrent-requests 2 --max-queued-requests 1"
ctl app set c.test --max-concurrent-requests 2 --max-queued-requests 1 >"$T/set.out" 2>&1 ||
	fail "app set: $(cat "$T/set.out")"
grep -q 'max-concurrent=2 max-queued=1' "$T/set.out" || fail "app set summary: $(cat "$T/set.out")"
ctl --json app show c.test | grep -q '"max_concurrent_requests":2,"max_queued_requests":1' ||
	fail "app show: $(ctl --json app show c.test)"
ctl app set c.test --max-concurrent-requests 1000001 >"$T/bad.out" 2>&1 && fail "out-of-range cap accepted"
wait_for 15 sh -c "curl -s http://$ADMIN/routes | tr -d ' \n' | grep -q '\"max_concurrent_requests\":2,\"max_queued_requests\":1'" ||
	fail "router never saw the cap: $(routes)"

# app_load FIELD: c.test's in_flight or queued, from /routes.
app_load() { routes | tr -d ' \n' | grep -o "\"domain\":\"c.test\",\"digest\":\"[0-9a-f]*\",\"in_flight\":[0-9]*,\"queued\":[0-9]*" | grep -o "\"$1\":[0-9]*" | cut -d: -f2; }
app_at() { [ "$(app_load in_flight)" = "$1" ] && [ "$(app_load queued)" = "$2" ]; }
metric() { curl -s --max-time 2 "http://$ADMIN/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
# slow N MS: a request to c.test that the app answers after MS, in the background.
slow() {
	pcurl c.test "/slow?ms=$2&n=$1" -o "$T/slow$1.out" -w '%{http_code}\n' -D "$T/slow$1.hdr" >"$T/slow$1.code" &
	eval "SLOW_$1=\$!"
}

log "two slow requests fill the cap; a third waits; a fourth is answered 503 app_overloaded at once"
slow 1 8000
slow 2 8000
wait_for 10 app_at 2 0 || fail "two requests not in flight: in_flight=$(app_load in_flight) queued=$(app_load queued)"
slow 3 10
wait_for 10 app_at 2 1 || fail "third request not queued: in_flight=$(app_load in_flight) queued=$(app_load queued)"
[ "$(metric zkrouter_app_queued_requests)" = 1 ] || fail "queued metric: $(metric zkrouter_app_queued_requests)"
out=$(pcurl c.test /fourth -i)
echo "$out" | head -1 | grep -q '^HTTP/1.1 503 ' || fail "fourth request: $(echo "$out" | head -5)"
echo "$out" | grep -qi '^X-Zkrouter-Error: app_overloaded' || fail "503 without app_overloaded: $out"
echo "$out" | grep -qi '^X-Request-Id: ' || fail "503 without a request id: $out"
[ -s "$T/slow3.code" ] && fail "the queued request was answered while both slots were taken: $(cat "$T/slow3.code")"

log "another app is not held back"
[ "$(pcurl d.test /)" = "ok c1" ] || fail "d.test refused while c.test is at its cap"

log "the waiting request is sent once a slot frees"
wait $SLOW_1 $SLOW_2 $SLOW_3
for i in 1 2 3; do
	[ "$(cat "$T/slow$i.code")" = 200 ] || fail "slow request $i: $(cat "$T/slow$i.code") $(cat "$T/slow$i.out")"
done
wait_for 5 app_at 0 0 || fail "slots not given back: in_flight=$(app_load in_flight) queued=$(app_load queued)"
grep -q 'GET /fourth' "$T/backend-c1.log" "$T/backend-c2.log" && fail "the 503'd request reached an instance"
[ "$(metric zkrouter_app_overloaded_total)" = 1 ] || fail "overloaded metric: $(metric zkrouter_app_overloaded_total)"

log "SIGHUP: app-queue-timeout-ms 500; a request that waits longer gets 503 app_overloaded"
echo "app-queue-timeout-ms = 500" >"$T/zkrouterd.conf"
kill -HUP "$ROUTER_PID"
wait_for 10 grep -q 'reload applied: app-queue-timeout-ms' "$T/zkrouterd.log" || fail "reload not applied"
slow 4 6000
slow 5 6000
wait_for 10 app_at 2 0 || fail "two requests not in flight: in_flight=$(app_load in_flight) queued=$(app_load queued)"
out=$(pcurl c.test /waits -i -w '\ntime=%{time_total}\n')
echo "$out" | head -1 | grep -q '^HTTP/1.1 503 ' || fail "request past the queue timeout: $(echo "$out" | head -5)"
echo "$out" | grep -qi '^X-Zkrouter-Error: app_overloaded' || fail "queue timeout without app_overloaded: $out"
echo "$out" | grep -q 'no slot freed in time' || fail "queue timeout reason: $out"
wait $SLOW_4 $SLOW_5
[ "$(metric zkrouter_app_overloaded_total)" = 2 ] || fail "overloaded metric: $(metric zkrouter_app_overloaded_total)"
wait_for 5 app_at 0 0 || fail "slots not given back: in_flight=$(app_load in_flight) queued=$(app_load queued)"

log "a client that resets its connection while queued gives its place up"
echo "app-queue-timeout-ms = 20000" >"$T/zkrouterd.conf"
n=$(grep -c 'reload applied' "$T/zkrouterd.log")
kill -HUP "$ROUTER_PID"
wait_for 10 sh -c "[ \$(grep -c 'reload applied' '$T/zkrouterd.log') -gt $n ]" || fail "reload not applied"
slow 6 8000
slow 7 8000
wait_for 10 app_at 2 0 || fail "two requests not in flight"
# (A client that only half-closes still gets its answer: it may be reading.)
python3 - "$PROXY_PORT" "$ADMIN" <<'PY' || fail "resetting client failed"
import socket, struct, sys, time, urllib.request
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /leaves HTTP/1.1\r\nHost: c.test\r\n\r\n")
deadline = time.time() + 10
while b'"queued":1' not in urllib.request.urlopen("http://%s/routes" % sys.argv[2]).read().replace(b" ", b""):
    if time.time() > deadline:
        sys.exit("never queued")
    time.sleep(0.1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
PY
wait_for 10 app_at 2 0 || fail "a departed client's request still queued: queued=$(app_load queued)"
wait $SLOW_6 $SLOW_7
wait_for 5 app_at 0 0 || fail "slots not given back"
grep -q 'GET /leaves' "$T/backend-c1.log" "$T/backend-c2.log" && fail "a departed client's request was sent"

log "raising the cap while a request waits sends it at once"
slow 8 8000
slow 9 8000
wait_for 10 app_at 2 0 || fail "two requests not in flight"
slow 10 10
wait_for 10 app_at 2 1 || fail "request not queued"
ctl app set c.test --max-concurrent-requests 3 >"$T/set3.out" 2>&1 || fail "app set: $(cat "$T/set3.out")"
wait_for 8 test -s "$T/slow10.code" || fail "the waiting request was not sent when the cap was raised"
[ "$(cat "$T/slow10.code")" = 200 ] || fail "the waiting request: $(cat "$T/slow10.code")"
[ -s "$T/slow8.code" ] && fail "the waiting request went only after a slot freed"
wait $SLOW_8 $SLOW_9
router_alive
log "ok"
