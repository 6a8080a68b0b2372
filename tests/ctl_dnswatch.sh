#!/bin/bash
# zkrouterctl dns --watch against a real DNS server (Knot, which takes RFC
# 2136 updates signed with TSIG): the zone follows /routers within a
# second or so as routers join and leave, unsigned updates are refused by
# the server, a failed update is retried until the server takes it, and
# with no router left the zone keeps its last records (fail static).
# Routers are stood in for by tests/routernode (their /routers records).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/harness.sh"
. "$top_srcdir/tests/tools_common.sh"

command -v knotd >/dev/null || skip "knotd not installed (apt-get install knot)"
command -v nsupdate >/dev/null || skip "nsupdate not installed (apt-get install bind9-dnsutils)"
command -v dig >/dev/null || skip "dig not installed (apt-get install bind9-dnsutils)"

tools_zk_start

# ---- the DNS server: zone apps.test, updates only with the TSIG key ----
DNS_PORT=$(free_port)
mkdir -p "$T/knot"
SECRET=$(openssl rand -base64 32) || hard_error "openssl rand failed"
cat >"$T/knot/knot.conf" <<CFG
server:
    listen: 127.0.0.1@$DNS_PORT
    rundir: $T/knot
log:
  - target: stderr
    any: info
database:
    storage: $T/knot
key:
  - id: zkrouter-dns
    algorithm: hmac-sha256
    secret: $SECRET
acl:
  - id: zkrouter-update
    key: zkrouter-dns
    action: update
zone:
  - domain: apps.test
    storage: $T/knot
    file: apps.test.zone
    acl: zkrouter-update
    zonefile-sync: -1
CFG
cat >"$T/knot/apps.test.zone" <<ZONE
\$ORIGIN apps.test.
\$TTL 5
@	IN SOA ns.apps.test. hostmaster.apps.test. 1 60 60 3600 5
@	IN NS ns.apps.test.
ns	IN A 127.0.0.1
ZONE
# nsupdate -k reads BIND's key syntax; the secret is never on a command line.
printf 'key "zkrouter-dns" {\n\talgorithm hmac-sha256;\n\tsecret "%s";\n};\n' "$SECRET" >"$T/tsig.key"
chmod 600 "$T/tsig.key"
knot_start() {
	spawn knotd knotd -c "$T/knot/knot.conf"
	KNOT_PID=$SPAWNED_PID
	wait_for 10 dig +time=1 +tries=1 @127.0.0.1 -p "$DNS_PORT" apps.test SOA +short ||
		hard_error "knotd did not answer"
}
knot_start

# answers: the sorted A records of shop.apps.test, one line.
answers() { dig +time=1 +tries=1 +short @127.0.0.1 -p "$DNS_PORT" shop.apps.test A | sort | tr '\n' ' '; }
# dns_is "ADDR ...": the server answers exactly these records now.
dns_is() { [ "$(answers)" = "$1 " ]; }

router() {  # router NAME ADDR: a live /routers/NAME listening on ADDR:8080
	spawn "rn-$1" "$ROUTERNODE" --zk "$ZK" --id "$1" --listen "$2:8080" --generation 1 \
		--digest "$(printf 'a%.0s' $(seq 1 64))"
	eval "RN_$1=\$SPAWNED_PID"
	wait_for 10 grep -q ready "$T/rn-$1.log" || fail "routernode $1 did not start"
}

log "bad arguments are refused before anything runs"
ctl dns --zone apps.test --name '*' --watch >/dev/null 2>"$T/err"
expect_eq "$?" 2 "--watch without --server"
ctl dns --zone apps.test --name '*' --watch --server $'1.2.3.4\nsend' >/dev/null 2>"$T/err"
expect_eq "$?" 2 "--server with a newline"
ctl dns --zone apps.test --name '*' --server 127.0.0.1 >/dev/null 2>"$T/err"
expect_eq "$?" 2 "--server without --watch"

log "two routers, then the watch: both published"
router r1 127.0.0.11
router r2 127.0.0.12
spawn dnswatch "$CTL" --zk "$ZK" dns --zone apps.test --name '*' --ttl 5 --watch \
	--server 127.0.0.1 --port "$DNS_PORT" --tsig-key-file "$T/tsig.key"
WATCH=$SPAWNED_PID
wait_for 10 dns_is "127.0.0.11 127.0.0.12" || fail "DNS has '$(answers)', not both routers"

log "a router leaves /routers: gone from DNS within seconds"
stop_pid "$RN_r2"
t0=$(now_ms)
wait_for 10 dns_is "127.0.0.11" || fail "DNS still has '$(answers)' after r2 left"
left_ms=$(( $(now_ms) - t0 ))
log "r2 left DNS $left_ms ms after it left /routers"
echo "figure: dns-watch router-left ms=$left_ms"

log "a router joins: published"
router r3 127.0.0.13
wait_for 10 dns_is "127.0.0.11 127.0.0.13" || fail "DNS has '$(answers)' after r3 joined"

log "an unsigned update is refused by the server (so TSIG is what lets the watch in)"
printf 'server 127.0.0.1 %s\nzone apps.test.\nupdate add *.apps.test. 5 IN A 127.0.0.99\nsend\n' "$DNS_PORT" |
	nsupdate -v -t 5 >"$T/unsigned.out" 2>&1 && fail "an unsigned update was accepted"
grep -q NOTAUTH "$T/unsigned.out" || fail "unsigned update: $(cat "$T/unsigned.out")"
dns_is "127.0.0.11 127.0.0.13" || fail "DNS changed to '$(answers)'"

log "the DNS server down during a change: the update is retried until it takes"
stop_pid "$KNOT_PID"
stop_pid "$RN_r1"
wait_for 20 grep -q 'update of \*.apps.test. failed; retrying' "$T/dnswatch.log" ||
	fail "no failed update logged with the server down"
knot_start
wait_for 40 dns_is "127.0.0.13" || fail "DNS has '$(answers)' after the server came back"

log "the last router leaves: the zone keeps its records"
stop_pid "$RN_r3"
wait_for 10 grep -q 'no live router advertises a usable address (0 in /routers); the zone keeps' \
	"$T/dnswatch.log" || fail "the watch did not see the last router leave"
dns_is "127.0.0.13" || fail "DNS has '$(answers)' with no router left"

log "SIGTERM ends the watch with status 0"
kill -TERM "$WATCH"
wait_for 10 eval '! kill -0 '"$WATCH"' 2>/dev/null' || fail "the watch did not stop on SIGTERM"
wait "$WATCH"
expect_eq "$?" 0 "watch exit status"
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $WATCH / /")
grep -q 'dns: stopped' "$T/dnswatch.log" || fail "no stop line"
log "ok"
