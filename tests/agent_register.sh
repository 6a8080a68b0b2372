#!/bin/bash
# zkrouter-agent registration against a real ZooKeeper: the record as
# given, SIGTERM removes the node at once, SIGKILL leaves it for one
# session timeout, a restart under the same id replaces the old session's
# node (one node, the new one), and an expired session registers again.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/harness.sh"
. "$top_srcdir/tests/tools_common.sh"

tools_zk_start
D=reg.localhost
ctl app add "$D" >/dev/null || fail "app add"

log "a record that a router would refuse is refused up front, with the reason"
"$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port 8080 \
	--zone "$(printf 'z%.0s' $(seq 1 70))" >"$T/bad.out" 2>&1
expect_eq "$?" 2 "exit status for an invalid record"
grep -q "zone longer than 63 bytes" "$T/bad.out" || fail "no reason given: $(cat "$T/bad.out")"
"$AGENT" --zk "$ZK" --domain "$D" --host "not a host" --port 8080 >"$T/bad.out" 2>&1
expect_eq "$?" 2 "exit status for a bad host"
grep -q "not an IP address or DNS name" "$T/bad.out" || fail "no reason: $(cat "$T/bad.out")"

log "register: the node holds the record as given"
read -r P1 P2 <<<"$(free_port 2 | tr '\n' ' ')"
spawn agent1 "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P1" --id web-1 \
	--weight 250 --zone z1 --label version=1.2 --session-timeout 2000
A1=$SPAWNED_PID
wait_for 10 has_instances "$D" 1 || fail "agent1 did not register"
expect_eq "$(instance_field "$D" web-1 host)" 127.0.0.1 host
expect_eq "$(instance_field "$D" web-1 port)" "$P1" port
expect_eq "$(instance_field "$D" web-1 weight)" 250 weight
expect_eq "$(instance_field "$D" web-1 zone)" z1 zone
expect_eq "$(instance_field "$D" web-1 state)" up state
expect_eq "$(instance_field "$D" web-1 version)" 1.2 "label version"
at=$(instance_field "$D" web-1 registered_at_ms)
[ "$at" -gt $(( $(now_ms) - 60000 )) ] || fail "registered_at_ms $at is not recent"
ctl instances "$D" | grep -q "^web-1 .*127.0.0.1:$P1 .*250 z1 " || fail "human listing: $(ctl instances "$D")"

log "the id defaults to host:port"
spawn agent2 "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P2" --session-timeout 2000
A2=$SPAWNED_PID
wait_for 10 has_instances "$D" 2 || fail "agent2 did not register"
expect_eq "$(instance_field "$D" "127.0.0.1:$P2" port)" "$P2" "default id"

log "SIGTERM: the node is gone at once, exit 0"
kill -TERM "$A2"
wait "$A2"
expect_eq "$?" 0 "agent2 exit status"
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $A2 / /")
expect_eq "$(instance_count "$D")" 1 "instances right after SIGTERM"

log "SIGKILL: the node lingers for the session timeout (2 s), then goes"
s1=$(instance_field "$D" web-1 session)
[ -n "$s1" ] || fail "no session shown for web-1"
kill -KILL "$A1"
t0=$(now_ms)
wait_for 15 has_instances "$D" 0 || fail "node of a killed agent never went away"
gone=$(( $(now_ms) - t0 ))
log "gone after $gone ms"
[ "$gone" -ge 1000 ] || fail "node vanished after $gone ms, before the session could expire"
# What removed it: ZooKeeper expiring the killed agent's session (it logs
# each expiry), not a deletion at the kill.
grep -q "Expiring session $s1," "$T/zookeeper.log" ||
	fail "the node went, but ZooKeeper did not expire session $s1: $(grep Expiring "$T/zookeeper.log")"

log "restart under the same id before the old session expired: one node, the new one"
spawn agent3 "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P1" --id web-1 \
	--session-timeout 8000
A3=$SPAWNED_PID
wait_for 10 has_instances "$D" 1 || fail "agent3 did not register"
s3=$(instance_field "$D" web-1 session)
r3=$(instance_field "$D" web-1 registered_at_ms)
kill -KILL "$A3"
sleep 0.1
spawn agent4 "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P1" --id web-1 \
	--session-timeout 4000
A4=$SPAWNED_PID
new_owner() { s=$(instance_field "$D" web-1 session); [ -n "$s" ] && [ "$s" != "$s3" ]; }
wait_for 10 new_owner || fail "the stale node of session $s3 was not replaced"
s4=$(instance_field "$D" web-1 session)
r4=$(instance_field "$D" web-1 registered_at_ms)
expect_eq "$(instance_count "$D")" 1 "instances after the restart"
[ "$r4" -gt "$r3" ] || fail "registered_at did not move on ($r3 -> $r4)"
grep -q "replacing the node of an earlier session" "$T/agent4.log" || fail "agent4 did not say it replaced a node"
log "old session $s3 -> new $s4; waiting for the old session's expiry"
wait_for 30 grep -q "Expiring session $s3," "$T/zookeeper.log" ||
	fail "ZooKeeper never expired the killed agent's session $s3"
expect_eq "$(instance_count "$D")" 1 "instances after the old session expired"
expect_eq "$(instance_field "$D" web-1 session)" "$s4" "owner after the old session expired"

log "two live agents under one id: the newer takes over, the older steps aside (exit 3)"
spawn agent4b "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P1" --id web-1 \
	--session-timeout 4000
A4b=$SPAWNED_PID
took_over() { s=$(instance_field "$D" web-1 session); [ -n "$s" ] && [ "$s" != "$s4" ]; }
wait_for 10 took_over || fail "the newer agent did not take the id over"
wait_for 10 eval '! kill -0 '"$A4"' 2>/dev/null' || fail "the older agent kept running"
wait "$A4"
expect_eq "$?" 3 "exit status of the agent that stepped aside"
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $A4 / /")
grep -q "took over id web-1 for $D; stepping aside" "$T/agent4.log" || fail "no reason given"
expect_eq "$(instance_count "$D")" 1 "instances after the take-over"
A4=$A4b

log "session expiry (SIGSTOP past the timeout): the agent registers again"
stop_pid "$A4"
spawn agent5 "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P2" --id web-5 \
	--session-timeout 2000
A5=$SPAWNED_PID
wait_for 10 has_instances "$D" 1 || fail "agent5 did not register"
s5=$(instance_field "$D" web-5 session)
kill -STOP "$A5"
wait_for 15 has_instances "$D" 0 || fail "node of a stopped agent did not expire"
kill -CONT "$A5"
reregistered() { s=$(instance_field "$D" web-5 session); [ -n "$s" ] && [ "$s" != "$s5" ]; }
wait_for 20 reregistered || fail "agent5 did not register again after expiry"
grep -q "session expired" "$T/agent5.log" || fail "agent5 did not report the expiry"
kill -0 "$A5" || fail "agent5 died"
log "ok"
