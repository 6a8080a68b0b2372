#!/bin/bash
# Issue 5, cluster scenarios d and f, on a real 3-member ensemble and three
# zkrouterd routers, with tests/loadgen counting every failed request:
#  d. an instance SIGKILLed together with its agent under load: no request
#     fails while its node lingers (the routers retry on the other instance
#     and eject the dead one); the node is gone after the agent's session
#     timeout.
#  f. slow requests in flight to an instance when it is deregistered all
#     complete; then churn: instances added and removed 30 times (300 with
#     CLUSTER_FULL=1) under fast and slow load, with no failed request.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/cluster_common.sh"

CHURN=30
[ "$CLUSTER_FULL" = 1 ] && CHURN=300
AGENT_SESSION_MS=2000

cluster_setup 3

# ---- d: an instance and its agent SIGKILLed under load -------------------
start_backend k1
start_backend k2
app_add crash.test
agent_start k1 crash.test "$(backend_port k1)"
agent_start k2 crash.test "$(backend_port k2)"
wait_converged 30 k1 present && wait_converged 30 k2 present || fail "k1/k2 not registered"
loadgen_start d --host crash.test --rate 300 --connections 6 --by-header X-Backend-Id
# Both instances serve the load before the kill (k2 at least 50 times).
served() { [ "$(grep -c "^req $1 " "$T/backend-$1.log")" -ge "$2" ]; }
wait_for 20 served k1 50 && wait_for 20 served k2 50 || fail "the load did not reach both k1 and k2"
kill -KILL "$(agent_pid k2)" "$(backend_pid k2)"
killed_at=$(now_ms)
agent_stop k2 KILL
stop_pid "$(backend_pid k2)" KILL
converged k2 present && lingered=yes || lingered=no
log "right after the kill, every router still lists k2: $lingered"
wait_converged $(( AGENT_SESSION_MS / 1000 + 15 )) k2 absent ||
	fail "k2's node did not go after the session timeout ($AGENT_SESSION_MS ms)"
linger=$(( CONVERGED_AT - killed_at ))
log "k2's node lingered $linger ms (agent session timeout $AGENT_SESSION_MS ms)"
sleep 1
loadgen_stop d
loadgen_assert_clean d
grep '^  ok by' "$T/lg-d.log"
grep -q ' k2=[1-9]' "$T/lg-d.log" || fail "k2 never served before the kill: the scenario proved nothing"
echo "figure: instance-kill linger_ms=$linger $(grep '^result:' "$T/lg-d.log")"

# ---- f1: slow requests in flight to a removed instance complete ----------
start_backend sl1
start_backend sl2
app_add slow.test
agent_start sl1 slow.test "$(backend_port sl1)"
agent_start sl2 slow.test "$(backend_port sl2)"
wait_converged 30 sl1 present && wait_converged 30 sl2 present || fail "sl1/sl2 not registered"
loadgen_start slow --host slow.test --path '/slow?ms=1500' --connections 12 --timeout 10000 \
	--by-header X-Backend-Id
# Requests sl1 received and has not answered yet are in flight to it.
wait_for 20 served sl1 1 || fail "no slow request reached sl1"
kill -TERM "$(agent_pid sl1)"
in_flight=$(( $(grep -c '^req sl1 ' "$T/backend-sl1.log") - $(grep -c '^slow-answered sl1 ' "$T/backend-sl1.log") ))
log "sl1 deregistered with $in_flight slow request(s) in flight"
[ "$in_flight" -gt 0 ] || fail "no request was in flight to sl1: the scenario proved nothing"
wait_converged 20 sl1 absent || fail "sl1's deregistration did not reach every router"
agent_stop sl1
sleep 1
loadgen_stop slow
loadgen_assert_clean slow
grep '^  ok by' "$T/lg-slow.log"
answered=$(grep -o ' sl1=[0-9]*' "$T/lg-slow.log" | cut -d= -f2)
[ "${answered:-0}" -ge "$in_flight" ] ||
	fail "only ${answered:-0} of the $in_flight requests in flight to sl1 completed"

# ---- f2: churn under load ---------------------------------------------------
for p in p1 p2 p3 p4; do start_backend "$p" --quiet; done
app_add churn.test
agent_start ch-a churn.test "$(backend_port p1)"
agent_start ch-b churn.test "$(backend_port p2)"
wait_converged 30 ch-a present && wait_converged 30 ch-b present || fail "churn seeds not registered"
loadgen_start fast --host churn.test --rate 400 --connections 6 --progress 5
loadgen_start slowc --host churn.test --path '/slow?ms=300' --connections 6 --timeout 10000
live="ch-a ch-b"
stopping=""
registered() { grep -q -- '-> registered' "$T/agent-$(tag_of "$1").log"; }
churn_start=$(now_ms)
for k in $(seq 1 "$CHURN"); do
	id=ch-$k
	agent_start "$id" churn.test "$(backend_port p$(( k % 4 + 1 )))"
	wait_for 20 registered "$id" || fail "churn $k: $id did not register: $(tail -n 3 "$T/agent-$(tag_of "$id").log")"
	# Remove the oldest: deregistration only, its app keeps running, so
	# requests the routers sent it before they converged still complete.
	old=${live%% *}
	live="${live#* } $id"
	kill -TERM "$(agent_pid "$old")"
	stopping="$stopping $old"
	# Reap the agents stopped a while ago.
	set -- $stopping
	if [ $# -gt 8 ]; then
		agent_stop "$1"
		stopping="${stopping# }"
		stopping="${stopping#* }"
	fi
	[ $(( k % 50 )) -eq 0 ] && log "churn: $k changes"
	routers_alive
done
churn_ms=$(( $(now_ms) - churn_start ))
for old in $stopping; do agent_stop "$old"; done
last=${live##* }
wait_converged 30 "$last" present || fail "not converged after the churn"
sleep 1
loadgen_stop fast
loadgen_stop slowc
loadgen_assert_clean fast
loadgen_assert_clean slowc
log "$CHURN additions and $CHURN removals in $churn_ms ms"
echo "figure: churn changes=$((2 * CHURN)) churn_ms=$churn_ms fast: $(grep '^result:' "$T/lg-fast.log")"
echo "figure: churn slow-requests: $(grep '^result:' "$T/lg-slowc.log")"
routers_alive
log "ok"
