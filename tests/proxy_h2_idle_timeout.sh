#!/bin/bash
# An HTTP/2 connection's idle timeout counts from the end of its last
# stream: a connection whose one stream outlasted the timeout (a slow
# answer, a long download: the client sends nothing meanwhile) gets the
# whole idle time after it, then its GOAWAY and the close, as one whose
# stream was quick does.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"
. "$(dirname "$0")/proxy_h2_common.sh"
h2_require
[ "${H2_REFERENCE:-}" != haproxy ] || skip "zkrouterd's idle timeout"

IDLE_MS=2000
h2_app a.test a1
h2_start --client-idle-timeout-ms $IDLE_MS

# idle_after PATH: one request of PATH on a connection of its own, then
# the seconds from its answer to the router's GOAWAY and close.
idle_after() {
	local out
	out=$(h2t idle 20 "$1") || fail "$1: $out"
	echo "$out" | grep -q '^status=200 .*ready$' || fail "$1 was not answered: $out"
	echo "$out" | grep -q 'goaways=[0-9]*:NO_ERROR end=eof ' || fail "$1: no GOAWAY and close: $out"
	echo "$out" | sed -n 's/.* after=\([0-9.]*\) .*/\1/p'
}
# at_least SECONDS VALUE
at_least() { awk -v a="$2" -v b="$1" 'BEGIN { exit !(a >= b) }'; }

log "a quick stream: closed after the idle time"
after=$(idle_after "/echo")
log "closed $after s after the answer"
at_least 1.9 "$after" || fail "closed $after s after a quick answer, before the ${IDLE_MS} ms idle time"

log "a stream longer than the idle time: the idle time counts from its end"
after=$(idle_after "/slow?ms=$((IDLE_MS * 7 / 4))")
log "closed $after s after the answer"
at_least 1.9 "$after" ||
	fail "closed $after s after a slow answer: the idle time counted from the request, not from the stream's end"
log "ok"
