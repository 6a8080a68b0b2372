#!/bin/bash
# The embeddable agent API (registry/agent/agent.h), driven step by step by
# tests/agent_api: start registers, stop removes the node but keeps the
# session, start again registers on that same session, stop from inside
# the state callback works, free removes the node at once; the state
# callback reports each transition in order.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/harness.sh"
. "$top_srcdir/tests/tools_common.sh"
API=$top_builddir/tests/agent_api
[ -x "$API" ] || hard_error "$API not built"

tools_zk_start
D=api.localhost
ctl app add "$D" >/dev/null || fail "app add"
P=$(free_port)
mkfifo "$T/cmd"
exec 7<>"$T/cmd"   # read-write: opening it blocks on nothing, and holds it open
# Not through spawn: a background job's stdin would be /dev/null.
"$API" --zk "$ZK" --domain "$D" --port "$P" --id e1 <"$T/cmd" >"$T/api.log" 2>&1 &
API_PID=$!
HARNESS_PIDS="$HARNESS_PIDS $API_PID"

# step CMD WAIT_FOR: sends CMD, waits for the line WAIT_FOR after it.
step() {
	local before
	before=$(wc -l <"$T/api.log")
	echo "$1" >&7
	wait_for 10 eval "tail -n +$((before + 1)) '$T/api.log' | grep -qx '$2'" ||
		fail "after '$1' no '$2': $(cat "$T/api.log")"
}

wait_for 10 grep -q "^ready /apps/$D/instances/e1$" "$T/api.log" || fail "agent_api did not start"
# The session is up, and a command sent after it has been handled: had
# the agent registered on its own, its state callback would have said so.
wait_for 15 grep -q "zk: connected, session" "$T/api.log" || fail "agent_api never connected: $(cat "$T/api.log")"
step ping "done ping"
grep -q "^state " "$T/api.log" && fail "the agent changed state before start: $(cat "$T/api.log")"
expect_eq "$(instance_count "$D")" 0 "instances before start"

log "start: registered"
step start "state registered 0"
expect_eq "$(instance_count "$D")" 1 "instances after start"
s1=$(instance_field "$D" e1 session)
grep -q "^state connecting 0$" "$T/api.log" || grep -q "^state registering 0$" "$T/api.log" ||
	fail "no intermediate state reported"

log "stop: the node goes, the session stays"
step stop "state stopped 0"
expect_eq "$(instance_count "$D")" 0 "instances after stop"

log "start again: registered on the same session"
step start "state registered 0"
expect_eq "$(instance_field "$D" e1 session)" "$s1" "session after restart"
r1=$(instance_field "$D" e1 registered_at_ms)

log "stop from inside the state callback"
step stop "state stopped 0"
step bounce "state stopped 0"
expect_eq "$(instance_count "$D")" 0 "instances after bounce"
grep -c "^state registered 0$" "$T/api.log" | grep -qx 3 || fail "bounce did not register first"

log "free: the node goes at once"
step start "state registered 0"
[ "$(instance_field "$D" e1 registered_at_ms)" -gt "$r1" ] || fail "registered_at did not move on"
step free "done free"
expect_eq "$(instance_count "$D")" 0 "instances right after free"
echo quit >&7
wait "$API_PID"
expect_eq "$?" 0 "agent_api exit status"
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $API_PID / /")
log "ok"
