#!/bin/bash
# zkrouterd's admin endpoint against a real ZooKeeper: /healthz is 503
# while no table was ever loaded (ZooKeeper away at start) and 200 once it
# is; /routes is valid JSON with node id, generation, digest, apps with
# config and instances and their runtime state; /metrics agrees; unknown
# paths get 404 and other methods 405. A routed request leaves one
# access-log line with its request id.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_require
zk_start 500
zkput mk /apps - mk /routers - >>"$T/zkput.log" 2>&1 || hard_error "cannot create /apps"
zk_stop

ports=$(free_port 2) || hard_error "no free ports"
PROXY=127.0.0.1:$(echo "$ports" | sed -n 1p)
ADMIN=127.0.0.1:$(echo "$ports" | sed -n 2p)
NODE=admin-$$
spawn zkrouterd "$ZKROUTERD" "$WORKERS_ARG" --zk "$ZK/zkrouter" --listen "$PROXY" --admin "$ADMIN" \
	--node-id "$NODE" --zk-session-timeout-ms 6000 --access-log "$T/access.log" --state-dir "$T/state"
ROUTER_PID=$SPAWNED_PID

log "/healthz is 503 while no table was ever loaded"
wait_for 10 curl -s --max-time 2 -o /dev/null "http://$ADMIN/healthz" || fail "admin endpoint never answered"
code=$(curl -s --max-time 2 -o "$T/hz" -w '%{http_code}' "http://$ADMIN/healthz")
[ "$code" = 503 ] || fail "/healthz gave $code before any table, want 503"
grep -q "no routing table" "$T/hz" || fail "/healthz 503 body does not say why: $(cat "$T/hz")"
curl -s --max-time 2 "http://$ADMIN/metrics" | grep -q '^zkrouter_ready 0$' || fail "/metrics ready is not 0"
curl -s --max-time 2 "http://$ADMIN/routes" | grep -q '"table_loaded":false' || fail "/routes claims a table"

log "ZooKeeper back: /healthz turns 200"
zk_resume
wait_for 30 curl -sf --max-time 2 -o /dev/null "http://$ADMIN/healthz" || fail "/healthz never turned 200"
[ "$(curl -s --max-time 2 "http://$ADMIN/healthz")" = ok ] || fail "/healthz 200 body is not 'ok'"

log "an app with two instances shows in /routes"
start_backend i1; P1=$BACKEND_PORT
start_backend i2; P2=$BACKEND_PORT
app_add hello.test "app:balance=round-robin,retries=2,connect_timeout_ms=1500"
register hello.test i1 "$P1"
register hello.test i2 "$P2" "weight=7,zone=z-b"
wait_instance hello.test i1
wait_instance hello.test i2
routes >"$T/routes.json"
if command -v python3 >/dev/null; then
	python3 - "$T/routes.json" "$NODE" "$P1" "$P2" <<'PY' || fail "/routes JSON wrong: $(cat "$T/routes.json")"
import json, re, sys
r = json.load(open(sys.argv[1]))
node, p1, p2 = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
assert r["node_id"] == node, r["node_id"]
assert r["table_loaded"] is True and r["draining"] is False
assert isinstance(r["generation"], int) and r["generation"] >= 1
assert re.fullmatch(r"[0-9a-f]{64}", r["digest"]), r["digest"]
apps = {a["domain"]: a for a in r["apps"]}
a = apps["hello.test"]
assert re.fullmatch(r"[0-9a-f]{64}", a["digest"])
c = a["config"]
assert c["balance"].lower().replace("-", "_") == "round_robin", c["balance"]
assert c["retries"] == 2 and c["connect_timeout_ms"] == 1500, c
ins = {i["id"]: i for i in a["instances"]}
assert set(ins) == {"i1", "i2"}, ins
assert ins["i1"]["port"] == p1 and ins["i2"]["port"] == p2
assert ins["i2"]["weight"] == 7 and ins["i2"]["zone"] == "z-b"
assert ins["i1"]["host"] == "127.0.0.1" and ins["i1"]["state"] == "UP"
for i in ins.values():
    rt = i["runtime"]
    assert rt["ejected"] is False and rt["health_down"] is False
    assert isinstance(rt["outstanding"], int)
PY
else
	log "python3 not installed: checking /routes with grep only"
fi
one=$(tr -d ' \n' <"$T/routes.json")
for w in "\"node_id\":\"$NODE\"" '"domain":"hello.test"' '"id":"i1"' '"id":"i2"' '"ejected":false'; do
	echo "$one" | grep -qF "$w" || fail "/routes lacks $w"
done
gen=$(echo "$one" | sed -n 's/.*"generation":\([0-9]*\).*/\1/p' | head -n 1)
echo "$one" | grep -Eq '"digest":"[0-9a-f]{64}"' || fail "/routes has no 64-hex digest"

log "/metrics agrees with /routes"
curl -s --max-time 2 "http://$ADMIN/metrics" >"$T/metrics"
grep -q '^zkrouter_ready 1$' "$T/metrics" || fail "metrics: not ready"
mgen=$(awk '$1 == "zkrouter_table_generation" {print $2}' "$T/metrics")
[ "$mgen" -ge "$gen" ] || fail "metrics generation $mgen < routes generation $gen"
grep -q '^zkrouter_instances 2$' "$T/metrics" || fail "metrics: instances not 2: $(cat "$T/metrics")"
grep -q '^# TYPE zkrouter_active_requests gauge$' "$T/metrics" || fail "metrics: no TYPE lines"

log "unknown path 404, POST 405"
[ "$(curl -s -o /dev/null -w '%{http_code}' "http://$ADMIN/nope")" = 404 ] || fail "/nope is not 404"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://$ADMIN/healthz")" = 405 ] || fail "POST is not 405"

log "a routed request leaves one access-log line"
out=$(curl -s --max-time 10 -H 'Host: Hello.Test:8080' -H 'X-Request-Id: rid-admin-1' "http://$PROXY/some/path?x=1")
case $out in "ok i1" | "ok i2") ;; *) fail "request through the router gave '$out'" ;; esac
wait_for 20 grep -q 'rid=rid-admin-1' "$T/access.log" || fail "no access-log line for rid-admin-1"
line=$(grep 'rid=rid-admin-1' "$T/access.log")
for w in ' client=127.0.0.1:' ' host=hello.test ' ' method=GET ' ' target="/some/path?x=1" ' ' status=200 ' \
	' attempts=1 ' ' total_ms='; do
	echo "$line" | grep -qF -- "$w" || fail "access-log line lacks '$w': $line"
done
echo "$line" | grep -Eq ' instance=i[12] ' || fail "access-log line names no instance: $line"

log "/metrics counts the requests"
curl -s --max-time 2 "http://$ADMIN/metrics" >"$T/metrics2"
grep -q '^zkrouter_requests_total 1$' "$T/metrics2" || fail "metrics: requests_total not 1: $(grep requests "$T/metrics2")"
grep -q '^zkrouter_responses_total{class="2xx"} 1$' "$T/metrics2" || fail "metrics: no 2xx"
grep -q '^zkrouter_request_duration_seconds_count 1$' "$T/metrics2" || fail "metrics: no duration count"
grep -q '^zkrouter_request_duration_seconds_bucket{le="+Inf"} 1$' "$T/metrics2" || fail "metrics: no +Inf bucket"
kill -0 "$ROUTER_PID" || fail "zkrouterd died"
exit 0
