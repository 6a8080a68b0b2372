#!/bin/bash
# Request limits and client timeouts of zkrouterd, set small on its command
# line: 431 for a head over --max-head-bytes or more than --max-headers
# headers, 414 for a target over --max-target-bytes, 408 for a head not
# received within --head-timeout-ms (also when it trickles in, slowloris),
# and idle keep-alive connections closed after --client-idle-timeout-ms.
# A request body that stops arriving gets 408 after --head-timeout-ms
# without a byte (one that trickles is not cut), and a client that stops
# reading a large answer is closed after --client-idle-timeout-ms with its
# request ended (not left in flight, its backend connection paused).
# Requests just under the limits pass intact; nothing over them reaches the
# backend.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_setup --max-head-bytes 4096 --max-headers 20 --max-target-bytes 1024 \
	--head-timeout-ms 1000 --client-idle-timeout-ms 1500
start_backend a1
app_add a.test
register a.test a1 "$BACKEND_PORT"
wait_instance a.test a1
H='Host: a.test\r\n'

# elapsed_hc OUT ARGS...: runs hclient, sets RC and MS (how long it took).
elapsed_hc() {
	local out=$1 t0
	shift
	t0=$(now_ms)
	hc "$@" >"$out" 2>/dev/null
	RC=$?
	MS=$(( $(now_ms) - t0 ))
}

big=$(head -c 6000 /dev/zero | tr '\0' 'v')
ok=$(head -c 3000 /dev/zero | tr '\0' 'v')
longpath=/limit-$(head -c 2000 /dev/zero | tr '\0' 'p')
okpath="/echo?$(head -c 900 /dev/zero | tr '\0' 'p')"

log "a 3000-byte header passes intact"
out=$(pcurl a.test /echo -H "X-Big: $ok")
echo "$out" | grep -q "^h: X-Big: $ok\$" || fail "3000-byte header not forwarded intact"

log "a 6000-byte header: 431"
elapsed_hc "$T/431.out" --timeout 5000 "GET /limit-head HTTP/1.1\r\n${H}X-Big: $big\r\n\r\n"
[ "$(first_status "$T/431.out")" = 431 ] || fail "big head: $(head -c 300 "$T/431.out")"

log "20 headers pass, 31 headers: 431"
many=""
for i in $(seq 1 18); do many="${many}X-H$i: $i\r\n"; done
hc --timeout 3000 "GET /echo HTTP/1.1\r\n${H}${many}Connection: close\r\n\r\n" >"$T/h19.out"
[ "$(first_status "$T/h19.out")" = 200 ] || fail "20 headers refused: $(head -c 300 "$T/h19.out")"
for i in $(seq 19 30); do many="${many}X-H$i: $i\r\n"; done
hc --timeout 3000 "GET /limit-count HTTP/1.1\r\n${H}${many}\r\n" >"$T/h30.out"
[ "$(first_status "$T/h30.out")" = 431 ] || fail "31 headers: $(head -c 300 "$T/h30.out")"

log "a 900-byte target passes, a 2000-byte target: 414"
out=$(pcurl a.test "$okpath")
echo "$out" | grep -q "^target=$okpath\$" || fail "900-byte target not forwarded intact"
hc --timeout 3000 "GET $longpath HTTP/1.1\r\n${H}\r\n" >"$T/414.out"
[ "$(first_status "$T/414.out")" = 414 ] || fail "long target: $(head -c 300 "$T/414.out")"

log "an unfinished head: 408 after about 1 s, then closed"
elapsed_hc "$T/408.out" --timeout 6000 "GET /limit-slow HTTP/1.1\r\n${H}X-Never: ends"
[ "$(first_status "$T/408.out")" = 408 ] || fail "unfinished head: '$(head -c 300 "$T/408.out")' after $MS ms"
[ "$RC" = 0 ] || [ "$RC" = 3 ] || fail "connection open after 408 (exit $RC)"
[ "$MS" -ge 800 ] && [ "$MS" -lt 4000 ] || fail "408 after $MS ms (head timeout 1000 ms)"

log "slowloris: a header line every 250 ms still gets 408 at about 1 s"
# The drip lasts at least 40 x 250 ms = 10 s: a timer restarted by each
# line would answer only after the drip, the head timeout well before it.
steps=()
for i in $(seq 1 40); do steps+=(--sleep 250 "X-Drip-$i: x\r\n"); done
elapsed_hc "$T/loris.out" --timeout 6000 "GET /limit-loris HTTP/1.1\r\n${H}" "${steps[@]}"
[ "$(first_status "$T/loris.out")" = 408 ] || fail "slowloris: '$(head -c 300 "$T/loris.out")' after $MS ms"
[ "$MS" -ge 800 ] || fail "slowloris answered after $MS ms, before the head timeout (1000 ms)"
[ "$MS" -lt 10000 ] || fail "slowloris held the connection $MS ms, past its whole drip (head timeout 1000 ms)"

log "a connection that sends nothing is closed"
elapsed_hc "$T/silent.out" --timeout 8000
[ "$RC" = 0 ] || [ "$RC" = 3 ] || fail "silent connection still open after $MS ms"
[ "$MS" -lt 4000 ] || fail "silent connection closed only after $MS ms"

log "an idle keep-alive connection is closed after about 1.5 s"
elapsed_hc "$T/idle.out" --timeout 8000 "GET / HTTP/1.1\r\n${H}\r\n"
grep -q '^ok a1' "$T/idle.out" || fail "keep-alive request not answered"
[ "$RC" = 0 ] || [ "$RC" = 3 ] || fail "idle keep-alive connection still open after $MS ms"
[ "$MS" -ge 1200 ] && [ "$MS" -lt 5000 ] || fail "idle keep-alive connection closed after $MS ms (want ~1500)"

log "a request body that stops arriving: 408 after about 1 s, then closed"
elapsed_hc "$T/bstall.out" --timeout 6000 \
	"POST /upload?stalled-body HTTP/1.1\r\n${H}Content-Length: 100\r\n\r\n0123456789"
[ "$(first_status "$T/bstall.out")" = 408 ] || fail "stalled body: '$(head -c 300 "$T/bstall.out")' after $MS ms"
[ "$RC" = 0 ] || [ "$RC" = 3 ] || fail "connection open after a stalled body's 408 (exit $RC)"
[ "$MS" -ge 800 ] && [ "$MS" -lt 4000 ] || fail "stalled body answered after $MS ms (head timeout 1000 ms)"

log "a body that trickles (5 bytes every 400 ms, 3.2 s in all) is not cut: the timeout is per read"
steps=()
for i in $(seq 1 8); do steps+=(--sleep 400 "xxxxx"); done
elapsed_hc "$T/btrickle.out" --timeout 3000 "POST /upload?trickle HTTP/1.1\r\n${H}Content-Length: 40\r\n\r\n" "${steps[@]}"
grep -q '^bytes=40 ' "$T/btrickle.out" || fail "trickled body: '$(head -c 300 "$T/btrickle.out")' after $MS ms"

log "a client that stops reading a large answer: closed after 1.5 s, its request ended"
exec 5<>"/dev/tcp/127.0.0.1/$PROXY_PORT" || hard_error "cannot connect to the router"
printf 'GET /big?bytes=1000000000 HTTP/1.1\r\nHost: a.test\r\n\r\n' >&5
metrics() { curl -s --max-time 2 "http://$ADMIN/metrics"; }
wait_for 20 sh -c "curl -s --max-time 2 http://$ADMIN/metrics | grep -q '^zkrouter_active_requests 1\$'" ||
	fail "the large answer never started"
# The router closes the connection at its write timeout; the request on it
# (its backend paused for backpressure) must end with it, not leak.
wait_for 20 sh -c "curl -s --max-time 2 http://$ADMIN/metrics | grep -q '^zkrouter_active_requests 0\$'" ||
	fail "request still in flight after its client was closed: $(metrics | grep active_requests)"
exec 5>&-
grep -q 'client stopped reading' "$T/zkrouterd.log" || fail "the router never timed out the stalled reader"
router_alive

log "nothing over a limit reached the backend"
if grep 'limit-' "$T/backend-a1.log"; then
	fail "the backend saw a request over a limit (above)"
fi
router_alive
[ "$(pcurl a.test /)" = "ok a1" ] || fail "router stopped serving"
log "ok"
