#!/bin/bash
# A WebSocket-style tunnel through zkrouterd survives 100 table changes:
# after the backend's 101 the pair is a byte tunnel, and adding or removing
# instances of the same app and of other apps never touches it. Every
# message sent after each change comes back, in order, and the tunnel is
# still open at the end. Ordinary requests keep working beside it. A tunnel
# left idle past --tunnel-idle-timeout-ms is closed. A SIGTERM drain waits
# for an open tunnel (up to --drain-timeout-ms) instead of cutting it.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

# The table changes run with a tunnel idle timeout no loaded machine
# reaches between two messages; the idle-close check reloads 5 s.
echo "tunnel-idle-timeout-ms = 60000" >"$T/zkrouterd.conf"
proxy_setup --config "$T/zkrouterd.conf" --drain-timeout-ms 3000
# A write to a tunnel that closed fails the test with a message, instead
# of killing it with SIGPIPE.
trap '' PIPE
start_backend w1; PW1=$BACKEND_PORT
start_backend w2; PW2=$BACKEND_PORT
app_add ws.test
app_add other.test
register ws.test w1 "$PW1"
wait_instance ws.test w1

log "open the tunnel"
mkfifo "$T/ws.in"
hc --timeout 3000 "GET /ws HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n" \
	--expect '\r\n\r\n' --stdin <"$T/ws.in" >"$T/ws.out" 2>"$T/ws.err" &
ws_pid=$!
exec 7>"$T/ws.in"
wait_for 20 grep -q '^HTTP/1.1 101' "$T/ws.out" || fail "no 101: $(cat "$T/ws.out")"
grep -qi '^upgrade: websocket' "$T/ws.out" || fail "101 without Upgrade: websocket"
echo "hello-0" >&7
wait_for 20 grep -q '^hello-0$' "$T/ws.out" || fail "tunnel does not echo"

log "100 table changes, a message through the tunnel after each"
t0=$(now_ms)
for i in $(seq 1 100); do
	ws_table_change "$i" "$PW2"
	echo "msg-$i" >&7 || fail "tunnel closed before table change $i: $(tail -n 3 "$T/ws.err")"
	wait_for 20 grep -q "^msg-$i\$" "$T/ws.out" || fail "tunnel lost after table change $i"
done
log "100 changes in $(( $(now_ms) - t0 )) ms"

log "ordinary requests beside the tunnel"
[ "$(pcurl ws.test /)" = "ok w1" ] || fail "ws.test not served beside the tunnel"

exec 7>&-
wait "$ws_pid"
rc=$?
[ "$rc" = 2 ] || fail "tunnel closed before the end (hclient exit $rc)"
got=$(grep -c '^msg-[0-9]*$' "$T/ws.out")
[ "$got" = 100 ] || fail "$got of 100 messages came back"
seq 1 100 | sed 's/^/msg-/' >"$T/want"
grep '^msg-[0-9]*$' "$T/ws.out" | cmp -s - "$T/want" || fail "messages out of order or duplicated"
[ "$(grep -c '^upgrade w1' "$T/backend-w1.log")" = 1 ] || fail "the backend did not see exactly one upgrade"
log "an idle tunnel is closed after the tunnel idle timeout (5 s)"
echo "tunnel-idle-timeout-ms = 5000" >"$T/zkrouterd.conf"
kill -HUP "$ROUTER_PID"
wait_for 20 grep -q 'reload applied: tunnel-idle-timeout-ms' "$T/zkrouterd.log" ||
	fail "tunnel-idle-timeout-ms not reloaded: $(grep reload "$T/zkrouterd.log" | tail -n 2)"
t0=$(now_ms)
hc --timeout 15000 "GET /ws HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" \
	--expect '\r\n\r\n' 'idle-probe\n' --expect 'idle-probe' >"$T/idle.out" 2>/dev/null
rc=$?
ms=$(( $(now_ms) - t0 ))
grep -q '^idle-probe$' "$T/idle.out" || fail "second tunnel did not echo: $(cat "$T/idle.out")"
[ "$rc" = 0 ] || [ "$rc" = 3 ] || fail "idle tunnel still open after $ms ms (exit $rc)"
[ "$ms" -ge 4000 ] && [ "$ms" -lt 12000 ] || fail "idle tunnel closed after $ms ms (timeout 5000 ms)"

router_alive

log "SIGTERM: the drain waits for an open tunnel (drain timeout 3 s)"
mkfifo "$T/ws2.in"
hc --timeout 8000 "GET /ws HTTP/1.1\r\nHost: ws.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" \
	--expect '\r\n\r\n' --stdin <"$T/ws2.in" >"$T/ws2.out" 2>/dev/null &
ws2_pid=$!
exec 8>"$T/ws2.in"
wait_for 20 grep -q '^HTTP/1.1 101' "$T/ws2.out" || fail "no 101 for the drain tunnel: $(cat "$T/ws2.out")"
t0=$(now_ms)
kill -TERM "$ROUTER_PID"
# The listeners are closed and the drain counts the tunnel; the tunnel
# still carries a message after that, so the router did not exit at once.
wait_for 15 grep -q 'listeners closed; waiting for 1 requests in flight' "$T/zkrouterd.log" ||
	fail "the drain does not wait for the open tunnel: $(grep -i 'drain\|listeners' "$T/zkrouterd.log")"
echo "during-drain" >&8
wait_for 10 grep -q '^during-drain$' "$T/ws2.out" || fail "the tunnel does not work during the drain"
wait_for 10 sh -c "! kill -0 $ROUTER_PID" || fail "the router outlived its drain timeout"
ms=$(( $(now_ms) - t0 ))
[ "$ms" -ge 2500 ] || fail "the router exited after $ms ms, before its drain timeout (3000 ms)"
exec 8>&-
wait "$ws2_pid"
log "ok"
