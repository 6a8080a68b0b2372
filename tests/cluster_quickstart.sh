#!/bin/bash
# deploy/quickstart, the README's one command, with the programs of this
# build (--no-build) on free ports: it comes up with three routers serving
# hello.localhost from its two instances, each router answers through
# curl, and after SIGTERM no process it started and no port it used is
# left. Meanwhile deploy/zkrouterd.conf.example is checked to be a config
# file zkrouterd accepts as it is, with every option at its default (a
# router started from it serves too).
. "$(dirname "$0")/lib/harness.sh"

QS=$top_srcdir/deploy/quickstart
for f in zkrouterd zkrouter-agent zkrouterctl tests/backend; do
	[ -x "$top_builddir/$f" ] || skip "$f is not built"
done
zk_require
command -v curl >/dev/null || skip "curl not installed"
command -v ss >/dev/null || skip "ss not installed (iproute2)"

listening() { [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; }
# Any socket on the port, a client connection's local end included.
in_use() { [ -n "$(ss -Htan exclude time-wait "sport = :$1" 2>/dev/null)" ]; }

# consecutive N: the first of N consecutive unused ports, below the
# ephemeral range so that no client connection takes one meanwhile.
consecutive() {
	local n=$1 p i ok
	for _ in $(seq 1 100); do
		p=$(( 20000 + RANDOM % 12000 ))
		ok=1
		for i in $(seq 0 $((n - 1))); do
			in_use $((p + i)) && ok=0
			[[ " $CHOSEN " == *" $((p + i)) "* ]] && ok=0
		done
		if [ "$ok" = 1 ]; then
			for i in $(seq 0 $((n - 1))); do CHOSEN="$CHOSEN $((p + i))"; done
			echo "$p"
			return 0
		fi
	done
	return 1
}

CHOSEN=""
consecutive 3 >"$T/p" || hard_error "no free ports"; BASE=$(cat "$T/p")
consecutive 3 >"$T/p" || hard_error "no free ports"; ADMIN=$(cat "$T/p")
consecutive 2 >"$T/p" || hard_error "no free ports"; APP=$(cat "$T/p")
consecutive 1 >"$T/p" || hard_error "no free ports"; ZKP=$(cat "$T/p")
PORTS="$BASE $((BASE + 1)) $((BASE + 2)) $ADMIN $((ADMIN + 1)) $((ADMIN + 2)) $APP $((APP + 1)) $ZKP"
for p in $PORTS; do
	listening "$p" && hard_error "port $p taken meanwhile"
done

log "bad arguments are refused"
"$QS" --routers 0 >"$T/bad.out" 2>&1 && fail "--routers 0 accepted"
grep -q 'routers must be' "$T/bad.out" || fail "unclear error: $(cat "$T/bad.out")"
"$QS" --base-port 99999 --no-build >"$T/bad.out" 2>&1 && fail "port 99999 accepted"
"$QS" --frobnicate >"$T/bad.out" 2>&1 && fail "unknown option accepted"

log "quickstart on $BASE/$ADMIN, ZooKeeper $ZKP, app $APP"
spawn quickstart "$QS" --no-build --build-dir "$top_builddir" --routers 3 --base-port "$BASE" \
	--admin-base-port "$ADMIN" --zk-port "$ZKP" --app-port "$APP"
QS_PID=$SPAWNED_PID
up() { grep -q '^ready$' "$T/quickstart.log" || ! kill -0 "$QS_PID" 2>/dev/null; }
wait_for 150 up
grep -q '^ready$' "$T/quickstart.log" || fail "quickstart never became ready"
cat "$T/quickstart.log"
PIDS=$(sed -n 's/^pids: //p' "$T/quickstart.log")
[ "$(echo "$PIDS" | wc -w)" -eq 6 ] || fail "expected 6 pids (ZooKeeper, 3 routers, 2 agents): '$PIDS'"
RUN=$(sed -n 's|^  logs *\(.*\)/\*\.log$|\1|p' "$T/quickstart.log")
[ -d "$RUN" ] || fail "no run directory in the output"
grep -q "curl -H 'Host: hello.localhost' http://127.0.0.1:$BASE/" "$T/quickstart.log" ||
	fail "no curl line to try"

log "each router serves hello.localhost from both instances"
for i in 0 1 2; do
	for n in $(seq 1 8); do
		curl -s --max-time 5 -D - -o /dev/null -H 'Host: hello.localhost' \
			"http://127.0.0.1:$((BASE + i))/" | tr -d '\r' >"$T/h"
		head -n 1 "$T/h" | grep -q ' 200' || fail "router $i: $(head -n 1 "$T/h")"
		grep -i '^x-backend-id:' "$T/h" | awk '{print $2}' >>"$T/ids"
	done
	[ "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$((ADMIN + i))/healthz")" = 200 ] ||
		fail "router $i: /healthz not 200"
done
sort -u "$T/ids" | tr '\n' ' '
echo
[ "$(sort -u "$T/ids" | tr '\n' ' ')" = "hello-1 hello-2 " ] || fail "not both instances served"

log "deploy/zkrouterd.conf.example: every option, each at its default"
EXAMPLE=$top_srcdir/deploy/zkrouterd.conf.example
ZKD=$top_builddir/zkrouterd
# --check-config prints the effective value of every option the file may
# set. The example's own values are the defaults, except the two lines it
# marks "(example)": given on the command line, both outputs must agree.
"$ZKD" --config "$EXAMPLE" --check-config >"$T/cc-example" 2>&1 ||
	fail "zkrouterd rejects the example config: $(cat "$T/cc-example")"
"$ZKD" --check-config --zk 10.0.0.11:2181,10.0.0.12:2181,10.0.0.13:2181/zkrouter \
	--node-id router-1 >"$T/cc-default" 2>&1 || fail "zkrouterd --check-config: $(cat "$T/cc-default")"
diff "$T/cc-default" "$T/cc-example" || fail "the example config differs from the defaults (above)"
sed -n 's/^\([a-z0-9-]*\) = .*/\1/p' "$T/cc-default" >"$T/opts"
[ "$(wc -l <"$T/opts")" -gt 20 ] || fail "cannot read the options from zkrouterd --check-config"
for o in $(cat "$T/opts"); do
	grep -qE "^#?$o = " "$EXAMPLE" || fail "option $o missing from deploy/zkrouterd.conf.example"
done

log "deploy/zkrouterd.conf.example starts a router as it is"
cports=$(free_port 2)
CP=$(echo "$cports" | sed -n 1p)
CA=$(echo "$cports" | sed -n 2p)
spawn conf-example "$ZKD" --config "$EXAMPLE" \
	--zk "127.0.0.1:$ZKP" --listen "127.0.0.1:$CP" --admin "127.0.0.1:$CA" --node-id conf-example \
	--state-dir "$T/state"
CONF_PID=$SPAWNED_PID
wait_for 20 sh -c "curl -sf --max-time 2 http://127.0.0.1:$CA/healthz" ||
	fail "zkrouterd with the example config did not become healthy"
[ "$(curl -s --max-time 5 -o /dev/null -w '%{http_code}' -H 'Host: hello.localhost' "http://127.0.0.1:$CP/")" = 200 ] ||
	fail "the router from the example config does not serve"
stop_pid "$CONF_PID"

log "SIGTERM stops everything"
kill -TERM "$QS_PID"
for _ in $(seq 1 600); do
	kill -0 "$QS_PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$QS_PID" 2>/dev/null && fail "quickstart still running 60 s after SIGTERM"
wait "$QS_PID"
rc=$?
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $QS_PID / /")
tail -n 3 "$T/quickstart.log"
[ "$rc" -eq 0 ] || fail "quickstart exited $rc after SIGTERM"
grep -q 'stopped; nothing left running' "$T/quickstart.log" || fail "no clean-stop message"
for pid in $PIDS; do
	kill -0 "$pid" 2>/dev/null && fail "process $pid is still running"
done
for p in $PORTS; do
	listening "$p" && fail "port $p is still open"
done
[ -d "$RUN" ] && fail "run directory $RUN left behind"
log "ok"
