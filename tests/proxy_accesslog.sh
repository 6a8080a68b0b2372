#!/bin/bash
# The access log in JSON (--access-log-format json) with real clients:
# every line is one valid JSON object whatever the client put in its
# headers (quotes, backslashes, a tab, bytes >= 0x80, a forged
# {"status":...}); it carries the app, the router's error code, scheme
# and TLS version, the user agent, the incoming X-Forwarded-For (its lines
# joined) and the connect time; a client that leaves before its answer
# is logged 499, before the response head (reset while the app is slow)
# and after it (closed in the middle of a streamed body, the instance's
# 200 kept as upstream_status), and counted in /metrics.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_require
command -v python3 >/dev/null || skip "python3 not installed"
command -v openssl >/dev/null || skip "openssl (the command) not installed"

openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=a.test -days 1 \
	-addext "subjectAltName=DNS:a.test" \
	-keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.out" 2>&1 ||
	hard_error "openssl req failed: $(cat "$T/openssl.out")"
TLS_PORT=$(free_port) || hard_error "no free port"
proxy_setup --access-log-format json --tls-listen "127.0.0.1:$TLS_PORT" \
	--tls-cert "$T/cert.pem" --tls-key "$T/key.pem"
start_backend a1
app_add a.test
register a.test a1 "$BACKEND_PORT"
wait_instance a.test a1

# The log is flushed every 200 ms: wait for a line with this request id.
logged() { grep -q "\"rid\":\"$1\"" "$T/access.log"; }
# field RID KEY: KEY of the line with request id RID, as JSON.
field() {
	python3 - "$T/access.log" "$1" "$2" <<'PY'
import json, sys
for line in open(sys.argv[1], 'rb'):
    o = json.loads(line)
    if o['rid'] == sys.argv[2]:
        print(json.dumps(o[sys.argv[3]]))
PY
}
expect_field() {
	local got
	got=$(field "$1" "$2")
	[ "$got" = "$3" ] || fail "request $1: $2 is $got, want $3: $(grep "\"rid\":\"$1\"" "$T/access.log")"
}

log "hostile User-Agent and X-Forwarded-For values"
python3 - "$PROXY_PORT" >"$T/hostile.out" <<'PY' || fail "hostile request: $(cat "$T/hostile.out")"
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
s.sendall(b'GET /echo?n=hostile HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: rid-hostile\r\n'
          b'User-Agent: Mozilla "q" \\b\\ {"status":200}\tTAB \xff\xfe end\r\n'
          b'X-Forwarded-For: 203.0.113.7, "evil"\\\r\n'
          b'X-Forwarded-For: 198.51.100.9\r\nConnection: close\r\n\r\n')
data = b''
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
print(data.split(b'\r\n')[0].decode())
assert data.startswith(b'HTTP/1.1 200'), data[:200]
PY
wait_for 10 logged rid-hostile || fail "no log line for the hostile request: $(cat "$T/access.log")"
expect_field rid-hostile ua '"Mozilla \"q\" \\b\\ {\"status\":200}\tTAB \u00ff\u00fe end"'
expect_field rid-hostile xff '"203.0.113.7, \"evil\"\\, 198.51.100.9"'
expect_field rid-hostile status 200
expect_field rid-hostile app '"a.test"'
expect_field rid-hostile err null
expect_field rid-hostile scheme '"http"'
expect_field rid-hostile tls null
expect_field rid-hostile proto '"HTTP/1.1"'

log "every line is one JSON object of printable ASCII"
python3 - "$T/access.log" <<'PY' || fail "access log not JSON lines: $(cat -A "$T/access.log" | head -5)"
import json, sys
raw = open(sys.argv[1], 'rb').read()
assert raw.endswith(b'\n')
for line in raw.split(b'\n')[:-1]:
    assert all(0x20 <= c < 0x7f for c in line), line
    o = json.loads(line)
    assert isinstance(o, dict) and 'status' in o and 'ua' in o, o
PY

log "the router's own error: its code, no app"
pcurl nowhere.test / -H 'X-Request-Id: rid-404' -o /dev/null
wait_for 10 logged rid-404 || fail "no log line for the 404"
expect_field rid-404 status 404
expect_field rid-404 err '"unknown_route"'
expect_field rid-404 app null

log "HTTPS: scheme and TLS version; a new connection's connect time"
curl -s --max-time 10 -k --http2 --resolve "a.test:$TLS_PORT:127.0.0.1" -H 'X-Request-Id: rid-tls' \
	-A 'tls-client/1' "https://a.test:$TLS_PORT/" -o /dev/null || fail "HTTPS request failed"
wait_for 10 logged rid-tls || fail "no log line for the HTTPS request"
expect_field rid-tls scheme '"https"'
expect_field rid-tls tls '"TLSv1.3"'
expect_field rid-tls ua '"tls-client/1"'
expect_field rid-tls proto '"HTTP/2.0"'
python3 - "$T/access.log" <<'PY' || fail "no line with a connect time: $(cat "$T/access.log")"
import json, sys
ms = [json.loads(l)['connect_ms'] for l in open(sys.argv[1], 'rb')]
assert any(isinstance(m, float) and 0 <= m < 5000 for m in ms), ms
PY

gone_before=$(curl -s "http://$ADMIN/metrics" | awk '$1 == "zkrouter_client_closed_requests_total" { print $2 }')
[ "$gone_before" = 0 ] || fail "zkrouter_client_closed_requests_total is '$gone_before' before any client left"

log "a client that resets while the app is slow: 499, no upstream status"
python3 - "$PROXY_PORT" <<'PY' || fail "slow request client failed"
import socket, struct, sys, time
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
s.sendall(b'GET /slow?ms=3000 HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: rid-gone-early\r\n\r\n')
time.sleep(0.3)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
s.close()
PY
wait_for 10 logged rid-gone-early || fail "no log line for the client that reset"
expect_field rid-gone-early status 499
expect_field rid-gone-early upstream_status null

log "a client that closes in the middle of a streamed body: 499, the instance's 200 kept"
python3 - "$PROXY_PORT" <<'PY' || fail "streaming client failed"
import socket, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10)
s.sendall(b'GET /stream?chunks=100&delay=50 HTTP/1.1\r\nHost: a.test\r\nX-Request-Id: rid-gone-late\r\n\r\n')
data = b''
while b'chunk 0' not in data:
    b = s.recv(4096)
    assert b, data
    data += b
assert data.startswith(b'HTTP/1.1 200'), data[:100]
s.close()
PY
wait_for 15 logged rid-gone-late || fail "no log line for the client that left mid-body"
expect_field rid-gone-late status 499
expect_field rid-gone-late upstream_status 200
wait_for 10 sh -c "curl -s http://$ADMIN/metrics | grep -q '^zkrouter_client_closed_requests_total 2\$'" ||
	fail "zkrouter_client_closed_requests_total: $(curl -s "http://$ADMIN/metrics" | grep client_closed)"

log "an HTTP/2 client that resets its stream while the app is slow: 499"
# python3-h2: Debian's python first (another python3 on the PATH may lack it).
H2PY=
for py in /usr/bin/python3 python3; do
	command -v "$py" >/dev/null && "$py" -c 'import h2' 2>/dev/null && H2PY=$py && break
done
if [ -n "$H2PY" ]; then
	"$H2PY" - "$TLS_PORT" <<'PY' || fail "HTTP/2 client that resets failed"
import socket, ssl, sys, time
import h2.config, h2.connection, h2.events, h2.errors
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(['h2'])
s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1])), timeout=10),
                    server_hostname='a.test')
assert s.selected_alpn_protocol() == 'h2', s.selected_alpn_protocol()
c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
c.initiate_connection()
c.send_headers(1, [(':method', 'GET'), (':path', '/slow?ms=3000'), (':scheme', 'https'),
                   (':authority', 'a.test'), ('x-request-id', 'rid-h2-reset')], end_stream=True)
s.sendall(c.data_to_send())
time.sleep(0.3)
c.reset_stream(1, h2.errors.ErrorCodes.CANCEL)
# A second stream on the same connection is still served after the reset.
c.send_headers(3, [(':method', 'GET'), (':path', '/'), (':scheme', 'https'),
                   (':authority', 'a.test'), ('x-request-id', 'rid-h2-after')], end_stream=True)
s.sendall(c.data_to_send())
status = None
while status is None:
    data = s.recv(65536)
    assert data, 'closed before the second answer'
    for ev in c.receive_data(data):
        if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == 3:
            status = dict(ev.headers)[b':status']
    s.sendall(c.data_to_send())
assert status == b'200', status
s.close()
PY
	wait_for 10 logged rid-h2-reset || fail "no log line for the stream reset while the app was slow"
	expect_field rid-h2-reset status 499
	expect_field rid-h2-reset proto '"HTTP/2.0"'
	expect_field rid-h2-after status 200
	wait_for 10 sh -c "curl -s http://$ADMIN/metrics | grep -q '^zkrouter_client_closed_requests_total 3\$'" ||
		fail "a reset stream was not counted: $(curl -s "http://$ADMIN/metrics" | grep client_closed)"
else
	echo "python3-h2 not installed: the HTTP/2 reset case is not run"
fi
router_alive
log "ok"
