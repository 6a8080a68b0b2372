#!/bin/bash
# The PROXY protocol on listeners that ask for it ("ADDR:PORT,proxy"), end
# to end with a real ZooKeeper, router and backend, and raw-socket clients
# (tests/ppclient.py): a v1 or v2 header, whole or in pieces, names the
# client the app sees in X-Forwarded-For and the access log shows; LOCAL
# and UNKNOWN keep the socket's address; a TLS listener reads the header
# before the handshake. A missing, malformed, late or cut-off header closes
# the connection without an answer, each counted in /metrics by reason and
# logged. A listener without ",proxy" answers such a header 400 as before.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_require
zk_require
command -v python3 >/dev/null || skip "python3 not installed"
command -v openssl >/dev/null || skip "openssl (the command) not installed"

openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=app.test -days 1 \
	-addext "subjectAltName=DNS:app.test" \
	-keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.out" 2>&1 ||
	hard_error "openssl req failed: $(cat "$T/openssl.out")"

ports=$(free_port 2) || hard_error "no free ports"
PP_PORT=$(echo "$ports" | sed -n 1p)
TLS_PORT=$(echo "$ports" | sed -n 2p)
: >"$T/pp.conf"
proxy_setup --config "$T/pp.conf" --listen "127.0.0.1:$PP_PORT,proxy" --tls-listen "127.0.0.1:$TLS_PORT,proxy" \
	--tls-cert "$T/cert.pem" --tls-key "$T/key.pem" --log-level debug --head-timeout-ms 1500
grep -q "listening on 127.0.0.1:$PP_PORT (PROXY protocol)" "$T/zkrouterd.log" ||
	fail "no PROXY protocol listener in the log"
grep -q "listening on 127.0.0.1:$TLS_PORT (TLS) (PROXY protocol)" "$T/zkrouterd.log" ||
	fail "no TLS PROXY protocol listener in the log"

start_backend a1
app_add app.test
register app.test a1 "$BACKEND_PORT"
wait_instance app.test a1

ppc() { python3 "$top_srcdir/tests/ppclient.py" "$@"; }
# hdr FILE NAME: the value of header NAME in an /echo answer.
hdr() { tr -d '\r' <"$1" | grep -i "^h: $2: " | sed "s/^h: [^:]*: //"; }
# metric NAME: its value in /metrics (labels included in NAME).
metric() { curl -s --max-time 5 "http://$ADMIN/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
rejected() { metric "zkrouter_proxy_protocol_rejected_total{reason=\"$1\"}"; }
# answered FILE: the status of the answer in a ppclient output.
status_of() { head -n 1 "$1" | tr -d '\r' | awk '{print $2}'; }
backend_requests() { grep -c '^req a1 ' "$T/backend-a1.log"; }

log "v1 TCP4: the app sees the claimed client and the balancer's port"
ppc "$PP_PORT" v1:203.0.113.9:40001:198.51.100.1:8443 >"$T/o1" || fail "ppclient failed"
[ "$(status_of "$T/o1")" = 200 ] || fail "v1 request: $(cat "$T/o1")"
[ "$(hdr "$T/o1" X-Forwarded-For)" = 203.0.113.9 ] || fail "X-Forwarded-For: '$(hdr "$T/o1" X-Forwarded-For)'"
[ "$(hdr "$T/o1" X-Forwarded-Port)" = 8443 ] || fail "X-Forwarded-Port: '$(hdr "$T/o1" X-Forwarded-Port)'"
[ "$(hdr "$T/o1" X-Forwarded-Proto)" = http ] || fail "X-Forwarded-Proto: '$(hdr "$T/o1" X-Forwarded-Proto)'"
wait_for 5 grep -q ' client=203.0.113.9:40001 .*status=200' "$T/access.log" ||
	fail "the access log does not show the claimed client: $(tail -n 3 "$T/access.log")"
grep -q 'c[0-9]* 203.0.113.9:40001: PROXY v1 header from 127.0.0.1:' "$T/zkrouterd.log" ||
	fail "no debug line for the header"

log "v2 TCP6 with a TLV, sent in four pieces"
ppc "$PP_PORT" v2:2001-db8--7:40002:2001-db8--1:443 --pieces 4 >"$T/o2" || fail "ppclient failed"
[ "$(status_of "$T/o2")" = 200 ] || fail "v2 request: $(cat "$T/o2")"
[ "$(hdr "$T/o2" X-Forwarded-For)" = 2001:db8::7 ] || fail "X-Forwarded-For: '$(hdr "$T/o2" X-Forwarded-For)'"
[ "$(hdr "$T/o2" X-Forwarded-Port)" = 443 ] || fail "X-Forwarded-Port: '$(hdr "$T/o2" X-Forwarded-Port)'"
wait_for 5 grep -qF ' client=[2001:db8::7]:40002 ' "$T/access.log" ||
	fail "the access log does not show the IPv6 client: $(tail -n 3 "$T/access.log")"

log "v2 TCP4 and v1 TCP6 too"
ppc "$PP_PORT" v2:192.0.2.44:1:192.0.2.1:80 >"$T/o3"
[ "$(hdr "$T/o3" X-Forwarded-For)" = 192.0.2.44 ] || fail "v2 TCP4: $(cat "$T/o3")"
ppc "$PP_PORT" v1:2001-db8--44:2:2001-db8--1:80 >"$T/o4"
[ "$(hdr "$T/o4" X-Forwarded-For)" = 2001:db8::44 ] || fail "v1 TCP6: $(cat "$T/o4")"

log "v2 LOCAL and v1 UNKNOWN keep the socket's address"
ppc "$PP_PORT" v2local >"$T/o5"
[ "$(status_of "$T/o5")" = 200 ] && [ "$(hdr "$T/o5" X-Forwarded-For)" = 127.0.0.1 ] &&
	[ "$(hdr "$T/o5" X-Forwarded-Port)" = "$PP_PORT" ] || fail "v2 LOCAL: $(cat "$T/o5")"
ppc "$PP_PORT" v1unknown >"$T/o6"
[ "$(status_of "$T/o6")" = 200 ] && [ "$(hdr "$T/o6" X-Forwarded-For)" = 127.0.0.1 ] ||
	fail "v1 UNKNOWN: $(cat "$T/o6")"
grep -q 'PROXY v2 header from 127.0.0.1:[0-9]* names no client' "$T/zkrouterd.log" ||
	fail "no debug line for LOCAL"
[ "$(metric zkrouter_proxy_protocol_headers_total)" = 6 ] ||
	fail "headers counted: $(metric zkrouter_proxy_protocol_headers_total), want 6"

log "a TLS listener: the v2 header, then the handshake"
ppc "$TLS_PORT" v2:198.51.100.20:40003:192.0.2.1:443 --tls "$T/cert.pem" >"$T/t1" ||
	fail "ppclient over TLS failed"
[ "$(status_of "$T/t1")" = 200 ] || fail "TLS request: $(cat "$T/t1")"
[ "$(hdr "$T/t1" X-Forwarded-For)" = 198.51.100.20 ] || fail "TLS X-Forwarded-For: '$(hdr "$T/t1" X-Forwarded-For)'"
[ "$(hdr "$T/t1" X-Forwarded-Proto)" = https ] || fail "TLS X-Forwarded-Proto: '$(hdr "$T/t1" X-Forwarded-Proto)'"
ppc "$TLS_PORT" v1:198.51.100.21:40004:192.0.2.1:443 --tls "$T/cert.pem" --pieces 3 >"$T/t2"
[ "$(hdr "$T/t2" X-Forwarded-For)" = 198.51.100.21 ] || fail "TLS after v1: $(cat "$T/t2")"
wait_for 5 grep -q ' client=198.51.100.20:40003 .*status=200' "$T/access.log" ||
	fail "the access log does not show the TLS client"

# expect_closed NAME FILE: the connection ended with nothing answered.
expect_closed() {
	grep -qE '^bytes=0 (closed|reset) ms=' "$2" || fail "$1: not closed without an answer: $(cat "$2")"
}

log "no header, or a malformed one: closed, never forwarded, counted"
before=$(backend_requests)
ppc "$PP_PORT" none >"$T/m1"
expect_closed "plain HTTP" "$T/m1"
ppc "$TLS_PORT" none --tls "$T/cert.pem" >"$T/m2" 2>/dev/null
expect_closed "a bare TLS handshake" "$T/m2"
ppc "$PP_PORT" "hex:$(printf 'PROXY TCP4 1.2.3.4 5.6.7.8 99999 80\r\n' | od -An -v -tx1 | tr -d ' \n')" >"$T/m3"
expect_closed "port 99999" "$T/m3"
ppc "$PP_PORT" "hex:$(printf 'PROXY TCP4 1.2.3.4  5.6.7.8 1 80\r\n' | od -An -v -tx1 | tr -d ' \n')" >"$T/m4"
expect_closed "two spaces" "$T/m4"
ppc "$PP_PORT" hex:0d0a0d0a000d0a515549540a3111000cc0000201c633640701bb01bb >"$T/m5"
expect_closed "v2 version 3" "$T/m5"
ppc "$PP_PORT" hex:0d0a0d0a000d0a515549540a2151000cc0000201c633640701bb01bb >"$T/m6"
expect_closed "v2 family 5" "$T/m6"
ppc "$PP_PORT" "hex:$(printf 'PROXY UNKNOWN %0200d' 0 | od -An -v -tx1 | tr -d ' \n')" >"$T/m7"
expect_closed "a v1 line past 107 bytes" "$T/m7"
[ "$(rejected malformed)" = 7 ] || fail "malformed counted $(rejected malformed), want 7"
[ "$(backend_requests)" = "$before" ] || fail "a request without a valid header reached the backend"
grep -q 'PROXY protocol header: v1: bad port; closing' "$T/zkrouterd.log" ||
	fail "no debug line for the bad port"

log "a header cut off by the client, and one that never ends (head-timeout-ms)"
ppc "$PP_PORT" hex:50524f585920544350 --close-after-header >/dev/null
wait_for 5 sh -c "[ \"\$(curl -s http://$ADMIN/metrics | grep -F 'reason=\"closed\"' | awk '{print \$2}')\" = 1 ]" ||
	fail "closed counted $(rejected closed), want 1"
ppc "$PP_PORT" hex:50524f585920544350 --request '' --timeout 60 >"$T/s1"
expect_closed "an unfinished header" "$T/s1"
took=$(sed -n 's/^bytes=0 .* ms=//p' "$T/s1")
[ "$took" -ge 1400 ] || fail "the unfinished header was closed after $took ms, before head-timeout-ms (1500)"
[ "$(rejected timeout)" = 1 ] || fail "timeout counted $(rejected timeout), want 1"
grep -q 'PROXY protocol header: not whole within head-timeout-ms; closing' "$T/zkrouterd.log" ||
	fail "no debug line for the timeout"

log "a listener without ,proxy answers a PROXY header 400, as before"
ppc "$PROXY_PORT" v1:203.0.113.9:40001:198.51.100.1:8443 >"$T/p1"
[ "$(status_of "$T/p1")" = 400 ] || fail "v1 header on a plain listener: $(head -n 1 "$T/p1")"
ppc "$PROXY_PORT" v2:203.0.113.9:40001:198.51.100.1:8443 >"$T/p2"
[ "$(status_of "$T/p2")" = 400 ] || fail "v2 header on a plain listener: $(head -n 1 "$T/p2")"
pcurl app.test /echo -o "$T/p3"
[ "$(hdr "$T/p3" X-Forwarded-For)" = 127.0.0.1 ] || fail "plain listener: $(cat "$T/p3")"

log "the connections are all gone"
wait_for 5 sh -c "[ \"\$(curl -s http://$ADMIN/metrics | awk '\$1 == \"zkrouter_client_connections\" {print \$2}')\" = 0 ]" ||
	fail "client connections left: $(metric zkrouter_client_connections)"

log "per-client limits count the client the header names, not the balancer"
echo "max-connections-per-ip = 1" >"$T/pp.conf"
kill -HUP "$ROUTER_PID"
wait_for 10 grep -q 'reload applied: max-connections-per-ip' "$T/zkrouterd.log" ||
	fail "SIGHUP did not apply max-connections-per-ip"
headers=$(metric zkrouter_proxy_protocol_headers_total)
spawn hold python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"PROXY TCP4 203.0.113.70 198.51.100.1 40070 80\r\n")
time.sleep(60)
' "$PP_PORT"
HOLD_PID=$SPAWNED_PID
wait_for 10 sh -c "[ \"\$(curl -s http://$ADMIN/metrics | awk '\$1 == \"zkrouter_proxy_protocol_headers_total\" {print \$2}')\" -gt $headers ]" ||
	fail "the held connection's header was not read"
ppc "$PP_PORT" v1:203.0.113.70:40071:198.51.100.1:80 >"$T/l1"
[ "$(status_of "$T/l1")" = 429 ] || fail "a second connection of 203.0.113.70: $(head -n 1 "$T/l1")"
ppc "$PP_PORT" v1:203.0.113.71:40072:198.51.100.1:80 >"$T/l2"
[ "$(status_of "$T/l2")" = 200 ] ||
	fail "203.0.113.71, behind the same balancer address: $(head -n 1 "$T/l2")"
stop_pid "$HOLD_PID"

router_alive
log "ok"
