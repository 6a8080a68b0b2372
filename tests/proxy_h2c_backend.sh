#!/bin/bash
# Apps whose instances speak h2c (AppConfig backend_protocol, node/
# upstream-h2c.c) with a real h2c server (tests/h2server.py, python3-h2):
# a gRPC-style call from an HTTP/2 client (tests/h2grpc.py) arrives with
# its trailers (grpc-status), its request head carrying the forwarding
# headers; 1 MB both ways on several streams at once; an HTTP/1.1 client
# of the same app gets the body re-chunked with the trailers in its last
# chunk, and a trailers-only answer as a head alone; an instance that
# refuses connections is retried on another and ejected; the pools'
# counters in /metrics; the app switched back to http1 with zkrouterctl
# reaches an HTTP/1.1 instance over HTTP/1.1.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_require
CTL=$top_builddir/zkrouterctl
[ -x "$CTL" ] || hard_error "zkrouterctl not built"
ctl() { "$CTL" --zk "$ZK/zkrouter" --timeout 5000 "$@"; }
# python3-h2: Debian's python first (another python3 on the PATH may lack it).
H2PY=
for py in /usr/bin/python3 python3; do
	command -v "$py" >/dev/null && "$py" -c 'import h2' 2>/dev/null && H2PY=$py && break
done
[ -n "$H2PY" ] || skip "python3-h2 not installed"
curl -V | grep -q 'nghttp2' || skip "curl without HTTP/2"
SRC=$top_srcdir/tests

proxy_setup --h2c --retries 3 --eject-base-ms 60000 --eject-max-ms 60000
# start_h2 NAME: an h2c server; its port in H2_PORT.
start_h2() {
	spawn "h2-$1" "$H2PY" -u "$SRC/h2server.py"
	eval "H2_PID_$1=$SPAWNED_PID"
	wait_for 15 grep -q '^port ' "$T/h2-$1.log" || hard_error "h2server $1 did not start"
	H2_PORT=$(awk '/^port / { print $2; exit }' "$T/h2-$1.log")
}
metric() {
	curl -s --max-time 5 "http://$ADMIN/metrics" |
		awk -v m="$1" '$1 == m { v = $2 } END { print v + 0 }'
}
grpc() { "$H2PY" "$SRC/h2grpc.py" "$PROXY_PORT" "$@"; }

start_h2 g1
G1_PORT=$H2_PORT
app_add g.test app:backend_protocol=1
register g.test g1 "$G1_PORT"
wait_instance g.test g1
routes | grep -q '"backend_protocol": *"h2c"' || fail "/routes does not show h2c: $(routes)"

log "HTTP/2 client, gRPC-style unary call: body echoed, trailers arrive"
out=$(grpc g.test /unary --data 1000) || fail "h2grpc: $out"
echo "$out"
sent=$(echo "$out" | sed -n 's/^sent sha256=//p')
echo "$out" | grep -qx 'status=200' || fail "status: $out"
echo "$out" | grep -qx 'header content-type=application/grpc' || fail "content-type: $out"
echo "$out" | grep -qx "body=1000 sha256=$sent" || fail "body not echoed whole: $out"
echo "$out" | grep -qx 'trailer grpc-status=0' || fail "no grpc-status trailer: $out"
echo "$out" | grep -qx 'trailer grpc-message=ok' || fail "no grpc-message trailer: $out"
echo "$out" | grep -qx 'end' || fail "stream not ended cleanly: $out"
echo "$out" | grep -q '^header x-request-id=' || fail "no X-Request-Id: $out"
# The server saw it over HTTP/2 (its log names the stream).
grep -q 'stream 1 POST /unary' "$T/h2-g1.log" || fail "the h2c server never saw the stream"

log "the request head reaches the h2c server as fields, with the forwarding headers"
out=$(curl -s --max-time 20 -H 'Host: g.test' -H 'X-Test: 1' -H 'X-Forwarded-Proto: evil' \
	-H 'Keep-Alive: timeout=5' -H 'Connection: keep-alive, x-gone' -H 'X-Gone: 1' \
	"http://$PROXY/headers?q=1") || fail "curl /headers"
echo "$out"
echo "$out" | grep -qx ':method: GET' || fail ":method: $out"
echo "$out" | grep -qx ':path: /headers?q=1' || fail ":path: $out"
echo "$out" | grep -qx ':authority: g.test' || fail ":authority: $out"
echo "$out" | grep -qx ':scheme: http' || fail ":scheme: $out"
echo "$out" | grep -qx 'x-test: 1' || fail "x-test not forwarded: $out"
echo "$out" | grep -qx 'x-forwarded-proto: http' || fail "X-Forwarded-Proto not ours: $out"
echo "$out" | grep -qx 'x-forwarded-for: 127.0.0.1' || fail "X-Forwarded-For: $out"
echo "$out" | grep -qx 'x-forwarded-host: g.test' || fail "X-Forwarded-Host: $out"
echo "$out" | grep -q '^x-request-id: ' || fail "X-Request-Id: $out"
echo "$out" | grep -qiE '^(host|connection|keep-alive|x-gone|transfer-encoding|content-length):' &&
	fail "hop-by-hop or Host fields forwarded: $out"

log "1 MB up and down on 4 streams at once (windows of 64 KB on the way)"
out=$(grpc g.test /unary --data 1000000 --streams 4) || fail "h2grpc 1 MB: $out"
sent=$(echo "$out" | sed -n 's/^sent sha256=//p')
[ "$(echo "$out" | grep -cx "body=1000000 sha256=$sent")" = 4 ] || fail "1 MB bodies: $out"
[ "$(echo "$out" | grep -cx 'trailer grpc-status=0')" = 4 ] || fail "1 MB trailers: $out"

log "curl --http2-prior-knowledge: a POST of 200 KB echoed (DATA as it comes, /echo)"
head -c 200000 /dev/urandom >"$T/up.bin"
want=$(sha256sum <"$T/up.bin" | cut -d' ' -f1)
got=$(curl -s --max-time 30 --http2-prior-knowledge -H 'Host: g.test' --data-binary @"$T/up.bin" \
	"http://$PROXY/echo" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "h2 /echo of 200 KB differs"

log "HTTP/1.1 client: 200 KB with a Content-Length, echoed chunked, trailers in the last chunk"
curl -s --max-time 30 --raw -H 'Host: g.test' -H 'Content-Type: application/grpc' \
	-D "$T/h1.h" --data-binary @"$T/up.bin" "http://$PROXY/unary" -o "$T/h1.raw" ||
	fail "HTTP/1.1 POST failed"
cat "$T/h1.h"
first_status "$T/h1.h" | grep -qx 200 || fail "HTTP/1.1 status: $(cat "$T/h1.h")"
grep -qix 'transfer-encoding: chunked' <(tr -d '\r' <"$T/h1.h") || fail "not chunked to HTTP/1.1"
tail -c 200 "$T/h1.raw" | tr -d '\r' | grep -qx 'grpc-status: 0' ||
	fail "no grpc-status in the last chunk: $(tail -c 200 "$T/h1.raw" | od -c | tail -5)"
got=$(curl -s --max-time 30 -H 'Host: g.test' --data-binary @"$T/up.bin" "http://$PROXY/unary" |
	sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "HTTP/1.1 echo of 200 KB differs"

log "HTTP/1.1 client with Expect: 100-continue: the router's 100 lets the body go"
# curl would wait 30 s for it, past --max-time.
got=$(curl -s --max-time 20 --expect100-timeout 30 -H 'Host: g.test' -H 'Expect: 100-continue' \
	-D "$T/cont.h" --data-binary @"$T/up.bin" "http://$PROXY/unary" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "Expect: 100-continue upload: $(cat "$T/cont.h")"
first_status "$T/cont.h" | grep -qx 100 || fail "no 100 Continue: $(cat "$T/cont.h")"

log "HTTP/1.1 client, chunked upload of 200 KB (de-chunked for the stream)"
got=$(curl -s --max-time 30 -H 'Host: g.test' -H 'Transfer-Encoding: chunked' \
	--data-binary @"$T/up.bin" "http://$PROXY/unary" | sha256sum | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "HTTP/1.1 chunked upload echo differs"

log "a head that ends the stream (the server's 404) comes as a head alone"
code=$(curl -s --max-time 20 -H 'Host: g.test' -o /dev/null -w '%{http_code}' "http://$PROXY/nothing")
[ "$code" = 404 ] || fail "trailers-only answer over HTTP/1.1: $code"
out=$(grpc g.test /nothing) || fail "h2grpc 404: $out"
echo "$out" | grep -qx 'status=404' && echo "$out" | grep -qx 'body=0 sha256=.*' ||
	fail "trailers-only answer over HTTP/2: $out"

log "an instance that refuses connections: calls with 100 KB bodies retried on the other, ejected"
DEAD_PORT=$(free_port) || hard_error "no free port"
register g.test gx "$DEAD_PORT"
wait_instance g.test gx
# The balancer draws two instances at random: call until one call was
# sent to gx (bounded: 40 calls all missing it has odds of 2^-40).
for i in $(seq 1 40); do
	out=$(grpc g.test /unary --data 100000) || fail "request $i with a refusing instance: $out"
	echo "$out" | grep -qx 'trailer grpc-status=0' || fail "request $i: $out"
	grep -q 'h2c 127.0.0.1:'"$DEAD_PORT"': .*trying another instance' "$T/zkrouterd.log" && break
done
echo "the refusing instance was drawn by call $i"
routes | "$H2PY" -c '
import json, sys
t = json.load(sys.stdin)
insts = {i["id"]: i["runtime"] for a in t["apps"] for i in a["instances"]}
assert insts["gx"]["consecutive_failures"] >= 1, insts["gx"]
assert insts["gx"]["ejected"], insts["gx"]
assert insts["g1"]["consecutive_failures"] == 0, insts["g1"]
' || fail "the refusing instance was not tried and ejected: $(routes)"
grep 'h2c 127.0.0.1:'"$DEAD_PORT"': .*trying another instance' "$T/zkrouterd.log" ||
	fail "no retry logged"
# The retried call had its body (the access log counts its attempts).
wait_for 10 grep -q 'method=POST target=/unary .*attempts=2' "$T/access.log" ||
	fail "no POST with a body went to a second instance: $(grep unary "$T/access.log" | tail -8)"

log "a stream refused after its body was read goes to another instance, body and all"
# RFC 9113 8.7: REFUSED_STREAM means the instance did not act on it. r1
# (the server g1) refuses every /refuse call that names its port. Which
# instance a call tries first depends on its worker's round robin, so
# calls go until one was refused (and then sent again), 12 at most.
start_h2 r2
R2_PORT=$H2_PORT
app_add r.test app:backend_protocol=1,balance=round-robin
register r.test r1 "$G1_PORT"
register r.test r2 "$R2_PORT"
wait_instance r.test r1
wait_instance r.test r2
refused() { [ "$(grep -c "stream [0-9]* refused after $1 bytes" "$T/h2-g1.log")" -ge 1 ]; }
for i in $(seq 1 12); do
	out=$(grpc r.test /refuse --data 20000 --header "x-refuse-port=$G1_PORT") || fail "call $i: $out"
	sent=$(echo "$out" | sed -n 's/^sent sha256=//p')
	echo "$out" | grep -qx 'trailer grpc-status=0' && echo "$out" | grep -qx "body=20000 sha256=$sent" ||
		fail "call $i after a refusal: $out"
	refused 20000 && break
done
refused 20000 || fail "in 12 calls none was refused by r1: $(tail -5 "$T/h2-g1.log")"
echo "HTTP/2: call $i was refused by r1 and answered whole"
grep -q 'refused; trying another instance with the body again' "$T/zkrouterd.log" ||
	fail "no retry with the body logged: $(grep 'trying another' "$T/zkrouterd.log" | tail -3)"
# An HTTP/1.1 client's body (de-framed from chunks) is sent again too.
head -c 30000 /dev/urandom >"$T/refuse.bin"
for i in $(seq 1 12); do
	curl -s --max-time 20 -H 'Host: r.test' -H "x-refuse-port: $G1_PORT" -H 'Transfer-Encoding: chunked' \
		--data-binary @"$T/refuse.bin" -o "$T/refuse.out" "http://$PROXY/refuse" ||
		fail "HTTP/1.1 call $i to /refuse"
	cmp -s "$T/refuse.bin" "$T/refuse.out" || fail "HTTP/1.1 call $i: the body came back different"
	refused 30000 && break
done
refused 30000 || fail "in 12 HTTP/1.1 calls none was refused by r1"
echo "HTTP/1.1: call $i was refused by r1 and answered whole"

log "the app's connect timeout (300 ms) bounds its h2c connects, not the router's (2 s)"
# tests/slowaccept.py keeps its backlog full: SYNs are dropped and the
# kernel would retry them after 1 s, then 3 s.
spawn slowaccept python3 "$SRC/slowaccept.py" "$T/sa.port" "$T/sa.go"
wait_for 10 test -s "$T/sa.port" || hard_error "tests/slowaccept.py did not start"
app_add s.test app:backend_protocol=1,connect_timeout_ms=300
register s.test s1 "$(cat "$T/sa.port")"
wait_instance s.test s1
t0=$(now_ms)
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --http2-prior-knowledge \
	-H 'Host: s.test' "http://$PROXY/")
took=$(( $(now_ms) - t0 ))
echo "a connect that never completes: $code after $took ms"
case $code in 502 | 503) ;; *) fail "a connect that never completes: $code after $took ms" ;; esac
[ "$took" -lt 1500 ] || fail "the app's 300 ms connect timeout was not applied: answered after $took ms"
grep -q "h2c 127.0.0.1:$(cat "$T/sa.port"): .*connect" "$T/zkrouterd.log" ||
	fail "the connect timeout was not logged"

log "/metrics: the h2c pools' counters"
[ "$(metric zkrouter_h2c_streams_total)" -ge 10 ] || fail "h2c streams: $(curl -s "http://$ADMIN/metrics" | grep h2c)"
[ "$(metric zkrouter_h2c_connection_failures_total)" -ge 1 ] || fail "h2c connect failures not counted"
[ "$(metric zkrouter_h2c_connections)" -ge 1 ] || fail "no open h2c connection counted"

log "switched back to http1 with zkrouterctl: HTTP/1.1 to an HTTP/1.1 instance"
ctl app set g.test --backend-protocol http1 >/dev/null || fail "app set --backend-protocol http1"
start_backend b1
register g.test b1 "$BACKEND_PORT"
deregister g1
deregister gx
wait_instance g.test g1 gone
wait_instance g.test b1
wait_for 15 sh -c "curl -s --max-time 5 http://$ADMIN/routes | grep -q '\"backend_protocol\": *\"http1\"'" ||
	fail "the table still says h2c: $(routes)"
out=$(pcurl g.test /echo) || fail "HTTP/1.1 client after the switch"
echo "$out" | grep -qx 'backend=b1' && echo "$out" | grep -qx 'version=HTTP/1.1' ||
	fail "not HTTP/1.1 to b1: $out"
out=$(curl -s --max-time 20 --http2-prior-knowledge -H 'Host: g.test' "http://$PROXY/echo") ||
	fail "HTTP/2 client after the switch"
echo "$out" | grep -qx 'backend=b1' && echo "$out" | grep -qx 'version=HTTP/1.1' ||
	fail "HTTP/2 client not sent over HTTP/1.1 to b1: $out"
router_alive

log "SIGTERM with h2c connections open: the router drains and exits 0"
app_add h.test app:backend_protocol=1
register h.test h1 "$G1_PORT"
wait_instance h.test h1
out=$(grpc h.test /unary --data 10) || fail "h.test: $out"
echo "$out" | grep -qx 'trailer grpc-status=0' || fail "h.test: $out"
[ "$(metric zkrouter_h2c_connections)" -ge 1 ] || fail "no h2c connection open before the SIGTERM"
kill -TERM "$ROUTER_PID"
wait_for 40 sh -c "! kill -0 $ROUTER_PID 2>/dev/null" || fail "zkrouterd still running 40 s after the SIGTERM"
rc=0
wait "$ROUTER_PID" || rc=$?
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $ROUTER_PID / /")
[ "$rc" = 0 ] || fail "zkrouterd exited $rc after SIGTERM"
log "ok"
