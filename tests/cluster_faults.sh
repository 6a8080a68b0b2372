#!/bin/bash
# Issue 5, cluster scenarios b and c, on a real 3-member ensemble and three
# zkrouterd routers, with tests/loadgen counting every failed request:
#  b. the ensemble's leader SIGKILLed under load: no request fails; changes
#     made after the election (a registration, a deregistration) reach
#     every router.
#  c. the whole ensemble stopped (SIGKILL) under load for 10 s (30 s with
#     CLUSTER_FULL=1), longer than every session timeout: every router keeps
#     serving its last table (fail static), /healthz stays 200, no request
#     fails; once restarted the routers resync, re-create their /routers
#     nodes and converge on a change made after the outage.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/cluster_common.sh"

OUTAGE=10
[ "$CLUSTER_FULL" = 1 ] && OUTAGE=30
# Agents ride out a leader election without losing their sessions.
AGENT_SESSION_MS=6000

cluster_setup 3
for b in i1 i2 i3 i4; do start_backend "$b"; done
app_add fault.test
agent_start i1 fault.test "$(backend_port i1)"
agent_start i2 fault.test "$(backend_port i2)"
wait_converged 30 i1 present && wait_converged 30 i2 present || fail "initial registrations not seen"

# served N: the backends i1-i4 got N more requests than at the last mark.
mark() { MARK=$(cat "$T"/backend-i?.log | grep -c '^req '); }
served() { [ $(( $(cat "$T"/backend-i?.log | grep -c '^req ') - MARK )) -ge "$1" ]; }

# ---- b: the leader killed under load -------------------------------------
mark
loadgen_start b --host fault.test --rate 300 --connections 6 --progress 2
wait_for 20 served 300 || fail "the load did not get going before the leader kill"
leader=$(zk_leader) || fail "no leader in the ensemble"
log "killing the leader, member $leader"
zk_member_stop "$leader" KILL
killed_at=$(now_ms)
wait_for 30 zk_leader || fail "no new leader elected"
log "member $(zk_leader) leads, $(( $(now_ms) - killed_at )) ms after the kill"
agent_start i3 fault.test "$(backend_port i3)"
wait_converged 30 i3 present || fail "registration after the election did not reach every router"
kill -TERM "$(agent_pid i1)"
wait_converged 30 i1 absent || fail "deregistration after the election did not reach every router"
agent_stop i1
log "changes after the election reached every router"
sleep 2
zk_member_start "$leader"
eval "port=\$ZKE_PORT_$leader"
wait_for 60 zk_ready "$port" || fail "member $leader did not rejoin"
loadgen_stop b
loadgen_assert_clean b
echo "figure: leader-kill $(grep '^result:' "$T/lg-b.log")"
routers_alive

# ---- c: the whole ensemble stopped under load ----------------------------
wait_converged 30 i3 present || fail "not converged before the outage"
before=$CONVERGED_DIGEST
cat >"$T/healthz.sh" <<EOF
while :; do
	for a in $(for i in $(seq 1 "$N_ROUTERS"); do printf '%s ' "$(r_admin "$i")"; done); do
		code=\$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://127.0.0.1:\$a/healthz")
		echo "\$(date +%s.%N) \$a \$code"
	done
	sleep 0.25
done
EOF
spawn healthz bash "$T/healthz.sh"
healthz_pid=$SPAWNED_PID
mark
loadgen_start c --host fault.test --rate 300 --connections 6 --progress 2
lg_c_started=$(now_ms)
wait_for 20 served 300 || fail "the load did not get going before the outage"
log "stopping every ensemble member for $OUTAGE s"
for i in 1 2 3; do zk_member_stop "$i" KILL; done
stopped_at=$(now_ms)
sleep $(( OUTAGE / 2 ))
converged i3 present || fail "a router lost its table while ZooKeeper was away"
[ "$CONVERGED_DIGEST" = "$before" ] || fail "the table changed while ZooKeeper was away"
every_router_serves fault.test 200 || fail "a router stopped serving while ZooKeeper was away"
sleep $(( OUTAGE - OUTAGE / 2 ))
routers_alive
log "restarting the ensemble after $(( $(now_ms) - stopped_at )) ms"
for i in 1 2 3; do zk_member_start "$i"; done
for i in 1 2 3; do
	eval "port=\$ZKE_PORT_$i"
	wait_for 90 zk_ready "$port" || fail "member $i did not come back"
done
restarted_at=$(now_ms)
# Every router back in /routers and agreeing.
back() { ctl --json routers 2>/dev/null | tr -d ' \n' | grep -q '"count":3,"converged":true'; }
wait_for 60 back || { ctl routers; fail "the routers did not re-create their /routers nodes and converge"; }
log "all three routers back in /routers, $(( $(now_ms) - restarted_at )) ms after the restart"
zk_connected() {
	local i
	fetch_routes
	for i in $(seq 1 "$N_ROUTERS"); do
		tr -d ' \n' <"$T/routes.$i" | grep -q '"zk_connected":true' || return 1
	done
}
wait_for 60 zk_connected || fail "a router did not reconnect to ZooKeeper"
agent_start i4 fault.test "$(backend_port i4)"
wait_converged 60 i4 present || fail "a change after the outage did not reach every router"
every_router_serves fault.test 200 || fail "not serving after the outage"
# Nodes left from sessions that did not survive the outage expire within
# one session timeout: each router's node must be held by the session the
# router is on now (the last one its log names), never by one that expires.
zkput_get() { "$BUILD/tests/zkput" --zk "$ZK/zkrouter" --timeout 10000 get "$1" 2>/dev/null; }
own_nodes() {
	local i sess owner
	for i in $(seq 1 "$N_ROUTERS"); do
		sess=$(sed -n 's/.* zk: \(re\)\{0,1\}connected, session \(0x[0-9a-f]*\).*/\2/p' "$T/r$i.log" | tail -n 1)
		owner=$(zkput_get "/routers/r$i" | sed -n 's/^owner=\([^ ]*\) .*/\1/p')
		[ -n "$sess" ] && [ "$owner" = "$sess" ] || return 1
	done
}
wait_for 60 own_nodes || {
	for i in $(seq 1 "$N_ROUTERS"); do
		echo "r$i on $(grep -o 'connected, session 0x[0-9a-f]*' "$T/r$i.log" | tail -n 1), node: $(zkput_get "/routers/r$i")"
	done
	fail "a router's /routers node is held by a session other than its own"
}
back || { ctl routers; fail "a router's /routers node went after the outage and was not re-created"; }
for i in $(seq 1 "$N_ROUTERS"); do
	grep -E 'expired|new session' "$T/r$i.log" | tail -n 3
done
sleep 1
loadgen_stop c
stop_pid "$healthz_pid"
log "loadgen c progress (ensemble killed at $(( (stopped_at - lg_c_started) / 1000 )) s, serving again at $(( (restarted_at - lg_c_started) / 1000 )) s):"
grep '^progress:' "$T/lg-c.log" | sed 's/^/#   /'
loadgen_assert_clean c
echo "figure: ensemble-outage outage_s=$OUTAGE $(grep '^result:' "$T/lg-c.log")"
checks=$(wc -l <"$T/healthz.log")
bad=$(awk '$3 != 200' "$T/healthz.log" | wc -l)
log "/healthz polled $checks times during the outage test, $bad non-200"
[ "$checks" -gt 10 ] || fail "the /healthz poller barely ran"
[ "$bad" -eq 0 ] || { awk '$3 != 200' "$T/healthz.log" | head; fail "/healthz was not 200 throughout"; }
routers_alive
log "ok"
