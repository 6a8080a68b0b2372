#!/bin/bash
# Memory per idle HTTP/2 connection: 1,000 h2c clients (prior knowledge)
# each send one request and stay idle. Once the memory janitor found them
# idle, nghttp2's frame buffer and stream map have given their pages back
# (h2-mem.c) and the response fields' buffers are freed: zkrouterd's
# resident memory must have grown by less than IDLE_BOUND bytes per
# connection (measured 8.2 KB; 17 KB when those blocks came from
# the heap). Then a second request on every connection (on pages given
# back, read as zeros) is answered, and the memory goes back down. A
# sanitizer build runs the requests but not the bound.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

N=1000
IDLE_BOUND=12000
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((N * 2 + 500)) ] ||
	skip "ulimit -n is $(ulimit -n); $N clients need $((N * 2 + 500))"
command -v python3 >/dev/null || skip "python3 missing"

no_bound() { sanitizer_build || ldd "$ZKROUTERD" 2>/dev/null | grep -q 'libasan\|libtsan'; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$ROUTER_PID/status"; }
per_conn() { echo $((($(rss_kb) - BASE) * 1024 / N)); }
under_bound() { [ "$(per_conn)" -lt "$IDLE_BOUND" ]; }

proxy_setup --h2c --max-client-connections $((N + 100)) --client-idle-timeout-ms 120000 \
	--head-timeout-ms 60000
start_backend a1
app_add a.test
register a.test a1 "$BACKEND_PORT"
wait_instance a.test a1
[ "$(pcurl a.test /)" != "" ] || fail "no answer through the router"
BASE=$(rss_kb)
log "zkrouterd RSS before: $BASE KB"

spawn clients python3 "$top_srcdir/tests/idleclients.py" --h2 "$PROXY_PORT" a.test "$N" "$T/clients.out"
wait_for 120 test -s "$T/clients.out" || fail "the clients did not get their answers"
[ "$(cat "$T/clients.out")" = "ready $N" ] || fail "first requests: $(cat "$T/clients.out")"
log "$N idle HTTP/2 connections after one request each: $(per_conn) bytes each"
if ! no_bound; then
	wait_for 20 under_bound ||
		fail "$N idle HTTP/2 connections hold $(per_conn) bytes each (bound $IDLE_BOUND)"
	log "given back: $(per_conn) bytes each"
fi

touch "$T/clients.out.again"
wait_for 120 test -s "$T/clients.out.done" || fail "the second requests got no answers"
[ "$(cat "$T/clients.out.done")" = "again $N" ] || fail "second requests: $(cat "$T/clients.out.done")"
router_alive
if ! no_bound; then
	wait_for 20 under_bound ||
		fail "after a second request each, $(per_conn) bytes each (bound $IDLE_BOUND)"
	log "given back again: $(per_conn) bytes each"
fi
exit 0
