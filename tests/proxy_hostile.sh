#!/bin/bash
# Hostile requests get 400 and a closed connection, and nothing of them
# reaches the backend: Content-Length with Transfer-Encoding, repeated or
# malformed Content-Length, Transfer-Encoding not ending in chunked,
# obs-fold, whitespace before a colon, invalid bytes, missing, repeated or
# malformed Host, a TLS ClientHello on the plain port. A valid request pipelined
# before a smuggling attempt is answered, the attempt is not; an invalid
# chunk size ends the connection without the backend ever reading it, and so
# do chunked bodies only a lenient parser takes (a bare CR after the size,
# junk for the CRLF after the data, a huge extension, thousands of
# trailers), in requests (400) and in responses (cut). Upgrade: h2c is
# dropped (its request goes on as an ordinary one) and a 101 tunnels only
# an upgrade we forwarded, so no request can hide in a tunnel. Backend status
# codes outside 100-599 are a 502, control bytes in a reason phrase are not
# relayed, an HTTP/1.0 request with Transfer-Encoding closes its connection
# after its answer, and header names with '_' are not forwarded (unless
# allow-underscore-headers, reloaded on SIGHUP). The router keeps serving
# afterwards.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

echo "allow-underscore-headers = no" >"$T/zkrouterd.conf"
proxy_setup --config "$T/zkrouterd.conf"
start_backend a1
app_add a.test
register a.test a1 "$BACKEND_PORT"
wait_instance a.test a1
[ "$(pcurl a.test /)" = "ok a1" ] || fail "a.test not routed"

H='Host: a.test\r\n'
# name | request bytes (hclient escapes). Every target names "hostile", so
# the backend's log proves none of it arrived.
CASES=(
	"cl+te|POST /hostile-clte HTTP/1.1\r\n${H}Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nX"
	"te+cl|POST /hostile-tecl HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n0\r\n\r\nX"
	"cl twice|POST /hostile-cl2 HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"
	"cl twice, same value|POST /hostile-cl2s HTTP/1.1\r\n${H}Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"
	"cl list|POST /hostile-cllist HTTP/1.1\r\n${H}Content-Length: 3, 3\r\n\r\nabc"
	"cl not a number|POST /hostile-clx HTTP/1.1\r\n${H}Content-Length: 3x\r\n\r\nabc"
	"cl negative|POST /hostile-clneg HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\nabc"
	"cl with sign|POST /hostile-clplus HTTP/1.1\r\n${H}Content-Length: +3\r\n\r\nabc"
	"te gzip|POST /hostile-tegzip HTTP/1.1\r\n${H}Transfer-Encoding: gzip\r\n\r\nabc"
	"te chunked, gzip|POST /hostile-techg HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"
	"te xchunked|POST /hostile-tex HTTP/1.1\r\n${H}Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"
	"obs-fold|GET /hostile-fold HTTP/1.1\r\n${H}X-Folded: a\r\n b\r\n\r\n"
	"obs-fold tab|GET /hostile-foldtab HTTP/1.1\r\n${H}X-Folded: a\r\n\tb\r\n\r\n"
	"space before colon|GET /hostile-sp HTTP/1.1\r\nHost : a.test\r\n\r\n"
	"space before colon, cl|POST /hostile-spcl HTTP/1.1\r\n${H}Content-Length : 3\r\n\r\nabc"
	"control byte in name|GET /hostile-name HTTP/1.1\r\n${H}X-B\x01d: v\r\n\r\n"
	"nul in value|GET /hostile-nul HTTP/1.1\r\n${H}X-Bad: a\x00b\r\n\r\n"
	"control byte in value|GET /hostile-ctl HTTP/1.1\r\n${H}X-Bad: a\x01b\r\n\r\n"
	"control byte in target|GET /hostile\x01t HTTP/1.1\r\n${H}\r\n"
	"no host|GET /hostile-nohost HTTP/1.1\r\n\r\n"
	"host twice|GET /hostile-host2 HTTP/1.1\r\n${H}${H}\r\n"
	"host twice, different|GET /hostile-host2d HTTP/1.1\r\n${H}Host: b.test\r\n\r\n"
	"empty host|GET /hostile-hostempty HTTP/1.1\r\nHost: \r\n\r\n"
	"host with userinfo|GET /hostile-hostat HTTP/1.1\r\nHost: a.test@evil.test\r\n\r\n"
	"host with a path|GET /hostile-hostpath HTTP/1.1\r\nHost: a.test/x\r\n\r\n"
	"host with an empty label|GET /hostile-hostdots HTTP/1.1\r\nHost: a..test\r\n\r\n"
	"tls clienthello|\x16\x03\x01\x00\xc8\x01\x00\x00\xc4\x03\x03\x5a\x1b\x2c\x3d\x4e\x5f\x60\x71\x82\x93\xa4\xb5\xc6\xd7\xe8\xf9\x0a\x1b\x2c\x3d\x4e\x5f\x60\x71\x82\x93\xa4\xb5\xc6\xd7\xe8\xf9\x00\x00\x02\x13\x01\x01\x00"
	"garbage line|\x00\x01\x02 hostile\r\n\r\n"
)

n=0
for c in "${CASES[@]}"; do
	name=${c%%|*}
	req=${c#*|}
	n=$((n + 1))
	hc --timeout 5000 "$req" >"$T/case$n.out" 2>"$T/case$n.err"
	rc=$?
	st=$(first_status "$T/case$n.out")
	[ "$st" = 400 ] || fail "$name: answered '$(head -c 200 "$T/case$n.out")' (want 400)"
	# 0: closed, 3: reset after the answer; 2 would mean the connection stayed open.
	[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "$name: connection not closed after 400 (hclient exit $rc)"
	[ "$(grep -c '^HTTP/1' "$T/case$n.out")" = 1 ] || fail "$name: more than one answer: $(cat "$T/case$n.out")"
	log "$name: 400, closed"
done

log "a valid request pipelined before a smuggling attempt"
hc --timeout 5000 "GET /ok-first HTTP/1.1\r\n${H}\r\nPOST /hostile-pipe HTTP/1.1\r\n${H}Content-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /hostile-smuggled HTTP/1.1\r\n${H}\r\n" >"$T/pipe.out"
rc=$?
grep -q '^ok a1' "$T/pipe.out" || fail "the valid first request was not answered: $(cat "$T/pipe.out")"
[ "$(grep -c '^HTTP/1.1 400' "$T/pipe.out")" = 1 ] || fail "smuggling attempt not answered 400: $(cat "$T/pipe.out")"
[ "$(grep -c '^HTTP/1' "$T/pipe.out")" = 2 ] || fail "more than two answers: $(cat "$T/pipe.out")"
[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "connection not closed after the smuggling attempt (exit $rc)"

log "an invalid chunk size after a valid head: closed, nothing behind it parsed"
hc --timeout 5000 "POST /echo-badchunk HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n\r\nGET /hostile-after-badchunk HTTP/1.1\r\n${H}\r\n" >"$T/badchunk.out"
rc=$?
[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "connection open after an invalid chunk size (exit $rc)"
[ "$(grep -c -a '^HTTP/1' "$T/badchunk.out")" -le 1 ] || fail "answered past an invalid chunk: $(cat "$T/badchunk.out")"
grep -q -a '^ok a1' "$T/badchunk.out" && fail "the request behind an invalid chunk was answered"

log "the chunk decoded before that error does not leak into the next chunked body"
want=$(printf abc | sha256sum | cut -d' ' -f1)
hc --timeout 3000 "POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n" --expect 'bytes=' >"$T/after-bad.out"
grep -q -a "^bytes=3 sha256=$want" "$T/after-bad.out" || fail "next chunked body: $(cat "$T/after-bad.out")"

log "chunked framing only a lenient parser takes: 400, closed, the app never gets the request"
# A bare CR after the chunk size; two bytes in place of the CRLF after the
# data; a 200 KB chunk extension; 4,000 trailer fields.
printf 'POST /hostile-chunkext HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5;' >"$T/chunkext.req"
head -c 204800 /dev/zero | tr '\0' 'e' >>"$T/chunkext.req"
printf '\r\nhello\r\n0\r\n\r\n' >>"$T/chunkext.req"
{
	printf 'POST /hostile-trailers HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n'
	for i in $(seq 1 4000); do printf 'X-Trailer-%d: t\r\n' "$i"; done
	printf '\r\n'
} >"$T/trailers.req"
for c in "chunkcr|POST /hostile-chunkcr HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\rXhello\r\n0\r\n\r\n" \
	 "chunkcrlf|POST /hostile-chunkcrlf HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n" \
	 "chunkext|--file|$T/chunkext.req" "trailers|--file|$T/trailers.req"; do
	name=${c%%|*}
	IFS='|' read -r -a args <<<"${c#*|}"
	hc --timeout 5000 "${args[@]}" >"$T/$name.out" 2>"$T/$name.err"
	rc=$?
	[ "$(first_status "$T/$name.out")" = 400 ] || fail "$name: answered '$(head -c 200 "$T/$name.out")' (want 400)"
	[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "$name: connection not closed after 400 (hclient exit $rc)"
	log "$name: 400, closed"
done

log "the same from an app: the response is cut, never relayed whole"
for kind in chunkcr chunkcrlf longext trailers; do
	pcurl a.test "/badresp?kind=$kind" -o "$T/br-$kind.out"
	rc=$?
	[ "$rc" != 0 ] || fail "a response with $kind was relayed as complete: $(head -c 200 "$T/br-$kind.out")"
	grep -q "bad chunked body from" "$T/zkrouterd.log" || fail "$kind: no 'bad chunked body' line in the log"
	log "$kind: cut (curl exit $rc)"
done

log "Upgrade: h2c is not forwarded: the request behind it is routed by the router, not tunnelled"
# /upgrade switches to any protocol asked for and then reads HTTP/1.1
# requests, as an h2c server reads HTTP/2 ones: through a tunnel the next
# request (for a host the router does not route) would reach it unseen.
hc --timeout 3000 "GET /upgrade HTTP/1.1\r\n${H}Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n" \
	--expect 'no upgrade a1' "GET /hostile-h2c HTTP/1.1\r\nHost: nowhere.test\r\n\r\n" --expect 'unknown_route' >"$T/h2c.out"
rc=$?
[ "$rc" != 4 ] || fail "h2c: not answered as two ordinary requests: $(cat "$T/h2c.out")"
grep -q '^HTTP/1.1 101' "$T/h2c.out" && fail "h2c: a 101 reached the client"
out=$(pcurl a.test /echo -H 'Connection: Upgrade, HTTP2-Settings' -H 'Upgrade: h2c' -H 'HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA')
echo "$out" | grep -q '^backend=a1' || fail "h2c echo not answered: $out"
echo "$out" | grep -qi '^h: \(upgrade\|http2-settings\|connection\):' && fail "h2c upgrade headers forwarded: $out"
log "a 101 that answers no upgrade we forwarded, or switches to a protocol we did not forward: 502"
hc --timeout 3000 "GET /upgrade?force=1 HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: h2c\r\n\r\nGET /after-forced-101 HTTP/1.1\r\n${H}\r\n" >"$T/h2cforce.out"
[ "$(first_status "$T/h2cforce.out")" = 502 ] || fail "an unrequested 101 was not answered 502: $(head -c 300 "$T/h2cforce.out")"
hc --timeout 3000 "GET /upgrade HTTP/1.1\r\n${H}Connection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /after-switched-101 HTTP/1.1\r\n${H}\r\n" >"$T/h2cswitch.out"
[ "$(first_status "$T/h2cswitch.out")" = 502 ] || fail "a 101 to h2c for a websocket upgrade was not answered 502: $(head -c 300 "$T/h2cswitch.out")"

log "backend status codes outside 100-599: 502"
for kind in status000 status099 status600 status999; do
	st=$(pcurl a.test "/badresp?kind=$kind" -o "$T/br-$kind.out" -w '%{http_code}')
	[ "$st" = 502 ] || fail "$kind: answered $st (want 502): $(head -c 200 "$T/br-$kind.out")"
done

log "control bytes in a backend's reason phrase do not reach the client"
hc --timeout 3000 "GET /badresp?kind=reasonctl HTTP/1.1\r\n${H}\r\n" --expect badresp1 >"$T/reason.out"
[ "$(head -n 1 "$T/reason.out" | tr -d '\r')" = "HTTP/1.1 200 OK" ] ||
	fail "reason phrase relayed: $(head -n 1 "$T/reason.out" | od -c | head -n 3)"
LC_ALL=C grep -q -a $'[\x01-\x08\x0b\x0c\x0e-\x1f\x7f]' "$T/reason.out" && fail "control bytes relayed: $(od -c "$T/reason.out" | head)"

log "HTTP/1.0 with Transfer-Encoding: answered, then the connection closes"
hc --timeout 3000 "POST /echo HTTP/1.0\r\n${H}Connection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /after-10-te HTTP/1.0\r\n${H}Connection: keep-alive\r\n\r\n" >"$T/te10.out"
rc=$?
grep -q -a '^body-bytes=5' "$T/te10.out" || fail "HTTP/1.0 chunked request not answered: $(cat "$T/te10.out")"
[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "connection kept open after an HTTP/1.0 request with Transfer-Encoding (exit $rc)"
[ "$(grep -c -a '^HTTP/1' "$T/te10.out")" = 1 ] || fail "answered past it: $(cat "$T/te10.out")"

log "header names with '_' are dropped, unless allow-underscore-headers (reloaded)"
out=$(pcurl a.test /echo -H 'Transfer_Encoding: chunked' -H 'Content_Length: 5' -H 'X_Custom: v' -H 'X-Ok: v')
echo "$out" | grep -q '^h: X-Ok: v' || fail "echo without X-Ok: $out"
echo "$out" | grep -q '^h: [A-Za-z-]*_' && fail "a name with '_' was forwarded: $out"
echo "allow-underscore-headers = yes" >"$T/zkrouterd.conf"
kill -HUP "$ROUTER_PID"
wait_for 10 grep -q 'reload applied: allow-underscore-headers' "$T/zkrouterd.log" ||
	fail "allow-underscore-headers not reloaded: $(tail -n 5 "$T/zkrouterd.log")"
out=$(pcurl a.test /echo -H 'X_Custom: v')
echo "$out" | grep -q '^h: X_Custom: v' || fail "X_Custom not forwarded with allow-underscore-headers: $out"
echo "allow-underscore-headers = no" >"$T/zkrouterd.conf"
kill -HUP "$ROUTER_PID"
wait_for 10 sh -c "[ \$(grep -c 'reload applied: allow-underscore-headers' '$T/zkrouterd.log') = 2 ]" ||
	fail "allow-underscore-headers not reloaded back"

log "a client that keeps sending after its 400 is closed once the linger ends"
python3 - "$PROXY_PORT" >"$T/linger.out" 2>&1 <<'PY' || fail "lingering client: $(cat "$T/linger.out")"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"GET /hostile-linger HTTP/1.1\r\nHost: a..test\r\n\r\n")
s.settimeout(5)
head = s.recv(4096)
assert head.startswith(b"HTTP/1.1 400"), head
start = time.monotonic()
s.settimeout(0.1)
try:
    while time.monotonic() - start < 15:
        s.sendall(b"x" * 100)      # fails once the router has closed
        try:
            s.recv(4096)
        except socket.timeout:
            pass
except (BrokenPipeError, ConnectionResetError):
    print("closed after %.1f s of sending" % (time.monotonic() - start))
    sys.exit(0)
print("still open after 15 s of sending")
sys.exit(1)
PY
log "$(cat "$T/linger.out")"

log "nothing hostile reached the backend"
if grep -a 'hostile\|parse-error' "$T/backend-a1.log"; then
	fail "the backend saw hostile bytes (above)"
fi
grep -q 'GET /ok-first' "$T/backend-a1.log" || fail "the backend never saw /ok-first"

router_alive
[ "$(pcurl a.test /)" = "ok a1" ] || fail "router stopped serving after hostile input"
log "ok"
