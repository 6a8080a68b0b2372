#!/bin/bash
# WebSockets over HTTP/2 (RFC 8441): the router's SETTINGS offer
# SETTINGS_ENABLE_CONNECT_PROTOCOL=1, an extended CONNECT with :protocol
# websocket becomes an HTTP/1.1 Upgrade to the backend, and its DATA frames
# are a tunnel to it. The tunnel survives 100 table changes (instances of
# its app and of another app added and removed): every message sent after
# each change comes back, in order, and the tunnel is still open at the
# end. HTTP/2 requests keep working beside it, and the backend saw exactly
# one upgrade. The same over h2c (prior knowledge).
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"
. "$(dirname "$0")/proxy_h2_common.sh"

h2_require
h2_app ws.test w1
h2_app other.test o0
start_backend w2
PW2=$BACKEND_PORT
h2_start --tunnel-idle-timeout-ms 60000
trap '' PIPE
H2HOST=ws.test
[ "$(tcurl / --http2)" = "ok w1" ] || fail "ws.test not routed over HTTPS"

log "open the tunnel: extended CONNECT"
mkfifo "$T/ws.in"
H2OPTS="--timeout 60" h2t ws /ws <"$T/ws.in" >"$T/ws.out" 2>&1 &
ws_pid=$!
exec 7>"$T/ws.in"
wait_for 20 grep -q '^status=' "$T/ws.out" || fail "no answer to the extended CONNECT: $(cat "$T/ws.out")"
grep -q '^status=200 connect-protocol=1$' "$T/ws.out" || fail "extended CONNECT: $(head -n 1 "$T/ws.out")"
echo "hello-0" >&7
wait_for 20 grep -q '^hello-0$' "$T/ws.out" || fail "the tunnel does not echo: $(cat "$T/ws.out")"
grep -q '^upgrade w1' "$T/backend-w1.log" || fail "the backend did not see an HTTP/1.1 upgrade"

changes=100
zk_only "the table changes" || changes=0
log "$changes table changes, a message through the tunnel after each"
t0=$(now_ms)
for i in $(seq 1 100); do
	[ "$changes" = 100 ] && ws_table_change "$i" "$PW2"
	echo "msg-$i" >&7 || fail "tunnel closed before table change $i: $(tail -n 3 "$T/ws.out")"
	wait_for 20 grep -q "^msg-$i\$" "$T/ws.out" || fail "tunnel lost after table change $i: $(tail -n 3 "$T/ws.out")"
done
log "$changes changes in $(( $(now_ms) - t0 )) ms"

log "HTTP/2 requests beside the tunnel, over TLS and h2c"
[ "$(tcurl / --http2)" = "ok w1" ] || fail "ws.test not served beside the tunnel"
out=$(h2c case ok-get)
case $out in status=200*) ;; *) fail "h2c beside the tunnel: $out" ;; esac

log "a tunnel over h2c"
out=$(printf 'over-h2c\n' | H2OPTS="--timeout 20" h2c ws /ws)
echo "$out"
echo "$out" | grep -q '^over-h2c$' || fail "the h2c tunnel does not echo: $out"

exec 7>&-
wait "$ws_pid"
tail -n 1 "$T/ws.out"
tail -n 1 "$T/ws.out" | grep -q '^end=stdin-eof$' || fail "the tunnel ended before its client did: $(tail -n 1 "$T/ws.out")"
seq 1 100 | sed 's/^/msg-/' >"$T/want"
grep '^msg-[0-9]*$' "$T/ws.out" | cmp -s - "$T/want" || fail "messages lost, out of order or duplicated"
[ "$(grep -c '^upgrade w1' "$T/backend-w1.log")" = 2 ] ||
	fail "the backend did not see exactly two upgrades: $(grep -c '^upgrade' "$T/backend-w1.log")"
zk_only "router_alive" && router_alive
log "ok"
