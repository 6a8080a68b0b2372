#!/bin/bash
# Streams across table changes and drains: a stream to an instance being
# removed completes whole; a SIGTERM drain sends GOAWAY in two steps
# (2^31-1, then the last stream the router saw), the streams in flight
# finish, a stream opened after the second GOAWAY is refused, an idle
# HTTP/2 connection gets its GOAWAY and is closed at once, and the router
# exits.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"
. "$(dirname "$0")/proxy_h2_common.sh"

h2_require
h2_app a.test a1
h2_app b.test b1
h2_start --drain-timeout-ms 10000
[ "$(tcurl / --http2)" = "ok a1" ] || fail "a.test not routed over HTTPS"

if zk_only "an instance removed under a stream"; then
	log "a stream to an instance being removed completes"
	H2HOST=b.test tcurl '/stream?chunks=20&delay=150' --http2 -o "$T/removed.out" -w '%{http_code}' >"$T/removed.code" &
	rm_pid=$!
	wait_for 10 grep -q 'GET /stream?chunks=20' "$T/backend-b1.log" || fail "the stream did not reach b1"
	deregister b1
	wait_instance b.test b1 gone
	wait "$rm_pid"
	[ "$(cat "$T/removed.code")" = 200 ] || fail "the stream to a removed instance: $(cat "$T/removed.code")"
	[ "$(grep -c '^chunk [0-9]* of b1$' "$T/removed.out")" = 20 ] ||
		fail "the stream to a removed instance was cut: $(tail -n 2 "$T/removed.out")"
fi

log "SIGTERM: GOAWAY in two steps, streams in flight finish, idle connections closed"
h2t idle 20 >"$T/idle.out" 2>&1 &
idle_pid=$!
wait_for 10 grep -q ' ready$' "$T/idle.out" || fail "idle client: $(cat "$T/idle.out")"
H2OPTS="--timeout 30" h2t drain 10 '/slow?ms=2500&h2drain=1' >"$T/drain.out" 2>&1 &
drain_pid=$!
wait_for 10 grep -q '^inflight 10' "$T/drain.out" || fail "drain client: $(cat "$T/drain.out")"
wait_for 10 sh -c "[ \$(grep -c 'h2drain=1' '$T/backend-a1.log') -ge 10 ]" || fail "the 10 streams did not reach a1"
t0=$(now_ms)
graceful_stop
wait "$idle_pid"
wait "$drain_pid"
cat "$T/idle.out" "$T/drain.out"
grep -q '^goaways=[0-9]*:NO_ERROR.* end=eof after=' "$T/idle.out" || fail "the idle connection was not closed with a GOAWAY"
at=$(sed -n 's/.* at_ms=\([0-9]*\)$/\1/p' "$T/idle.out")
[ $(( at - t0 )) -lt 3000 ] || fail "the idle connection closed $(( at - t0 )) ms after the SIGTERM"
line=$(grep '^completed=' "$T/drain.out")
case $line in "completed=10/10 statuses=200 goaways="*) ;; *) fail "streams in flight at the SIGTERM: $line" ;; esac
case $line in *" after=refused "*) ;; *) fail "a stream opened after the GOAWAYs was not refused: $line" ;; esac
goaways=$(echo "$line" | sed -n 's/.* goaways=\([^ ]*\) .*/\1/p')
case $goaways in
"2147483647:NO_ERROR,19:NO_ERROR") ;;
*) fail "GOAWAY not in two steps (2147483647, then 19): $goaways" ;;
esac
if zk_only "the router's exit after the drain"; then
	wait_for 20 sh -c "! kill -0 $ROUTER_PID" || fail "zkrouterd still running after the drain"
	log "exited $(( $(now_ms) - t0 )) ms after the SIGTERM"
fi
log "ok"
