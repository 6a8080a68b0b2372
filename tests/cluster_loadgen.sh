#!/bin/bash
# tests/loadgen, the load client of the cluster tests, against tests/backend
# directly: it must count what succeeds and, by cause, every request that
# fails (connect refused, closed before the answer, reset when the server
# dies, timeout, status outside 2xx), never retry one, keep a fixed rate,
# spread its connections over every target, and exit 1 when more requests
# failed than --max-failures allows. The cluster tests' "no failed request"
# means something only if this client does see failures.
. "$(dirname "$0")/lib/harness.sh"

LG=$top_builddir/tests/loadgen
BACKEND=$top_builddir/tests/backend
[ -x "$LG" ] && [ -x "$BACKEND" ] || hard_error "tests/loadgen or tests/backend missing"

start_backend() {
	rm -f "$T/$1.port"
	spawn "backend-$1" "$BACKEND" --id "$1" --quiet --ready-file "$T/$1.port"
	eval "PID_$1=\$SPAWNED_PID"
	wait_for 10 test -s "$T/$1.port" || hard_error "backend $1 did not start"
	eval "PORT_$1=\$(cat "\$T/$1.port")"
}
start_backend a
start_backend b

# run NAME ARGS...: runs loadgen to completion; sets RC.
run() {
	local name=$1
	shift
	"$LG" "$@" >"$T/$name.out" 2>"$T/$name.err"
	RC=$?
}
field() { sed -n 's/^result: //p' "$T/$1.out" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
expect() {
	local got
	got=$(field "$1" "$2")
	[ "$got" "$3" "$4" ] || { cat "$T/$1.out" "$T/$1.err"; fail "$1: $2=$got, expected $3 $4"; }
}

log "two targets, closed loop: all ok, both targets and both backends used"
run ok --target "127.0.0.1:$PORT_a" --target "127.0.0.1:$PORT_b" --host x --requests 2000 \
	--connections 4 --by-header X-Backend-Id
[ "$RC" -eq 0 ] || fail "exit $RC with no failure"
expect ok ok -eq 2000
expect ok failed -eq 0
grep -q "target 127.0.0.1:$PORT_a: ok [1-9]" "$T/ok.out" && grep -q "target 127.0.0.1:$PORT_b: ok [1-9]" "$T/ok.out" ||
	fail "connections not spread over both targets: $(cat "$T/ok.out")"
grep -q 'ok by X-Backend-Id: .*a=[1-9].*' "$T/ok.out" && grep -q 'ok by X-Backend-Id: .*b=[1-9]' "$T/ok.out" ||
	fail "--by-header did not count both backends"

log "fixed rate: 200 req/s for 2 s"
run rate --target "127.0.0.1:$PORT_a" --host x --rate 200 --duration 2 --connections 4
[ "$RC" -eq 0 ] || fail "exit $RC"
n=$(field rate ok)
[ "$n" -ge 360 ] && [ "$n" -le 440 ] || fail "200 req/s for 2 s gave $n requests"

log "status outside 2xx: each one counted, exit 1; --max-failures tolerates them"
run st --target "127.0.0.1:$PORT_a" --host x --path '/status?code=503' --requests 50 --connections 2
[ "$RC" -eq 1 ] || fail "exit $RC with 50 failures"
expect st status -eq 50
expect st failed -eq 50
grep -q 'statuses: 503 x50' "$T/st.out" || fail "no status breakdown"
run st2 --target "127.0.0.1:$PORT_a" --host x --path '/status?code=404' --requests 10 --connections 1 \
	--max-failures 10
[ "$RC" -eq 0 ] || fail "exit $RC although --max-failures 10 covers 10 failures"

log "closed before the answer: each request counted once"
run cl --target "127.0.0.1:$PORT_a" --host x --path /close --requests 30 --connections 3
[ "$RC" -eq 1 ] || fail "exit $RC"
expect cl closed -eq 30

log "connection refused"
dead=$(free_port)
run cr --target "127.0.0.1:$dead" --host x --duration 1 --connections 2
[ "$RC" -eq 1 ] || fail "exit $RC"
expect cr connect -gt 0
expect cr ok -eq 0

log "timeout"
run to --target "127.0.0.1:$PORT_a" --host x --path '/slow?ms=2000' --timeout 300 --requests 2 --connections 2
[ "$RC" -eq 1 ] || fail "exit $RC"
expect to timeout -eq 2

log "the server dies under load: failures counted as reset/closed/connect, no hang"
spawn lg-kill "$LG" --target "127.0.0.1:$PORT_b" --host x --connections 4 --rate 500 --progress 0.2
LGPID=$SPAWNED_PID
# progressed KEY MIN: loadgen's last progress line shows KEY above MIN.
progressed() {
	grep '^progress:' "$T/lg-kill.log" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$1=//p" |
		awk -v min="$2" '$1 > min { above = 1 } END { exit !above }'
}
wait_for 20 progressed ok 300 || fail "loadgen did not get 300 answers before the kill: $(tail -n 2 "$T/lg-kill.log")"
stop_pid "$PID_b" KILL
wait_for 20 progressed failed 0 || fail "loadgen counted no failure after the server died: $(tail -n 2 "$T/lg-kill.log")"
kill -TERM "$LGPID"
wait_for 20 eval '! kill -0 '"$LGPID"' 2>/dev/null' || fail "loadgen did not stop on SIGTERM"
wait "$LGPID"
RC=$?
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $LGPID / /")
cp "$T/lg-kill.log" "$T/kill.out"
[ "$RC" -eq 1 ] || fail "exit $RC after the server died"
ok=$(field kill ok)
failed=$(field kill failed)
[ "$ok" -gt 300 ] || fail "only $ok ok before the kill"
[ "$failed" -gt 0 ] || fail "no failure counted after the server died"
sum=$(( $(field kill connect) + $(field kill reset) + $(field kill closed) + $(field kill timeout) ))
[ "$sum" -eq "$failed" ] || fail "causes add up to $sum, not $failed"

log "bad arguments"
"$LG" --host x >/dev/null 2>&1; [ $? -eq 2 ] || fail "no --target accepted"
"$LG" --target nohost:1 --host x >/dev/null 2>&1; [ $? -eq 2 ] || fail "bad target accepted"
"$LG" --target 127.0.0.1:1 --host x --rate -1 >/dev/null 2>&1; [ $? -eq 2 ] || fail "negative rate accepted"
"$LG" --target 127.0.0.1:1 --host 'a b' >/dev/null 2>&1; [ $? -eq 2 ] || fail "host with a space accepted"
log "ok"
