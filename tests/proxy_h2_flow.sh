#!/bin/bash
# HTTP/2 streams carry requests side by side: 90 concurrent streams on one
# connection routed to three apps by :authority, each answered by its own
# app (over TLS and over h2c), in about the time of one; large downloads
# and uploads (with and without content-length) arrive whole with flow
# control (tests/h2raw.py and curl --http2); an upload to an app that
# reads slowly is taken only as fast as the app takes it (the stream's
# window opens as the bytes leave for the backend); a stream read through
# a tiny window does not stall the other streams of its connection, nor
# grow the router's memory; HTTP/1.1 and HTTP/2 clients, plain and TLS, at
# once; a stream to an instance being removed completes; and a SIGTERM
# drain: GOAWAY in two steps (2^31-1, then the last stream), the streams in
# flight finish, an idle HTTP/2 connection gets its GOAWAY and is closed.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"
. "$(dirname "$0")/proxy_h2_common.sh"

export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4
h2_require
h2_app a.test a1
h2_app b.test b1
h2_app c.test c1
h2_start --drain-timeout-ms 10000
[ "$(tcurl / --http2)" = "ok a1" ] || fail "a.test not routed over HTTPS"

log "90 concurrent streams on one connection, three apps"
for via in h2t h2c; do
	out=$(H2OPTS="--timeout 30" $via streams 90 a.test=a1,b.test=b1,c.test=c1)
	log "$via: $out"
	case $out in "streams=90 ok=90 wrong=0 "*) ;; *) fail "$via: 90 streams over three apps: $out" ;; esac
	secs=$(echo "$out" | sed -n 's/.*seconds=\([0-9.]*\).*/\1/p')
	# One after another they would take 45 s (500 ms each).
	awk -v s="$secs" 'BEGIN { exit !(s < 10) }' || fail "$via: the 90 streams took $secs s: not side by side"
done

log "large bodies both ways, with flow control"
out=$(H2OPTS="--timeout 60" h2t download 30000000)
log "download: $out"
case $out in "status=200 body=30000000 valid=yes") ;; *) fail "h2raw download: $out" ;; esac
tcurl '/big?bytes=20000000' --http2 -o "$T/big.h2" || fail "curl --http2 download failed"
pcurl a.test '/big?bytes=20000000' -o "$T/big.h1" || fail "plain download failed"
cmp -s "$T/big.h2" "$T/big.h1" || fail "the HTTP/2 download differs from the HTTP/1.1 one"
for len in "" --no-length; do
	out=$(H2OPTS="--timeout 60" h2t upload 12000000 $len)
	log "upload $len: ${out% answer=*}"
	sum=$(echo "$out" | sed -n 's/.* sha256=\([0-9a-f]*\) .*/\1/p')
	case $out in "status=200 "*"answer=bytes=12000000 sha256=$sum backend=a1") ;;
	*) fail "upload $len: the app saw another body: $out" ;; esac
done
head -c 6000000 /dev/urandom >"$T/up.bin"
tcurl /upload --http2 --data-binary "@$T/up.bin" -o "$T/up.out" || fail "curl --http2 upload failed"
grep -q "bytes=6000000 sha256=$(sha256sum <"$T/up.bin" | cut -d' ' -f1)" "$T/up.out" ||
	fail "curl --http2 upload: $(cat "$T/up.out")"

log "an upload is taken only as fast as a slow app reads it (2 MB/s)"
out=$(H2OPTS="--timeout 60" h2t upload 16000000 --path '/upload?rate=2000000' --probe 2)
log "$(echo "$out" | head -n 1)"
accepted=$(echo "$out" | sed -n 's/^accepted=\([0-9]*\).*/\1/p')
# 2 s at 2 MB/s is 4 MB; windows and socket buffers add a few MB (HAProxy
# took 5.7 MB in 3 s at 500 KB/s); a router that buffers whole uploads
# takes all 16 in a fraction of a second.
[ "${accepted:-99999999}" -lt 12000000 ] || fail "took $accepted bytes in 2 s from an app reading 2 MB/s"
echo "$out" | grep -q 'answer=bytes=16000000 ' || fail "the slow upload did not arrive whole: $out"

log "a stream read through a tiny window stalls neither the others nor the router's memory"
rss0=$(rss_kb)
mkfifo "$T/slow.in"
h2t slowread 200000000 20 <"$T/slow.in" >"$T/slow.out" 2>&1 &
slow_pid=$!
exec 7>"$T/slow.in"
wait_for 60 grep -q '^others=' "$T/slow.out" || fail "slowread: $(cat "$T/slow.out")"
rss1=$(rss_kb)
log "$(head -n 1 "$T/slow.out"); router RSS $rss0 kB before, $rss1 kB with the slow stream held"
grep -q '^others=20 ok=20 ' "$T/slow.out" || fail "the other streams failed beside a slow one"
max=$(sed -n 's/.*max_ms=\([0-9]*\).*/\1/p' "$T/slow.out")
[ "$max" -lt 2000 ] || fail "a stream beside the slow one took $max ms"
[ "$rss1" -lt $(( rss0 + 16384 )) ] || fail "router RSS grew from $rss0 to $rss1 kB behind a slow stream"
exec 7>&-
wait "$slow_pid"

log "HTTP/1.1 and HTTP/2 clients at once, plain and TLS"
tcurl '/echo?mixed=h2tls-[1-40]' --http2 -o /dev/null -w '%{http_code} %{http_version}\n' >"$T/m1" &
m1=$!
tcurl '/echo?mixed=h1tls-[1-40]' --http1.1 -o /dev/null -w '%{http_code} %{http_version}\n' >"$T/m2" &
m2=$!
# curl 7.88 reuses a prior-knowledge connection for a second URL and then
# fails it, with any server: one curl per request.
for i in $(seq 1 40); do
	curl -s --max-time 20 --http2-prior-knowledge -H 'Host: b.test' -o /dev/null \
		-w '%{http_code} %{http_version}\n' "http://$PROXY/echo?mixed=h2c-$i"
done >"$T/m3" &
m3=$!
pcurl c.test '/echo?mixed=h1-[1-40]' -o /dev/null -w '%{http_code} %{http_version}\n' >"$T/m4" &
m4=$!
H2OPTS="--timeout 30" h2t streams 60 a.test=a1,b.test=b1,c.test=c1 >"$T/m5"
wait "$m1" "$m2" "$m3" "$m4"
for f in m1:2 m2:1.1 m3:2 m4:1.1; do
	n=$(grep -c "^200 ${f#*:}\$" "$T/${f%%:*}")
	[ "$n" = 40 ] || fail "mixed clients: $n of 40 answered ($f): $(sort "$T/${f%%:*}" | uniq -c)"
done
grep -q '^streams=60 ok=60 wrong=0 ' "$T/m5" || fail "mixed clients, streams: $(cat "$T/m5")"

if zk_only "an instance removed under a stream"; then
	log "a stream to an instance being removed completes"
	H2HOST=b.test tcurl '/stream?chunks=20&delay=150' --http2 -o "$T/removed.out" -w '%{http_code}' >"$T/removed.code" &
	rm_pid=$!
	wait_for 10 grep -q 'GET /stream?chunks=20' "$T/backend-b1.log" || fail "the stream did not reach b1"
	deregister b1
	wait_instance b.test b1 gone
	wait "$rm_pid"
	[ "$(cat "$T/removed.code")" = 200 ] || fail "the stream to a removed instance: $(cat "$T/removed.code")"
	[ "$(grep -c '^chunk [0-9]* of b1$' "$T/removed.out")" = 20 ] ||
		fail "the stream to a removed instance was cut: $(tail -n 2 "$T/removed.out")"
fi

log "SIGTERM: GOAWAY in two steps, streams in flight finish, idle connections closed"
h2t idle 20 >"$T/idle.out" 2>&1 &
idle_pid=$!
wait_for 10 grep -q ' ready$' "$T/idle.out" || fail "idle client: $(cat "$T/idle.out")"
H2OPTS="--timeout 30" h2t drain 10 '/slow?ms=2500&h2drain=1' >"$T/drain.out" 2>&1 &
drain_pid=$!
wait_for 10 grep -q '^inflight 10' "$T/drain.out" || fail "drain client: $(cat "$T/drain.out")"
wait_for 10 sh -c "[ \$(grep -c 'h2drain=1' '$T/backend-a1.log') -ge 10 ]" || fail "the 10 streams did not reach a1"
t0=$(now_ms)
graceful_stop
wait "$idle_pid"
wait "$drain_pid"
cat "$T/idle.out" "$T/drain.out"
grep -q '^goaways=[0-9]*:NO_ERROR.* end=eof after=' "$T/idle.out" || fail "the idle connection was not closed with a GOAWAY"
at=$(sed -n 's/.* at_ms=\([0-9]*\)$/\1/p' "$T/idle.out")
[ $(( at - t0 )) -lt 3000 ] || fail "the idle connection closed $(( at - t0 )) ms after the SIGTERM"
line=$(grep '^completed=' "$T/drain.out")
case $line in "completed=10/10 statuses=200 goaways="*) ;; *) fail "streams in flight at the SIGTERM: $line" ;; esac
goaways=$(echo "$line" | sed -n 's/.* goaways=\([^ ]*\) .*/\1/p')
case $goaways in
"2147483647:NO_ERROR,19:NO_ERROR") ;;
*) fail "GOAWAY not in two steps (2147483647, then 19): $goaways" ;;
esac
if zk_only "the router's exit after the drain"; then
	wait_for 20 sh -c "! kill -0 $ROUTER_PID" || fail "zkrouterd still running after the drain"
	log "exited $(( $(now_ms) - t0 )) ms after the SIGTERM"
fi
log "ok"
