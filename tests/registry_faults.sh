#!/bin/bash
# The table under faults, against a real ZooKeeper: ZooKeeper stopped ->
# the table is kept (fail static); restarted -> watches re-armed, changes
# apply; the holder's session expired (SIGSTOP past its timeout) -> a
# fresh re-read, the /routers node re-created by the new session; a
# /routers node left by a killed process with the same node id is replaced.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/registry_common.sh"

owner_of() { "$B/zkput" --zk "$ZK" get "/routers/$1" 2>/dev/null | sed -n 's/^owner=\([^ ]*\) .*/\1/p'; }
router_digest() { "$B/zkput" --zk "$ZK" get "/routers/$1" 2>/dev/null | sed -n 's/.* digest=//p'; }

# session_of NAME: the session NAME connected on last (its log says).
session_of() { sed -n 's/.* zk: connected, session \(0x[0-9a-f]*\),.*/\1/p' "$T/$1.log" | tail -n 1; }
# expired SESSION: ZooKeeper logged the expiry of SESSION.
expired() { grep -q "Expiring session $1," "$T/zookeeper.log"; }

zk_start
put mk /apps/a.example.com/instances/p1 instance:host=10.0.0.1,port=80 \
    mk /apps/b.example.com/instances/q1 instance:host=10.0.0.2,port=80

tw_start r1 --timeout 8000
R1=$TW_PID
expect 15 "first table" has r1 '^instance a\.example\.com p1 '
expect 20 "r1 registered" sh -c "[ -n \"\$($B/zkput --zk $ZK get /routers/r1 2>/dev/null)\" ]"

log "ZooKeeper stopped: the table is kept"
before=$(cat "$T/r1.table")
s1=$(session_of r1)
zk_stop
expect 10 "r1 noticed the outage" grep -q 'ZooKeeper unreachable; serving the last table' "$T/r1.log"
# The outage lasts 3 s (under r1's 8 s session); whatever it really lasts,
# a table published meanwhile would be logged between the two lines below.
sleep 3
kill -0 "$R1" || fail "table holder died while ZooKeeper was down"
[ "$(cat "$T/r1.table")" = "$before" ] || fail "table changed while ZooKeeper was down"

log "ZooKeeper restarted: same session, watches re-armed, changes apply"
zk_resume
expect 20 "r1 reconnected on its session $s1" grep -q "zk: reconnected, session $s1\$" "$T/r1.log"
sed -n '/ZooKeeper unreachable/,/zk: reconnected/p' "$T/r1.log" | grep '^published' &&
	fail "r1 published a table while ZooKeeper was down (above)"
[ "$(cat "$T/r1.table")" = "$before" ] || fail "table changed while ZooKeeper was down"
put mk /apps/a.example.com/instances/p2 instance:host=10.0.0.3,port=81 rm /apps/b.example.com/instances/q1
expect 10 "p2 after the restart" has r1 '^instance a\.example\.com p2 10\.0\.0\.3:81 '
expect 10 "q1 removed after the restart" lacks r1 '^instance b\.example\.com q1 '
grep -q 'session expired' "$T/r1.log" && fail "r1's session expired over a short outage"
has r1 '^app b\.example\.com .*instances=0$' || fail "b.example.com lost with its last instance"

log "the holder's session expires while it is stopped"
tw_start r2 --timeout 2000
R2=$TW_PID
expect 15 "r2 table" has r2 '^instance a\.example\.com p2 '
expect 20 "r2 registered" sh -c "[ -n \"\$($B/zkput --zk $ZK get /routers/r2 2>/dev/null)\" ]"
old_owner=$(owner_of r2)
gen_before=$(gen_of r2)
s2=$(session_of r2)
kill -STOP "$R2"
put rm /apps/a.example.com/instances/p1 mk /apps/c.example.com/instances/c1 instance:host=10.0.0.4,port=82
expect 30 "ZooKeeper expired r2's session $s2" expired "$s2"
kill -CONT "$R2"
expect 20 "r2 saw its session expire" grep -q 'session expired' "$T/r2.log"
expect 20 "r2 re-read: c1 present" has r2 '^instance c\.example\.com c1 10\.0\.0\.4:82 '
lacks r2 '^instance a\.example\.com p1 ' || fail "r2 kept p1 after the re-read"
has r2 '^instance a\.example\.com p2 ' || fail "r2 lost p2 in the re-read"
[ "$(gen_of r2)" -gt "$gen_before" ] || fail "generation went backwards after expiry"
expect 10 "r2's node re-created by the new session" \
	sh -c "o=\$($B/zkput --zk $ZK get /routers/r2 2>/dev/null | sed -n 's/^owner=\([^ ]*\) .*/\1/p'); [ -n \"\$o\" ] && [ \"\$o\" != $old_owner ]"
expect 10 "r2's node shows its table" sh -c "[ \"\$($B/zkput --zk $ZK get /routers/r2 | sed -n 's/.* digest=//p')\" = \"\$(sed -n 's/^digest //p' $T/r2.table)\" ]"
expect 10 "r1 and r2 agree" sh -c "[ \"\$(sed -n 's/^digest //p' $T/r1.table)\" = \"\$(sed -n 's/^digest //p' $T/r2.table)\" ]"

log "a stale /routers node of a killed process with the same id is replaced"
tw_start r3 --timeout 20000
R3=$TW_PID
expect 15 "r3 registered" sh -c "[ -n \"\$($B/zkput --zk $ZK get /routers/r3 2>/dev/null)\" ]"
stale=$(owner_of r3)
stop_pid "$R3" KILL
mv "$T/r3.log" "$T/r3-killed.log"
tw_start r3 --timeout 4000
expect 15 "stale node replaced" grep -q 'membership: /zkrouter/routers/r3 left by session' "$T/r3.log"
expect 10 "r3 registered again" grep -q 'membership: registered /zkrouter/routers/r3' "$T/r3.log"
now=$(owner_of r3)
[ -n "$now" ] && [ "$now" != "$stale" ] || fail "r3's node still owned by the killed session"
exit 0
