#!/bin/bash
# Memory per idle HTTP/2 connection over TLS: 1,000 clients choose "h2" by
# ALPN, each send one request and stay idle. The memory janitor must
# park every one (nghttp2's pages given back, h2-mem.c, and the
# bufferevent freed: zkrouter_h2_parked_total), and zkrouterd's resident
# memory must then have grown by less than IDLE_BOUND bytes per
# connection (measured 20.5 KB, 23.5-25 KB before the janitor's pass;
# most of it OpenSSL's SSL object, about 4 KB nghttp2's session). Then a
# second request on every connection, over the TLS state, the nghttp2
# pages given back and a bufferevent made again, is answered, and they
# are parked again. A sanitizer build runs the requests but not the
# bound.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

N=1000
IDLE_BOUND=22000
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((N * 2 + 500)) ] ||
	skip "ulimit -n is $(ulimit -n); $N clients need $((N * 2 + 500))"
command -v python3 >/dev/null || skip "python3 missing"
command -v openssl >/dev/null || skip "openssl (the command) not installed"

no_bound() { sanitizer_build || ldd "$ZKROUTERD" 2>/dev/null | grep -q 'libasan\|libtsan'; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$ROUTER_PID/status"; }
per_conn() { echo $((($(rss_kb) - BASE) * 1024 / N)); }
under_bound() { [ "$(per_conn)" -lt "$IDLE_BOUND" ]; }
parked() { curl -s --max-time 5 "http://$ADMIN/metrics" | awk '$1 == "zkrouter_h2_parked_total" { v = $2 } END { print v + 0 }'; }
parked_at_least() { [ "$(parked)" -ge "$1" ]; }

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=a.test -days 1 \
	-addext "subjectAltName=DNS:a.test" \
	-keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.out" 2>&1 ||
	hard_error "openssl req failed: $(cat "$T/openssl.out")"
TLS_PORT=$(free_port) || hard_error "no free port"
proxy_setup --tls-listen "127.0.0.1:$TLS_PORT" --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" \
	--max-client-connections $((N + 100)) --client-idle-timeout-ms 120000 \
	--head-timeout-ms 60000 --tls-handshake-timeout-ms 60000
start_backend a1
app_add a.test
register a.test a1 "$BACKEND_PORT"
wait_instance a.test a1
[ "$(pcurl a.test /)" != "" ] || fail "no answer through the router"
BASE=$(rss_kb)
log "zkrouterd RSS before: $BASE KB"

spawn clients python3 "$top_srcdir/tests/idleclients.py" --h2 --tls "$TLS_PORT" a.test "$N" \
	"$T/clients.out"
wait_for 180 test -s "$T/clients.out" || fail "the clients did not get their answers"
[ "$(cat "$T/clients.out")" = "ready $N" ] || fail "first requests: $(cat "$T/clients.out")"
log "$N idle HTTP/2 connections over TLS after one request each: $(per_conn) bytes each"
wait_for 20 parked_at_least "$N" || fail "$N idle HTTP/2 connections over TLS, $(parked) parked"
if ! no_bound; then
	wait_for 20 under_bound ||
		fail "$N idle HTTP/2 connections over TLS hold $(per_conn) bytes each (bound $IDLE_BOUND)"
	log "given back: $(per_conn) bytes each"
fi

touch "$T/clients.out.again"
wait_for 180 test -s "$T/clients.out.done" || fail "the second requests got no answers"
[ "$(cat "$T/clients.out.done")" = "again $N" ] || fail "second requests: $(cat "$T/clients.out.done")"
wait_for 20 parked_at_least $((2 * N)) || fail "after the second requests, $(($(parked) - N)) parked again"
router_alive
exit 0
