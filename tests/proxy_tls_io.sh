#!/bin/bash
# The client side of TLS connections (node/proxy-tls.c) with real clients
# (Python's ssl, openssl s_client, curl): every close the router makes after
# a whole answer carries close_notify (Connection: close, the keep-alive idle
# timeout, a drain, the answer to the client's own close_notify), a cut answer
# does not; TLS 1.2 session IDs resume (s_client -reconnect: 5 of 5); a
# handshake that stalls is cut at --tls-handshake-timeout-ms; failed
# handshakes are counted by reason and completed ones by version; large bodies both ways, pipelined requests and
# a WebSocket over TLS arrive whole; a TLS client that reads slowly holds
# the router's memory down (backpressure).
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_require
command -v openssl >/dev/null || skip "openssl (the command) not installed"
command -v python3 >/dev/null || skip "python3 not installed"
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4

openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=app.test -days 1 \
	-addext "subjectAltName=DNS:app.test" \
	-keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.out" 2>&1 ||
	hard_error "openssl req failed: $(cat "$T/openssl.out")"

TLS_PORT=$(free_port) || hard_error "no free port"
proxy_setup --tls-listen "127.0.0.1:$TLS_PORT" --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" \
	--tls-handshake-timeout-ms 1000 --client-idle-timeout-ms 2000 \
	--log-level debug
start_backend a1
app_add app.test
register app.test a1 "$BACKEND_PORT"
wait_instance app.test a1

TLSIO="python3 $top_srcdir/tests/tlsio.py $TLS_PORT"
# metric 'NAME{LABELS}': its value in /metrics (0 when absent).
metric() {
	curl -s --max-time 5 "http://$ADMIN/metrics" |
		awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
tcurl() {
	local path=$1
	shift
	curl -s --max-time 60 --cacert "$T/cert.pem" --resolve "app.test:$TLS_PORT:127.0.0.1" \
		"$@" "https://app.test:$TLS_PORT$path"
}

log "Connection: close ends with close_notify"
sent=$(metric zkrouter_tls_close_notify_sent_total)
out=$($TLSIO close app.test /echo) || fail "tlsio close: $out"
echo "$out"
case $out in "status=200 "*" end=close_notify") ;; *) fail "Connection: close over TLS: $out" ;; esac
[ "$(metric zkrouter_tls_close_notify_sent_total)" -gt "$sent" ] || fail "close_notify not counted"

log "the keep-alive idle timeout ends with close_notify"
out=$($TLSIO idle app.test 15) || fail "tlsio idle: $out"
echo "$out"
case $out in "status=200 end=close_notify after="*) ;; *) fail "idle close over TLS: $out" ;; esac

log "a client's close_notify is answered with the router's"
out=$($TLSIO unwrap app.test) || fail "tlsio unwrap: $out"
echo "$out"
[ "$out" = "status=200 unwrap=ok" ] || fail "close_notify not answered: $out"

log "an answer cut short ends without close_notify"
out=$($TLSIO close app.test '/badresp?kind=short') || fail "tlsio close (cut): $out"
echo "$out"
case $out in *" end=eof") ;; *) fail "a cut answer must not end with close_notify: $out" ;; esac

log "TLS 1.2 session IDs resume: s_client -reconnect reuses 5 of 5"
resumed=$(metric zkrouter_tls_sessions_resumed_total)
timeout 30 openssl s_client -connect "127.0.0.1:$TLS_PORT" -servername app.test -tls1_2 -no_ticket \
	-reconnect </dev/null >"$T/reconnect.out" 2>&1
grep -E '^(New|Reused),' "$T/reconnect.out"
[ "$(grep -c '^Reused,' "$T/reconnect.out")" = 5 ] ||
	fail "session IDs not reused 5 times: $(grep -E '^(New|Reused),' "$T/reconnect.out")"
[ "$(metric zkrouter_tls_sessions_resumed_total)" -ge $((resumed + 5)) ] ||
	fail "resumptions not counted: $(metric zkrouter_tls_sessions_resumed_total)"
[ "$(metric 'zkrouter_tls_handshakes_total{version="TLSv1.2"}')" -ge 6 ] ||
	fail "TLS 1.2 handshakes not counted"

log "a handshake that never starts, or stalls, is cut at --tls-handshake-timeout-ms"
before=$(metric 'zkrouter_tls_handshake_failures_total{reason="timeout"}')
for n in 0 20; do
	out=$($TLSIO stall "$n" 8) || fail "tlsio stall: $out"
	echo "after $n bytes of a ClientHello: $out"
	case $out in "closed after="*) ;; *) fail "a handshake stalled after $n bytes was not cut: $out" ;; esac
	after=${out#closed after=}
	awk -v a="$after" 'BEGIN { exit !(a >= 0.8 && a < 5) }' ||
		fail "stalled handshake cut after $after s, want about 1 s"
done
[ "$(metric 'zkrouter_tls_handshake_failures_total{reason="timeout"}')" = $((before + 2)) ] ||
	fail "timeouts not counted: $(metric 'zkrouter_tls_handshake_failures_total{reason="timeout"}')"

log "failed handshakes are counted by reason and logged at debug level"
# failed REASON ACTION...: ACTION moves the failure counter of REASON.
failed() {
	local name="zkrouter_tls_handshake_failures_total{reason=\"$1\"}" before
	shift
	before=$(metric "$name")
	"$@" >"$T/failed.out" 2>&1
	wait_for 10 metric_above "$name" "$before" ||
		fail "$name did not move: $(curl -s "http://$ADMIN/metrics" | grep handshake_failures)"
}
metric_above() { [ "$(metric "$1")" -gt "$2" ]; }
failed http_on_https curl -s --max-time 10 -H 'Host: app.test' "http://127.0.0.1:$TLS_PORT/echo"
# The certificate is RSA: an ECDSA-only TLS 1.2 client shares no suite.
failed no_shared_cipher timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -tls1_2 \
	-cipher ECDHE-ECDSA-AES128-GCM-SHA256 </dev/null
wait_for 10 grep -q 'TLS handshake failed (no_shared_cipher):.*no shared cipher' "$T/zkrouterd.log" ||
	fail "no debug line with OpenSSL's reason"
# TLS 1.1 (allowed on the client side at security level 0) is below the
# router's minimum.
failed unsupported_protocol timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -tls1_1 \
	-cipher 'DEFAULT:@SECLEVEL=0' </dev/null
# Part of a ClientHello, then the client is gone.
failed eof python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"\x16\x03\x01\x00\xc8\x01\x00")
s.close()' "$TLS_PORT"
curl -s "http://$ADMIN/metrics" | grep '^zkrouter_tls_'
router_alive

log "large bodies both ways over TLS arrive whole"
tcurl '/big?bytes=8000000' -o "$T/big.tls" || fail "TLS download failed (curl $?)"
pcurl app.test '/big?bytes=8000000' -o "$T/big.plain" || fail "plain download failed (curl $?)"
[ "$(stat -c %s "$T/big.tls")" = 8000000 ] || fail "TLS download: $(stat -c %s "$T/big.tls") bytes"
[ "$(sha256sum <"$T/big.tls")" = "$(sha256sum <"$T/big.plain")" ] || fail "TLS download differs"
head -c 6000000 /dev/urandom >"$T/up.bin"
tcurl /upload --data-binary "@$T/up.bin" -H 'Content-Type: application/octet-stream' -o "$T/up.out" ||
	fail "TLS upload failed (curl $?)"
sum=$(sha256sum <"$T/up.bin" | cut -d' ' -f1)
grep -q "$sum" "$T/up.out" || fail "TLS upload: the app saw another body: $(cat "$T/up.out")"
grep -q 6000000 "$T/up.out" || fail "TLS upload: the app saw another size: $(cat "$T/up.out")"

log "pipelined requests over TLS are answered in order"
out=$($TLSIO pipeline app.test 20) || fail "tlsio pipeline: $out"
echo "$out"
[ "$out" = "answers=20 order=ok" ] || fail "pipelined over TLS: $out"

log "a WebSocket over TLS carries 1 MB both ways"
out=$($TLSIO ws app.test 1000000) || fail "tlsio ws: $out"
echo "$out"
[ "$out" = "status=101 echoed=1000000 same=yes" ] || fail "WebSocket over TLS: $out"

log "a TLS client that reads slowly holds the router's memory down"
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$ROUTER_PID/status"; }
base=$(rss_kb)
out=$($TLSIO slow app.test 500000000 6) || fail "tlsio slow: $out"
now=$(rss_kb)
echo "$out; router RSS $base kB before, $now kB after"
[ "$now" -lt $((base + 16384)) ] || fail "router RSS grew from $base to $now kB under a slow TLS reader"
router_alive
wait_for 20 sh -c "curl -s http://$ADMIN/metrics | grep -q '^zkrouter_client_connections 0\$'" ||
	fail "connections left open: $(curl -s "http://$ADMIN/metrics" | grep client_connections)"

log "a drain (SIGTERM) closes an idle TLS connection with close_notify"
lines=$(wc -l <"$T/access.log")
$TLSIO idle app.test 15 >"$T/drain.out" 2>&1 &
idle_pid=$!
# Its request answered (and logged): the connection is idle now.
wait_for 10 sh -c "[ \$(wc -l <'$T/access.log') -gt $lines ]" || fail "the idle client's request was not logged"
kill -TERM "$ROUTER_PID"
wait "$idle_pid" || fail "tlsio idle: $(cat "$T/drain.out")"
cat "$T/drain.out"
case $(cat "$T/drain.out") in "status=200 end=close_notify after="*) ;; *) fail "drain close over TLS: $(cat "$T/drain.out")" ;; esac
after=$(sed 's/.*after=//' "$T/drain.out")
awk -v a="$after" 'BEGIN { exit !(a < 5) }' || fail "closed after $after s: by the idle timeout, not the drain"
wait_for 20 sh -c "! kill -0 $ROUTER_PID" || fail "zkrouterd still running after SIGTERM"
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $ROUTER_PID / /")
log "ok"
