#!/bin/bash
# zkrouterctl routers, dns and watch, with router nodes set up by
# tests/routernode: convergence is reported (and is the exit status) only
# when every live router has the same table digest, and --wait MS reads
# again until they do or the time is out; dns prints the live
# routers' addresses as zone-file records; watch streams each change.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/harness.sh"
. "$top_srcdir/tests/tools_common.sh"

tools_zk_start
DA=$(printf 'a%.0s' $(seq 1 64))
DB=$(printf 'b%.0s' $(seq 1 64))

router() {  # router NAME ARGS...: a live /routers/NAME, ready when this returns
	local name=$1
	shift
	spawn "rn-$name" "$ROUTERNODE" --zk "$ZK" --id "$name" "$@"
	eval "RN_$name=\$SPAWNED_PID"
	wait_for 10 grep -q ready "$T/rn-$name.log" || fail "routernode $name did not start"
}

log "no routers: routers and dns say so and exit 1"
ctl routers >"$T/out"
expect_eq "$?" 1 "routers with none live"
grep -q "no live routers" "$T/out" || fail "routers: $(cat "$T/out")"
ctl dns --zone example.com --name www >"$T/out" 2>"$T/err"
expect_eq "$?" 1 "dns with none live"
grep -q "no live router advertises a usable address" "$T/err" || fail "dns: $(cat "$T/err")"

log "watch streams the changes from here on"
spawn watch "$CTL" --zk "$ZK" --json watch
W=$SPAWNED_PID
wait_for 10 grep -q '"synced: 0 apps' "$T/watch.log" || fail "watch did not sync"

log "two routers on one digest: converged, exit 0"
router r1 --listen 127.0.0.1:8080 --listen '[::1]:8080' --admin 127.0.0.1:9080 \
	--generation 7 --digest "$DA" --version 0.1.0
router r2 --listen 127.0.0.2:8080 --generation 9 --digest "$DA"
ctl routers >"$T/out"
expect_eq "$?" 0 "routers converged"
grep -q "^r1 .*127.0.0.1:8080,\[::1\]:8080 .*127.0.0.1:9080 .*0.1.0 .* 7  aaaaaaaaaaaa$" "$T/out" ||
	fail "r1 line: $(cat "$T/out")"
grep -q "converged: all 2 routers on table digest aaaaaaaaaaaa" "$T/out" || fail "summary: $(cat "$T/out")"
ctl --json routers | grep -qF '"count":2,"converged":true,"digest":"'"$DA"'"' ||
	fail "routers --json: $(ctl --json routers)"

log "a third router on another digest: not converged, exit 1"
router r3 --listen 127.0.0.1:8081 --listen 0.0.0.0:8082 --listen '127.0.0.3:8083,proxy' \
	--generation 3 --digest "$DB"
ctl routers >"$T/out"
expect_eq "$?" 1 "routers disagreeing"
grep -q "NOT converged: 2 distinct digests among 3 routers" "$T/out" || fail "summary: $(cat "$T/out")"
ctl --json routers | grep -qF '"converged":false,"digest":null' || fail "routers --json disagreeing"

log "dns: A and AAAA records for the live routers, each address once, wildcards skipped"
ctl dns --zone example.com. --name www --ttl 30 >"$T/zone" 2>"$T/err"
expect_eq "$?" 0 "dns"
grep -v '^;' "$T/zone" >"$T/records"
printf '%s\n' '$ORIGIN example.com.' \
	"www.example.com.	30	IN	A	127.0.0.1" \
	"www.example.com.	30	IN	A	127.0.0.2" \
	"www.example.com.	30	IN	AAAA	::1" >"$T/want"
diff -u "$T/want" "$T/records" || fail "dns records differ"
grep -q "r3 listens on 0.0.0.0:8082 (any address)" "$T/err" || fail "no warning for 0.0.0.0: $(cat "$T/err")"
grep -q "r3 listens on 127.0.0.3:8083,proxy for a load balancer" "$T/err" ||
	fail "no warning for a PROXY protocol listener: $(cat "$T/err")"
ctl dns --zone example.com --name '*' 2>/dev/null | grep -q '^\*.example.com.	60	IN	A	127.0.0.1$' ||
	fail "wildcard name: $(ctl dns --zone example.com --name '*')"
ctl dns --zone example.com --name @ 2>/dev/null | grep -q '^example.com.	60	IN	A' || fail "apex"
ctl --json dns --zone example.com --name lb.example.com. 2>/dev/null | grep -qF \
	'"name":"lb.example.com.","ttl":60,"routers":3,"records":[{"type":"A","address":"127.0.0.1"},{"type":"A","address":"127.0.0.2"},{"type":"AAAA","address":"::1"}]' ||
	fail "dns --json: $(ctl --json dns --zone example.com --name lb.example.com.)"
"$CTL" --zk "$ZK" dns --zone example.com --name www.other.org. >/dev/null 2>"$T/err"
expect_eq "$?" 2 "a name outside the zone"
"$CTL" --zk "$ZK" dns --zone 'bad zone' --name www >/dev/null 2>&1
expect_eq "$?" 2 "a bad zone"

log "routers --wait: still disagreeing when the time is out: exit 1, after the wait"
t0=$(now_ms)
ctl routers --wait 600 >"$T/out"
expect_eq "$?" 1 "routers --wait while disagreeing"
[ $(( $(now_ms) - t0 )) -ge 600 ] || fail "routers --wait 600 returned after $(( $(now_ms) - t0 )) ms"
grep -q "NOT converged: 2 distinct digests among 3 routers" "$T/out" || fail "summary: $(cat "$T/out")"
"$CTL" --zk "$ZK" routers --wait soon >/dev/null 2>"$T/err"
expect_eq "$?" 2 "routers --wait with a bad value"

log "a router that dies is gone from the list; routers --wait sees the rest converge"
spawn waiting "$CTL" --zk "$ZK" routers --wait 20000
WAITING=$SPAWNED_PID
# Had it not waited, it would have read r3's digest and exited 1.
stop_pid "$RN_r3" KILL
wait "$WAITING"
expect_eq "$?" 0 "routers --wait once r3 is gone (session timeout 4 s)"
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $WAITING / /")
grep -q "converged: all 2 routers on table digest aaaaaaaaaaaa" "$T/waiting.log" ||
	fail "routers --wait: $(cat "$T/waiting.log")"
ctl routers | grep -q "^r3 " && fail "r3 still listed"

log "a garbage router record is shown as invalid, and blocks convergence"
router junk --raw 'not a protobuf'
ctl routers >"$T/out"
expect_eq "$?" 1 "routers with an invalid record"
grep -q "^junk .*INVALID" "$T/out" || fail "junk: $(cat "$T/out")"

log "watch saw the routers come and go, and sees apps and instances"
ctl app add w.localhost --retries 1 >/dev/null
P=$(free_port)
spawn agent "$AGENT" --zk "$ZK" --domain w.localhost --host 127.0.0.1 --port "$P" --id w1
wait_for 10 has_instances w.localhost 1 || fail "agent did not register"
# watch reports states it read, so a change undone within milliseconds
# may pass unseen: let it see the instance before it goes.
wait_for 10 grep -qF '"event":"instance+"' "$T/watch.log" || fail "watch missed the instance"
stop_pid "$SPAWNED_PID"
ctl app rm w.localhost >/dev/null
for ev in '"event":"router+","id":"r1"' '"event":"router+","id":"r3"' '"event":"router-","id":"r3"' \
	'"event":"app+","domain":"w.localhost","config":{"balance":"least-outstanding","redirect_https":false,"retries":1}' \
	'"event":"instance+","domain":"w.localhost","instance":{"id":"w1","host":"127.0.0.1","port":'"$P" \
	'"event":"instance-","domain":"w.localhost","id":"w1"' '"event":"app-","domain":"w.localhost"'; do
	wait_for 10 grep -qF "$ev" "$T/watch.log" || fail "watch missed $ev"
done
# Order: the instance went before its app.
[ "$(grep -n 'instance-' "$T/watch.log" | cut -d: -f1)" -lt "$(grep -n '"app-"' "$T/watch.log" | cut -d: -f1)" ] ||
	fail "watch order"
kill -INT "$W"
wait "$W"
expect_eq "$?" 0 "watch exit status on SIGINT"
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $W / /")
log "ok"
