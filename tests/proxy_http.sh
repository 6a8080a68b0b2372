#!/bin/bash
# HTTP/1.1 semantics through zkrouterd: pipelined requests answered in
# order (a slow first answer holds back the fast ones behind it), requests
# split across writes, HTTP/1.0 with and without keep-alive, Expect:
# 100-continue, Content-Length and chunked uploads far larger than the
# buffer limit (also to an app that reads slowly), a large download to a
# slow reader and a response streamed
# over time - all streamed, never held whole (the router's peak RSS stays
# far below the body sizes). An app that sends its response head before it
# read the request body still gets the whole body.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_setup --buffer-high-bytes 65536
start_backend a1; PA1=$BACKEND_PORT
start_backend a2; PA2=$BACKEND_PORT
app_add a.test
register a.test a1 "$PA1"
register a.test a2 "$PA2"
wait_instance a.test a1
wait_instance a.test a2
H='Host: a.test\r\n'

# line_of PATTERN FILE: the first line number matching, or 0.
line_of() { grep -n -a -m1 -- "$1" "$2" | cut -d: -f1 | grep . || echo 0; }

log "pipelining: four requests in one write, answered in order"
hc --timeout 5000 "GET /slow?ms=400 HTTP/1.1\r\n${H}\r\nGET /echo?n=2 HTTP/1.1\r\n${H}\r\nPOST /echo?n=3 HTTP/1.1\r\n${H}Content-Length: 8\r\n\r\nbody-n3\nGET /?n=4 HTTP/1.1\r\n${H}Connection: close\r\n\r\n" >"$T/pipe.out"
rc=$?
[ "$rc" = 0 ] || fail "pipelined Connection: close did not close (exit $rc)"
[ "$(grep -c -a '^HTTP/1.1 200' "$T/pipe.out")" = 4 ] || fail "want 4 answers: $(cat "$T/pipe.out")"
l1=$(line_of '^slow a' "$T/pipe.out")
l2=$(line_of '^target=/echo?n=2' "$T/pipe.out")
l3=$(line_of '^target=/echo?n=3' "$T/pipe.out")
l4=$(line_of '^ok a' "$T/pipe.out")
[ "$l1" -gt 0 ] && [ "$l1" -lt "$l2" ] && [ "$l2" -lt "$l3" ] && [ "$l3" -lt "$l4" ] ||
	fail "answers out of order ($l1 $l2 $l3 $l4): $(cat "$T/pipe.out")"
grep -q -a '^body-n3$' "$T/pipe.out" || fail "pipelined body lost"

log "bodyless answers (HEAD with a length, 204, 304) keep the connection in step"
hc --timeout 5000 "HEAD /big?bytes=100000 HTTP/1.1\r\n${H}\r\nGET /status?code=204 HTTP/1.1\r\n${H}\r\nGET /status?code=304 HTTP/1.1\r\n${H}\r\nGET /?n=after-bodyless HTTP/1.1\r\n${H}Connection: close\r\n\r\n" >"$T/bodyless.out"
rc=$?
[ "$rc" = 0 ] || fail "bodyless answers: connection not closed after Connection: close (exit $rc): $(cat "$T/bodyless.out")"
grep -a '^HTTP/1' "$T/bodyless.out" | tr -d '\r' | awk '{print $2}' | paste -sd' ' >"$T/bodyless.codes"
[ "$(cat "$T/bodyless.codes")" = "200 204 304 200" ] || fail "bodyless answers out of step: $(cat "$T/bodyless.codes")"
grep -qi -a '^content-length: 100000' "$T/bodyless.out" || fail "HEAD answer lost its Content-Length"
tail -n 1 "$T/bodyless.out" | grep -q '^ok a' || fail "request after bodyless answers: $(cat "$T/bodyless.out")"
[ "$(wc -c <"$T/bodyless.out")" -lt 2000 ] || fail "a body was sent after HEAD"

log "a request split across writes, then a second on the same connection"
hc --timeout 1500 "GET /echo?n=split HT" --sleep 200 "TP/1.1\r\nHo" --sleep 200 "st: a.test\r\nX-Part: 1\r\n" --sleep 200 "\r\n" \
	--expect 'X-Part: 1' "GET /?n=again HTTP/1.1\r\n${H}\r\n" --expect 'ok a' >"$T/split.out"
rc=$?
grep -q -a '^target=/echo?n=split' "$T/split.out" || fail "split request: $(cat "$T/split.out")"
grep -q -a '^ok a' "$T/split.out" || fail "second request on the connection not answered"
[ "$rc" = 2 ] || fail "keep-alive connection did not stay open (exit $rc)"

log "HTTP/1.0 without keep-alive: answered, then closed"
hc --timeout 5000 "GET /echo HTTP/1.0\r\n${H}\r\n" >"$T/h10.out"
rc=$?
[ "$rc" = 0 ] || fail "HTTP/1.0 request left the connection open (exit $rc)"
[ "$(first_status "$T/h10.out")" = 200 ] || fail "HTTP/1.0: $(cat "$T/h10.out")"
grep -q -a '^backend=a' "$T/h10.out" || fail "HTTP/1.0 body missing"

log "HTTP/1.0 streamed answer is not chunked"
hc --timeout 5000 "GET /stream?chunks=3&delay=50 HTTP/1.0\r\n${H}\r\n" >"$T/h10s.out"
grep -qi -a '^transfer-encoding: chunked' "$T/h10s.out" && fail "chunked answer sent to an HTTP/1.0 client"
grep -q -a '^chunk 2 of a' "$T/h10s.out" || fail "HTTP/1.0 stream incomplete: $(cat "$T/h10s.out")"
grep -q -a '^[0-9a-f]*\r$' "$T/h10s.out" && fail "chunk-size lines in an HTTP/1.0 body"

log "HTTP/1.0 keep-alive: either kept (and said so) or closed"
hc --timeout 1500 "GET /?n=ka10 HTTP/1.0\r\n${H}Connection: keep-alive\r\n\r\n" --expect 'ok a' \
	"GET /?n=ka10b HTTP/1.0\r\n${H}Connection: keep-alive\r\n\r\n" >"$T/h10k.out"
rc=$?
if [ "$rc" = 2 ]; then
	grep -qi -a '^connection: keep-alive' "$T/h10k.out" || fail "HTTP/1.0 connection kept without saying keep-alive"
	[ "$(grep -c -a '^ok a' "$T/h10k.out")" = 2 ] || fail "second HTTP/1.0 keep-alive request lost"
else
	grep -qi -a '^connection: keep-alive' "$T/h10k.out" && fail "said keep-alive, then closed"
fi

log "Expect: 100-continue: 100 relayed before the body is sent"
hc --timeout 3000 "POST /upload HTTP/1.1\r\n${H}Content-Length: 11\r\nExpect: 100-continue\r\n\r\n" \
	--expect '100 Continue' 'hello world' --expect 'bytes=' >"$T/expect.out"
rc=$?
[ "$rc" = 2 ] || [ "$rc" = 0 ] || fail "Expect: 100-continue: exit $rc: $(cat "$T/expect.out")"
want=$(printf 'hello world' | sha256sum | cut -d' ' -f1)
grep -q -a "^bytes=11 sha256=$want" "$T/expect.out" || fail "Expect upload: $(cat "$T/expect.out")"
[ "$(line_of '100 Continue' "$T/expect.out")" -lt "$(line_of '^HTTP/1.1 200' "$T/expect.out")" ] ||
	fail "100 Continue not before the final answer"

head -c $((48 * 1024 * 1024)) /dev/urandom >"$T/up.bin"
sum=$(sha256sum <"$T/up.bin" | cut -d' ' -f1)
rss0=$(peak_rss_kb "$ROUTER_PID")

log "48 MB Content-Length upload (curl sends Expect: 100-continue)"
out=$(pcurl a.test /upload --data-binary @"$T/up.bin" -H 'Content-Type: application/octet-stream')
[ "${out%% backend=*}" = "bytes=50331648 sha256=$sum" ] || fail "CL upload: $out"

log "48 MB chunked upload"
out=$(pcurl a.test /upload --data-binary @"$T/up.bin" -H 'Transfer-Encoding: chunked' -H 'Expect:')
[ "${out%% backend=*}" = "bytes=50331648 sha256=$sum" ] || fail "chunked upload: $out"

log "32 MB upload to an app that reads 8 MB/s: the router pushes back on the client"
head -c $((32 * 1024 * 1024)) "$T/up.bin" >"$T/up32.bin"
sum32=$(sha256sum <"$T/up32.bin" | cut -d' ' -f1)
hwm0=$(peak_rss_kb "$ROUTER_PID")
t0=$(now_ms)
out=$(pcurl a.test '/upload?rate=8388608' --data-binary @"$T/up32.bin" -H 'Expect:' --max-time 60)
ms=$(( $(now_ms) - t0 ))
[ "$ms" -ge 3000 ] || fail "the slow app read 32 MB in $ms ms: the case was not exercised"
[ "${out%% backend=*}" = "bytes=33554432 sha256=$sum32" ] || fail "slow-reader upload: $out"
hwm1=$(peak_rss_kb "$ROUTER_PID")
log "router peak RSS ${hwm0} kB before, ${hwm1} kB after"
[ $((hwm1 - hwm0)) -lt 12288 ] || fail "router peak RSS grew by $((hwm1 - hwm0)) kB under a slow reader: no backpressure"

log "chunked body with extensions and trailers"
hc --timeout 3000 "POST /upload HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n" --expect 'bytes=' >"$T/trail.out"
grep -q -a "^bytes=11 sha256=$want" "$T/trail.out" || fail "chunked with trailers: $(cat "$T/trail.out")"

log "96 MB download to a slow reader (backpressure)"
direct=$(curl -s "http://127.0.0.1:$PA1/big?bytes=100663296" | sha256sum | cut -d' ' -f1)
got=$(pcurl a.test '/big?bytes=100663296' --limit-rate 40M | sha256sum | cut -d' ' -f1)
[ "$got" = "$direct" ] || fail "download through the proxy differs from the backend's"
size=$(pcurl a.test '/big?bytes=1234567' | wc -c)
[ "$size" = 1234567 ] || fail "download of 1234567 bytes gave $size"

rss1=$(peak_rss_kb "$ROUTER_PID")
log "router peak RSS ${rss0} kB before, ${rss1} kB after 2 x 48 MB up and 96 MB down"
[ $((rss1 - rss0)) -lt 24576 ] || fail "router peak RSS grew by $((rss1 - rss0)) kB: bodies are buffered, not streamed"

log "a streamed answer arrives as it is produced"
t=$(pcurl a.test '/stream?chunks=5&delay=300' -o "$T/stream.out" -w '%{time_starttransfer} %{time_total}')
first=${t% *} total=${t#* }
awk -v f="$first" -v t="$total" 'BEGIN { exit !(f + 0.5 < t && t >= 1.1) }' ||
	fail "stream: first byte at ${first}s, total ${total}s (buffered?)"
[ "$(grep -c '^chunk [0-4] of a' "$T/stream.out")" = 5 ] || fail "stream: $(cat "$T/stream.out")"

if command -v python3 >/dev/null; then
log "an app that answers before reading the body still gets all of it (duplex)"
# This app sends its response head at once, then reads the whole body and
# only then sends the response body (how many bytes it got).
cat >"$T/early.py" <<'PY'
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0)); s.listen(16)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
def handle(c):
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = c.recv(65536)
        if not d: return
        buf += d
    head, _, got = buf.partition(b"\r\n\r\n")
    cl = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")][0]
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n")
    n = len(got)
    while n < cl:
        d = c.recv(65536)
        if not d: print("eof at", n, flush=True); return
        n += len(d)
    print("body complete", n, flush=True)
    c.sendall(b"got=%09d\n" % n)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()
PY
spawn early python3 "$T/early.py" "$T/early.port"
wait_for 10 test -s "$T/early.port" || hard_error "the early-answer app did not start"
app_add early.test
register early.test x1 "$(cat "$T/early.port")"
wait_instance early.test x1
head -c 300000 /dev/zero >"$T/early.body"
hc --timeout 4000 "POST /duplex HTTP/1.1\r\nHost: early.test\r\nContent-Length: 300000\r\n\r\n" \
	--expect 'Content-Length: 14' --file "$T/early.body" --expect 'got=' >"$T/early.out" 2>/dev/null
grep -q -a '^got=000300000$' "$T/early.out" ||
	fail "body after an early response head: $(head -c 300 "$T/early.out"); app: $(cat "$T/early.log")"
fi

log "pipelined requests, then a half-close: every one is answered"
hc --timeout 5000 "GET /echo?n=1 HTTP/1.1\r\n${H}\r\nGET /echo?n=2 HTTP/1.1\r\n${H}\r\n" --shut >"$T/pshut.out"
rc=$?
[ "$rc" = 0 ] || fail "connection not closed after the answers to a half-closed client (exit $rc)"
[ "$(grep -c -a '^HTTP/1.1 200' "$T/pshut.out")" = 2 ] || fail "pipelined + half-close: $(cat "$T/pshut.out")"
grep -q -a '^target=/echo?n=2' "$T/pshut.out" || fail "second pipelined request not answered after a half-close"

log "a half-close in the middle of a body: 400, closed"
hc --timeout 5000 "POST /upload HTTP/1.1\r\n${H}Content-Length: 10\r\n\r\nhello" --shut >"$T/cut.out"
rc=$?
[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "connection open after a body cut by a half-close (exit $rc)"
[ "$(first_status "$T/cut.out")" = 400 ] || fail "body cut by a half-close: $(cat "$T/cut.out")"

log "a complete body, then a half-close, while the backend connection is still being made"
app_add slowconn.test
spawn slowaccept python3 "$top_srcdir/tests/slowaccept.py" "$T/sa.port" "$T/sa.go"
wait_for 10 test -s "$T/sa.port" || hard_error "tests/slowaccept.py did not start"
register slowconn.test sc1 "$(cat "$T/sa.port")"
wait_instance slowconn.test sc1
touch "$T/sa.go"
hc --timeout 8000 "POST /up HTTP/1.1\r\nHost: slowconn.test\r\nContent-Length: 5\r\n\r\nhello" --shut >"$T/shut.out"
grep -q -a '^body=5' "$T/shut.out" || fail "half-closed POST while connecting: $(cat "$T/shut.out")"
grep -q '^POST /up HTTP/1.1 body hello' "$T/slowaccept.log" || fail "the app never got the body: $(cat "$T/slowaccept.log")"

router_alive
log "ok"
