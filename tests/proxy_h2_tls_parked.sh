#!/bin/bash
# Idle HTTP/2 connections over TLS are parked (their bufferevent freed,
# zkrouter_h2_parked_total) and still end as they should: the idle timeout
# closes parked ones with a GOAWAY, and a SIGTERM drain sends its two
# GOAWAYs (2^31-1 first) to parked ones and closes them. The second
# request on parked connections is tests/proxy_h2_tls_idlemem.sh's.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"
. "$(dirname "$0")/proxy_h2_common.sh"
h2_require
[ "${H2_REFERENCE:-}" != haproxy ] || skip "parking is zkrouterd's"

N=10
# Long enough for the memory janitor to park them first (one to two
# seconds idle), short enough for the test.
IDLE_MS=8000
h2_app a.test a1
h2_start --client-idle-timeout-ms $IDLE_MS --head-timeout-ms 60000 --drain-timeout-ms 10000

metric() {
	curl -s --max-time 5 "http://$ADMIN/metrics" |
		awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
at_least() { [ "$(metric "$1")" -ge "$2" ]; }
# idle_clients TAG: N connections, one request each, then each waits for
# its GOAWAYs and the close (h2raw.py idle), up to 30 s.
idle_clients() {
	local i
	for i in $(seq "$N"); do
		h2t idle 30 >"$T/$1-$i.out" 2>&1 &
		eval "PIDS_$1=\"\${PIDS_$1:-} $!\""
	done
	for i in $(seq "$N"); do
		wait_for 20 grep -q ' ready$' "$T/$1-$i.out" || fail "$1 client $i: $(cat "$T/$1-$i.out")"
		grep -q '^status=200 .*ready$' "$T/$1-$i.out" || fail "$1 client $i: $(cat "$T/$1-$i.out")"
	done
}
# ended TAG PATTERN: every client of TAG ended with GOAWAYs matching
# PATTERN, then the server's close.
ended() {
	local i pid
	eval "for pid in \$PIDS_$1; do wait \$pid; done"
	for i in $(seq "$N"); do
		grep -q "^goaways=$2 end=eof " "$T/$1-$i.out" ||
			fail "$1 client $i did not end with GOAWAY $2 and the close: $(tail -n 1 "$T/$1-$i.out")"
	done
}

log "$N idle connections are parked, then closed by the idle timeout with a GOAWAY"
goaways0=$(metric zkrouter_h2_goaway_sent_total)
idle_clients idle
wait_for 10 at_least zkrouter_h2_parked_total "$N" ||
	fail "$N idle connections, $(metric zkrouter_h2_parked_total) parked"
ended idle '[0-9]*:NO_ERROR'
[ "$(metric zkrouter_h2_goaway_sent_total)" -ge $((goaways0 + N)) ] ||
	fail "GOAWAYs sent: $(metric zkrouter_h2_goaway_sent_total), $goaways0 before"

log "$N more are parked, then a SIGTERM drain reaches them: two GOAWAYs and the close"
parked=$(metric zkrouter_h2_parked_total)
idle_clients drain
wait_for 10 at_least zkrouter_h2_parked_total $((parked + N)) ||
	fail "$N more idle connections, $(($(metric zkrouter_h2_parked_total) - parked)) parked"
graceful_stop
ended drain '2147483647:NO_ERROR,[0-9]*:NO_ERROR'
wait_for 20 sh -c "! kill -0 $ROUTER_PID" || fail "zkrouterd still running after the drain"
log "ok"
