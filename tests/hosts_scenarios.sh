#!/bin/bash
# Several hosts, for real, on one machine: deploy/hosts/zkrouter-hosts
# builds ten network namespaces on one private bridge (a 3-member ZooKeeper
# ensemble, 3 zkrouterd, 2 app hosts with zkrouter-agent and an app, a
# Knot DNS server kept current by `zkrouterctl dns --watch`, a client), and
# tests/loadgen, on the client host, counts every failed request while:
#  1. a router host is cut off from the ZooKeeper hosts: it keeps serving
#     its table (no request fails), misses a change made meanwhile, and
#     gets it when the link returns;
#  2. an app host is cut off: its instance's session expires, every router
#     drops it, and requests succeed on the other app host (a client that
#     starts then sees no failure; the one running at the cut loses at most
#     the requests that were on their way to the lost host);
#  3. a ZooKeeper minority (a follower) is cut off: no request fails and a
#     change reaches every router;
#  4. a router host is stopped: it leaves /routers and DNS within seconds,
#     and a client that resolves again sees no failure.
# Every address is inside the namespaces (198.18.0.0/15, never routed out).
# Needs root; without it the test skips (even under ZKR_TEST_NO_SKIP: CI
# runs as root). HOSTS_FULL=1 (tests/bench/hosts-bench) runs longer and
# harder, and adds a crashed router and a cut-off ZooKeeper leader.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/cluster_common.sh"

: "${HOSTS_FULL:=0}"
if [ "$(id -u)" -ne 0 ]; then
	echo "SKIP: needs root (network namespaces)"
	exit 77
fi
zk_require
for t in ip knotd nsupdate dig openssl getent curl; do
	command -v "$t" >/dev/null ||
		skip "$t not installed (apt-get install iproute2 knot bind9-dnsutils openssl curl)"
done
cluster_require
probe=zkp$$
ip netns add "$probe" 2>/dev/null || { echo "SKIP: cannot create network namespaces here"; exit 77; }
ip netns del "$probe"

RATE=200
CONNS=6
CUT_S=6
if [ "$HOSTS_FULL" = 1 ]; then
	RATE=1000
	CONNS=20
	CUT_S=30
fi

PREFIX=zkt$$
H=(bash "$top_srcdir/deploy/hosts/zkrouter-hosts" --build "$top_builddir" --prefix "$PREFIX" --state "$T/hosts")
export ZKR_HOSTS_ROUTER_ARGS="$WORKERS_ARG"
hosts() { "${H[@]}" "$@"; }
addr() { hosts addr "$1"; }
on() { local h=$1; shift; ip netns exec "$PREFIX-$h" "$@"; }
# Whatever happens, `down` ends what `up` started and removes the
# namespaces; on failure the hosts' logs are kept for the harness to show.
hosts_cleanup() {
	local rc=$? f
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		for f in "$T"/hosts/log/*.log; do
			[ -f "$f" ] && cp "$f" "$T/host-$(basename "$f")"
		done
	fi
	hosts down >"$T/down.out" 2>&1 || cat "$T/down.out"
	ip netns list | grep -q "^$PREFIX-" && echo "a namespace of $PREFIX was left behind" && rc=1
	(exit "$rc")
	harness_cleanup
}
trap hosts_cleanup EXIT

log "up: ten hosts, the ensemble, routers, apps, DNS"
t0=$(now_ms)
hosts up >"$T/up.log" 2>&1 || fail "zkrouter-hosts up failed: $(tail -n 5 "$T/up.log")"
log "up in $(( $(now_ms) - t0 )) ms"
ZK="$(addr zk1):2181,$(addr zk2):2181,$(addr zk3):2181"
R1=$(addr r1) R2=$(addr r2) R3=$(addr r3)
DOMAIN=shop.apps.test
ctl() { on dns "$CTL" --zk "$ZK" --timeout 10000 "$@"; }

# resolved: what the client's resolver (through the DNS host) gives now.
resolved() { on client getent ahostsv4 "$DOMAIN" | awk '{ print $1 }' | sort -u | tr '\n' ' '; }
[ "$(resolved)" = "$R1 $R2 $R3 " ] || fail "the client resolves $DOMAIN to '$(resolved)'"
# targets: loadgen arguments for the addresses the client resolves now.
targets() { local a; for a in $(resolved); do printf -- '--target %s:80 ' "$a"; done; }
# code_at ADDR HOST: the status one request through the router at ADDR gets.
code_at() { on client curl -s -o /dev/null --max-time 3 -w '%{http_code}' -H "Host: $2" "http://$1/"; }
# in_routers ID: /routers has the router ID (count: how many routers).
router_count() { ctl --json routers 2>/dev/null | tr -d ' \n' | grep -o '"count":[0-9]*' | cut -d: -f2; }
in_routers() { ctl routers 2>/dev/null | grep -q "^$1 "; }
instances() { ctl instances "$DOMAIN" 2>/dev/null | awk 'NR > 1 { print $1 }' | sort | tr '\n' ' '; }
lg_start() {
	local name=$1
	shift
	spawn "lg-$name" ip netns exec "$PREFIX-client" "$LOADGEN" --host "$DOMAIN" "$@"
	eval "LG_PID_$(tag_of "$name")=\$SPAWNED_PID"
}
# lg_served NAME N: loadgen NAME's progress shows N answers.
lg_served() {
	grep '^progress:' "$T/lg-$1.log" | tail -n 1 | tr ' ' '\n' | sed -n 's/^ok=//p' |
		awk -v n="$2" '$1 >= n { y = 1 } END { exit !y }'
}
ALL="--target $R1:80 --target $R2:80 --target $R3:80"

# ---- 1: a router host cut off from ZooKeeper -------------------------------
log "1. r1 cut off from zk1 zk2 zk3 for $CUT_S s under load"
lg_start s1 $ALL --rate "$RATE" --connections "$CONNS" --progress 1
wait_for 20 lg_served s1 "$RATE" || fail "load did not start"
hosts cut r1 zk1 zk2 zk3
cut_at=$(now_ms)
# Its session expires on the ensemble's side: that proves the cut.
wait_for 20 eval '! in_routers r1' || fail "r1 still in /routers $CUT_S s after the cut"
log "r1 left /routers $(( $(now_ms) - cut_at )) ms after the cut"
ctl app add new.apps.test >>"$T/ctl.log" 2>&1 || fail "app add failed"
wait_for 10 eval '[ "$(code_at $R2 new.apps.test)" = 503 ]' || fail "r2 did not see the new app"
[ "$(code_at "$R1" new.apps.test)" = 404 ] || fail "r1, cut off, knows the new app"
[ "$(code_at "$R1" "$DOMAIN")" = 200 ] || fail "r1, cut off, does not serve its table"
sleep $(( CUT_S - ($(now_ms) - cut_at) / 1000 > 0 ? CUT_S - ($(now_ms) - cut_at) / 1000 : 0 ))
hosts heal r1
healed_at=$(now_ms)
wait_for 30 eval '[ "$(code_at $R1 new.apps.test)" = 503 ]' || fail "r1 did not get the change after the link returned"
s1_change_ms=$(( $(now_ms) - healed_at ))
wait_for 30 in_routers r1 || fail "r1 did not come back in /routers"
log "r1 has the change $s1_change_ms ms after the link returned"
loadgen_stop s1
loadgen_assert_clean s1
echo "figure: hosts router-cut-from-zk cut_s=$CUT_S change_after_heal_ms=$s1_change_ms $(grep '^result:' "$T/lg-s1.log" | cut -d' ' -f2-3)"

# ---- 2: an app host cut off ------------------------------------------------
log "2. app2 cut off from every host under load"
[ "$(instances)" = "app1:8080 app2:8080 " ] || fail "instances before: $(instances)"
lg_start s2 $ALL --rate "$RATE" --connections "$CONNS" --progress 1 --by-header X-Backend-Id
wait_for 20 lg_served s2 "$RATE" || fail "load did not start"
hosts cut app2
cut_at=$(now_ms)
wait_for 20 eval '[ "$(instances)" = "app1:8080 " ]' || fail "app2's instance still registered: $(instances)"
gone_ms=$(( $(now_ms) - cut_at ))
no_app2() {
	local a
	for a in $R1 $R2 $R3; do
		on client curl -s --max-time 2 "http://$a:9000/routes" | grep -q '"app1:8080"' || return 1
		! on client curl -s --max-time 2 "http://$a:9000/routes" | grep -q '"app2:8080"' || return 1
	done
}
wait_for 10 no_app2 || fail "a router still routes to app2"
log "app2's instance left ZooKeeper $gone_ms ms after the cut, and every router's table"
# Requests already sent to app2 wait for an answer that never comes; give
# them loadgen's timeout (5 s) before counting.
sleep 1
loadgen_stop s2
s2_failed=$(lg s2 failed)
log "loadgen s2 (running at the cut): $(grep '^result:' "$T/lg-s2.log")"
[ "${s2_failed:-99}" -le $(( 2 * CONNS )) ] || fail "$s2_failed requests failed, more than two per connection"
lg_start s2b $ALL --rate "$RATE" --connections "$CONNS" --duration 2 --by-header X-Backend-Id
wait_for 20 grep -q '^result:' "$T/lg-s2b.log" || fail "loadgen s2b did not finish"
loadgen_assert_clean s2b
grep -q 'ok by X-Backend-Id: app1=[0-9]*$' "$T/lg-s2b.log" || fail "not all on app1: $(grep 'by X-Backend' "$T/lg-s2b.log")"
echo "figure: hosts app-host-cut instance_gone_ms=$gone_ms during: failed=$s2_failed of $(( $(lg s2 ok) + s2_failed )); after: $(grep '^result:' "$T/lg-s2b.log" | cut -d' ' -f2-3)"
hosts heal app2
wait_for 30 eval '[ "$(instances)" = "app1:8080 app2:8080 " ]' || fail "app2 did not register again after the link returned"

# ---- 3: a ZooKeeper minority cut off ---------------------------------------
zk_role() {
	on "zk$1" bash -c "exec 3<>/dev/tcp/$(addr "zk$1")/2181 && printf srvr >&3 && timeout 2 cat <&3" 2>/dev/null |
		sed -n 's/^Mode: //p'
}
minority_cut() {
	local role=$1 m="" i
	for i in 1 2 3; do [ "$(zk_role "$i")" = "$role" ] && m=$i && break; done
	[ -n "$m" ] || fail "no ZooKeeper $role"
	log "3. zk$m (a $role) cut off from every host for $CUT_S s under load"
	lg_start "s3$role" $ALL --rate "$RATE" --connections "$CONNS" --progress 1
	wait_for 20 lg_served "s3$role" "$RATE" || fail "load did not start"
	hosts cut "zk$m"
	cut_at=$(now_ms)
	ctl app add "third-$role.apps.test" >>"$T/ctl.log" 2>&1 || fail "app add with zk$m cut off failed"
	seen() { local a; for a in $R1 $R2 $R3; do [ "$(code_at "$a" "third-$role.apps.test")" = 503 ] || return 1; done; }
	wait_for 20 seen || fail "a change made with zk$m cut off did not reach every router"
	s3_change_ms=$(( $(now_ms) - cut_at ))
	sleep $(( CUT_S - ($(now_ms) - cut_at) / 1000 > 0 ? CUT_S - ($(now_ms) - cut_at) / 1000 : 0 ))
	[ "$(router_count)" = 3 ] || fail "a router left /routers with zk$m cut off"
	[ "$(instances)" = "app1:8080 app2:8080 " ] || fail "an instance left with zk$m cut off: $(instances)"
	hosts heal "zk$m"
	loadgen_stop "s3$role"
	loadgen_assert_clean "s3$role"
	echo "figure: hosts zk-$role-cut change_seen_ms=$s3_change_ms $(grep '^result:' "$T/lg-s3$role.log" | cut -d' ' -f2-3)"
	wait_for 60 eval '[ -n "$(zk_role '"$m"')" ]' || fail "zk$m did not rejoin"
}
minority_cut follower
[ "$HOSTS_FULL" = 1 ] && minority_cut leader

# ---- 4: a router host stopped ----------------------------------------------
stop_router() {
	local r=$1 sig=$2 name=$3 left ra
	ra=$(addr "$r")
	log "4. $r stopped with SIG$sig under load (a client that does not resolve again)"
	lg_start "$name" $(targets) --rate "$RATE" --connections "$CONNS" --progress 1
	wait_for 20 lg_served "$name" "$RATE" || fail "load did not start"
	hosts stop "$r" "$sig"
	stopped_at=$(now_ms)
	wait_for 20 eval '! in_routers '"$r" || fail "$r still in /routers"
	routers_ms=$(( $(now_ms) - stopped_at ))
	left() { ! resolved | grep -qw "$ra"; }
	wait_for 20 left || fail "$r still in DNS: $(resolved)"
	dns_ms=$(( $(now_ms) - stopped_at ))
	log "$r left /routers after $routers_ms ms and the client's DNS answers after $dns_ms ms"
	loadgen_stop "$name"
	log "loadgen $name (fixed targets): $(grep '^result:' "$T/lg-$name.log")"
	lg_start "${name}b" $(targets) --rate "$RATE" --connections "$CONNS" --duration 2
	wait_for 20 grep -q '^result:' "$T/lg-${name}b.log" || fail "loadgen ${name}b did not finish"
	loadgen_assert_clean "${name}b"
	echo "figure: hosts router-stopped-$sig routers_ms=$routers_ms dns_ms=$dns_ms fixed-targets: failed=$(lg "$name" failed) of $(( $(lg "$name" ok) + $(lg "$name" failed) )); resolved-again: $(grep '^result:' "$T/lg-${name}b.log" | cut -d' ' -f2-3)"
}
stop_router r3 TERM s4
[ "$HOSTS_FULL" = 1 ] && stop_router r2 KILL s4kill
log "ok"
