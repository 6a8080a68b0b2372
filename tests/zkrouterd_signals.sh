#!/bin/bash
# zkrouterd's signals against a real ZooKeeper and a real backend:
# SIGHUP reopens the access log (rotation by rename) and applies the
# config file's reloadable options, and a file that no longer parses
# changes nothing; SIGTERM drains: /healthz 503, /routers/<node> removed,
# listeners closed after drain-delay-ms, a slow request in flight still
# completes, exit 0.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

# zk_ls PATH: the children of PATH, or "Node does not exist".
zk_ls() {
	java -cp "$ZK_CLASSPATH" org.apache.zookeeper.ZooKeeperMain -server "$ZK" ls "$1" 2>&1 |
		grep -E '^\[.*\]$|Node does not exist' | tail -n 1
}

routers_empty() { [ "$(zk_ls /zkrouter/routers)" = "[]" ]; }

NODE=test-$$     # the node id proxy_setup gives
cat >"$T/zkrouterd.conf" <<EOF
# the test router
log-level = info
drain-timeout-ms = 15000
drain-delay-ms = 5000
EOF
proxy_setup --config "$T/zkrouterd.conf"
start_backend s1
app_add sig.test
register sig.test s1 "$BACKEND_PORT"
wait_instance sig.test s1
[ "$(pcurl sig.test /)" = "ok s1" ] || fail "sig.test is not routed"
[ "$(zk_ls /zkrouter/routers)" = "[$NODE]" ] || fail "/routers does not list $NODE: $(zk_ls /zkrouter/routers)"

log "SIGHUP reopens the access log"
wait_for 20 grep -q 'host=sig.test' "$T/access.log" || fail "no access-log line before rotation"
mv "$T/access.log" "$T/access.log.1"
pcurl sig.test /before-hup >/dev/null
kill -HUP "$ROUTER_PID"
wait_for 20 test -f "$T/access.log" || fail "access log not re-created after SIGHUP"
pcurl sig.test /after-hup >/dev/null
wait_for 20 grep -q 'target=/after-hup' "$T/access.log" || fail "new access log got no line after SIGHUP"
wait_for 20 grep -q 'target=/before-hup' "$T/access.log.1" || fail "line before SIGHUP not in the old file"
grep -q 'after-hup' "$T/access.log.1" && fail "old file got a line after SIGHUP"

log "SIGHUP applies reloadable options from the file"
sed -i 's/^log-level = info/log-level = debug/' "$T/zkrouterd.conf"
echo "auth = someone:secret" >>"$T/zkrouterd.conf"
kill -HUP "$ROUTER_PID"
wait_for 20 grep -q 'reload applied: log-level; changed but not reloadable (restart to apply): auth' \
	"$T/zkrouterd.log" || fail "reload did not report what it applied: $(tail -n 5 "$T/zkrouterd.log")"

log "a broken file on SIGHUP changes nothing"
echo "retries = many" >>"$T/zkrouterd.conf"
kill -HUP "$ROUTER_PID"
wait_for 20 grep -q "reload failed, keeping the running configuration: $T/zkrouterd.conf:6: retries" \
	"$T/zkrouterd.log" || fail "bad reload not reported with file:line: $(tail -n 5 "$T/zkrouterd.log")"
[ "$(pcurl sig.test /)" = "ok s1" ] || fail "router stopped routing after a bad reload"
router_alive

log "SIGTERM drains: a slow request in flight completes"
pcurl sig.test '/slow?ms=7500' -o "$T/slow.out" -w '%{http_code}' >"$T/slow.code" &
SLOW=$!
wait_for 20 grep -q 'req s1 .* /slow' "$T/backend-s1.log" || fail "slow request never reached the backend"
t0=$(now_ms)
kill -TERM "$ROUTER_PID"
wait_for 20 sh -c "[ \"\$(curl -s --max-time 1 -o /dev/null -w '%{http_code}' http://$ADMIN/healthz)\" = 503 ]" ||
	fail "/healthz did not turn 503 while draining"
curl -s --max-time 1 "http://$ADMIN/healthz" | grep -q draining || fail "/healthz 503 does not say draining"
[ "$(pcurl sig.test /during-delay)" = "ok s1" ] || fail "listener closed before drain-delay-ms passed"
wait_for 15 grep -q 'listeners closed' "$T/zkrouterd.log" || fail "the listeners never closed"
wait_for 30 routers_empty || fail "/routers/$NODE not removed while draining: $(zk_ls /zkrouter/routers)"
refused() { ! curl -s --max-time 1 -o /dev/null "http://$PROXY/"; }
wait_for 15 refused || fail "listener still accepts after drain-delay-ms"
rc=0
wait "$ROUTER_PID" || rc=$?
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $ROUTER_PID / /")
took=$(( $(now_ms) - t0 ))
wait "$SLOW"
[ "$rc" = 0 ] || fail "zkrouterd exited $rc after SIGTERM, want 0"
[ "$(cat "$T/slow.code")" = 200 ] || fail "slow request in flight got '$(cat "$T/slow.code")', want 200"
[ "$took" -ge 6500 ] || fail "zkrouterd exited after $took ms, before the slow request could finish"
[ "$took" -lt 18000 ] || fail "drain took $took ms for a 7.5 s request (it waited for its timeout)"
grep -q 'drained in' "$T/zkrouterd.log" || fail "no drain line in the log"
exit 0
