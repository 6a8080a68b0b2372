#!/bin/bash
# zkrouterd tells systemd its state (Type=notify) through a real notify
# socket (tests/notifysock.py): READY=1 only once its listeners are open
# and a table is loaded (checked by a request sent the moment READY=1
# arrives), RELOADING=1 with MONOTONIC_USEC then READY=1 around SIGHUP,
# a failed reload too, STOPPING=1 at SIGTERM; then, with ZooKeeper down,
# READY=1 from the state file, sent to an abstract socket name.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_require
command -v python3 >/dev/null || skip "python3 not installed"
NOTIFY_PY=$top_srcdir/tests/notifysock.py

# notify_start ADDR OUT [HOST:PORT VHOST]: the listener, bound on return.
notify_start() {
	spawn "notify-$(basename "$2")" python3 "$NOTIFY_PY" "$@"
	NOTIFY_PID=$SPAWNED_PID
	wait_for 10 grep -q '^bound' "$2" || hard_error "notify socket $1 not bound"
}

# msgs OUT: the datagrams received so far, one per line, without the time.
msgs() { sed -n 's/^msg [0-9]* //p' "$1"; }

zk_start 500
zkput mk /apps - mk /routers - >>"$T/zkput.log" 2>&1 || hard_error "cannot create /apps"
start_backend s1
app_add notify.test
register notify.test s1 "$BACKEND_PORT"
ports=$(free_port 2) || hard_error "no free ports"
PROXY_PORT=$(echo "$ports" | sed -n 1p)
ADMIN=127.0.0.1:$(echo "$ports" | sed -n 2p)
PROXY=127.0.0.1:$PROXY_PORT
printf 'log-level = info\n' >"$T/zkrouterd.conf"

log "READY=1 once the listeners are open and ZooKeeper's table is loaded"
OUT=$T/notify.out
notify_start "$T/notify.sock" "$OUT" "$PROXY" notify.test
ROUTER_ARGS=("$WORKERS_ARG" --config "$T/zkrouterd.conf" --zk "$ZK/zkrouter" --listen "$PROXY"
	--admin "$ADMIN" --node-id "test-$$" --state-dir "$T/state" --zk-startup-wait-ms 500)
NOTIFY_SOCKET=$T/notify.sock spawn zkrouterd "$ZKROUTERD" "${ROUTER_ARGS[@]}"
ROUTER_PID=$SPAWNED_PID
wait_for 30 grep -q '^probe' "$OUT" || fail "no READY=1 within 30 s: $(cat "$OUT")"
grep -qx 'probe 200' "$OUT" || fail "READY=1 came before the router could serve: $(grep '^probe' "$OUT")"
first=$(msgs "$OUT" | head -n 1)
case $first in
STATUS=listening*) ;;
*) fail "the first datagram is '$first', want STATUS=listening (READY=1 only with a table)" ;;
esac
msgs "$OUT" | grep -m1 READY=1 | grep -q 'STATUS=serving table generation [0-9]* (1 apps) from ZooKeeper' ||
	fail "READY=1 does not say which table it serves: $(msgs "$OUT")"
[ "$(msgs "$OUT" | grep -c 'READY=1')" = 1 ] || fail "READY=1 sent more than once at start: $(msgs "$OUT")"

log "SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1"
before=$(wc -l <"$OUT")
kill -HUP "$ROUTER_PID"
reloaded() { tail -n +"$((before + 1))" "$OUT" | grep -q 'READY=1'; }
wait_for 20 reloaded || fail "no READY=1 after SIGHUP: $(tail -n +"$((before + 1))" "$OUT")"
after=$(tail -n +"$((before + 1))" "$OUT" | grep '^msg')
echo "$after" | sed -n 1p | grep -q '^msg [0-9]* RELOADING=1|MONOTONIC_USEC=[0-9]*|STATUS=reloading' ||
	fail "the first datagram after SIGHUP is not RELOADING=1 with MONOTONIC_USEC: $after"
echo "$after" | sed -n 2p | grep -q '^msg [0-9]* READY=1|STATUS=reloaded' ||
	fail "the second datagram after SIGHUP is not READY=1: $after"
arrived=$(echo "$after" | sed -n 1p | awk '{print $2}')
stamp=$(echo "$after" | sed -n 1p | sed 's/.*MONOTONIC_USEC=\([0-9]*\).*/\1/')
[ "$stamp" -le "$arrived" ] && [ $((arrived - stamp)) -lt 5000000 ] ||
	fail "MONOTONIC_USEC $stamp is not CLOCK_MONOTONIC just before its arrival at $arrived"

log "a reload that fails still ends in READY=1, with the reason"
echo "retries = many" >>"$T/zkrouterd.conf"
before=$(wc -l <"$OUT")
kill -HUP "$ROUTER_PID"
wait_for 20 reloaded || fail "no READY=1 after a failed reload: $(tail -n +"$((before + 1))" "$OUT")"
tail -n +"$((before + 1))" "$OUT" | grep -q 'READY=1|STATUS=reload failed.*zkrouterd.conf:2: retries' ||
	fail "READY=1 after a failed reload does not say why: $(tail -n +"$((before + 1))" "$OUT")"
[ "$(pcurl notify.test /)" = "ok s1" ] || fail "not routing after a failed reload"
sed -i '/retries/d' "$T/zkrouterd.conf"

log "SIGTERM: STOPPING=1 when the drain starts"
before=$(wc -l <"$OUT")
kill -TERM "$ROUTER_PID"
stopping() { tail -n +"$((before + 1))" "$OUT" | grep -q '^msg [0-9]* STOPPING=1|STATUS=draining'; }
wait_for 20 stopping || fail "no STOPPING=1 after SIGTERM: $(tail -n +"$((before + 1))" "$OUT")"
rc=0
wait "$ROUTER_PID" || rc=$?
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $ROUTER_PID / /")
[ "$rc" = 0 ] || fail "zkrouterd exited $rc after SIGTERM"
tail -n +"$((before + 1))" "$OUT" | grep 'READY=1' && fail "READY=1 after STOPPING=1"
stop_pid "$NOTIFY_PID"

log "ZooKeeper down: READY=1 from the state file, on an abstract socket"
[ -s "$T/state/table-test-$$" ] || fail "no state file after a clean stop: $(ls -l "$T/state")"
zk_stop
OUT2=$T/notify2.out
notify_start "@zkrtest-notify-$$" "$OUT2" "$PROXY" notify.test
NOTIFY_SOCKET=@zkrtest-notify-$$ spawn zkrouterd2 "$ZKROUTERD" "${ROUTER_ARGS[@]}"
ROUTER_PID=$SPAWNED_PID
wait_for 30 grep -q '^probe' "$OUT2" || fail "no READY=1 from the state file: $(cat "$OUT2")"
grep -qx 'probe 200' "$OUT2" || fail "READY=1 (state file) before the router could serve: $(cat "$OUT2")"
msgs "$OUT2" | grep -m1 READY=1 | grep -q 'from the state file' ||
	fail "READY=1 does not say the table came from the state file: $(msgs "$OUT2")"
exit 0
