#!/bin/bash
# Backend failures seen by zkrouterd: 502 backend_failed when the only
# instance refuses connections or closes without answering; no client error
# when one of two instances is dead (registered but refusing) or is killed
# while the router holds pooled connections to it (retry on another
# instance); 504 backend_timeout past --response-timeout-ms; a backend's own
# 5xx passes through untouched; a broken answer (Content-Length with
# chunked, two lengths, not HTTP) becomes 502 with none of its bytes passed
# on, and a body cut short closes the client connection instead of hanging
# or reusing it; a backend that closes idle keep-alive
# connections (tests/backend --idle-close) causes no client-visible error,
# not even when each request on a pooled connection crosses the backend's
# close (--idle-drop: the request is read, then the connection closed with
# no answer), because nothing reached the app and the router retries on a
# fresh connection. When every instance of an app is ejected the router
# fails open: it still tries them (502, never 503) and serves as soon as
# one is back. A client that gives up mid-answer or mid-upload must
# not leave a half-used backend connection in the pool: every later request
# gets its own answer. An upload slower than --response-timeout-ms is not
# cut (the timeout starts once the body is sent). A request that is not
# idempotent (POST) is never sent twice: on a dropped pooled connection it
# gets 502. A backend that dies mid-answer to a slow reader: every byte
# relayed before still reaches the client, then the connection closes.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"
# Idle backend connections are pooled per worker: the reuse this test
# asserts across client connections holds within one worker, so its router
# runs one.
WORKERS_ARG=--workers=1

proxy_setup --response-timeout-ms 1000 --connect-timeout-ms 500 --retries 3
DEAD_PORT=$(free_port)
start_backend a1; PA1=$BACKEND_PORT
start_backend k1; PK1=$BACKEND_PORT
start_backend k2; PK2=$BACKEND_PORT
start_backend s1; PS1=$BACKEND_PORT
start_backend ic1 --idle-close 200; PIC=$BACKEND_PORT
start_backend id1 --idle-drop 250; PID1=$BACKEND_PORT
for d in dead.test mixed.test kill.test slow.test idle.test drop.test fo.test; do app_add "$d"; done
FO1=$(free_port)
FO2=$(free_port)
register fo.test fo1 "$FO1"
register fo.test fo2 "$FO2"
register dead.test dead1 "$DEAD_PORT"
register mixed.test a1 "$PA1"
register mixed.test dead2 "$DEAD_PORT"
register kill.test k1 "$PK1"
register kill.test k2 "$PK2"
register slow.test s1 "$PS1"
register idle.test ic1 "$PIC"
register drop.test id1 "$PID1"
for i in dead1 a1 dead2 k1 k2 s1 ic1 id1 fo1 fo2; do wait_instance any "$i"; done

log "the only instance refuses connections: 502 backend_failed"
t0=$(now_ms)
pcurl dead.test / -D "$T/h502" -o "$T/b502" >/dev/null
ms=$(( $(now_ms) - t0 ))
[ "$(first_status "$T/h502")" = 502 ] || fail "dead instance: $(cat "$T/h502")"
grep -qi '^x-zkrouter-error: backend_failed' "$T/h502" || fail "502 without X-Zkrouter-Error: backend_failed"
grep -qi '^x-request-id: .' "$T/h502" || fail "502 without X-Request-Id"
[ "$ms" -lt 5000 ] || fail "502 took $ms ms"

log "one of two instances refuses: 40 requests, no error"
for i in $(seq 1 40); do
	out=$(pcurl mixed.test "/?n=$i")
	[ "$out" = "ok a1" ] || fail "request $i with a dead instance: '$out'"
done

log "an instance killed under load: no error (retried on the other)"
for i in $(seq 1 20); do
	out=$(pcurl kill.test /)
	case $out in "ok k1" | "ok k2") ;; *) fail "kill.test warm-up: '$out'" ;; esac
done
grep -q '^req k2' "$T/backend-k2.log" || fail "k2 never got traffic before the kill"
stop_pid "$(backend_pid k2)" KILL
for i in $(seq 1 40); do
	out=$(pcurl kill.test "/?after-kill=$i")
	[ "$out" = "ok k1" ] || fail "request $i after k2 died: '$out'"
done

log "the instance closes without answering: 502"
code=$(pcurl slow.test /close -o /dev/null -w '%{http_code}')
[ "$code" = 502 ] || fail "/close gave $code"

log "no first byte within 1 s: 504 backend_timeout"
t0=$(now_ms)
pcurl slow.test '/slow?ms=4000' -D "$T/h504" -o /dev/null >/dev/null
ms=$(( $(now_ms) - t0 ))
[ "$(first_status "$T/h504")" = 504 ] || fail "slow backend: $(cat "$T/h504")"
grep -qi '^x-zkrouter-error: backend_timeout' "$T/h504" || fail "504 without X-Zkrouter-Error: backend_timeout"
[ "$ms" -ge 900 ] && [ "$ms" -lt 3500 ] || fail "504 after $ms ms (response timeout 1000 ms)"
out=$(pcurl slow.test '/slow?ms=300')
[ "$out" = "slow s1" ] || fail "a slow answer inside the timeout: '$out'"

log "a backend's own 503 passes through, not as a router error"
pcurl slow.test '/status?code=503' -D "$T/h503" -o "$T/b503" >/dev/null
[ "$(first_status "$T/h503")" = 503 ] || fail "backend 503: $(cat "$T/h503")"
grep -qi '^x-zkrouter-error' "$T/h503" && fail "backend 503 marked as a router error"
[ "$(cat "$T/b503")" = "status 503 s1" ] || fail "backend 503 body: $(cat "$T/b503")"

for k in clte dupcl garbage; do
	log "a broken answer ($k): 502, nothing of it forwarded"
	pcurl slow.test "/badresp?kind=$k" -D "$T/hbad" -o "$T/bbad" >/dev/null
	[ "$(first_status "$T/hbad")" = 502 ] || fail "broken answer $k: $(cat "$T/hbad" "$T/bbad")"
	grep -q badresp "$T/bbad" && fail "bytes of the broken answer $k reached the client"
done

log "a body cut short: what was relayed arrives, then the connection closes"
for i in 1 2 3 4 5; do
	hc --timeout 5000 "GET /badresp?kind=short&i=$i HTTP/1.1\r\nHost: slow.test\r\n\r\n" >"$T/short.out" 2>/dev/null
	rc=$?
	[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "connection still open after a cut-short body (exit $rc)"
	grep -q -a 'badresp-short' "$T/short.out" ||
		fail "try $i: the relayed head and body part never reached the client (got $(wc -c <"$T/short.out") bytes)"
done
hc --timeout 5000 "GET /badresp?kind=short HTTP/1.1\r\nHost: slow.test\r\n\r\nGET /?after-short HTTP/1.1\r\nHost: slow.test\r\n\r\n" >"$T/short.out" 2>/dev/null
rc=$?
[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "connection still open after a cut-short body (exit $rc)"
[ "$(grep -c -a '^HTTP/1' "$T/short.out")" -le 1 ] || fail "answered after a cut-short body: $(cat "$T/short.out")"

log "a chunk decoded before a broken chunk size reaches no other answer"
pcurl slow.test "/badresp?kind=badchunk" -o /dev/null >/dev/null
out=$(pcurl slow.test "/stream?chunks=2&delay=1")
case $out in
*badresp*) fail "bytes of a broken chunked answer reached the next answer: $out" ;;
esac
[ "$(echo "$out" | grep -c '^chunk [01] of s1')" = 2 ] || fail "chunked answer after a broken one: $out"

log "every instance ejected: still tried (502, not 503), served once one is back"
for i in 1 2 3 4; do
	pcurl fo.test "/?fo=$i" -D "$T/hfo" -o /dev/null >/dev/null
	[ "$(first_status "$T/hfo")" = 502 ] || fail "all instances dead, request $i: $(cat "$T/hfo")"
done
[ "$(routes | grep -o '"ejected":true' | wc -l)" -ge 2 ] || log "note: /routes does not show both instances ejected"
start_backend fo1 --listen "127.0.0.1:$FO1"
ok=no
deadline=$(( $(now_ms) + 15000 ))
i=0
while [ "$(now_ms)" -lt "$deadline" ]; do
	i=$((i + 1))
	out=$(pcurl fo.test "/?back=$i")
	[ "$out" = "ok fo1" ] && ok=yes && break
	case $out in *no_instances*) fail "503 while every instance was ejected: no fail-open" ;; esac
	sleep 0.3
done
[ "$ok" = yes ] || fail "fo1 came back but ejected instances were never tried ($i requests in 15 s)"

log "a client gives up while its answer is pending: later requests get their own answers"
pcurl slow.test '/slow?ms=1500&abandoned' --max-time 0.3 >/dev/null
for i in $(seq 1 10); do
	out=$(pcurl slow.test "/echo?n=$i")
	echo "$out" | grep -q "^target=/echo?n=$i\$" || fail "after an abandoned answer, request $i got: $out"
done
# The backend logs when it sends the abandoned answer: wait for that.
aconn=$(sed -n 's|^req s1 \([0-9]*\) GET /slow?ms=1500&abandoned$|\1|p' "$T/backend-s1.log")
[ -n "$aconn" ] || fail "the abandoned request never reached the backend"
wait_for 15 grep -q "^slow-answered s1 $aconn\$" "$T/backend-s1.log" ||
	fail "the backend never sent the abandoned answer"
for i in $(seq 11 15); do
	out=$(pcurl slow.test "/echo?n=$i")
	echo "$out" | grep -q "^target=/echo?n=$i\$" || fail "after an abandoned answer arrived, request $i got: $out"
done

log "a client gives up mid-upload: later requests get their own answers"
hc --timeout 300 "POST /echo?abandoned HTTP/1.1\r\nHost: slow.test\r\nContent-Length: 1000000\r\n\r\n$(head -c 1000 /dev/zero | tr '\0' x)" >/dev/null 2>&1
for i in $(seq 1 10); do
	out=$(pcurl slow.test "/echo?m=$i")
	echo "$out" | grep -q "^target=/echo?m=$i\$" || fail "after an abandoned upload, request $i got: $out"
	echo "$out" | grep -q '^body-bytes=0$' || fail "after an abandoned upload, request $i carried a body: $out"
done

log "backend closes idle pooled connections after 200 ms: requests every 120-280 ms see no error"
for i in $(seq 1 40); do
	out=$(pcurl idle.test "/?i=$i")
	[ "$out" = "ok ic1" ] || fail "request $i to an idle-closing backend: '$out'"
	sleep "0.$(( 12 + RANDOM % 17 ))"
done
closes=$(grep -c '^idle-close' "$T/backend-ic1.log")
log "the backend closed $closes idle connections"
[ "$closes" -ge 5 ] || fail "the backend closed only $closes idle connections: the case was not exercised"

log "a request on a pooled connection the backend dropped: retried on a fresh one"
for i in $(seq 1 10); do
	out=$(pcurl drop.test "/?d=$i")
	[ "$out" = "ok id1" ] || fail "request $i on a dropped pooled connection: '$out'"
	sleep 0.4
done
drops=$(grep -c '^idle-drop' "$T/backend-id1.log")
log "the backend dropped $drops requests on stale connections"
[ "$drops" -ge 5 ] || fail "only $drops drops: the router did not reuse pooled connections, case not exercised"

log "an upload slower than the response timeout (2.4 s vs 1 s) is answered, not 504"
steps=()
for i in $(seq 1 8); do steps+=(--sleep 300 "xxxxx"); done
hc --timeout 3000 "POST /upload?slow-client HTTP/1.1\r\nHost: slow.test\r\nConnection: close\r\nContent-Length: 40\r\n\r\n" \
	"${steps[@]}" >"$T/slowup.out" 2>/dev/null
grep -q '^bytes=40 ' "$T/slowup.out" || fail "slow upload: $(head -c 300 "$T/slowup.out")"
log "the response timeout still runs once the body is sent: 504"
pcurl slow.test '/slow?ms=3000&with-body' -d 'x=1' -D "$T/h504b" -o /dev/null >/dev/null
[ "$(first_status "$T/h504b")" = 504 ] || fail "silent backend after a body: $(cat "$T/h504b")"

log "a POST on a pooled connection the backend dropped: 502, never sent twice"
# The backend logs a request it read and then dropped as "idle-drop", not
# "req": each drop must be a 502 to the client, not a silent second send.
drops0=$(grep -c '^idle-drop' "$T/backend-id1.log")
n502=0
for i in $(seq 1 6); do
	code=$(pcurl drop.test "/charge?n=$i" -X POST -o /dev/null -w '%{http_code}')
	case $code in
	200) ;;
	502) n502=$((n502 + 1)) ;;
	*) fail "POST $i on drop.test: $code" ;;
	esac
	sleep 0.4
done
drops=$(( $(grep -c '^idle-drop' "$T/backend-id1.log") - drops0 ))
log "$drops POSTs were read and dropped by the backend, $n502 got 502"
[ "$drops" -ge 2 ] || fail "only $drops POSTs met a dropped connection: case not exercised"
[ "$n502" = "$drops" ] || fail "$drops POSTs reached the app and were dropped, but only $n502 got 502 (replayed)"
[ "$(grep -c ' POST /charge?n=' "$T/backend-id1.log")" = $((6 - n502)) ] ||
	fail "the app answered more POSTs than the client got answers for"

if command -v python3 >/dev/null; then
log "a backend dies mid-answer while the client is backed up: every byte relayed still arrives"
start_backend cut1
app_add cut.test
register cut.test cut1 "$BACKEND_PORT"
wait_instance cut.test cut1
# The client reads nothing until $T/cut.go exists: every buffer on the way
# fills and the router pauses the backend; the backend is killed then, and
# the client drains slowly, so the router meets the backend's end with
# bytes still queued for the client. It prints how many bytes it received.
python3 - "$PROXY_PORT" "$T/cut.go" >"$T/cut.out" 2>&1 <<'PY' &
import os, socket, sys, time
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
c.sendall(b"GET /big?bytes=1000000000 HTTP/1.1\r\nHost: cut.test\r\n\r\n")
while not os.path.exists(sys.argv[2]):
    time.sleep(0.02)
n = 0
while True:
    try:
        d = c.recv(16384)
    except ConnectionResetError:
        break
    if not d:
        break
    n += len(d)
    time.sleep(0.0005)
print(n)
PY
cut_pid=$!
# Backed up: bytes unsent both on the router's socket to the client and on
# the backend's socket to the router (the router stopped reading it).
unsent() { ss -Htn state established "( $1 )" | awk '$2 > 0 { n++ } END { exit !n }'; }
wait_for 15 grep -q '^req cut1 .* GET /big' "$T/backend-cut1.log" || fail "the large request never reached cut1"
wait_for 15 unsent "sport = :$PROXY_PORT" || fail "the router's output to the stalled client never backed up"
wait_for 15 unsent "sport = :$BACKEND_PORT" || fail "the router never paused the backend"
stop_pid "$(backend_pid cut1)" KILL
touch "$T/cut.go"
wait "$cut_pid" || fail "the slow client failed: $(cat "$T/cut.out")"
got=$(cat "$T/cut.out")
wait_for 20 grep -q 'host=cut.test' "$T/access.log" || fail "no access log line for the cut answer"
relayed=$(grep 'host=cut.test' "$T/access.log" | tail -n 1 | sed 's/.* out=\([0-9]*\).*/\1/')
log "client got $got bytes, the router relayed $relayed"
[ "$got" = "$relayed" ] || fail "the client got $got of the $relayed bytes relayed before the cut"
[ "$got" -lt 1000000000 ] || fail "the answer was not cut"
fi

log "a reused pooled connection gets the whole response timeout, also when it equals the idle timeout"
# The router's idle timeout for pooled connections is 4000 ms (default); this
# app's response timeout is the same value.
app_add rt.test app:response_timeout_ms=4000
register rt.test r1 "$PS1"
wait_instance rt.test r1
[ "$(pcurl rt.test /?rt-first -o /dev/null -w '%{http_code}')" = 200 ] || fail "rt.test"
sleep 2.5
code=$(pcurl rt.test '/slow?ms=2000&rt-second' -o /dev/null -w '%{http_code}')
[ "$code" = 200 ] || fail "2 s answer on a connection idle for 2.5 s: $code, want 200"
c1=$(sed -n 's|^req s1 \([0-9]*\) GET /?rt-first$|\1|p' "$T/backend-s1.log")
c2=$(sed -n 's|^req s1 \([0-9]*\) GET /slow?ms=2000&rt-second$|\1|p' "$T/backend-s1.log")
[ -n "$c1" ] && [ "$c1" = "$c2" ] || fail "the slow request did not reuse the pooled connection ($c1, $c2): case not exercised"

router_alive
log "ok"
