#!/bin/bash
# zkrouter-agent --check-http: registered only while GET PATH on the
# instance answers 2xx/3xx; deregistered while it is refused or answers an
# error; registered again when it passes. The session stays up meanwhile.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/harness.sh"
. "$top_srcdir/tests/tools_common.sh"

tools_zk_start
D=check.localhost
ctl app add "$D" >/dev/null || fail "app add"
read -r P Q <<<"$(free_port 2 | tr '\n' ' ')"

log "no backend yet: the check is refused, nothing is registered"
spawn agent "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P" --id web \
	--check-http /healthz --check-interval 200 --session-timeout 4000 --log-level debug
A=$SPAWNED_PID
# probes N LOG PATTERN: LOG holds at least N probe results matching PATTERN
# (one debug line per probe).
probes() { [ "$(grep -c -- "health check GET .*: $3" "$T/$2.log")" -ge "$1" ]; }
# Three refused checks, each of which would have registered had it passed.
wait_for 15 probes 3 agent 'Connection refused' || fail "no three refused checks: $(cat "$T/agent.log")"
expect_eq "$(instance_count "$D")" 0 "instances while the check is refused"

log "backend up: registered"
spawn backend "$BACKEND" --listen "127.0.0.1:$P" --id b1 --quiet
B=$SPAWNED_PID
wait_for 10 has_instances "$D" 1 || fail "not registered once the check passed"
s1=$(instance_field "$D" web session)

log "backend down: deregistered, the agent keeps running"
stop_pid "$B"
wait_for 10 has_instances "$D" 0 || fail "not deregistered while the check is refused"
kill -0 "$A" || fail "the agent exited"
grep -q "fails (Connection refused); deregistering" "$T/agent.log" || fail "no log line for the failure"

log "backend back: registered again, on the same session"
spawn backend2 "$BACKEND" --listen "127.0.0.1:$P" --id b2 --quiet
wait_for 10 has_instances "$D" 1 || fail "not registered again"
expect_eq "$(instance_field "$D" web session)" "$s1" "session across the flap"

log "a check answering 503 never registers; --check-fall 2 waits for two failures"
spawn backend3 "$BACKEND" --listen "127.0.0.1:$Q" --id b3 --quiet
spawn agent503 "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$Q" --id bad \
	--check-http '/status?code=503' --check-interval 200 --check-fall 2 --log-level debug
wait_for 15 probes 4 agent503 'answered "HTTP/1.1 503' || fail "no four 503 checks: $(cat "$T/agent503.log")"
expect_eq "$(instance_field "$D" bad port)" "" "an instance failing its check"
grep -q 'answered "HTTP/1.1 503' "$T/agent503.log" || fail "the 503 is not reported"

log "a check slower than --check-timeout fails as a timeout"
spawn agentslow "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$Q" --id slow \
	--check-http '/slow?ms=3000' --check-interval 200 --check-timeout 300
wait_for 10 grep -q "fails (timed out); not registering" "$T/agentslow.log" || fail "no timeout reported"
expect_eq "$(instance_field "$D" slow port)" "" "an instance whose check times out"

log "SIGTERM while registered: gone at once"
stop_pid "$A"
expect_eq "$(instance_count "$D")" 0 "instances after SIGTERM"
log "ok"
