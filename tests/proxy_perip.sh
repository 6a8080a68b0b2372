#!/bin/bash
# Per-client-address limits of zkrouterd, with real clients bound to
# different loopback source addresses (127.0.0.1, .2, .3 are different
# clients to the router): --max-connections-per-ip answers the request of
# a connection over it 429 (Retry-After, X-Zkrouter-Error, request id)
# and closes it, closes a connection past twice the limit at once, and
# counts neither against another address; a reload (SIGHUP) that raises
# the limit lets the next connection in. --max-requests-per-ip-per-s
# answers 429 with Retry-After past the burst, per address, and lets the
# address in again once a token is earned. A flood from 1500 addresses
# leaves the per-IP table at its size. /metrics counts each kind.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"
# The limit this test asserts is per worker until it becomes process-wide
# state shared by the workers: its router runs one worker until then.
WORKERS_ARG=--workers=1

command -v python3 >/dev/null || skip "python3 missing"
HOLD=$top_srcdir/tests/holdconns.py

cat >"$T/zkrouterd.conf" <<CONF
max-connections-per-ip = 2
CONF
# A small table (8 buckets of 8), so that a flood of addresses fills it.
proxy_setup --config "$T/zkrouterd.conf" --per-ip-table-size 64
start_backend a1
app_add a.test
register a.test a1 "$BACKEND_PORT"
wait_instance a.test a1

metric() { curl -s --max-time 2 "http://$ADMIN/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
# from SRC [CURL-ARGS...]: one request to a.test from source address SRC;
# prints the response head and body.
from() {
	local src=$1
	shift
	curl -s -i --max-time 10 --interface "$src" -H 'Host: a.test' "$@" "http://$PROXY/"
}
# hold NAME SRC N MODE: connections held open by holdconns.py.
hold() {
	rm -f "$T/$1.out"
	spawn "$1" python3 "$HOLD" "$2" "$PROXY_PORT" "$3" "$4" "$T/$1.out"
	eval "HOLD_PID_$1=\$SPAWNED_PID"
	wait_for 20 grep -q '^ready' "$T/$1.out" || fail "$1: connections not held: $(cat "$T/$1.out" 2>/dev/null)"
}
unhold() { local pid; eval "pid=\$HOLD_PID_$1"; stop_pid "$pid"; }
reload() {
	local n
	n=$(grep -c 'reload applied' "$T/zkrouterd.log")
	kill -HUP "$ROUTER_PID"
	wait_for 10 sh -c "[ \$(grep -c 'reload applied' '$T/zkrouterd.log') -gt $n ]" ||
		fail "SIGHUP did not apply the file: $(grep reload "$T/zkrouterd.log" | tail -2)"
}

log "two connections from 127.0.0.1 are within max-connections-per-ip 2"
hold h1 127.0.0.1 2 get
[ "$(grep -c '^200$' "$T/h1.out")" = 2 ] || fail "held connections not answered: $(cat "$T/h1.out")"

log "a third from 127.0.0.1: 429 with Retry-After, the error code and a request id, then closed"
out=$(from 127.0.0.1)
echo "$out" | head -1 | grep -q '^HTTP/1.1 429 ' || fail "third connection: $(echo "$out" | head -5)"
echo "$out" | grep -qi '^Retry-After: 1' || fail "429 without Retry-After: $out"
echo "$out" | grep -qi '^X-Zkrouter-Error: too_many_connections' || fail "429 without its error code: $out"
echo "$out" | grep -qi '^X-Request-Id: ' || fail "429 without a request id: $out"
echo "$out" | grep -qi '^Connection: close' || fail "429 over the connection limit keeps the connection: $out"
[ "$(metric zkrouter_per_ip_rejected_connections_total)" = 1 ] ||
	fail "rejected connections not counted: $(metric zkrouter_per_ip_rejected_connections_total)"

log "127.0.0.2 is another client: its connections pass"
hold h2 127.0.0.2 2 get
[ "$(grep -c '^200$' "$T/h2.out")" = 2 ] || fail "127.0.0.2 limited by 127.0.0.1's connections: $(cat "$T/h2.out")"

log "past twice the limit a connection is closed at once, unanswered"
hold h3 127.0.0.1 2 idle
# The router holds 2 + 2 + 2 client connections once it accepted them all.
wait_for 10 sh -c "[ \"\$(curl -s http://$ADMIN/metrics | awk '\$1 == \"zkrouter_client_connections\" {print \$2}')\" = 6 ]" ||
	fail "idle connections not accepted: $(metric zkrouter_client_connections)"
hc --timeout 5000 "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n" >"$T/refused.out"
rc=$?
[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "connection past twice the limit still open (exit $rc)"
[ ! -s "$T/refused.out" ] || fail "connection past twice the limit was answered: $(head -c 200 "$T/refused.out")"
[ "$(metric zkrouter_per_ip_refused_connections_total)" = 1 ] ||
	fail "refused connection not counted: $(metric zkrouter_per_ip_refused_connections_total)"
unhold h3
wait_for 10 sh -c "[ \"\$(curl -s http://$ADMIN/metrics | awk '\$1 == \"zkrouter_client_connections\" {print \$2}')\" = 4 ]" ||
	fail "closed idle connections still counted: $(metric zkrouter_client_connections)"

log "after SIGHUP raising the limit to 3, a third connection from 127.0.0.1 passes"
echo "max-connections-per-ip = 3" >"$T/zkrouterd.conf"
reload
grep -q 'reload applied: max-connections-per-ip' "$T/zkrouterd.log" || fail "reload did not name the option"
out=$(from 127.0.0.1)
echo "$out" | head -1 | grep -q '^HTTP/1.1 200 ' || fail "after the reload: $(echo "$out" | head -5)"
unhold h1
unhold h2

log "the request rate: burst 3 at 1/s from 127.0.0.3; past it 429 with Retry-After"
printf 'max-requests-per-ip-per-s = 1\nrequests-per-ip-burst = 3\n' >"$T/zkrouterd.conf"
reload
# Ten requests on one keep-alive connection: the first three pass; at one
# token a second, at least one of the rest is refused unless the ten took
# over seven seconds.
curl -s --max-time 20 --interface 127.0.0.3 -H 'Host: a.test' -D "$T/rate.hdr" -w '%{http_code}\n' \
	$(for i in $(seq 1 10); do echo "-o /dev/null http://$PROXY/r$i"; done) >"$T/rate.out"
[ "$(head -3 "$T/rate.out" | tr '\n' ' ')" = "200 200 200 " ] || fail "burst of 3 refused: $(cat "$T/rate.out")"
grep -q '^429$' "$T/rate.out" || fail "no 429 past the rate: $(tr '\n' ' ' <"$T/rate.out")"
n429=$(grep -c '^429$' "$T/rate.out")
[ "$(metric zkrouter_per_ip_rejected_requests_total)" = "$n429" ] ||
	fail "rejected requests: metric $(metric zkrouter_per_ip_rejected_requests_total), clients saw $n429"
[ "$(grep -ci '^Retry-After: 1' "$T/rate.hdr")" = "$n429" ] || fail "rate 429s without Retry-After: $(cat "$T/rate.hdr")"
[ "$(grep -ci '^X-Zkrouter-Error: too_many_requests' "$T/rate.hdr")" = "$n429" ] ||
	fail "rate 429s without their error code: $(cat "$T/rate.hdr")"
grep -qi '^Connection: close' "$T/rate.hdr" && fail "a rate 429 closed the keep-alive connection: $(cat "$T/rate.hdr")"
log "127.0.0.2 is not slowed by 127.0.0.3's rate"
out=$(from 127.0.0.2)
echo "$out" | head -1 | grep -q '^HTTP/1.1 200 ' || fail "127.0.0.2 limited by 127.0.0.3's rate: $(echo "$out" | head -3)"
log "127.0.0.3 passes again once a token is earned"
wait_for 10 sh -c "curl -s -o /dev/null -w '%{http_code}' --max-time 5 --interface 127.0.0.3 -H 'Host: a.test' http://$PROXY/ | grep -q 200" ||
	fail "127.0.0.3 never let in again"
[ "$(metric zkrouter_per_ip_tracked)" -ge 3 ] || fail "tracked addresses: $(metric zkrouter_per_ip_tracked)"
[ "$(metric zkrouter_per_ip_table_size)" = 64 ] || fail "table size: $(metric zkrouter_per_ip_table_size)"

log "a flood from 1500 addresses (127.1.x.y) keeps the table at its size, evicting the idle"
python3 - "$PROXY_PORT" <<'PY' || fail "flood client failed"
import socket, sys
for i in range(1500):
    s = socket.socket()
    s.bind(("127.1.%d.%d" % (i // 250, i % 250 + 1), 0))
    s.connect(("127.0.0.1", int(sys.argv[1])))
    s.sendall(b"GET /flood HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
    while s.recv(4096):
        pass
    s.close()
PY
[ "$(metric zkrouter_per_ip_tracked)" = 64 ] || fail "tracked after the flood: $(metric zkrouter_per_ip_tracked)"
ev=$(metric zkrouter_per_ip_evictions_total)
un=$(metric zkrouter_per_ip_untracked_total)
# Every new address past the 64 entries evicted one, or (when its bucket
# still held connections being closed) went untracked.
[ $((ev + un)) -ge $((1500 + 3 - 64)) ] || fail "evictions $ev + untracked $un for 1500 new addresses"

log "no request answered 429 reached the backend"
i=0
while read -r code; do
	i=$((i + 1))
	if [ "$code" = 429 ] && grep -q " GET /r$i\$" "$T/backend-a1.log"; then
		fail "request /r$i was answered 429 and still reached the backend"
	fi
done <"$T/rate.out"
grep -q ' GET /r1$' "$T/backend-a1.log" || fail "the backend log does not show the passed requests"
router_alive
log "ok"
