#!/bin/bash
# Draining a removed instance: requests in flight to an instance whose node
# leaves ZooKeeper complete (slow answers and a streamed answer), new
# requests go only to the remaining instance from the moment the router
# sees the removal, and the router's idle pooled connections to the removed
# instance are closed.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_setup
start_backend d1; PD1=$BACKEND_PORT
start_backend d2; PD2=$BACKEND_PORT
app_add d.test
register d.test d1 "$PD1"
register d.test d2 "$PD2"
wait_instance d.test d1
wait_instance d.test d2

log "warm both instances' pools"
for _ in $(seq 1 20); do pcurl d.test / >/dev/null; done
grep -q '^req d1' "$T/backend-d1.log" && grep -q '^req d2' "$T/backend-d2.log" ||
	fail "warm-up did not reach both instances"

log "start slow and streamed requests until d1 has some in flight"
pids=""
for i in 1 2 3 4; do
	pcurl d.test "/slow?ms=3000&n=$i" >"$T/slow$i.out" &
	pids="$pids $!"
	pcurl d.test "/stream?chunks=15&delay=200&n=$i" >"$T/stream$i.out" &
	pids="$pids $!"
done
wait_for 20 sh -c "[ \$(grep -c 'GET /slow\|GET /stream' '$T/backend-d1.log' '$T/backend-d2.log' | awk -F: '{s+=\$2} END {print s}') -ge 8 ]" ||
	fail "not all 8 requests reached a backend"
inflight_d1=$(grep -c 'GET /slow\|GET /stream' "$T/backend-d1.log")
[ "$inflight_d1" -ge 1 ] || fail "no request in flight on d1 (balancing sent all 8 to d2)"
log "$inflight_d1 requests in flight on d1"

log "remove d1 while they run"
deregister d1
wait_instance d.test d1 gone
before=$(grep -c '^req d1' "$T/backend-d1.log")
for i in $(seq 1 20); do
	out=$(pcurl d.test "/?after=$i")
	[ "$out" = "ok d2" ] || fail "request $i after d1 left: '$out'"
done
[ "$(grep -c '^req d1' "$T/backend-d1.log")" = "$before" ] || fail "d1 got new requests after its removal"

log "every request in flight completes"
for p in $pids; do wait "$p" || fail "a request in flight failed (curl exit $?)"; done
for i in 1 2 3 4; do
	case $(cat "$T/slow$i.out") in
	"slow d1" | "slow d2") ;;
	*) fail "slow request $i: '$(cat "$T/slow$i.out")'" ;;
	esac
	[ "$(grep -c '^chunk [0-9]* of d[12]$' "$T/stream$i.out")" = 15 ] ||
		fail "streamed request $i incomplete: $(cat "$T/stream$i.out")"
done
done_d1=$(cat "$T"/slow*.out "$T"/stream*.out | grep -c ' d1$' || true)
[ "$done_d1" -ge 1 ] || fail "no completed answer came from d1"

log "idle pooled connections to d1 close"
wait_for 20 sh -c "[ \$(ss -Htn state established '( dport = :$PD1 )' | wc -l) = 0 ]" ||
	fail "$(conns_to "$PD1") connections to the removed instance stay open"
[ "$(conns_to "$PD2")" -ge 1 ] || log "note: no pooled connection to d2 either"

router_alive
log "ok"
