#!/bin/bash
# Fail static across restarts: a router keeps its last table in its
# --state-dir. Killed and restarted while ZooKeeper is down, it routes with
# that table once --zk-startup-wait-ms has passed (200 from the live
# backend; /healthz 200 with table_from_disk, /routes and /metrics say so);
# once ZooKeeper is back, its complete view replaces the file's and later
# changes apply. A truncated state file is ignored with a log line naming
# it, and the router answers as it does with no table at all. A state-dir
# that cannot be used stops the start when it was set, and is only warned
# about when it is the default.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

STATE=$T/state
NODE=test-$$         # the node id proxy_setup gives
FILE=$STATE/table-$NODE

# metric NAME: its value in /metrics (empty if absent).
metric() { curl -s --max-time 5 "http://$ADMIN/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }
# The file holds the table in use.
state_current() {
	local g
	g=$(metric zkrouter_table_generation)
	[ -n "$g" ] && [ "$g" != 0 ] && metric_is zkrouter_state_written_generation "$g"
}
code_of() { pcurl "$1" / -o /dev/null -w '%{http_code}'; }

N=0
# start_router [ARGS]: zkrouterd again on the same ports, node id and
# state dir, logging to a new file ($ROUTER_LOG).
start_router() {
	N=$((N + 1))
	spawn "zkrouterd-$N" "$ZKROUTERD" "$WORKERS_ARG" --zk "$ZK/zkrouter" --listen "$PROXY" --admin "$ADMIN" \
		--node-id "$NODE" --zk-session-timeout-ms 10000 --access-log "$T/access.log" \
		--state-dir "$STATE" "$@"
	ROUTER_PID=$SPAWNED_PID
	ROUTER_LOG=$T/zkrouterd-$N.log
	wait_for 20 curl -s --max-time 2 -o /dev/null "http://$ADMIN/healthz" ||
		fail "restarted zkrouterd: no admin endpoint"
}

proxy_setup --zk-startup-wait-ms 1000
start_backend a1; PA1=$BACKEND_PORT
start_backend a2; PA2=$BACKEND_PORT
app_add a.test "app:retries=1"
register a.test a1 "$PA1"
register a.test a0 "$PA1"
wait_instance a.test a1
wait_instance a.test a0
[ "$(pcurl a.test /)" = "ok a1" ] || fail "a.test not routed"
metric_is zkrouter_table_from_disk 0 || fail "a table from ZooKeeper reported as from disk"

log "the state file holds the table in use"
wait_for 10 state_current || fail "state file never caught up: $(curl -s "http://$ADMIN/metrics" | grep state_)"
[ -s "$FILE" ] || fail "no state file at $FILE"
head -c 8 "$FILE" | grep -q ZKRTABLE || fail "$FILE does not start with the magic"

# The writer thread logs after each write while reloads set the log level
# on the loop's thread: a ThreadSanitizer build reports any race between
# them (the harness fails the test on the report).
log "reloads while the state file is written"
app_add b.test
for _ in $(seq 1 30); do kill -HUP "$ROUTER_PID"; sleep 0.05; done
wait_for 10 grep -q 'reload: no option changed' "$T/zkrouterd.log" ||
	fail "SIGHUP not handled: $(tail -n 5 "$T/zkrouterd.log")"
wait_for 10 state_current || fail "state file never caught up with b.test"
router_alive

log "router killed, a0 gone from ZooKeeper, ZooKeeper down, router restarted: it routes with the state file"
stop_pid "$ROUTER_PID" KILL
deregister a0
zk_stop
start_router --zk-startup-wait-ms 1000
wait_for 20 curl -sf --max-time 2 -o /dev/null "http://$ADMIN/healthz" ||
	fail "restarted router never became healthy without ZooKeeper"
curl -s --max-time 2 "http://$ADMIN/healthz" >"$T/hz"
[ "$(head -n 1 "$T/hz")" = ok ] || fail "/healthz from disk: first line is not 'ok': $(cat "$T/hz")"
grep -qx 'table_from_disk: 1' "$T/hz" || fail "/healthz does not say table_from_disk: $(cat "$T/hz")"
grep -qE '^table_age_seconds: [0-9]+$' "$T/hz" || fail "/healthz gives no table age: $(cat "$T/hz")"
metric_is zkrouter_table_from_disk 1 || fail "/metrics: zkrouter_table_from_disk is not 1"
metric zkrouter_table_age_seconds | grep -qE '^[0-9]+$' || fail "/metrics: no zkrouter_table_age_seconds"
metric_is zkrouter_zk_connected 0 || fail "/metrics: ZooKeeper reported connected"
routes | tr -d ' \n' >"$T/routes.json"
grep -q '"table_from_disk":true' "$T/routes.json" || fail "/routes does not say from disk: $(cat "$T/routes.json")"
grep -q '"id":"a1"' "$T/routes.json" || fail "/routes from disk lacks a1: $(cat "$T/routes.json")"
grep -q '"id":"a0"' "$T/routes.json" || fail "/routes from disk lacks a0: $(cat "$T/routes.json")"
[ "$(code_of a.test)" = 200 ] || fail "a.test from disk: not 200"
[ "$(pcurl a.test /)" = "ok a1" ] || fail "a.test from disk not routed to a1"
[ "$(code_of nowhere.test)" = 404 ] || fail "unknown host with a table from disk is not 404"
grep -q "routing with the 2 apps of $FILE" "$ROUTER_LOG" || fail "no log line about routing from $FILE"

log "ZooKeeper back: its view replaces the file's, and a change applies"
zk_resume
wait_for 30 metric_is zkrouter_table_from_disk 0 || fail "still routing from disk with ZooKeeper back"
[ "$(curl -s --max-time 2 "http://$ADMIN/healthz")" = ok ] || fail "/healthz body after ZooKeeper's table is not 'ok'"
metric_is zkrouter_table_age_seconds 0 || fail "table age not 0 with ZooKeeper's table"
grep -q "ZooKeeper's table replaces the one read from $FILE" "$ROUTER_LOG" ||
	fail "no log line about ZooKeeper's table replacing the file's"
# Replaced, not merged: the instance only the file knew is gone.
wait_instance a.test a0 gone
register a.test a2 "$PA2"
wait_instance a.test a2
seen=""
for _ in $(seq 1 30); do seen="$seen $(pcurl a.test /)"; done
case $seen in *"ok a2"*) ;; *) fail "a2 registered after the restart but never routed" ;; esac
case $seen in *"ok a1"*) ;; *) fail "a1 lost after the restart" ;; esac

log "a truncated state file is ignored, with the file named"
wait_for 10 state_current || fail "state file never caught up with a2"
zk_stop
stop_pid "$ROUTER_PID"
size=$(stat -c %s "$FILE")
truncate -s $((size / 2)) "$FILE"
# No wait: a file that passed would be in use before the first admin answer.
start_router --zk-startup-wait-ms 0
wait_for 10 grep -q "state file $FILE ignored: truncated" "$ROUTER_LOG" ||
	fail "truncated file not reported: $(grep -i state "$ROUTER_LOG")"
[ "$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "http://$ADMIN/healthz")" = 503 ] ||
	fail "/healthz not 503 with no usable table"
metric_is zkrouter_table_from_disk 0 || fail "a truncated file's table is in use"
[ "$(code_of a.test)" = 503 ] || fail "a.test with no table: not 503"
router_alive
stop_pid "$ROUTER_PID"

log "a state-dir that was set but cannot be used stops the start"
port=$(free_port)
rc=0
timeout 20 "$ZKROUTERD" "$WORKERS_ARG" --zk 127.0.0.1:1 --listen "127.0.0.1:$port" --admin off --node-id bad \
	--state-dir /proc/no-such-dir/state >"$T/bad.out" 2>&1 || rc=$?
[ "$rc" = 1 ] || fail "unusable --state-dir: exit $rc, want 1: $(cat "$T/bad.out")"
grep -q 'state-dir: cannot create /proc/no-such-dir/state' "$T/bad.out" ||
	fail "unusable --state-dir not named: $(cat "$T/bad.out")"

# The default directory as a user who cannot create it: a warning, and the
# router runs. Only where that user can run the build (not under /root).
if ! command -v setpriv >/dev/null ||
	! setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$ZKROUTERD" 2>/dev/null; then
	log "(skipped: the default state-dir as an unprivileged user)"
else
	log "the default state-dir, not writable: a warning, and the router runs"
	ports=$(free_port 2)
	# nobody cannot write sanitizer reports into $T (0700) nor, maybe, read
	# a suppressions file in the source tree: in a sanitizer build this
	# router's reports go to its own log, which a failure prints.
	san_stderr() { echo "${1//log_path=$T\/sanitizer/log_path=stderr}" | sed 's/suppressions=[^:]*:\{0,1\}//'; }
	spawn nobody env "ASAN_OPTIONS=$(san_stderr "${ASAN_OPTIONS:-}")" \
		"UBSAN_OPTIONS=$(san_stderr "${UBSAN_OPTIONS:-}")" "TSAN_OPTIONS=$(san_stderr "${TSAN_OPTIONS:-}")" \
		setpriv --reuid=nobody --regid=nogroup --clear-groups "$ZKROUTERD" "$WORKERS_ARG" --zk 127.0.0.1:1 \
		--listen "127.0.0.1:$(echo "$ports" | sed -n 1p)" --admin "127.0.0.1:$(echo "$ports" | sed -n 2p)" \
		--node-id nobody-$$
	wait_for 10 grep -q 'state-dir: .*/var/lib/zkrouter.*running without a state file' "$T/nobody.log" ||
		fail "no warning about the default state-dir: $(cat "$T/nobody.log")"
	wait_for 10 curl -s --max-time 2 -o /dev/null "http://127.0.0.1:$(echo "$ports" | sed -n 2p)/healthz" ||
		fail "router without a usable default state-dir does not run"
fi
log "ok"
