#!/bin/bash
# A client that sends and never reads cannot grow the router's memory: once
# what waits in its output passes buffer-high-bytes, the router stops
# reading it (and the backend), whatever wrote there: the router's own
# answers (404 for an unknown host, pipelined), answers relayed from an app
# (pipelined GETs), or an app's endless interim 100 Continue answers. Such a
# client is closed once nothing could be written to it for the write
# timeout. The router's RSS is compared with its own at the start (so the
# bound holds under a sanitizer too). Measured: without backpressure each
# 10 s flood grows it by 200-390 MB; with it, by under 1 MB (about 11 MB
# under AddressSanitizer); the bound is 16 MB.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

command -v python3 >/dev/null || skip "python3 not installed"

# Under AddressSanitizer freed memory waits in a quarantine (256 MB by
# default) before it is reused, so the thousands of requests answered into
# the socket buffers before backpressure starts would grow the RSS for
# nothing but that: keep it small (other builds ignore the variable).
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4
# The write timeout (client-idle-timeout-ms) outlasts each flood, so only
# backpressure can hold the memory down while one runs.
proxy_setup --client-idle-timeout-ms 12000 --log-level warn
start_backend a1
app_add a.test
register a.test a1 "$BACKEND_PORT"
wait_instance a.test a1
[ "$(pcurl a.test /)" = "ok a1" ] || fail "a.test not routed"

# flood.py PORT SECONDS REQUEST: sends REQUEST over and over on one
# connection for SECONDS, never reading; prints the bytes it got out, then
# waits for the line "check" on stdin, and then (still reading nothing)
# prints "closed" once the router closed the connection.
cat >"$T/flood.py" <<'PY'
import socket, sys, time, select
port, secs, req = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3].encode()
req = req.decode('unicode_escape').encode('latin-1')
s = socket.create_connection(('127.0.0.1', port))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.setblocking(False)
block = req * max(1, 65536 // len(req))
pending, sent, end, broken = block, 0, time.time() + secs, ""
while time.time() < end:
    try:
        n = s.send(pending)
        sent += n
        pending = pending[n:] or block
    except BlockingIOError:
        select.select([], [s], [], 0.05)
    except OSError as e:
        broken = "broken " + str(e)
        break
print("sent", sent, broken, flush=True)
sys.stdin.readline()
# Still reading nothing: the TCP state leaves ESTABLISHED (1) once the
# router resets or closes the connection.
# (Longer than the test waits: it may wait 300 s while the router writes.)
end = time.time() + 400
while time.time() < end:
    if s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0] != 1:
        print("closed", flush=True)
        break
    time.sleep(0.1)
PY

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$ROUTER_PID/status"; }
# Bytes the router wrote to the flood's connection: what its socket still
# holds (Send-Q) and what the client's holds (Recv-Q). The client reads
# nothing, so the sum grows exactly when the router writes to it.
written() {
	{
		ss -Htn state established "( sport = :$PROXY_PORT )" | awk '{print $2}'
		ss -Htn state established "( dport = :$PROXY_PORT )" | awk '{print $1}'
	} | awk '{ n += $1 } END { print n + 0 }'
}
base=$(rss_kb)
log "router RSS at start: $base kB"
LIMIT_KB=16384

# flood NAME REQUEST: one non-reading client for 10 s, then the router's RSS.
flood() {
	local name=$1 req=$2
	mkfifo "$T/$name.in"
	spawn "flood-$name" sh -c "python3 '$T/flood.py' $PROXY_PORT 10 '$req' <'$T/$name.in'"
	local pid=$SPAWNED_PID
	exec 7>"$T/$name.in"
	wait_for 30 grep -q '^sent' "$T/flood-$name.log" || fail "$name: the flood did not end"
	# A connection the router closed early would hold its memory down for
	# nothing: the bound below only means something for a whole flood.
	grep -q '^sent [0-9]* broken' "$T/flood-$name.log" &&
		fail "$name: the router closed the connection during the flood: $(grep '^sent' "$T/flood-$name.log")"
	local rss
	rss=$(rss_kb)
	log "$name: $(grep '^sent' "$T/flood-$name.log" | cut -d' ' -f2) bytes sent, router RSS $rss kB (+$((rss - base)) kB)"
	[ $((rss - base)) -lt $LIMIT_KB ] ||
		fail "$name: router RSS grew by $((rss - base)) kB for one client that does not read"
	router_alive
	# Past the write timeout with nothing written, the router closes it.
	# The bound runs from the router's last write to the client, not from
	# the end of the flood: the requests the client sent are queued in the
	# socket buffers (MBs of them), and a router slower than the flood
	# (a loaded machine, a sanitizer) goes on answering them, each answer
	# a write into its socket's send buffer (up to 4 MB) that restarts the
	# write timeout. Measured under AddressSanitizer at load 15 on 2 CPUs:
	# the router wrote for 34 s past the flood before its output was stuck.
	# Its memory is watched meanwhile: backpressure may start only then.
	echo check >&7
	exec 7>&-
	local start last now w wrote=-1 peak=$rss
	start=$(now_ms)
	last=$start
	while ! grep -q '^closed' "$T/flood-$name.log"; do
		now=$(now_ms)
		w=$(written)
		if [ "$w" -gt "$wrote" ]; then   # (not its 0 once closed)
			wrote=$w
			last=$now
		fi
		rss=$(rss_kb)
		[ "$rss" -le "$peak" ] || peak=$rss
		[ $((now - last)) -lt 40000 ] ||
			fail "$name: the router never closed the client (nothing written to it for 40 s, $wrote bytes in all)"
		[ $((now - start)) -lt 300000 ] ||
			fail "$name: the router still wrote to the client 300 s after the flood"
		sleep 0.2
	done
	log "$name: closed $(((now - start) / 1000)) s after the flood, $(((now - last) / 1000)) s after the last write seen past it; router RSS at most $peak kB (+$((peak - base)) kB)"
	[ $((peak - base)) -lt $LIMIT_KB ] ||
		fail "$name: router RSS grew by $((peak - base)) kB for one client that does not read"
	stop_pid "$pid"
}

flood unknown-host 'GET / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n'
flood app-get 'GET / HTTP/1.1\r\nHost: a.test\r\n\r\n'
flood app-head 'HEAD / HTTP/1.1\r\nHost: a.test\r\n\r\n'
flood interim 'GET /continues?n=50000000 HTTP/1.1\r\nHost: a.test\r\n\r\n'

router_alive
[ "$(pcurl a.test /)" = "ok a1" ] || fail "router stopped serving after the floods"
log "ok"
