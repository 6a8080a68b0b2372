#!/bin/bash
# zkrouterd's active health checks against real backends: an app whose
# config names a health path gets a GET per instance per interval; an
# instance whose backend stops answering, or answers 5xx, is marked down
# (health_down in /routes, a log line) after health-fall failures, and up
# again after health-rise passes. An app without its own interval is
# checked at --health-interval-ms; apps without a health path never are.
# The interval each check uses is read from the router's debug line
# ("health: checking ... every N ms"), not counted in a time window.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

CTL=$top_builddir/zkrouterctl
[ -x "$CTL" ] || skip "zkrouterctl is not built"
ctl() { "$CTL" --zk "$ZK/zkrouter" --timeout 10000 "$@"; }

# health_down DOMAIN ID: prints true/false from /routes (compact JSON: an
# instance object holds no braces before its "runtime" object).
health_down() {
	routes | tr -d '\n' | grep -o "{\"domain\":\"$1\".*" |
		grep -o "\"id\":\"$2\"[^{}]*{[^{}]*}" | head -n 1 |
		sed -n 's/.*"health_down":\(true\|false\).*/\1/p'
}
is_down() { [ "$(health_down "$1" "$2")" = true ]; }
is_up() { [ "$(health_down "$1" "$2")" = false ]; }

proxy_setup --health-fall 2 --health-rise 2 --health-timeout-ms 500 --health-interval-ms 300 \
	--log-level debug
start_backend h1; P1=$BACKEND_PORT
start_backend h2; P2=$BACKEND_PORT
start_backend b1; PB=$BACKEND_PORT
start_backend q1; PQ=$BACKEND_PORT
start_backend d1; PD=$BACKEND_PORT
ctl app add hc.test --health-path /hc --health-interval 200 >>"$T/ctl.log" 2>&1 ||
	hard_error "cannot add hc.test: $(cat "$T/ctl.log")"
ctl app add bad.test --health-path '/status?code=500' --health-interval 200 >>"$T/ctl.log" 2>&1 ||
	hard_error "cannot add bad.test: $(cat "$T/ctl.log")"
ctl app add dflt.test --health-path /dflt >>"$T/ctl.log" 2>&1 ||
	hard_error "cannot add dflt.test: $(cat "$T/ctl.log")"
app_add quiet.test
register hc.test h1 "$P1"
register hc.test h2 "$P2"
register bad.test b1 "$PB"
register quiet.test q1 "$PQ"
register dflt.test d1 "$PD"
wait_instance hc.test h1
wait_instance hc.test h2
wait_instance bad.test b1
wait_instance quiet.test q1
wait_instance dflt.test d1

log "checks reach every instance of a checked app"
wait_for 20 grep -q 'req h1 .* GET /hc' "$T/backend-h1.log" || fail "h1 never checked"
wait_for 20 grep -q 'req h2 .* GET /hc' "$T/backend-h2.log" || fail "h2 never checked"
wait_for 20 is_up hc.test h1 || fail "h1 not reported up"

log "an instance answering 500 is marked down"
wait_for 20 is_down bad.test b1 || fail "b1 answering 500 not marked down"
grep -q 'health: bad.test instance b1 is down: GET /status?code=500: 500' "$T/zkrouterd.log" ||
	fail "no down line for b1: $(grep health "$T/zkrouterd.log")"

log "a backend that stops is marked down; back on its port, up again"
stop_pid "$(backend_pid h2)"
wait_for 20 is_down hc.test h2 || fail "stopped h2 not marked down"
is_up hc.test h1 || fail "h1 went down with h2"
for _ in $(seq 1 10); do
	[ "$(pcurl hc.test /)" = "ok h1" ] || fail "a request went elsewhere than h1 while h2 was down"
done
start_backend h2 --listen "127.0.0.1:$P2"
wait_for 20 is_up hc.test h2 || fail "h2 not marked up again"
grep -q 'health: hc.test instance h2 is up again' "$T/zkrouterd.log" || fail "no up-again line for h2"

# checks N PATTERN LOG: LOG holds at least N lines matching PATTERN.
checks() { [ "$(grep -c -- "$2" "$3")" -ge "$1" ]; }

log "an app with a path but no interval is checked at --health-interval-ms"
grep -q 'health: checking dflt.test instance d1: GET /dflt every 300 ms$' "$T/zkrouterd.log" ||
	fail "dflt.test not checked every 300 ms: $(grep 'health: checking' "$T/zkrouterd.log")"
grep -q 'health: checking hc.test instance h1: GET /hc every 200 ms$' "$T/zkrouterd.log" ||
	fail "hc.test not checked at its own 200 ms: $(grep 'health: checking' "$T/zkrouterd.log")"
n0=$(grep -c 'GET /dflt' "$T/backend-d1.log")
wait_for 15 checks $((n0 + 3)) 'GET /dflt' "$T/backend-d1.log" ||
	fail "dflt.test checked $(( $(grep -c 'GET /dflt' "$T/backend-d1.log") - n0 )) more times, want 3"

log "apps without a health path are never probed"
# /routes showed q1 (wait_instance above), so the router has given a table
# holding q1 to its checks: a check of q1 would have been logged then.
grep -q 'health: checking quiet.test' "$T/zkrouterd.log" &&
	fail "quiet.test has a check: $(grep 'health: checking quiet.test' "$T/zkrouterd.log")"
grep -q 'GET /hc\|GET /status\|GET /dflt' "$T/backend-q1.log" && fail "quiet.test was probed: $(cat "$T/backend-q1.log")"
router_alive
exit 0
