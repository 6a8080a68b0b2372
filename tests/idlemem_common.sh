# The body of the idle-memory tests (tests/proxy_idlemem.sh,
# tests/proxy_h2_idlemem.sh), sourced after the harness and
# proxy_common.sh with:
#   N             idle connections
#   IDLE_BOUND    bytes of RSS per connection they may cost once idle
#   IDLE_WHAT     what they are, for the messages
#   IDLE_DONE     what the router did, for the messages
#   IDLE_ROUTER_ARGS, IDLE_CLIENT_ARGS   for zkrouterd and tests/idleclients.py
# Each connection sends one request and stays idle; the bound must hold;
# then a second request on every connection is answered, and the bound
# holds again. A sanitizer build runs the requests but not the bound.

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

proxy_setup $IDLE_ROUTER_ARGS --max-client-connections $((N + 100)) --client-idle-timeout-ms 120000 \
	--head-timeout-ms 60000
start_backend a1
app_add a.test
register a.test a1 "$BACKEND_PORT"
wait_instance a.test a1
[ "$(pcurl a.test /)" != "" ] || fail "no answer through the router"
BASE=$(rss_kb)
log "zkrouterd RSS before: $BASE KB"

spawn clients python3 "$top_srcdir/tests/idleclients.py" $IDLE_CLIENT_ARGS "$PROXY_PORT" a.test "$N" "$T/clients.out"
wait_for 120 test -s "$T/clients.out" || fail "the clients did not get their answers"
[ "$(cat "$T/clients.out")" = "ready $N" ] || fail "first requests: $(cat "$T/clients.out")"
log "$N $IDLE_WHAT after one request each: $(per_conn) bytes each"
if ! no_bound; then
	wait_for 20 under_bound ||
		fail "$N $IDLE_WHAT hold $(per_conn) bytes each (bound $IDLE_BOUND)"
	log "$IDLE_DONE: $(per_conn) bytes each"
fi

touch "$T/clients.out.again"
wait_for 120 test -s "$T/clients.out.done" || fail "the second requests got no answers"
[ "$(cat "$T/clients.out.done")" = "again $N" ] || fail "second requests: $(cat "$T/clients.out.done")"
router_alive
if ! no_bound; then
	wait_for 20 under_bound ||
		fail "after a second request each, $(per_conn) bytes each (bound $IDLE_BOUND)"
	log "$IDLE_DONE again: $(per_conn) bytes each"
fi
