#!/bin/bash
# Fail static, seen by clients: while ZooKeeper is stopped, zkrouterd keeps
# routing with the last table it had (new connections and keep-alive ones
# alike, no 503), and once ZooKeeper is back it picks up changes again.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_setup
start_backend a1; PA1=$BACKEND_PORT
start_backend a2; PA2=$BACKEND_PORT
app_add a.test
register a.test a1 "$PA1"
wait_instance a.test a1
[ "$(pcurl a.test /)" = "ok a1" ] || fail "a.test not routed"

log "ZooKeeper stopped: 30 requests over 6 s are all served"
zk_stop
# The router knows ZooKeeper is gone before the requests are sent.
wait_for 15 grep -q 'ZooKeeper unreachable; serving the last table' "$T/zkrouterd.log" ||
	fail "the router never noticed that ZooKeeper stopped"
# A keep-alive connection that spans the outage, plus fresh ones.
urls=$(for i in $(seq 1 10); do printf 'http://%s/?ka=%d ' "$PROXY" "$i"; done)
for i in $(seq 1 20); do
	out=$(pcurl a.test "/?down=$i")
	[ "$out" = "ok a1" ] || fail "request $i while ZooKeeper is down: '$out'"
	sleep 0.2
done
# shellcheck disable=SC2086
out=$(curl -s --max-time 20 -H 'Host: a.test' $urls)
[ "$(echo "$out" | grep -c '^ok a1$')" = 10 ] || fail "keep-alive requests while ZooKeeper is down: $out"
code=$(pcurl nowhere.test / -o /dev/null -w '%{http_code}')
[ "$code" = 404 ] || fail "unknown host while ZooKeeper is down gave $code"
router_alive

log "ZooKeeper back: a new instance is picked up"
zk_resume
register a.test a2 "$PA2"
wait_instance a.test a2
seen=""
for _ in $(seq 1 30); do seen="$seen $(pcurl a.test /)"; done
case $seen in *"ok a2"*) ;; *) fail "a2 registered after the outage but never routed" ;; esac
case $seen in *"ok a1"*) ;; *) fail "a1 lost after the outage" ;; esac
log "ok"
