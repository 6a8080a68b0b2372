#!/bin/bash
# HTTP/2 requests become HTTP/1.1 requests for the backends without any
# way to smuggle: ALPN h2 on the HTTPS listener (curl --http2, nghttp) and
# prior knowledge on the plain one (--h2c, curl --http2-prior-knowledge),
# HTTP/1.1 still offered to clients without h2; the head rebuilt from the
# pseudo-headers (Host from :authority, cookies joined with "; ", a body
# without content-length sent chunked or with the length of all of it,
# OPTIONS *). Then every downgrade
# case of tests/h2raw.py (connection-specific headers, TE other than
# trailers, content-length against the DATA, upper case, CR/LF/NUL,
# misplaced whitespace and colons, missing, repeated, unknown and late
# pseudo-headers, :path not origin-form, :authority against host, userinfo,
# a header list over the limit, pseudo-headers in trailers) is refused with
# a stream error or a 400, over TLS and over h2c, and the backend's log
# shows that none of them reached it, nor the requests hidden in their
# bodies (H2.CL, H2.TE). The router keeps serving.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"
. "$(dirname "$0")/proxy_h2_common.sh"

h2_require
h2_app a.test a1
h2_start
[ "$(tcurl / --http2)" = "ok a1" ] || fail "a.test not routed over HTTPS"

log "ALPN: h2 for curl --http2, http/1.1 for curl --http1.1; h2c with prior knowledge"
v=$(tcurl / --http2 -o /dev/null -w '%{http_version}')
[ "$v" = 2 ] || fail "curl --http2 over TLS got HTTP/$v"
v=$(tcurl / --http1.1 -o /dev/null -w '%{http_version}')
[ "$v" = 1.1 ] || fail "curl --http1.1 over TLS got HTTP/$v"
v=$(curl -s --max-time 20 --http2-prior-knowledge -H 'Host: a.test' -o /dev/null -w '%{http_version}' \
	"http://$PROXY/")
[ "$v" = 2 ] || fail "curl --http2-prior-knowledge got HTTP/$v"
[ "$(pcurl a.test /)" = "ok a1" ] || fail "HTTP/1.1 on the plain listener broke"
if command -v nghttp >/dev/null; then
	nghttp -n -s -H ':authority: a.test' "https://127.0.0.1:$TLS_PORT/echo?nghttp=1" >"$T/nghttp.out" 2>&1 ||
		fail "nghttp failed: $(cat "$T/nghttp.out")"
	wait_for 10 grep -q 'nghttp=1' "$T/backend-a1.log" || fail "nghttp's request did not arrive"
fi

log "the rebuilt HTTP/1.1 head"
H2OPTS=--show-body h2t case ok-cookies >"$T/cookies.out"
grep -q '^status=200' "$T/cookies.out" || fail "ok-cookies: $(cat "$T/cookies.out")"
grep -qx 'h: cookie: a=1; b=2' "$T/cookies.out" || fail "cookies not joined: $(grep cookie "$T/cookies.out")"
grep -qix 'h: host: a.test' "$T/cookies.out" || fail "no Host from :authority: $(cat "$T/cookies.out")"
grep -qx 'version=HTTP/1.1' "$T/cookies.out" || fail "not HTTP/1.1 to the backend"
if zk_only "X-Forwarded-Proto"; then
	grep -qix 'h: x-forwarded-proto: https' "$T/cookies.out" || fail "no X-Forwarded-Proto: https: $(cat "$T/cookies.out")"
	grep -qi '^h: x-request-id: ' "$T/cookies.out" || fail "no X-Request-Id"
fi
H2OPTS=--show-body h2t case ok-post-no-length >"$T/chunked.out"
grep -q '^status=200' "$T/chunked.out" || fail "ok-post-no-length: $(cat "$T/chunked.out")"
# Its whole body came with its head: chunked, or the length of that body.
grep -qix 'h: transfer-encoding: chunked\|h: content-length: 3' "$T/chunked.out" ||
	fail "a body without length neither chunked nor measured: $(cat "$T/chunked.out")"
grep -qx 'body-bytes=3' "$T/chunked.out" || fail "the body did not arrive whole: $(cat "$T/chunked.out")"
H2OPTS=--show-body h2t case ok-post-length >"$T/cl.out"
grep -qix 'h: content-length: 3' "$T/cl.out" || fail "the client's content-length not forwarded: $(cat "$T/cl.out")"
for c in ok-get ok-te-trailers ok-host-same ok-options-asterisk; do
	out=$(h2t case "$c")
	case $out in status=200*) ;; *) fail "$c: $out (want 200)" ;; esac
done
grep -q '^req a1 [0-9]* OPTIONS \*$' "$T/backend-a1.log" || fail "OPTIONS * did not arrive as such"

log "every downgrade case is refused (TLS)"
cases=$("$H2PY" "$top_srcdir/tests/h2raw.py" --help-cases | grep -v '^ok-')
# shellcheck disable=SC2086
H2OPTS="--timeout 10" h2t case $cases >"$T/cases.out" 2>&1
cat "$T/cases.out"
bad=$(grep -v ': refused ' "$T/cases.out")
[ "$(grep -c ': refused ' "$T/cases.out")" = "$(echo "$cases" | wc -w)" ] ||
	fail "not refused over TLS: $(echo "$bad" | tr '\n' ';')"

log "and over h2c (prior knowledge)"
# shellcheck disable=SC2086
H2OPTS="--timeout 10" h2c case $cases >"$T/cases-h2c.out" 2>&1
bad=$(grep -v ': refused ' "$T/cases-h2c.out")
[ -z "$bad" ] || fail "not refused over h2c: $(echo "$bad" | tr '\n' ';')"

log "none of them, nor what hid in their bodies, reached the backend"
h2_refused_none 'h2case|smuggled' a1
grep -a 'parse-error' "$T/backend-a1.log" && fail "the backend saw bytes it could not parse (above)"

[ "$(tcurl / --http2)" = "ok a1" ] || fail "not serving after the downgrade cases"
zk_only "router_alive" && router_alive
log "ok"
