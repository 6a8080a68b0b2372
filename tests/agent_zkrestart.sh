#!/bin/bash
# zkrouter-agent across a ZooKeeper restart: the agent keeps running and
# reconnecting, the server restores the session, and the node stays the
# agent's own, untouched. (Expiry is the server's decision while it runs,
# so tests/agent_register.sh forces it by freezing the agent instead.)
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/harness.sh"
. "$top_srcdir/tests/tools_common.sh"

tools_zk_start
D=outage.localhost
ctl app add "$D" >/dev/null || fail "app add"
P=$(free_port)
spawn agent "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P" --id o1 \
	--session-timeout 6000
A=$SPAWNED_PID
wait_for 10 has_instances "$D" 1 || fail "agent did not register"
s1=$(instance_field "$D" o1 session)

log "ZooKeeper down for 2 s (< 6 s session): same session, same node"
zk_stop
sleep 2
zk_resume
wait_for 15 grep -q "reconnected" "$T/agent.log" || fail "the agent did not reconnect"
expect_eq "$(instance_field "$D" o1 session)" "$s1" "owner after a short outage"
expect_eq "$(instance_count "$D")" 1 "instances after a short outage"
kill -0 "$A" || fail "the agent exited"

grep -q "reconnected, session $s1" "$T/agent.log" || fail "reconnected on another session"

log "and SIGTERM still removes it at once"
stop_pid "$A"
expect_eq "$(instance_count "$D")" 0 "instances after SIGTERM"
log "ok"
