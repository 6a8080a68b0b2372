#!/bin/bash
# What the workers of one zkrouterd share (node/shared.h), seen from
# outside with two workers:
# - passive ejection: an instance that refuses connections is tried once
#   for the process, not once per worker (requests after the first skip
#   it on both workers);
# - max-client-connections is one budget: with the cap held by
#   connections spread over both workers, a connection past it is not
#   answered until one of them closes, whichever worker holds it.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

zk_require
proxy_setup --workers 2 --eject-base-ms 600000 --eject-max-ms 600000 --max-client-connections 8 \
	--head-timeout-ms 60000 --client-idle-timeout-ms 60000

metric() { curl -s --max-time 5 "http://$ADMIN/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }

start_backend good
app_add e.test
register e.test good "$BACKEND_PORT"
DEAD_PORT=$(free_port)   # nothing listens there: each connect is refused
register e.test dead "$DEAD_PORT"
wait_instance e.test good
wait_instance e.test dead

log "40 requests, each on a new connection, one after another"
for i in $(seq 1 40); do
	out=$(curl -s --max-time 5 -H 'Host: e.test' "http://$PROXY/") || fail "request $i failed"
	[ "$out" = "ok good" ] || fail "request $i answered '$out'"
done
w0=$(metric 'zkrouter_worker_requests_total{worker="0"}')
w1=$(metric 'zkrouter_worker_requests_total{worker="1"}')
log "requests per worker: $w0 and $w1"
[ "${w0:-0}" -ge 5 ] && [ "${w1:-0}" -ge 5 ] || fail "the requests did not reach both workers ($w0, $w1)"
# Each request that tried the dead instance first needed a second one. One
# worker's failure ejects it for both: exactly one such request.
retried=$(metric zkrouter_retried_requests_total)
[ "$retried" = 1 ] || fail "$retried requests tried the dead instance, want 1 for the process"
routes | grep -q '"ejected":true' || fail "/routes does not show the instance ejected: $(routes)"

log "max-client-connections 8 across both workers"
# ask FD: a request on FD; prints the status line (empty on timeout).
ask() {
	local line=""
	printf 'GET / HTTP/1.1\r\nHost: e.test\r\n\r\n' >&"$1" || return 1
	read -r -t "${2:-5}" -u "$1" line
	echo "${line%$'\r'}"
}
open_conns 8
for fd in "${FDS[@]}"; do
	[ "$(ask "$fd")" = "HTTP/1.1 200 OK" ] || fail "a connection within the cap was not served"
done
# The eight sit on both workers: the cap is the process's, not each one's.
c0=$(metric 'zkrouter_worker_client_connections{worker="0"}')
c1=$(metric 'zkrouter_worker_client_connections{worker="1"}')
log "held connections per worker: $c0 and $c1"
[ "$(metric zkrouter_client_connections)" = 8 ] || fail "the router holds $(metric zkrouter_client_connections) connections, want 8"
open_conns 4
extra=("${FDS[@]:8}")
for fd in "${extra[@]}"; do
	printf 'GET / HTTP/1.1\r\nHost: e.test\r\n\r\n' >&"$fd"
done
# Nothing past the cap is accepted: the gauge stays at 8 while the four
# wait. (The gauge moving past 8 is what a per-worker cap would show.)
wait_for 10 backlog_is 4 ||
	fail "the four past the cap are not all in the backlog: $(ss -Hltn "sport = :$PROXY_PORT")"
[ "$(metric zkrouter_client_connections)" = 8 ] || fail "past the cap: $(metric zkrouter_client_connections) connections held"
log "close the first four: the four waiting are served, whichever worker they reach"
for fd in "${FDS[@]:0:4}"; do exec {fd}>&-; done
for fd in "${extra[@]}"; do
	line=""
	read -r -t 10 -u "$fd" line || fail "a waiting connection was not served after the close"
	[ "${line%$'\r'}" = "HTTP/1.1 200 OK" ] || fail "a waiting connection got '$line'"
done
router_alive
log "ok"
