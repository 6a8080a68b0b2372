#!/bin/bash
# A SIGTERM drain does not cut keep-alive clients (tests/drainclient.py):
# a client sending requests on a keep-alive connection across the SIGTERM
# sees no failed request, each answer during the drain delay says
# "Connection: close" (so it reconnects, to another router once this one
# stops accepting), a connection idle since before the SIGTERM is closed
# with a FIN once the listeners close, and a head partly received then is
# still answered; the router then exits 0 within the drain bound.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

command -v python3 >/dev/null || skip "python3 not installed"

DELAY=1500
proxy_setup --drain-delay-ms "$DELAY" --drain-timeout-ms 10000
start_backend b1
app_add ka.test
register ka.test b1 "$BACKEND_PORT"
wait_instance ka.test b1
[ "$(pcurl ka.test /)" = "ok b1" ] || fail "ka.test is not routed"

t0=$(now_ms)
python3 "$top_srcdir/tests/drainclient.py" "$PROXY_PORT" ka.test "$ROUTER_PID" "$T/zkrouterd.log" \
	>"$T/drainclient.out" 2>&1
crc=$?
cat "$T/drainclient.out"
[ "$crc" = 0 ] || fail "keep-alive clients across the SIGTERM: $(grep FAIL "$T/drainclient.out" | head -n 5)"
# Bounded: a router that never exits fails the test instead of hanging it.
wait_for 20 sh -c "! kill -0 $ROUTER_PID 2>/dev/null" || fail "zkrouterd still running 20 s after the SIGTERM"
rc=0
wait "$ROUTER_PID" || rc=$?
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $ROUTER_PID / /")
took=$(( $(now_ms) - t0 ))
[ "$rc" = 0 ] || fail "zkrouterd exited $rc after SIGTERM, want 0"
grep -q 'drained in' "$T/zkrouterd.log" || fail "no drain line in the log"
# The client holds the router 0.5 s past the other clients' end (client C).
[ "$took" -lt $(( DELAY + 8000 )) ] || fail "drain took $took ms (delay $DELAY ms)"
log "exited in $took ms after the SIGTERM; $(grep -o "drained in .*" "$T/zkrouterd.log")"
exit 0
