#!/bin/bash
# The published HTTP/2 floods, each from tests/h2raw.py on a connection of
# its own, are closed within their bound while another client
# (h2raw.py keepalive: a request every 50 ms on a kept HTTP/2 connection,
# every tenth on a new one) keeps being served, without one failure:
# Rapid Reset (CVE-2023-44487: streams opened and reset at once, closed
# long before 20,000 and few of them reaching the backend), CONTINUATION
# floods (CVE-2024-27316: empty frames, and frames of 1 KB headers past the
# header list size), PING and SETTINGS floods whose acknowledgements the
# client never reads, empty DATA frames, PRIORITY frames, and a client that
# opens four large downloads with wide-open windows and never reads (its
# output bounded, the router's memory held down, then closed by the write
# timeout, client-idle-timeout-ms). More streams than
# --h2-max-concurrent-streams are refused. Each bound has its counter in
# /metrics. The router serves as before afterwards.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"
. "$(dirname "$0")/proxy_h2_common.sh"

# Floods write as fast as the socket takes: keep ASan's quarantine small
# (as tests/proxy_backpressure.sh does) so that RSS follows what is held.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4
WRITE_TIMEOUT_MS=4000
h2_require
h2_app a.test a1
h2_start --client-idle-timeout-ms "$WRITE_TIMEOUT_MS" --h2-max-concurrent-streams 10 --log-level warn
[ "$(tcurl / --http2)" = "ok a1" ] || fail "a.test not routed over HTTPS"

log "a steady HTTP/2 client runs through every flood"
spawn steady "$H2PY" "$top_srcdir/tests/h2raw.py" --tls --host a.test --timeout 10 \
	"127.0.0.1:$TLS_PORT" keepalive "$T/steady.stop"
steady_pid=$SPAWNED_PID
wait_for 10 grep -q 'h2keepalive=3' "$T/backend-a1.log" || fail "the steady client is not served"

# flood KIND COUNT SECONDS: the flood must end in a closed connection (or
# a GOAWAY) within SECONDS, and within 1 s of its last frame, without a
# graceful GOAWAY (NO_ERROR): a connection closed later may only have
# timed out idle (the write timeout is 4 s). The ping and settings floods
# never read their acknowledgements, so the router may instead stop
# reading them, then close at the write timeout: for those the bound is
# SECONDS alone. Prints what h2raw.py saw.
FAILED=""
# With zkrouterd, the close must move one of the flood counters of
# /metrics (FLOOD_COUNTERS).
FLOOD_COUNTERS='^zkrouter_h2_(rapid_reset|control_flood|continuation_flood|ack_flood|header_too_large)_total'
flood() {
	local kind=$1 count=$2 secs=$3 out t0 ms settle=1 c0=0 moved=""
	case $kind in ping | settings) settle=$(( WRITE_TIMEOUT_MS / 1000 + 4 )) ;; esac
	zk_only_quiet && c0=$(metric_sum "$FLOOD_COUNTERS")
	t0=$(now_ms)
	out=$(H2OPTS="--timeout 10 --settle $settle" h2t flood "$kind" "$count" 2>&1)
	ms=$(( $(now_ms) - t0 ))
	if zk_only_quiet; then
		moved=" counters +$(( $(metric_sum "$FLOOD_COUNTERS") - c0 ))"
		[ "$(metric_sum "$FLOOD_COUNTERS")" -gt "$c0" ] || FAILED="$FAILED $kind(no counter moved)"
	fi
	log "$kind: $out ($ms ms$moved)"
	FLOOD_SENT=$(echo "$out" | sed -n 's/.*sent=\([0-9]*\).*/\1/p')
	case $out in
	closed=yes*) ;;
	*) FAILED="$FAILED $kind(not closed)"; return ;;
	esac
	[ "$ms" -le $((secs * 1000)) ] || FAILED="$FAILED $kind(closed after $ms ms)"
	case $kind in ping | settings) return ;; esac
	case $out in *goaway=NO_ERROR*) FAILED="$FAILED $kind(a graceful GOAWAY: not for the flood)" ;; esac
}

flood rapid-reset 20000 20
reached=$(grep -c 'h2flood=rapid-reset' "$T/backend-a1.log")
log "rapid-reset: $reached of $FLOOD_SENT streams reached the backend"
[ "$reached" -lt 2000 ] || FAILED="$FAILED rapid-reset($reached streams reached the backend)"
flood continuation 200000 20
flood continuation-big 20000 20
flood ping 4000000 30
flood settings 4000000 30
flood empty-data 200000 20
flood priority 200000 20
[ -z "$FAILED" ] || fail "floods not closed in their bound:$FAILED"
grep -q 'h2flood=continuation' "$T/backend-a1.log" && fail "a CONTINUATION flood's head reached the backend"

log "a client that never reads: output bounded, then closed by the write timeout"
rss0=$(rss_kb)
mkfifo "$T/noread.in"
h2t noread 200000000 <"$T/noread.in" >"$T/noread.out" 2>&1 &
noread_pid=$!
exec 7>"$T/noread.in"
wait_for 10 grep -q '^holding lport=' "$T/noread.out" || fail "noread did not start: $(cat "$T/noread.out")"
lport=$(sed -n 's/^holding lport=//p' "$T/noread.out")
t0=$(now_ms)
wait_for 10 sh -c "[ \$(grep -c h2flood=noread '$T/backend-a1.log') -ge 4 ]" ||
	fail "the four downloads did not start"
wait_for $(( WRITE_TIMEOUT_MS / 1000 + 15 )) proxy_lets_go "$TLS_PORT" "$lport" ||
	fail "the client that never reads still held after $(( $(now_ms) - t0 )) ms"
ms=$(( $(now_ms) - t0 ))
rss1=$(rss_kb)
log "closed after $ms ms; router RSS $rss0 kB before, $rss1 kB after"
[ "$ms" -ge $(( WRITE_TIMEOUT_MS - 1000 )) ] || fail "closed after $ms ms, before the write timeout"
[ "$rss1" -lt $(( rss0 + 16384 )) ] || fail "router RSS grew from $rss0 to $rss1 kB under a client that never reads"
exec 7>&-
wait "$noread_pid"

log "streams past --h2-max-concurrent-streams (10 here) are refused"
out=$(h2t overlimit 10)
log "10 streams: $out"
[ "$out" = "max=10 ok=10 refused=0 other=0 goaway=none" ] || fail "10 streams at once with a limit of 10: $out"
out=$(h2t overlimit 15)
log "15 streams: $out"
# RFC 9113 5.1.2 wants a stream error (REFUSED_STREAM) for each stream
# past the limit the client saw; nghttp2 makes it a connection error
# (GOAWAY PROTOCOL_ERROR), which also ends the ten within it.
case $out in
"max=10 ok=10 refused=5 other=0 goaway=none") ;;
"max=10 ok=0 refused=0 other=15 goaway=PROTOCOL_ERROR") log "past the limit: a connection error, not stream errors" ;;
*) fail "15 streams at once with a limit of 10: $out" ;;
esac
if zk_only "the refused streams' counter"; then
	[ "$(metric_sum '^zkrouter_h2_refused_streams_total')" -gt 0 ] || fail "refused streams not counted"
fi

log "the steady client never failed"
touch "$T/steady.stop"
wait_for 15 grep -q '^ok=' "$T/steady.log" || fail "the steady client did not stop: $(tail -n 3 "$T/steady.log")"
cat "$T/steady.log"
grep -q '^ok=[1-9][0-9]* fail=0 ' "$T/steady.log" || fail "the steady client saw failures"
max=$(sed -n 's/.*max_ms=\([0-9]*\).*/\1/p' "$T/steady.log")
[ "$max" -lt 3000 ] || fail "a steady request took $max ms during the floods"
stop_pid "$steady_pid"

if zk_only "the counters of /metrics"; then
	curl -s "http://$ADMIN/metrics" | grep '^zkrouter_h2' | tee "$T/h2metrics.txt"
	for k in rapid_reset continuation_flood control_flood stalled refused_streams goaway_sent; do
		[ "$(metric_sum "^zkrouter_h2_${k}_total")" -gt 0 ] || fail "zkrouter_h2_${k}_total did not move"
	done
fi

[ "$(tcurl / --http2)" = "ok a1" ] || fail "not serving after the floods"
zk_only "router_alive" && router_alive
log "ok"
