#!/bin/bash
# Header rewriting by zkrouterd, as the backend sees it (tests/backend
# /echo) and as the client sees it: X-Forwarded-For appended to what the
# client sent, X-Forwarded-Proto/Host/Port set, X-Request-Id generated when
# absent (unique per request) and kept when present, hop-by-hop headers
# removed both ways, including those the Connection header names; end-to-end
# headers and the body untouched.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_setup
start_backend a1
app_add a.test
register a.test a1 "$BACKEND_PORT"
wait_instance a.test a1

# hdr FILE NAME: the value(s) of header NAME in an /echo body, one per line.
hdr() { grep -i "^h: $2: " "$1" | sed "s/^h: [^:]*: //"; }

log "forwarding headers on a plain request"
pcurl a.test:8080 /echo -o "$T/e1" -D "$T/r1"
[ "$(hdr "$T/e1" X-Forwarded-For)" = 127.0.0.1 ] || fail "X-Forwarded-For: '$(hdr "$T/e1" X-Forwarded-For)'"
[ "$(hdr "$T/e1" X-Forwarded-Proto)" = http ] || fail "X-Forwarded-Proto: '$(hdr "$T/e1" X-Forwarded-Proto)'"
case $(hdr "$T/e1" X-Forwarded-Host) in
a.test | a.test:8080) ;;
*) fail "X-Forwarded-Host: '$(hdr "$T/e1" X-Forwarded-Host)'" ;;
esac
[ "$(hdr "$T/e1" X-Forwarded-Port)" = "$PROXY_PORT" ] || fail "X-Forwarded-Port: '$(hdr "$T/e1" X-Forwarded-Port)', want $PROXY_PORT"
[ "$(hdr "$T/e1" Host)" = a.test:8080 ] || fail "Host not passed through: '$(hdr "$T/e1" Host)'"
id1=$(hdr "$T/e1" X-Request-Id)
[ -n "$id1" ] || fail "no X-Request-Id generated"
[ "$(hdr "$T/e1" X-Request-Id | wc -l)" = 1 ] || fail "more than one X-Request-Id"
[ "$(echo "$id1" | tr -d 'A-Za-z0-9._-' | wc -c)" = 1 ] || fail "odd X-Request-Id '$id1'"

log "request ids are unique"
ids=$(for _ in $(seq 1 20); do pcurl a.test /echo | grep -i '^h: x-request-id: '; done | sort | uniq | wc -l)
[ "$ids" = 20 ] || fail "20 requests got $ids distinct request ids"

log "X-Forwarded-For appended, X-Request-Id kept"
pcurl a.test /echo -H 'X-Forwarded-For: 203.0.113.7' -H 'X-Request-Id: client-chosen-id-42' -o "$T/e2"
[ "$(hdr "$T/e2" X-Forwarded-For)" = "203.0.113.7, 127.0.0.1" ] || fail "X-Forwarded-For not appended: '$(hdr "$T/e2" X-Forwarded-For)'"
[ "$(hdr "$T/e2" X-Request-Id)" = client-chosen-id-42 ] || fail "X-Request-Id not kept: '$(hdr "$T/e2" X-Request-Id)'"

log "hop-by-hop request headers removed, end-to-end kept"
pcurl a.test /echo -H 'Connection: keep-alive, X-Hop-Named' -H 'X-Hop-Named: secret' \
	-H 'Keep-Alive: timeout=5' -H 'TE: trailers' \
	-H 'X-End: kept' -H 'Authorization: Bearer abc' -o "$T/e3"
for h in X-Hop-Named Keep-Alive TE; do
	[ -z "$(hdr "$T/e3" "$h")" ] || fail "hop-by-hop request header $h forwarded"
done
case $(hdr "$T/e3" Connection) in
"" | keep-alive | close) ;;
*) fail "client's Connection header forwarded: '$(hdr "$T/e3" Connection)'" ;;
esac
[ "$(hdr "$T/e3" X-End)" = kept ] || fail "end-to-end header X-End lost"
[ "$(hdr "$T/e3" Authorization)" = "Bearer abc" ] || fail "Authorization lost"

log "hop-by-hop response headers removed"
pcurl a.test /hop -D "$T/r4" -o "$T/b4"
tr -d '\r' <"$T/r4" >"$T/r4n"
grep -qi '^x-hop-secret' "$T/r4n" && fail "response header named by Connection forwarded"
grep -qi '^keep-alive: timeout=30' "$T/r4n" && fail "backend's Keep-Alive header forwarded"
grep -qi '^connection: .*x-hop-secret' "$T/r4n" && fail "backend's Connection header forwarded"
grep -qi '^x-end-to-end: kept$' "$T/r4n" || fail "end-to-end response header lost"
[ "$(cat "$T/b4")" = "hop a1" ] || fail "body: $(cat "$T/b4")"

log "the body and method pass unchanged"
pcurl a.test '/echo?q=1&r=%20x' -X PUT --data-binary 'payload-123' -o "$T/e5"
grep -q '^method=PUT$' "$T/e5" || fail "method changed"
grep -q '^target=/echo?q=1&r=%20x$' "$T/e5" || fail "target changed: $(grep target= "$T/e5")"
[ "$(tail -n1 "$T/e5")" = payload-123 ] || fail "body changed"

log "error answers carry the request id the client sent"
pcurl nowhere.test / -H 'X-Request-Id: err-id-7' -D "$T/r6" -o /dev/null
grep -qi '^x-request-id: err-id-7' "$T/r6" || fail "404 lost the client's X-Request-Id: $(cat "$T/r6")"

router_alive
log "ok"
