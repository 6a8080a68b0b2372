#!/bin/bash
# zkrouterd's HTTPS listener, end to end: a certificate made at run time,
# a real ZooKeeper, a real backend and curl as the client. An HTTPS request
# is routed to its app, which sees X-Forwarded-Proto: https (whatever the
# client claimed); several requests share one TLS connection; plain HTTP
# sent to the TLS port is closed without harm; an app with redirect_https
# is redirected from the plain port to the TLS port and served there.
# Before that, the start-up errors: a TLS listener without a certificate
# is a configuration error (exit 2), a missing, unparsable or mismatched
# certificate or key stops the start (exit 1) and the message names the file.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_require
zk_require
command -v openssl >/dev/null || skip "openssl (the command) not installed"

# A self-signed certificate for the two test hosts, and a key that is not its own.
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=app.test -days 1 \
	-addext "subjectAltName=DNS:app.test,DNS:tls.test" \
	-keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.out" 2>&1 ||
	hard_error "openssl req failed: $(cat "$T/openssl.out")"
openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=other.test -days 1 \
	-keyout "$T/other-key.pem" -out "$T/other-cert.pem" >>"$T/openssl.out" 2>&1 ||
	hard_error "openssl req (second key) failed"
echo "not a certificate" >"$T/garbage.pem"

# expect_start CODE WORDS ARGS...: zkrouterd exits CODE at once, and its
# stderr carries WORDS. ZooKeeper is never reached: these stop it before.
expect_start() {
	local want=$1 words=$2 rc=0
	shift 2
	local ports
	ports=$(free_port 2) || hard_error "no free ports"
	timeout 10 "$ZKROUTERD" "$WORKERS_ARG" --zk 127.0.0.1:1 --node-id t --admin off \
		--listen "127.0.0.1:$(echo "$ports" | sed -n 1p)" \
		--tls-listen "127.0.0.1:$(echo "$ports" | sed -n 2p)" "$@" >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" = "$want" ] || fail "zkrouterd $* exited $rc, want $want; stderr: $(cat "$T/err")"
	grep -qF -- "$words" "$T/err" || fail "zkrouterd $*: stderr lacks '$words': $(cat "$T/err")"
}

log "a TLS listener without certificate files serves ZooKeeper's only: no default, unknown names refused"
ports=$(free_port 2) || hard_error "no free ports"
NOFILE_TLS=$(echo "$ports" | sed -n 2p)
spawn nofile "$ZKROUTERD" "$WORKERS_ARG" --zk 127.0.0.1:1 --node-id nofile --admin off \
	--listen "127.0.0.1:$(echo "$ports" | sed -n 1p)" --tls-listen "127.0.0.1:$NOFILE_TLS"
nofile_pid=$SPAWNED_PID
wait_for 10 grep -q "listening on 127.0.0.1:$NOFILE_TLS (TLS)" "$T/nofile.log" ||
	fail "no TLS listener without certificate files: $(cat "$T/nofile.log")"
grep -q "tls-listen without tls-cert or tls-cert-dir: only certificates from ZooKeeper" "$T/nofile.log" ||
	fail "no warning about serving ZooKeeper's certificates only: $(cat "$T/nofile.log")"
echo | timeout 10 openssl s_client -connect "127.0.0.1:$NOFILE_TLS" -servername app.test >"$T/nofile.s" 2>&1
grep -q "unrecognized name" "$T/nofile.s" || fail "an unknown name was not refused: $(cat "$T/nofile.s")"
stop_pid "$nofile_pid"
expect_start 2 "tls-key is set without tls-cert" --tls-cert-dir "$T" --tls-key "$T/key.pem"
expect_start 2 "tls-min-version: \"1.0\" is not 1.2 or 1.3" --tls-cert "$T/cert.pem" --tls-min-version 1.0

log "a certificate or key that cannot be loaded stops the start, naming the file"
expect_start 1 "$T/missing.pem" --tls-cert "$T/missing.pem" --tls-key "$T/key.pem"
expect_start 1 "$T/missing-key.pem" --tls-cert "$T/cert.pem" --tls-key "$T/missing-key.pem"
expect_start 1 "$T/garbage.pem" --tls-cert "$T/garbage.pem" --tls-key "$T/key.pem"
expect_start 1 "$T/other-key.pem" --tls-cert "$T/cert.pem" --tls-key "$T/other-key.pem"
grep -q "mismatch\|does not match" "$T/err" || fail "a key of another certificate: $(cat "$T/err")"
log "a certificate without its key (none given, none in the file) stops the start, naming the file"
expect_start 1 "$T/cert.pem: no private key" --tls-cert "$T/cert.pem"
cat "$T/cert.pem" "$T/key.pem" >"$T/both.pem"
expect_start 1 "$T/missing-dir" --tls-cert "$T/both.pem" --tls-cert-dir "$T/missing-dir"

log "a router with a plain and a TLS listener"
TLS_PORT=$(free_port) || hard_error "no free port"
proxy_setup --tls-listen "127.0.0.1:$TLS_PORT" --tls-cert "$T/cert.pem" --tls-key "$T/key.pem"
[ "$TLS_PORT" != "$PROXY_PORT" ] && [ "$TLS_PORT" != "$ADMIN_PORT" ] ||
	hard_error "port $TLS_PORT picked twice"
grep -q "listening on 127.0.0.1:$TLS_PORT (TLS)" "$T/zkrouterd.log" ||
	fail "no TLS listener in the log"

log "the router's /routers record advertises both listeners"
CTL="$top_builddir/zkrouterctl --zk $ZK/zkrouter --timeout 5000"
wait_for 10 sh -c "$CTL --json routers | grep -q '\"tls_listen\":\[\"127.0.0.1:$TLS_PORT\"\]'" ||
	fail "no tls_listen in the record: $($CTL --json routers)"
$CTL --json routers | grep -q "\"listen\":\[\"$PROXY\"\]" ||
	fail "plain listen missing: $($CTL --json routers)"
$CTL routers | grep -q "^test-$$ *$PROXY,tls:127.0.0.1:$TLS_PORT " ||
	fail "routers text: $($CTL routers)"

start_backend a1
app_add app.test
register app.test a1 "$BACKEND_PORT"
start_backend t1
app_add tls.test app:redirect_https=1
register tls.test t1 "$BACKEND_PORT"
wait_instance app.test a1
wait_instance tls.test t1

# tcurl HOST PATH [CURL-ARGS...]: HTTPS through the TLS listener, the name
# resolved to loopback so the certificate is checked against HOST.
tcurl() {
	local host=$1 path=$2
	shift 2
	curl -s --max-time 10 --cacert "$T/cert.pem" --resolve "$host:$TLS_PORT:127.0.0.1" \
		"$@" "https://$host:$TLS_PORT$path"
}

log "an HTTPS request reaches the app with X-Forwarded-Proto: https"
tcurl app.test '/echo?over=tls' -H 'X-Forwarded-Proto: http' -D "$T/h1" -o "$T/b1" ||
	fail "HTTPS request failed (curl $?)"
[ "$(first_status "$T/h1")" = 200 ] || fail "HTTPS request: $(cat "$T/h1")"
grep -q '^backend=a1$' "$T/b1" || fail "not served by a1: $(cat "$T/b1")"
grep -q '^target=/echo?over=tls$' "$T/b1" || fail "target changed: $(cat "$T/b1")"
xfp=$(grep -i '^h: x-forwarded-proto:' "$T/b1")
[ "$(echo "$xfp" | wc -l)" = 1 ] || fail "X-Forwarded-Proto not exactly once: $xfp"
echo "$xfp" | tr -d '\r' | grep -qix 'h: x-forwarded-proto: https' ||
	fail "the app saw '$xfp' over TLS, want https"
grep -qix "h: x-forwarded-port: $TLS_PORT" <(tr -d '\r' <"$T/b1") ||
	fail "X-Forwarded-Port is not the TLS port: $(grep -i forwarded-port "$T/b1")"
grep -q '^req a1 .* GET /echo?over=tls' "$T/backend-a1.log" || fail "the backend did not log the request"

log "the same app over plain HTTP sees X-Forwarded-Proto: http"
pcurl app.test /echo -o "$T/b2" || fail "plain request failed"
grep -qix 'h: x-forwarded-proto: http' <(tr -d '\r' <"$T/b2") ||
	fail "plain request: $(grep -i forwarded-proto "$T/b2")"

log "keep-alive: several requests on one TLS connection"
tcurl app.test /echo -o /dev/null -w '%{num_connects} %{http_code}\n' \
	"https://app.test:$TLS_PORT/a" -o /dev/null "https://app.test:$TLS_PORT/echo?n=3" -o /dev/null \
	"https://app.test:$TLS_PORT/echo?n=4" -o /dev/null >"$T/ka"
cat "$T/ka"
[ "$(wc -l <"$T/ka")" = 4 ] || fail "expected 4 answers: $(cat "$T/ka")"
[ "$(head -n 1 "$T/ka")" = "1 200" ] || fail "first request: $(head -n 1 "$T/ka")"
[ "$(tail -n 3 "$T/ka" | sort -u)" = "0 200" ] ||
	fail "later requests did not reuse the TLS connection: $(cat "$T/ka")"
[ "$(grep -c '^req a1 ' "$T/backend-a1.log")" -ge 6 ] || fail "not every request reached the backend"

log "plain HTTP on the TLS port is closed, quickly, and harms nothing"
start=$(now_ms)
rc=0
curl -s --max-time 10 -H 'Host: app.test' -o "$T/plain" "http://127.0.0.1:$TLS_PORT/echo" || rc=$?
took=$(( $(now_ms) - start ))
echo "curl exit $rc after $took ms"
[ "$rc" != 0 ] || fail "plain HTTP on the TLS port got an answer: $(cat "$T/plain")"
[ "$rc" != 28 ] && [ "$took" -lt 5000 ] || fail "plain HTTP on the TLS port hung ($took ms)"
grep -q 'backend=' "$T/plain" && fail "plain HTTP on the TLS port reached the app"
# A raw client that writes a plain request and waits for the end: a close
# or a reset (a failed write or read) is right, only the timeout (124) is
# not. It runs in its own shell, so a SIGPIPE ends that shell, not the test.
rc=0
timeout 5 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 3
	printf "GET / HTTP/1.1\r\nHost: app.test\r\n\r\n" >&3
	cat <&3' raw "$TLS_PORT" >"$T/raw" 2>/dev/null || rc=$?
echo "raw client exit $rc"
[ "$rc" != 3 ] || fail "cannot connect to the TLS port"
[ "$rc" != 124 ] || fail "the TLS port kept a plain-HTTP connection open"
grep -q 'HTTP/1' "$T/raw" && fail "the TLS port answered in plain HTTP"
router_alive
tcurl app.test /echo -o "$T/b3" || fail "HTTPS after the plain-HTTP attempts failed (curl $?)"
grep -q '^backend=a1$' "$T/b3" || fail "HTTPS after the plain-HTTP attempts: $(cat "$T/b3")"

log "redirect_https: plain HTTP is sent to the TLS port, and served there"
pcurl tls.test '/echo?q=1' -D "$T/hr" -o /dev/null || fail "plain request to tls.test failed"
case $(first_status "$T/hr") in 301 | 302 | 307 | 308) ;; *) fail "redirect_https app: $(cat "$T/hr")" ;; esac
loc=$(grep -i '^location:' "$T/hr" | tr -d '\r' | cut -d' ' -f2-)
[ "$loc" = "https://tls.test:$TLS_PORT/echo?q=1" ] || fail "redirect Location: '$loc'"
grep -q '^req t1 ' "$T/backend-t1.log" && fail "the plain request reached the redirect_https app"
curl -s --max-time 10 -L --cacert "$T/cert.pem" --resolve "tls.test:$TLS_PORT:127.0.0.1" \
	-H 'Host: tls.test' -o "$T/b4" -w '%{http_code} %{num_redirects} %{url_effective}\n' \
	"http://$PROXY/echo?q=1" >"$T/follow" || fail "following the redirect failed (curl $?)"
cat "$T/follow"
[ "$(cat "$T/follow")" = "200 1 https://tls.test:$TLS_PORT/echo?q=1" ] ||
	fail "following the redirect: $(cat "$T/follow")"
grep -q '^backend=t1$' "$T/b4" || fail "not served by t1: $(cat "$T/b4")"
grep -qix 'h: x-forwarded-proto: https' <(tr -d '\r' <"$T/b4") ||
	fail "redirect_https app over TLS: $(grep -i forwarded-proto "$T/b4")"

log "close_notify while an answer is still queued: the rest is sent, then the connection closes"
# 20 MB: the request is still in flight at the close_notify; 2.09 MB: it
# has ended, its last bytes queued (the socket buffers take about 2 MB).
if command -v python3 >/dev/null; then
	for size in 20000000 2090000; do
		timeout 60 python3 "$top_srcdir/tests/tlsclose.py" "$TLS_PORT" "$size" 1.5 5 >"$T/tlsclose.out" 2>&1
		read -r got how <"$T/tlsclose.out"
		[ "$how" = closed ] || fail "$size bytes, close_notify with output queued: $(cat "$T/tlsclose.out")"
		[ "${got#bytes=}" -ge "$size" ] || fail "$size-byte answer cut after close_notify: $(cat "$T/tlsclose.out")"
		wait_for 20 sh -c "curl -s http://$ADMIN/metrics | grep -q '^zkrouter_client_connections 0\$'" ||
			fail "still counted: $(curl -s "http://$ADMIN/metrics" | grep client_connections)"
	done
fi

log "SIGTERM drains and exits 0"
router_alive
kill -TERM "$ROUTER_PID"
rc=0
for _ in $(seq 1 100); do
	kill -0 "$ROUTER_PID" 2>/dev/null || break
	sleep 0.1
done
kill -0 "$ROUTER_PID" 2>/dev/null && fail "zkrouterd still running 10 s after SIGTERM"
wait "$ROUTER_PID" || rc=$?
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $ROUTER_PID / /")
[ "$rc" = 0 ] || fail "zkrouterd exited $rc after SIGTERM"
log "ok"
