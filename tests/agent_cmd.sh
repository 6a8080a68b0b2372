#!/bin/bash
# zkrouter-agent -- CMD: the app runs as a child; the instance is
# registered once its port accepts connections (with --check-http, the
# checks start only then: no failure reported while the app starts);
# SIGTERM removes the node
# before the app is stopped; if the app dies the node goes and the agent
# exits with the app's status.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/harness.sh"
. "$top_srcdir/tests/tools_common.sh"

tools_zk_start
D=cmd.localhost
ctl app add "$D" >/dev/null || fail "app add"
P=$(free_port)

log "the app listens only once told to: registration waits for it"
spawn agent "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P" --id app \
	--session-timeout 4000 --log-level debug -- \
	sh -c "while [ ! -e '$T/listen' ]; do sleep 0.05; done; exec '$BACKEND' --listen 127.0.0.1:$P --id app"
A=$SPAWNED_PID
# Probes of the port (one debug line each) that found it closed: each
# would have registered the instance had it found the port open.
closed_probes() { [ "$(grep -c 'not accepting connections yet' "$T/agent.log")" -ge 3 ]; }
wait_for 15 closed_probes || fail "the agent did not probe the closed port: $(cat "$T/agent.log")"
expect_eq "$(instance_count "$D")" 0 "instances before the app listens"
touch "$T/listen"
wait_for 10 has_instances "$D" 1 || fail "not registered once the app listened"
curl -s "http://127.0.0.1:$P/" | grep -q "ok app" || fail "the app does not answer"
app_pid=$(grep -o 'started the app: sh (pid [0-9]*' "$T/agent.log" | grep -o '[0-9]*$')
[ -n "$app_pid" ] || fail "no pid of the app in the log"

log "SIGTERM: node removed first, then the app stopped; exit with the app's status"
kill -TERM "$A"
wait "$A"
rc=$?
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $A / /")
expect_eq "$(instance_count "$D")" 0 "instances after SIGTERM"
kill -0 "$app_pid" 2>/dev/null && fail "the app still runs"
# The backend exits 0 on SIGTERM.
expect_eq "$rc" 0 "exit status"
dereg=$(grep -n "deregistered" "$T/agent.log" | head -n 1 | cut -d: -f1)
stopping=$(grep -n "stopping the app" "$T/agent.log" | head -n 1 | cut -d: -f1)
[ -n "$dereg" ] && [ -n "$stopping" ] && [ "$dereg" -lt "$stopping" ] ||
	fail "the node was not removed before the app was stopped"

log "with --check-http, a slow-binding app: the checks wait for its port, nothing fails"
Q=$(free_port)
spawn agentck "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$Q" --id appck \
	--check-http /healthz --check-interval 200 --session-timeout 4000 --log-level debug -- \
	sh -c "while [ ! -e '$T/listen2' ]; do sleep 0.05; done; exec '$BACKEND' --listen 127.0.0.1:$Q --id appck"
closed_probes_ck() { [ "$(grep -c 'not accepting connections yet' "$T/agentck.log")" -ge 3 ]; }
wait_for 15 closed_probes_ck || fail "the agent did not wait for the port: $(cat "$T/agentck.log")"
touch "$T/listen2"
wait_for 10 has_instances "$D" 1 || fail "not registered once the app listened and its check passed"
grep -q "health check GET /healthz passes; registering" "$T/agentck.log" ||
	fail "registered without its check: $(cat "$T/agentck.log")"
# Three probes found the port closed: each would have been a failed check.
grep -q "fails\|health check GET /healthz on .*: Connection refused" "$T/agentck.log" &&
	fail "a check ran before the app bound its port: $(grep -i 'fails\|refused' "$T/agentck.log")"
stop_pid "$SPAWNED_PID"
wait_for 10 has_instances "$D" 0 || fail "agentck's node stayed"

log "the app dies: the node goes at once and the agent exits with its status"
spawn agent2 "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P" --id app2 \
	--session-timeout 20000 -- "$BACKEND" --listen "127.0.0.1:$P" --id app2
A2=$SPAWNED_PID
wait_for 10 has_instances "$D" 1 || fail "agent2 did not register"
app2=$(grep -o 'started the app: [^ ]* (pid [0-9]*' "$T/agent2.log" | grep -o '[0-9]*$')
kill -KILL "$app2"
wait "$A2"
rc=$?
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $A2 / /")
expect_eq "$rc" 137 "exit status after the app was killed (128+9)"
# The session timeout is 20 s: only a deregistration explains a quick removal.
expect_eq "$(instance_count "$D")" 0 "instances right after the app died"

log "an app exiting with status 7 makes the agent exit 7"
"$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P" --log-level warn -- sh -c 'exit 7'
expect_eq "$?" 7 "exit status"

log "a command that cannot run: 127, and nothing registered"
"$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P" --log-level warn \
	-- /nonexistent/app >"$T/noexec.out" 2>&1
expect_eq "$?" 127 "exit status for a missing command"
grep -q "cannot run /nonexistent/app" "$T/noexec.out" || fail "unclear: $(cat "$T/noexec.out")"
expect_eq "$(instance_count "$D")" 0 "instances"

log "registration refused (no such app): the app is stopped, exit 3"
"$AGENT" --zk "$ZK" --domain none.localhost --host 127.0.0.1 --port "$P" --log-level warn \
	-- "$BACKEND" --listen "127.0.0.1:$P" --id orphan >"$T/refused.out" 2>&1
expect_eq "$?" 3 "exit status when the app does not exist"
grep -q "zkrouterctl app add none.localhost" "$T/refused.out" || fail "unclear: $(cat "$T/refused.out")"
! curl -s "http://127.0.0.1:$P/" >/dev/null || fail "the app was left running"
log "ok"
