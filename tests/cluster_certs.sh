#!/bin/bash
# Certificates in ZooKeeper, end to end: three real routers with HTTPS
# listeners and the routers' read identity, a real ZooKeeper, a real
# backend and agent, and real TLS clients (openssl s_client -servername,
# curl --resolve). A certificate added with `zkrouterctl cert add` is
# served by every router without a restart, within a bounded wait, and the
# app answers through it; a corrupt record and one whose key does not
# match are skipped and logged with their paths while every other
# certificate is served and the routers live on; a renewal (the same name,
# a new certificate) switches every router, which takes the new one into
# service before it lets the old one go; ZooKeeper going away changes
# nothing served; a certificate removed while a router's session expired
# is gone from it once it is back, and that new session reads no record
# it knew again; a router without the routers' identity is refused
# /certs (logged) and serves its own files; `cert rm` makes every router
# fall back to its default certificate.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/cluster_common.sh"
. "$(dirname "$0")/certs_common.sh"

cluster_require
ZKPUT=$BUILD/tests/zkput
[ -x "$ZKPUT" ] || hard_error "tests/zkput not built"

OP=op:op-pw
RT=rt:rt-pw
op() { ctl --auth "$OP" "$@"; }
N_ROUTERS=3

mkcert default 10 default.test
mkcert shop 10 shop.test www.shop.test
mkcert shop2 20 shop.test www.shop.test
mkcert other 10 other.test
FP_DEFAULT=$(fingerprint "$T/default.pem")
FP_SHOP=$(fingerprint "$T/shop.pem")
FP_SHOP2=$(fingerprint "$T/shop2.pem")
FP_OTHER=$(fingerprint "$T/other.pem")

zk_start 500
ctl init >>"$T/ctl.log" 2>&1 || fail "zkrouterctl init failed: $(cat "$T/ctl.log")"
ports=$(free_port 9) || hard_error "no free ports"
set -- $ports
for i in 1 2 3; do
	eval "R_PORT_$i=\$1 R_ADMIN_$i=\$2 R_TLS_$i=\$3"
	shift 3
done
r_tls() { eval "echo \$R_TLS_$1"; }
r_admin() { eval "echo \$R_ADMIN_$1"; }
for i in 1 2 3; do
	router_start "$i" --auth "$RT" --tls-listen "127.0.0.1:$(r_tls "$i")" \
		--tls-cert "$T/default.pem" --tls-key "$T/default.key"
done
for i in 1 2 3; do
	wait_for 30 router_healthy "$i" || fail "router r$i did not become healthy"
done

start_backend shop
op app add shop.test --router-auth "$RT" >>"$T/ctl.log" 2>&1 || fail "app add: $(tail -n 3 "$T/ctl.log")"
agent_start s1 shop.test "$BACKEND_PORT"
wait_for 20 converged s1 present || fail "routers did not converge on s1"

# all_serve SNI FP: every router presents the certificate FP for SNI.
all_serve() {
	local i
	for i in 1 2 3; do
		[ "$(served_fp "$(r_tls "$i")" "$1")" = "$2" ] || return 1
	done
}
# wait_all_serve SECS SNI FP WHAT: all_serve within SECS; logs how long it took.
wait_all_serve() {
	local t0
	t0=$(now_ms)
	wait_for "$1" all_serve "$2" "$3" || {
		for i in 1 2 3; do
			log "r$i serves $(served_fp "$(r_tls "$i")" "$2") for $2"
		done
		fail "$4: not every router serves it within $1 s"
	}
	log "$4: every router within $(( $(now_ms) - t0 )) ms"
}

# in_service_after T0 PATH: how long after T0 (ms) the last router logged
# PATH in service, from the routers' own millisecond timestamps.
in_service_after() {
	local i ts max=0
	for i in 1 2 3; do
		ts=$(grep -m 1 "certs: /zkrouter$2 in service" "$T/r$i.log" | cut -d' ' -f1)
		[ -n "$ts" ] || return 1
		ts=$(date -d "$ts" +%s%3N) || return 1
		[ "$ts" -gt "$max" ] && max=$ts
	done
	echo $((max - $1))
}

log "before: shop.test gets the default certificate"
all_serve shop.test "$FP_DEFAULT" || fail "a router serves something else than the default"

log "cert add: every router serves it without a restart, the app answers through it"
t0=$(now_ms)
op cert add "$T/shop.pem" --key "$T/shop.key" --router-auth "$RT" >>"$T/ctl.log" 2>&1 ||
	fail "cert add: $(tail -n 3 "$T/ctl.log")"
wait_all_serve 10 shop.test "$FP_SHOP" "shop.test added"
log "in service on the last router $(in_service_after "$t0" /certs/shop.test.0000000000) ms after cert add started"
all_serve www.shop.test "$FP_SHOP" || fail "www.shop.test is not served by the new certificate"
all_serve default.test "$FP_DEFAULT" || fail "the default certificate changed"
for i in 1 2 3; do
	code=$(curl -s -o "$T/body" -w '%{http_code}' --max-time 5 --cacert "$T/shop.pem" \
		--resolve "shop.test:$(r_tls "$i"):127.0.0.1" "https://shop.test:$(r_tls "$i")/") ||
		fail "curl through r$i with the stored certificate as the only CA failed"
	[ "$code" = 200 ] || fail "r$i answered $code over HTTPS"
done

log "a corrupt record and a mismatched key are skipped, with their paths; the rest is served"
"$ZKPUT" --zk "$ZK/zkrouter" --auth "$OP" mk /certs/corrupt.0000000100 text:garbage \
	mk /certs/mismatch.0000000101 "tlscert:$T/other.pem,$T/shop.key" >>"$T/zkput.log" 2>&1 ||
	fail "writing the bad records: $(cat "$T/zkput.log")"
op cert add "$T/other.pem" --key "$T/other.key" --router-auth "$RT" >>"$T/ctl.log" 2>&1 ||
	fail "cert add other: $(tail -n 3 "$T/ctl.log")"
wait_all_serve 10 other.test "$FP_OTHER" "other.test added after two bad records"
for i in 1 2 3; do
	wait_for 5 grep -q "certs: /zkrouter/certs/corrupt.0000000100: bad TlsCertificate record skipped" \
		"$T/r$i.log" || fail "r$i did not log the corrupt record"
	wait_for 5 grep -q "certs: /zkrouter/certs/mismatch.0000000101: certificate skipped" "$T/r$i.log" ||
		fail "r$i did not log the mismatched record"
	m=$(curl -s --max-time 5 "http://127.0.0.1:$(r_admin "$i")/metrics") ||
		fail "r$i: no /metrics"
	echo "$m" | grep -q '^zkrouter_zk_certificate_records_skipped_total 2$' ||
		fail "r$i: /metrics does not count the two skipped records: $(echo "$m" | grep zk_certificate)"
done
routers_alive
all_serve shop.test "$FP_SHOP" || fail "a bad record took shop.test out of service"

log "renewal: the same name, a new certificate; every router switches"
# The routers are paused (well within their session timeout) while the
# new node is created and the old one removed, so that each sees both
# changes in one list: the case where the order of taking in and letting
# go is the router's to get right.
for i in 1 2 3; do kill -STOP "$(r_pid "$i")"; done
out=$(op cert add "$T/shop2.pem" --key "$T/shop2.key" --router-auth "$RT"); rc=$?
for i in 1 2 3; do kill -CONT "$(r_pid "$i")"; done
[ "$rc" = 0 ] || fail "renewal: $out"
new=$(echo "$out" | sed -n 's/.* stored at \(\/certs\/[^ ]*\).*/\1/p')
echo "$out" | grep -q "replacing the previous one" || fail "renewal did not replace: $out"
wait_all_serve 10 shop.test "$FP_SHOP2" "shop.test renewed"
for i in 1 2 3; do
	wait_for 5 grep -q "certs: /zkrouter/certs/shop.test.0000000000 removed" "$T/r$i.log" ||
		fail "r$i did not remove the old record"
	# The new one in service before the old one left: never the default between.
	in=$(grep -n "certs: /zkrouter$new in service" "$T/r$i.log" | head -n 1 | cut -d: -f1)
	rm_line=$(grep -n "certs: /zkrouter/certs/shop.test.0000000000 removed" "$T/r$i.log" | cut -d: -f1)
	[ -n "$in" ] && [ "$in" -lt "$rm_line" ] ||
		fail "r$i removed the old certificate (line $rm_line) before the new was in service (line $in)"
done

log "ZooKeeper away: every certificate stays, and nothing is read again when it is back"
zk_stop
for i in 1 2 3; do
	wait_for 10 grep -q "ZooKeeper unreachable" "$T/r$i.log" || fail "r$i did not notice ZooKeeper left"
done
all_serve shop.test "$FP_SHOP2" || fail "shop.test left service with ZooKeeper away"
all_serve other.test "$FP_OTHER" || fail "other.test left service with ZooKeeper away"
zk_resume
for i in 1 2 3; do
	wait_for 30 grep -q "zk: reconnected\|certs: new session, reading /zkrouter/certs (4 known)" \
		"$T/r$i.log" || fail "r$i did not come back to ZooKeeper"
done
all_serve shop.test "$FP_SHOP2" || fail "shop.test changed after ZooKeeper came back"

log "a certificate removed while a router's session expired is gone once it is back"
s1=$(sed -n 's/.* zk: connected, session \(0x[0-9a-f]*\),.*/\1/p' "$T/r1.log" | tail -n 1)
kill -STOP "$(r_pid 1)"
op cert rm other.test >>"$T/ctl.log" 2>&1 || fail "cert rm other.test: $(tail -n 3 "$T/ctl.log")"
wait_for 30 grep -q "Expiring session $s1," "$T/zookeeper.log" || fail "ZooKeeper did not expire r1's session $s1"
kill -CONT "$(r_pid 1)"
wait_all_serve 20 other.test "$FP_DEFAULT" "other.test removed (r1 through a session expiry)"
grep -q "certs: /zkrouter/certs/other.test.[0-9]* removed" "$T/r1.log" || fail "r1 did not log the removal"
# The new session compared its list with the records it knew (4: shop,
# other and the two bad ones) and read none of them again.
grep -q "certs: new session, reading /zkrouter/certs (4 known)" "$T/r1.log" ||
	fail "r1 forgot its records in the new session: $(grep 'certs: new session' "$T/r1.log")"
for i in 1 2 3; do
	n=$(grep -c "certs: /zkrouter$new in service" "$T/r$i.log")
	[ "$n" = 1 ] || fail "r$i read $new $n times"
	n=$(grep -c "certs: /zkrouter/certs/corrupt.0000000100: bad" "$T/r$i.log")
	[ "$n" = 1 ] || fail "r$i read the corrupt record $n times"
done
all_serve shop.test "$FP_SHOP2" || fail "the new session dropped shop.test"

log "a router without the routers' identity is refused /certs, says so, and serves its files"
ports=$(free_port 3) || hard_error "no free ports"
set -- $ports
R_PORT_4=$1 R_ADMIN_4=$2 R_TLS_4=$3
router_start 4 --tls-listen "127.0.0.1:$R_TLS_4" --tls-cert "$T/default.pem" --tls-key "$T/default.key"
wait_for 30 router_healthy 4 || fail "router r4 did not become healthy"
wait_for 10 grep -q "certs: list /zkrouter/certs: not authenticated" "$T/r4.log" ||
	fail "r4 did not log the refused list"
[ "$(served_fp "$R_TLS_4" shop.test)" = "$FP_DEFAULT" ] || fail "r4 serves a certificate it may not read"
grep -q "certs: /zkrouter/certs/[^ ]* in service" "$T/r4.log" && fail "r4 took a record into service"
kill -0 "$(r_pid 4)" 2>/dev/null || fail "r4 died"

log "cert rm: every router falls back to the default certificate"
op cert rm shop.test >>"$T/ctl.log" 2>&1 || fail "cert rm: $(tail -n 3 "$T/ctl.log")"
wait_all_serve 10 shop.test "$FP_DEFAULT" "shop.test removed"
routers_alive
log "ok"
