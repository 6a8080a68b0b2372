#!/bin/bash
# Issue 5, cluster scenarios a and e, on a real 3-member ensemble and three
# zkrouterd routers:
#  a. after each registration and each deregistration (zkrouter-agent
#     start / SIGTERM), every router publishes the same table digest, has
#     (or lacks) the instance, and serves the change (200 from that
#     instance / 503 once the app is empty); prints p50/p99 time to
#     converge. A steady app is under load meanwhile: no request fails.
#  e. a router SIGKILLed: its /routers node vanishes after its session
#     timeout; `zkrouterctl routers` lists the other two and reports them
#     converged (exit 0); they keep serving and converging. Then a router
#     frozen (SIGSTOP) past its session timeout while the tree changes:
#     once thawed it resyncs on a new session and converges.
# make check runs 10 + 10 changes; CLUSTER_FULL=1 runs 100 + 100.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/cluster_common.sh"

CHANGES=10
[ "$CLUSTER_FULL" = 1 ] && CHANGES=100

cluster_setup 3
start_backend b1
start_backend b2
start_backend s1
app_add conv.test
app_add steady.test
agent_start s1 steady.test "$(backend_port s1)"
wait_converged 30 s1 present || fail "the routers never agreed on the steady app"
loadgen_start steady --host steady.test --rate 300 --connections 6 --progress 5

# ---- a: convergence after each change -----------------------------------
: >"$T/reg.ms"
: >"$T/dereg.ms"
for k in $(seq 1 "$CHANGES"); do
	b=b$(( (k % 2) + 1 ))
	id=c$k
	agent_start "$id" conv.test "$(backend_port "$b")"
	wait_converged 20 "$id" present || {
		cat "$T"/routes.*
		fail "change $k: the routers did not converge on the registration of $id"
	}
	at=$(registered_at "$id")
	[ -n "$at" ] && [ "$at" -gt 0 ] || fail "instance $id shows no registered_at_ms"
	echo $(( CONVERGED_AT - at )) >>"$T/reg.ms"
	pub=$(published_at "$CONVERGED_DIGEST") || fail "no router logged publishing digest $CONVERGED_DIGEST"
	set -- $pub
	echo $(( $1 - at )) >>"$T/reg-pub.ms"
	echo $(( $1 - $2 )) >>"$T/spread.ms"
	echo "change $k: registration of $id published by the first router after $(( $2 - at )) ms," \
		"by all after $(( $1 - at )) ms, observed by polling after $(( CONVERGED_AT - at )) ms"
	every_router_serves conv.test 200 "$b" || fail "change $k: registration of $id not served"

	t0=$(now_ms)
	kill -TERM "$(agent_pid "$id")"
	wait_converged 20 "$id" absent || {
		cat "$T"/routes.*
		fail "change $k: the routers did not converge on the deregistration of $id"
	}
	echo $(( CONVERGED_AT - t0 )) >>"$T/dereg.ms"
	pub=$(published_at "$CONVERGED_DIGEST") || fail "no router logged publishing digest $CONVERGED_DIGEST"
	set -- $pub
	echo $(( $1 - t0 )) >>"$T/dereg-pub.ms"
	echo $(( $1 - $2 )) >>"$T/spread.ms"
	echo "change $k: deregistration of $id published by the first router after $(( $2 - t0 )) ms," \
		"by all after $(( $1 - t0 )) ms, observed by polling after $(( CONVERGED_AT - t0 )) ms"
	agent_stop "$id"
	every_router_serves conv.test 503 || fail "change $k: deregistration of $id not served"
	routers_alive
done
# Two measures: "published" is when the last router published the new
# table, from the routers' own log timestamps (ms); "observed" is when
# polling every router's /routes first showed it (adds the poll interval,
# some tens of ms on a loaded machine). "spread" is the last router's
# publish time minus the first's: ZooKeeper's own delay is not in it.
cat "$T/reg.ms" "$T/dereg.ms" >"$T/all.ms"
cat "$T/reg-pub.ms" "$T/dereg-pub.ms" >"$T/all-pub.ms"
for f in reg-pub dereg-pub reg dereg spread; do
	log "$f: p50 $(percentile 50 "$T/$f.ms") ms, p99 $(percentile 99 "$T/$f.ms") ms," \
		"max $(percentile 100 "$T/$f.ms") ms over $(wc -l <"$T/$f.ms") changes"
done
echo "figure: converge-published changes=$((2 * CHANGES)) p50_ms=$(percentile 50 "$T/all-pub.ms")" \
	"p99_ms=$(percentile 99 "$T/all-pub.ms") max_ms=$(percentile 100 "$T/all-pub.ms")"
echo "figure: converge-spread (last router minus first) p50_ms=$(percentile 50 "$T/spread.ms")" \
	"p99_ms=$(percentile 99 "$T/spread.ms") max_ms=$(percentile 100 "$T/spread.ms")"
echo "figure: converge-observed changes=$((2 * CHANGES)) p50_ms=$(percentile 50 "$T/all.ms")" \
	"p99_ms=$(percentile 99 "$T/all.ms") max_ms=$(percentile 100 "$T/all.ms")"

# Their /routers nodes say the same (the update is rate-limited: wait).
wait_for 20 ctl routers || { ctl routers; fail "zkrouterctl routers does not report convergence"; }
ctl routers

loadgen_stop steady
loadgen_assert_clean steady
echo "figure: converge-load $(grep '^result:' "$T/lg-steady.log")"

# ---- e: a router SIGKILLed ----------------------------------------------
# Load on the two routers that stay.
TARGETS_ALL=$TARGETS
TARGETS="--target 127.0.0.1:$(r_port 1) --target 127.0.0.1:$(r_port 2)"
loadgen_start two --host steady.test --rate 200 --connections 4
stop_pid "$(r_pid 3)" KILL
killed_at=$(now_ms)
R_PID_3=""
gone() { ctl --json routers 2>/dev/null | tr -d ' \n' | grep -q '"count":2,'; }
wait_for $(( ROUTER_SESSION_MS / 1000 + 15 )) gone || { ctl routers; fail "r3's /routers node did not vanish"; }
log "r3's /routers node vanished $(( $(now_ms) - killed_at )) ms after SIGKILL" \
	"(session timeout $ROUTER_SESSION_MS ms)"
ctl routers >"$T/routers.out" 2>&1
rc=$?
cat "$T/routers.out"
[ "$rc" -eq 0 ] || fail "zkrouterctl routers exit $rc with two live, agreeing routers"
grep -q '^r1 ' "$T/routers.out" && grep -q '^r2 ' "$T/routers.out" || fail "r1 or r2 missing from zkrouterctl routers"
grep -q '^r3 ' "$T/routers.out" && fail "r3 still listed after its session expired"
grep -qi '^converged' "$T/routers.out" || fail "zkrouterctl routers does not say converged"

# The survivors still converge on changes.
agent_start after-e conv.test "$(backend_port b1)"
wait_converged 20 after-e present || fail "r1 and r2 did not converge after r3 died"
every_router_serves conv.test 200 b1 || fail "r1/r2 do not serve the change made after r3 died"
loadgen_stop two
loadgen_assert_clean two

# ---- e2: a router frozen past its session timeout ------------------------
# SIGSTOP r1 until ZooKeeper expires its session (its /routers node goes),
# change the tree meanwhile, SIGCONT: r1 must notice the expiry, read the
# whole tree again on a new session, re-create its node and converge with
# r2 on the change it slept through. r2 serves throughout.
TARGETS="--target 127.0.0.1:$(r_port 2)"
loadgen_start frozen --host steady.test --rate 200 --connections 2
kill -STOP "$(r_pid 1)"
only_r2() { ctl --json routers 2>/dev/null | tr -d ' \n' | grep -q '"count":1,'; }
wait_for $(( ROUTER_SESSION_MS / 1000 + 15 )) only_r2 ||
	{ kill -CONT "$(r_pid 1)"; ctl routers; fail "frozen r1's /routers node did not go"; }
kill -TERM "$(agent_pid after-e)"
agent_stop after-e
kill -CONT "$(r_pid 1)"
thawed_at=$(now_ms)
wait_converged 30 after-e absent || fail "r1 did not catch up after its session expired"
log "r1 caught up $(( CONVERGED_AT - thawed_at )) ms after SIGCONT"
both() { ctl --json routers 2>/dev/null | tr -d ' \n' | grep -q '"count":2,"converged":true'; }
wait_for 30 both || { ctl routers; fail "r1 did not re-create its /routers node"; }
every_router_serves conv.test 503 || fail "r1 still routes to the instance removed while it slept"
every_router_serves steady.test 200 s1 || fail "not serving after r1's session expiry"
grep -iE 'expired|new session' "$T/r1.log" | tail -n 3
loadgen_stop frozen
loadgen_assert_clean frozen

TARGETS=$TARGETS_ALL
routers_alive
log "ok"
