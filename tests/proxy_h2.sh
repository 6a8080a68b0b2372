#!/bin/bash
# HTTP/2 to clients (node/h2*.c) with real clients: curl --http2 over TLS
# (ALPN h2, preferred over http/1.1) and --http2-prior-knowledge on a
# plain listener with --h2c; streams routed by :authority to two apps,
# with the forwarding headers of HTTP/1.1; bodies both ways, with a
# Content-Length and without one (chunked to the backend), and a large
# download; many streams multiplexed on one connection; HTTP/1.1 still
# chosen by clients that offer only it; the router's own answers (404)
# as HTTP/2 responses; a malformed head refused and counted; the
# counters in /metrics.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_require
command -v openssl >/dev/null || skip "openssl (the command) not installed"
curl -V | grep -q 'nghttp2' || skip "curl without HTTP/2"
# Raw heads: python3-h2 (Debian's), for whichever python has it.
H2PY=
for py in python3 /usr/bin/python3; do
	command -v "$py" >/dev/null && "$py" -c 'import h2' 2>/dev/null && H2PY=$py && break
done
[ -n "$H2PY" ] || skip "python3-h2 not installed"

openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=a.test -days 1 \
	-addext "subjectAltName=DNS:a.test,DNS:b.test" \
	-keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.out" 2>&1 ||
	hard_error "openssl req failed: $(cat "$T/openssl.out")"

TLS_PORT=$(free_port) || hard_error "no free port"
proxy_setup --tls-listen "127.0.0.1:$TLS_PORT" --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" \
	--h2c --head-timeout-ms 3000
start_backend a1
A_PORT=$BACKEND_PORT
start_backend b1
app_add a.test
app_add b.test
register a.test a1 "$A_PORT"
register b.test b1 "$BACKEND_PORT"
wait_instance a.test a1
wait_instance b.test b1

# metric NAME: its value in /metrics (0 when absent).
metric() {
	curl -s --max-time 5 "http://$ADMIN/metrics" |
		awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
# tcurl HOST PATH [ARGS]: HTTPS through the router, HTTP/2 by ALPN.
tcurl() {
	local host=$1 path=$2
	shift 2
	curl -s --max-time 60 --http2 --cacert "$T/cert.pem" --resolve "$host:$TLS_PORT:127.0.0.1" \
		"$@" "https://$host:$TLS_PORT$path"
}
# ccurl HOST PATH [ARGS]: h2c with prior knowledge on the plain listener.
ccurl() {
	local host=$1 path=$2
	shift 2
	curl -s --max-time 60 --http2-prior-knowledge --resolve "$host:$PROXY_PORT:127.0.0.1" \
		"$@" "http://$host:$PROXY_PORT$path"
}

# H2REQ [ARGS]: raw HTTP/2 (tests/h2req.py) to the plain listener (h2c).
H2REQ="$H2PY $top_srcdir/tests/h2req.py $PROXY_PORT"
ok_head=(":method:GET" ":scheme:http" ":authority:b.test" ":path:/echo")

log "TLS: ALPN chooses h2; routed by :authority, forwarded as HTTP/1.1"
out=$(tcurl a.test '/echo?x=1' -w 'version=%{http_version}\n') || fail "curl --http2 failed"
echo "$out"
echo "$out" | grep -qx 'version=2' || fail "not HTTP/2 over TLS"
echo "$out" | grep -qx 'backend=a1' || fail "not routed to a.test's instance"
echo "$out" | grep -qx 'target=/echo?x=1' || fail ":path not forwarded as the target"
echo "$out" | grep -qx 'version=HTTP/1.1' || fail "not HTTP/1.1 to the backend"
echo "$out" | grep -qix "h: host: a.test:$TLS_PORT" || fail "Host not rebuilt from :authority"
echo "$out" | grep -qix 'h: x-forwarded-proto: https' || fail "X-Forwarded-Proto"
echo "$out" | grep -qi '^h: x-request-id: ' || fail "no X-Request-Id"

log "h2c with prior knowledge (--h2c) on the plain listener, the other app"
out=$(ccurl b.test /echo -w 'version=%{http_version}\n') || fail "curl --http2-prior-knowledge failed"
echo "$out" | grep -qx 'version=2' || fail "not HTTP/2 on the plain listener: $out"
echo "$out" | grep -qx 'backend=b1' || fail "not routed to b.test's instance: $out"
echo "$out" | grep -qix 'h: x-forwarded-proto: http' || fail "X-Forwarded-Proto on h2c"

log "cookies of several fields reach the backend joined with '; '"
out=$(tcurl a.test /echo -H 'cookie: a=1' -H 'cookie: b=2') || fail "cookies"
echo "$out" | grep -qix 'h: cookie: a=1; b=2' || fail "cookies not joined: $out"

log "HTTP/1.1 clients are still served on the TLS listener"
out=$(curl -s --max-time 20 --http1.1 --cacert "$T/cert.pem" --resolve "a.test:$TLS_PORT:127.0.0.1" \
	-w 'version=%{http_version}\n' "https://a.test:$TLS_PORT/echo") || fail "curl --http1.1"
echo "$out" | grep -qx 'version=1.1' || fail "HTTP/1.1 over TLS: $out"

log "POST with a Content-Length, both ways: 3 MB up (sha256 at the backend), echoed sizes"
head -c 3000000 /dev/urandom >"$T/up.bin"
want=$(sha256sum "$T/up.bin" | cut -d' ' -f1)
out=$(tcurl a.test /upload --data-binary @"$T/up.bin" -H 'content-type: application/octet-stream') ||
	fail "upload failed"
echo "$out"
[ "$out" = "bytes=3000000 sha256=$want backend=a1" ] || fail "upload with a length: $out"

log "POST without a length (DATA until END_STREAM): chunked to the backend"
out=$(ccurl b.test /upload -T - <"$T/up.bin") || fail "upload without a length failed"
echo "$out"
[ "$out" = "bytes=3000000 sha256=$want backend=b1" ] || fail "upload without a length: $out"
# The body follows the head later, so the head goes on before its length
# is known (a body all there with the head goes with its length).
out=$( (sleep 0.5; echo hello) | ccurl b.test /echo -T -) || fail "echo without a length"
echo "$out" | grep -qix 'h: transfer-encoding: chunked' || fail "no chunked framing to the backend: $out"
echo "$out" | grep -qx 'body-bytes=6' || fail "chunked body: $out"

log "a 20 MB download, flow-controlled, arrives whole"
tcurl a.test '/big?bytes=20000000' -o "$T/big.bin" || fail "download failed"
[ "$(stat -c %s "$T/big.bin")" = 20000000 ] || fail "download size $(stat -c %s "$T/big.bin")"
curl -s --max-time 60 -H 'Host: a.test' "http://$PROXY/big?bytes=20000000" | cmp - "$T/big.bin" ||
	fail "the HTTP/2 download differs from HTTP/1.1's"

log "many streams on one connection, to both apps, at once"
conns=$(metric zkrouter_h2_connections_total)
urls=()
for i in $(seq 1 20); do
	urls+=("https://a.test:$TLS_PORT/slow?ms=300&i=$i" "https://b.test:$TLS_PORT/echo?i=$i")
done
start=$(now_ms)
curl -s --max-time 60 --http2 --parallel --parallel-max 40 --cacert "$T/cert.pem" \
	--resolve "a.test:$TLS_PORT:127.0.0.1" --resolve "b.test:$TLS_PORT:127.0.0.1" \
	-w '%{http_code} %{http_version}\n' -o /dev/null "${urls[@]}" >"$T/par.out" ||
	fail "parallel curl failed"
took=$(( $(now_ms) - start ))
[ "$(grep -c '^200 2$' "$T/par.out")" = 40 ] || fail "not 40 HTTP/2 200s: $(sort "$T/par.out" | uniq -c)"
[ "$took" -lt 6000 ] || fail "20 slow streams took ${took} ms: not concurrent"
[ "$(metric zkrouter_h2_connections_total)" -le $((conns + 2)) ] ||
	fail "streams did not share connections: $(metric zkrouter_h2_connections_total) from $conns"

log "a chunked response's trailers reach the HTTP/2 client (hop-by-hop ones left out)"
if command -v nghttp >/dev/null; then
	nghttp -nv -H ':authority: b.test' "http://127.0.0.1:$PROXY_PORT/badresp?kind=trailed" >"$T/trailers.out" 2>&1 ||
		fail "nghttp failed: $(tail -n 5 "$T/trailers.out")"
	grep -q 'grpc-status: 0' "$T/trailers.out" || fail "no trailers: $(cat "$T/trailers.out")"
	grep -q 'grpc-message: all ok$' "$T/trailers.out" || fail "trailer value: $(grep grpc "$T/trailers.out")"
	! grep -qi 'keep-alive: 5' "$T/trailers.out" || fail "a hop-by-hop trailer was passed"
else
	[ -z "${ZKR_TEST_NO_SKIP:-}" ] || fail "nghttp (nghttp2-client) not installed"
	log "(nghttp not installed: trailers not checked)"
fi

log "a stream whose client does not read pauses only itself: the others on its connection are served"
out=$($H2REQ --slowread '/big?bytes=50000000' 20 "${ok_head[@]}") || fail "h2req --slowread failed"
echo "$out"
case $out in "others=20 stalled="*) ;; *) fail "streams held up by one not read: $out" ;; esac
[ "${out#*stalled=}" -le 65535 ] || fail "more than the stream's window sent: $out"

log "the router's own answers are HTTP/2 responses"
code=$(tcurl nowhere.test /x --resolve "nowhere.test:$TLS_PORT:127.0.0.1" -k -o "$T/404.out" \
	-w '%{http_code} %{http_version}' -D "$T/404.hdr") || fail "404 request failed"
[ "$code" = "404 2" ] || fail "unknown host: $code"
grep -qi '^x-zkrouter-error: unknown_route' "$T/404.hdr" || fail "no error code: $(cat "$T/404.hdr")"

log "heads the downgrade checks refuse get 400 or a stream reset, and reach no backend"
out=$($H2REQ "${ok_head[@]}") || fail "h2req failed"
[ "$out" = status=200 ] || fail "a plain head through h2req: $out"
bad=$(metric zkrouter_h2_malformed_total)
before=$(grep -c 'req b1' "$T/backend-b1.log")
refused() {
	local what=$1 out
	shift
	out=$($H2REQ "$@") || fail "h2req failed ($what)"
	case $out in status=400 | reset=*) ;; *) fail "$what: $out" ;; esac
	echo "$what: $out"
}
refused ":authority and host differ" "${ok_head[@]}" "host:a.test"
refused "path not origin-form" ":method:GET" ":scheme:http" ":authority:b.test" ":path:http://a.test/"
refused "transfer-encoding" "${ok_head[@]}" "transfer-encoding:chunked"
refused "upper-case name" "${ok_head[@]}" "X-Foo:1"
refused "content-length and DATA differ" ":method:POST" ":scheme:http" ":authority:b.test" \
	":path:/echo" "content-length:3" --data "hello"
refused "LF in a value" "${ok_head[@]}" $'x-a:1\r\nx-b: 2'
[ "$(metric zkrouter_h2_malformed_total)" -gt "$bad" ] || fail "malformed heads not counted"
[ "$(grep -c 'req b1' "$T/backend-b1.log")" = "$before" ] || fail "a refused head reached the backend"

log "a request body that stops coming gets 408 after --head-timeout-ms"
start=$(now_ms)
out=$($H2REQ --stall ":method:POST" ":scheme:http" ":authority:b.test" ":path:/echo" \
	"content-length:10" --data "hello") || fail "h2req --stall failed"
took=$(( $(now_ms) - start ))
echo "stalled body: $out after ${took} ms"
[ "$out" = status=408 ] || fail "a stalled body: $out"
[ "$took" -ge 2500 ] && [ "$took" -lt 15000 ] || fail "408 after ${took} ms"

log "WebSockets over HTTP/2 (RFC 8441): an HTTP/1.1 upgrade to the backend, a tunnel in the stream"
ws_head=(":method:CONNECT" ":protocol:websocket" ":scheme:http" ":authority:b.test" ":path:/ws"
	"sec-websocket-version:13")
out=$($H2REQ --tunnel "ping-through-h2" --rounds 3 "${ws_head[@]}") || fail "h2req --tunnel failed"
echo "$out"
[ "$out" = "$(printf 'status=200\necho=ping-through-h2\necho=ping-through-h2\necho=ping-through-h2')" ] ||
	fail "WebSocket over HTTP/2: $out"
grep -q "^upgrade b1 " "$T/backend-b1.log" || fail "the backend saw no upgrade"
out=$($H2REQ --tunnel x ":method:CONNECT" ":protocol:h2c" ":scheme:http" ":authority:b.test" ":path:/ws")
case $out in status=400 | reset=*) ;; *) fail "extended CONNECT to a protocol not tunnelled: $out" ;; esac

log "streams past --h2-max-concurrent-streams (100) are refused, the others answered"
was=$(metric zkrouter_h2_refused_streams_total)
out=$($H2REQ --open 130 ":method:GET" ":scheme:http" ":authority:b.test" ":path:/slow?ms=500") ||
	fail "h2req --open failed"
echo "$out"
[ "$out" = "refused=30 answered=100" ] || fail "130 streams at once: $out"
[ "$(metric zkrouter_h2_refused_streams_total)" -ge $((was + 30)) ] || fail "refused streams not counted"

log "floods end their connection with GOAWAY (ENHANCE_YOUR_CALM), counted; others are still served"
for kind in ping settings priority reset; do
	case $kind in reset) counter=zkrouter_h2_rapid_reset_total ;; *) counter=zkrouter_h2_control_flood_total ;; esac
	was=$(metric $counter)
	out=$($H2REQ --flood $kind 5000 "${ok_head[@]}") || fail "h2req --flood $kind failed"
	echo "$kind flood: $out"
	case $out in "goaway=11 after="*) ;; *) fail "$kind flood not stopped: $out" ;; esac
	[ "$(metric $counter)" -gt "$was" ] || fail "$kind flood not counted in $counter"
	out=$($H2REQ "${ok_head[@]}") || fail "h2req after the $kind flood"
	[ "$out" = status=200 ] || fail "a request after the $kind flood: $out"
done

log "the access log has the HTTP/2 requests"
grep -q 'host=b.test method=PUT target=/upload status=200' "$T/access.log" ||
	fail "no access log line for HTTP/2 requests"
[ "$(metric zkrouter_h2_streams_total)" -ge 48 ] || fail "streams not counted"
router_alive

log "SIGTERM drain: streams in flight on an HTTP/2 connection finish, then it closes"
curl -s --max-time 30 --http2 --parallel --cacert "$T/cert.pem" --resolve "a.test:$TLS_PORT:127.0.0.1" \
	-w '%{http_code} %{http_version}\n' -o /dev/null -o /dev/null \
	"https://a.test:$TLS_PORT/slow?ms=2000&d=1" "https://a.test:$TLS_PORT/stream?chunks=10&delay=200" \
	>"$T/drain.out" 2>&1 &
cpid=$!
wait_for 10 sh -c "[ \$(grep -c 'req a1 .* /slow?ms=2000&d=1\|req a1 .* /stream?chunks=10' '$T/backend-a1.log') = 2 ]" ||
	fail "the two streams never reached the backend"
kill -TERM "$ROUTER_PID"
wait "$cpid" || fail "curl across the drain: $(cat "$T/drain.out")"
[ "$(grep -c '^200 2$' "$T/drain.out")" = 2 ] || fail "streams cut by the drain: $(cat "$T/drain.out")"
wait_for 20 sh -c "! kill -0 $ROUTER_PID 2>/dev/null" || fail "zkrouterd still running after the drain"
grep -q 'drained in' "$T/zkrouterd.log" || fail "no drain: $(tail -n 5 "$T/zkrouterd.log")"
log "ok"
