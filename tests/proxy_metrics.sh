#!/bin/bash
# /metrics as operators alert on it: `promtool check metrics` finds it
# clean; the per-app series move with real traffic, for the busiest apps
# only (--metrics-app-series 2 with three apps: the third stays in
# app="_other", and a named app's series start at its naming while
# _other never goes down); the router's own errors by code; the process_*
# series; the ZooKeeper session through a disconnect, a reconnect on the
# same session and an expiry (the router stopped past its session timeout).
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

command -v promtool >/dev/null || skip "promtool not installed (apt-get install prometheus)"
command -v python3 >/dev/null || skip "python3 not installed"

proxy_setup --metrics-app-series 2 --zk-session-timeout-ms 6000
start_backend a1; PA1=$BACKEND_PORT
DEAD=$(free_port) || hard_error "no free port"
app_add a.test
app_add b.test
app_add c.test
register a.test a1 "$PA1"
register b.test b1 "$DEAD"
register c.test c1 "$PA1"
wait_instance a.test a1
wait_instance b.test b1
wait_instance c.test c1

# scrape NAME: /metrics into $T/NAME.prom, checked by promtool.
scrape() {
	curl -sf --max-time 5 "http://$ADMIN/metrics" >"$T/$1.prom" || fail "/metrics did not answer"
	promtool check metrics <"$T/$1.prom" >"$T/$1.promtool" 2>&1 ||
		fail "promtool check metrics ($1): $(cat "$T/$1.promtool")"
}

# val NAME SERIES: the value of one series (exact text before the value)
# in scrape NAME, or "absent".
val() {
	python3 - "$T/$1.prom" "$2" <<'PY'
import sys
want = sys.argv[2]
for line in open(sys.argv[1]):
    if line.startswith('#'):
        continue
    k, _, v = line.rstrip('\n').rpartition(' ')
    if k == want:
        print(v)
        break
else:
    print('absent')
PY
}

# expect NAME SERIES VALUE
expect() {
	local got
	got=$(val "$1" "$2")
	[ "$got" = "$3" ] || fail "scrape $1: $2 is $got, want $3"
}

requests() {
	local host=$1 n=$2 i
	for i in $(seq 1 "$n"); do
		pcurl "$host" "/?n=$i" -o /dev/null || fail "request to $host failed"
	done
}

log "traffic: a.test 5, b.test 3 (its instance refuses: 502), c.test 1"
requests a.test 5
requests b.test 3
requests c.test 1
pcurl nowhere.test / -o /dev/null

log "the access log (logfmt) names the app and the router's error"
wait_for 10 grep -q 'host=b.test .* app=b.test err=backend_failed scheme=http ' "$T/access.log" ||
	fail "no logfmt line with the app and error: $(grep b.test "$T/access.log")"

log "first scrape: no app named yet, everything in _other"
scrape s1
expect s1 'zkrouter_app_series_apps' 0
expect s1 'zkrouter_app_requests_total{app="_other"}' 9
expect s1 'zkrouter_app_responses_total{app="_other",class="2xx"}' 6
expect s1 'zkrouter_app_responses_total{app="_other",class="5xx"}' 3
# b.test's requests never reached an instance: no upstream time
expect s1 'zkrouter_app_upstream_duration_seconds_count{app="_other"}' 6
expect s1 'zkrouter_router_errors_total{code="unknown_route"}' 1
[ "$(val s1 'zkrouter_app_requests_total{app="a.test"}')" = absent ] || fail "a.test named before a scrape ranked it"

log "second scrape: the two busiest are named, from 0; _other keeps its count"
scrape s2
expect s2 'zkrouter_app_series_apps' 2
expect s2 'zkrouter_app_requests_total{app="a.test"}' 0
expect s2 'zkrouter_app_requests_total{app="b.test"}' 0
expect s2 'zkrouter_app_requests_total{app="_other"}' 9
[ "$(val s2 'zkrouter_app_requests_total{app="c.test"}')" = absent ] || fail "a third app got series"

log "more traffic moves the named apps' series and _other"
requests a.test 2
requests b.test 1
requests c.test 1
scrape s3
expect s3 'zkrouter_app_requests_total{app="a.test"}' 2
expect s3 'zkrouter_app_responses_total{app="a.test",class="2xx"}' 2
expect s3 'zkrouter_app_upstream_duration_seconds_count{app="a.test"}' 2
expect s3 'zkrouter_app_upstream_duration_seconds_bucket{app="a.test",le="+Inf"}' 2
expect s3 'zkrouter_app_requests_total{app="b.test"}' 1
expect s3 'zkrouter_app_responses_total{app="b.test",class="5xx"}' 1
expect s3 'zkrouter_app_requests_total{app="_other"}' 10
errs=$(grep -E '^zkrouter_app_router_errors_total\{app="b.test",' "$T/s3.prom" | awk '{ n += $2 } END { print n + 0 }')
[ "$errs" = 1 ] || fail "b.test's router errors: $errs, want 1: $(grep 'app="b.test"' "$T/s3.prom")"
all=$(grep -E '^zkrouter_router_errors_total\{' "$T/s3.prom" | awk '{ n += $2 } END { print n + 0 }')
[ "$all" = 5 ] || fail "router errors in all: $all, want 5 (4 of b.test, 1 unknown_route)"

log "process_* series"
for s in process_cpu_seconds_total process_resident_memory_bytes process_open_fds \
	process_max_fds process_start_time_seconds; do
	[ "$(val s3 "$s")" != absent ] || fail "$s missing"
done
python3 - "$(val s3 process_start_time_seconds)" "$(val s3 process_open_fds)" \
	"$(val s3 process_max_fds)" "$(val s3 process_resident_memory_bytes)" "$(ls /proc/"$ROUTER_PID"/fd | wc -l)" <<'PY' ||
import sys, time
start, fds, maxfds, rss, real = (float(x) for x in sys.argv[1:])
assert abs(time.time() - start) < 600, "start time %s" % start
assert abs(fds - real) <= 4, "open fds %s, /proc says %s" % (fds, real)
assert maxfds >= fds and rss > 1e6, (maxfds, rss)
PY
	fail "process_* values: $(grep '^process_' "$T/s3.prom")"

log "ZooKeeper: connected on its first session"
expect s3 'zkrouter_zk_session_state{state="connected"}' 1
expect s3 'zkrouter_zk_sessions_total' 1
expect s3 'zkrouter_zk_session_expirations_total' 0
expect s3 'zkrouter_table_unconfirmed_seconds' 0.000

scrape_until() {   # scrape_until SECONDS SERIES VALUE
	local deadline=$(( $(now_ms) + $1 * 1000 ))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		scrape zk
		[ "$(val zk "$2")" = "$3" ] && return 0
		sleep 0.2
	done
	fail "$2 did not become $3: $(grep -E '^zkrouter_(zk|table_unconfirmed)' "$T/zk.prom")"
}

log "ZooKeeper stops: disconnected, the table's confirmation ages"
zk_stop
scrape_until 30 'zkrouter_zk_session_state{state="disconnected"}' 1
expect zk 'zkrouter_zk_disconnects_total' 1
wait_for 10 sh -c "curl -s http://$ADMIN/metrics | awk '\$1 == \"zkrouter_table_unconfirmed_seconds\" { exit !(\$2 >= 1) }'" ||
	fail "zkrouter_table_unconfirmed_seconds did not grow"

log "ZooKeeper back with its data: the same session reconnects"
zk_resume
scrape_until 30 'zkrouter_zk_reconnects_total' 1
scrape_until 30 'zkrouter_table_unconfirmed_seconds' 0.000
expect zk 'zkrouter_zk_sessions_total' 1

log "the router stopped past its session timeout: on waking, the session expired, a new one is made"
"$ZKPUT_BIN" --zk "$ZK/zkrouter" --timeout 5000 get "/routers/test-$$" >/dev/null ||
	fail "the router's /routers node is missing before the stop"
kill -STOP "$ROUTER_PID"
wait_for 30 sh -c "! $ZKPUT_BIN --zk $ZK/zkrouter --timeout 5000 get /routers/test-$$" || {
	kill -CONT "$ROUTER_PID"
	fail "the stopped router's session did not expire"
}
kill -CONT "$ROUTER_PID"
scrape_until 30 'zkrouter_zk_session_expirations_total' 1
scrape_until 30 'zkrouter_zk_sessions_total' 2
scrape_until 30 'zkrouter_zk_session_state{state="connected"}' 1
scrape_until 30 'zkrouter_table_unconfirmed_seconds' 0.000
router_alive
log "ok"
