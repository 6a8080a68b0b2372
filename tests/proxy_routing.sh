#!/bin/bash
# zkrouterd routes by Host: to the right app (case, port and trailing dot
# ignored; absolute-form authority wins over Host; a wildcard app matches one
# more label), 404 unknown_route, 503 no_instances, balancing across two
# instances per request (also on one keep-alive connection), least
# outstanding with two instances, and an instance removed from ZooKeeper
# stops getting requests.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"
# Least-outstanding counts are per worker (zkrouterd(8), --workers): what
# this test asserts of two requests on two connections holds within one
# worker, so its router runs one.
WORKERS_ARG=--workers=1

proxy_setup
start_backend a1; PA1=$BACKEND_PORT
start_backend a2; PA2=$BACKEND_PORT
start_backend b1; PB1=$BACKEND_PORT
start_backend w1; PW1=$BACKEND_PORT
app_add a.test
app_add b.test
app_add empty.test
app_add '*.wild.test'
register a.test a1 "$PA1"
register a.test a2 "$PA2"
register b.test b1 "$PB1"
register '*.wild.test' w1 "$PW1"
wait_instance a.test a1
wait_instance a.test a2
wait_instance b.test b1
wait_instance '*.wild.test' w1
wait_app empty.test

log "routing by Host, normalised"
for h in b.test B.Test b.test:8080 b.test. B.TEST.:80; do
	out=$(pcurl "$h" /)
	[ "$out" = "ok b1" ] || fail "Host '$h' gave '$out', want 'ok b1'"
done
out=$(pcurl b.test /echo -i | tr -d '\r')
echo "$out" | grep -qi '^x-backend-id: b1$' || fail "no X-Backend-Id b1 in: $out"

log "absolute-form target: its authority wins over Host"
hc --timeout 3000 'GET http://b.test/echo HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n' >"$T/abs.out"
grep -q '^backend=b1' "$T/abs.out" || fail "absolute-form not routed by authority: $(cat "$T/abs.out")"

log "wildcard app matches exactly one more label"
[ "$(pcurl x.wild.test /)" = "ok w1" ] || fail "x.wild.test not routed to the wildcard app"
[ "$(pcurl X-Y.Wild.Test. /)" = "ok w1" ] || fail "X-Y.Wild.Test. not routed to the wildcard app"
for h in wild.test a.b.wild.test; do
	code=$(pcurl "$h" / -o /dev/null -w '%{http_code}')
	[ "$code" = 404 ] || fail "$h gave $code, want 404 (a wildcard matches one label)"
done

log "404 unknown_route"
pcurl nowhere.test /x -D "$T/h404" -o "$T/b404" >/dev/null
[ "$(first_status "$T/h404")" = 404 ] || fail "unknown host: $(cat "$T/h404")"
grep -qi '^x-zkrouter-error: unknown_route' "$T/h404" || fail "404 without X-Zkrouter-Error: unknown_route"
grep -qi '^x-request-id: .' "$T/h404" || fail "404 without X-Request-Id"
[ -s "$T/b404" ] || fail "404 with an empty body"

log "503 no_instances"
pcurl empty.test / -D "$T/h503" -o /dev/null >/dev/null
[ "$(first_status "$T/h503")" = 503 ] || fail "app without instances: $(cat "$T/h503")"
grep -qi '^x-zkrouter-error: no_instances' "$T/h503" || fail "503 without X-Zkrouter-Error: no_instances"

log "balancing: 40 sequential requests reach both instances"
n1=0 n2=0
for _ in $(seq 1 40); do
	case $(pcurl a.test /) in
	"ok a1") n1=$((n1 + 1)) ;;
	"ok a2") n2=$((n2 + 1)) ;;
	*) fail "a.test answered something else" ;;
	esac
done
log "a1=$n1 a2=$n2"
[ "$n1" -ge 8 ] && [ "$n2" -ge 8 ] || fail "unbalanced: a1=$n1 a2=$n2 of 40"

log "the instance is picked per request on one keep-alive connection"
urls=$(for i in $(seq 1 30); do printf 'http://%s/?n=%d ' "$PROXY" "$i"; done)
# shellcheck disable=SC2086
curl -s --max-time 20 -H 'Host: a.test' -w ' conns=%{num_connects}\n' $urls >"$T/ka.out"
conns=$(grep -o 'conns=[0-9]*' "$T/ka.out" | awk -F= '{ s += $2 } END { print s }')
[ "$conns" = 1 ] || fail "curl opened $conns connections for 30 keep-alive requests"
grep -q '^ok a1' "$T/ka.out" && grep -q '^ok a2' "$T/ka.out" ||
	fail "one keep-alive connection stuck to one instance: $(sort "$T/ka.out" | uniq -c)"

log "least outstanding: a request goes to the idle instance, not the busy one"
# The busy instance stays busy for 6 s: the five requests below all come
# before its answer, unless the machine is very slow (then said so below).
pcurl a.test '/slow?ms=6000' >"$T/slow.out" &
slow_pid=$!
wait_for 20 sh -c "grep -q 'GET /slow' '$T/backend-a1.log' '$T/backend-a2.log'" || fail "slow request never arrived"
busy=$(grep -l 'GET /slow' "$T/backend-a1.log" "$T/backend-a2.log" | sed 's/.*backend-\(a[12]\).log/\1/')
for _ in $(seq 1 5); do
	out=$(pcurl a.test '/slow?ms=10')
	kill -0 "$slow_pid" 2>/dev/null || fail "the slow request ended before the five others: case not exercised"
	[ "$out" != "slow $busy" ] || fail "a request was queued behind the busy instance $busy"
done
wait "$slow_pid"
[ "$(cat "$T/slow.out")" = "slow $busy" ] || fail "slow request: $(cat "$T/slow.out")"

log "a deregistered instance gets no new requests"
deregister a2
wait_instance a.test a2 gone
for _ in $(seq 1 20); do
	out=$(pcurl a.test /)
	[ "$out" = "ok a1" ] || fail "after a2 left, a.test gave '$out'"
done

log "last instance gone: 503, back again: 200"
deregister a1
wait_instance a.test a1 gone
code=$(pcurl a.test / -o /dev/null -w '%{http_code}')
[ "$code" = 503 ] || fail "a.test without instances gave $code"
register a.test a1 "$PA1"
wait_instance a.test a1
[ "$(pcurl a.test /)" = "ok a1" ] || fail "a1 re-registered but not routed"

router_alive
log "ok"
