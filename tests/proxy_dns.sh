#!/bin/bash
# Instances registered by host name. zkrouterd looks names up through its
# resolver (here --resolver, a DNS server on loopback: tests/dnsserver.py)
# without blocking its loop: while a name gets no answer, other apps are
# served at once; an app whose only instance is unresolved answers 503
# until the name resolves, then routes to it; a failed lookup is retried
# with backoff, with one warning; /etc/hosts names resolve at once; an
# instance removed while its lookup is pending goes away cleanly.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"
# Each worker resolves instance host names itself (one warning each) until
# resolution moves to the control thread: its router runs one worker until then.
WORKERS_ARG=--workers=1

command -v python3 >/dev/null || skip "python3 missing"
spawn dns python3 "$top_srcdir/tests/dnsserver.py" "$T/dns.port"
wait_for 10 test -s "$T/dns.port" || hard_error "the test DNS server did not start"
DNS=127.0.0.1:$(cat "$T/dns.port")
QUERIES=$T/dns.port.log

proxy_setup --resolver "$DNS"
start_backend a1; PA1=$BACKEND_PORT
for d in ip.test silent.test late.test nx.test hosts.test; do app_add "$d"; done
register ip.test a1 "$PA1"
wait_instance ip.test a1

# status HOST: the status of one request to that app.
status() { pcurl "$1" / -o /dev/null -w '%{http_code}'; }

log "a name the server never answers: other apps are served at once"
register silent.test s1 "$PA1" "host=silent-1.test"
wait_instance silent.test s1
wait_for 20 grep -q 'silent-1.test' "$QUERIES" || fail "no query for silent-1.test reached the DNS server"
for i in 1 2 3 4 5; do
	t=$(pcurl ip.test / -o /dev/null -w '%{http_code} %{time_total}')
	[ "${t% *}" = 200 ] || fail "ip.test during a pending lookup: $t"
	# Blocked behind the lookup, it would take at least the resolver's
	# 5 s timeout.
	awk -v s="${t#* }" 'BEGIN { exit !(s < 2) }' || fail "ip.test took ${t#* } s during a pending lookup"
done
pcurl silent.test / -D "$T/h-silent" -o /dev/null >/dev/null
[ "$(first_status "$T/h-silent")" = 503 ] || fail "unresolved instance: $(cat "$T/h-silent")"
grep -qi '^x-zkrouter-error: no_instances' "$T/h-silent" || fail "no no_instances: $(cat "$T/h-silent")"
routes | tr -d ' \n' | grep -q '"id":"s1".*"resolved":false' || fail "/routes: s1 not marked unresolved: $(routes)"

log "an instance removed while its lookup is pending"
deregister s1
wait_instance silent.test s1 gone
router_alive
[ "$(status ip.test)" = 200 ] || fail "ip.test after the removal"

log "an answer that comes late: 503 until then, routed after"
register late.test l1 "$PA1" "host=late-1.test"
wait_instance late.test l1
# The DNS server holds its answer for late-1.test until told to send it.
wait_for 20 grep -q 'late-1.test' "$QUERIES" || fail "no query for late-1.test reached the DNS server"
[ "$(status late.test)" = 503 ] || fail "late.test before its name resolved"
touch "$T/dns.port.late"
wait_for 30 sh -c "[ \"\$(curl -s --max-time 5 -H 'Host: late.test' http://$PROXY/)\" = 'ok a1' ]" ||
	fail "late.test never routed after its name resolved"
routes | tr -d ' \n' | grep -q '"id":"l1".*"resolved":true' || fail "/routes: l1 not resolved: $(routes)"
grep -q 'late-1.test is 127.0.0.1' "$T/zkrouterd.log" || fail "no log line for the resolved name"

log "NXDOMAIN: 503, one warning, retried with backoff"
register nx.test n1 "$PA1" "host=nx-1.test"
wait_instance nx.test n1
[ "$(status nx.test)" = 503 ] || fail "nx.test with an unknown name"
wait_for 10 sh -c "[ \$(grep -c '^1 nx-1.test' '$QUERIES') -ge 2 ]" || fail "the failed lookup was not retried"
[ "$(grep -c 'cannot resolve nx-1.test' "$T/zkrouterd.log")" = 1 ] ||
	fail "want one warning for nx-1.test: $(grep 'nx-1.test' "$T/zkrouterd.log")"

log "a name from /etc/hosts resolves at once"
grep -qE '^127\.0\.0\.1[[:space:]].*\blocalhost\b' /etc/hosts || skip "no localhost in /etc/hosts"
register hosts.test h1 "$PA1" "host=localhost"
wait_instance hosts.test h1
wait_for 20 sh -c "[ \"\$(curl -s --max-time 5 -H 'Host: hosts.test' http://$PROXY/)\" = 'ok a1' ]" ||
	fail "hosts.test (localhost) not routed"

log "a bad --resolver is refused at start"
"$ZKROUTERD" --zk 127.0.0.1:1 --resolver 'not-an-ip' --check-config >"$T/bad-resolver" 2>&1 &&
	fail "--resolver not-an-ip accepted"
grep -q 'resolver: "not-an-ip" is not IP' "$T/bad-resolver" || fail "bad --resolver: $(cat "$T/bad-resolver")"

router_alive
log "ok"
