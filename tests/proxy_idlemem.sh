#!/bin/bash
# Memory per idle keep-alive client connection: 2,000 clients each send
# one request and stay idle. Once they are parked (their buffers freed,
# proxy-mem.c) and the heap trimmed, zkrouterd's resident memory must
# have grown by less than IDLE_BOUND bytes per connection (measured
# 0.6-0.7 KB; 2-3 KB when every idle client kept its bufferevent and the
# request free list its burst). Then a second request on every connection
# (its buffers made again) is answered, and the memory goes back down.
# A sanitizer build runs the same requests but not the bound (redzones
# and the quarantine are not what a client costs).
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

N=2000
IDLE_BOUND=1200
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((N * 2 + 500)) ] ||
	skip "ulimit -n is $(ulimit -n); $N clients need $((N * 2 + 500))"
command -v python3 >/dev/null || skip "python3 missing"

# Built with sanitizers by ./configure --enable-sanitizers or by CFLAGS.
no_bound() { sanitizer_build || ldd "$ZKROUTERD" 2>/dev/null | grep -q 'libasan\|libtsan'; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$ROUTER_PID/status"; }
# per_conn: bytes of RSS per client over the base.
per_conn() { echo $((($(rss_kb) - BASE) * 1024 / N)); }
under_bound() { [ "$(per_conn)" -lt "$IDLE_BOUND" ]; }

proxy_setup --max-client-connections $((N + 100)) --client-idle-timeout-ms 120000 \
	--head-timeout-ms 60000
start_backend a1
app_add a.test
register a.test a1 "$BACKEND_PORT"
wait_instance a.test a1
[ "$(pcurl a.test /)" != "" ] || fail "no answer through the router"
BASE=$(rss_kb)
log "zkrouterd RSS before: $BASE KB"

spawn clients python3 "$top_srcdir/tests/idleclients.py" "$PROXY_PORT" a.test "$N" "$T/clients.out"
wait_for 120 test -s "$T/clients.out" || fail "the clients did not get their answers"
[ "$(cat "$T/clients.out")" = "ready $N" ] || fail "first requests: $(cat "$T/clients.out")"
log "$N idle clients after one request each: $(per_conn) bytes each"
if ! no_bound; then
	wait_for 20 under_bound ||
		fail "$N idle clients hold $(per_conn) bytes each (bound $IDLE_BOUND)"
	log "parked and trimmed: $(per_conn) bytes each"
fi

touch "$T/clients.out.again"
wait_for 120 test -s "$T/clients.out.done" || fail "the second requests got no answers"
[ "$(cat "$T/clients.out.done")" = "again $N" ] || fail "second requests: $(cat "$T/clients.out.done")"
router_alive
if ! no_bound; then
	wait_for 20 under_bound ||
		fail "after a second request each, $(per_conn) bytes each (bound $IDLE_BOUND)"
	log "parked again: $(per_conn) bytes each"
fi
exit 0
