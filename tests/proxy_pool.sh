#!/bin/bash
# The idle pool of backend connections follows the demand: after a burst
# of N requests in flight at once to one instance, the N connections stay
# pooled for the next requests (more than a fixed pool of 32 would keep),
# the next request reuses one, and then, with upstream-idle-timeout-ms far
# longer than the test, the pool shrinks on its own to one spare within
# seconds (half of the connections no request used are closed each
# second), seen both by the backend's side of the sockets and in /metrics.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"
# Pools are per worker: one worker keeps the arithmetic exact.
WORKERS_ARG=--workers=1
N=50

proxy_setup --upstream-idle-timeout-ms 120000
start_backend p1; PP1=$BACKEND_PORT
app_add p.test
register p.test p1 "$PP1"
wait_instance p.test p1

# metric NAME: its value in /metrics (empty when missing).
metric() { curl -s --max-time 5 "http://$ADMIN/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }
metric_is() { [ "$(metric "$1")" = "$2" ]; }

log "a burst of $N requests in flight at once, answered at the same time"
# One process opens the N connections first, then sends every request at
# once: curl processes start too slowly on a busy machine for their
# requests to overlap, and connections back early would meet the shrink.
python3 - "$PROXY_PORT" "$N" >"$T/burst.out" 2>&1 <<'PY'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
socks = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(n)]
for s in socks:
    s.sendall(b"GET /slow?ms=3000 HTTP/1.1\r\nHost: p.test\r\n\r\n")
ok = 0
for s in socks:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = s.recv(4096)
        if not chunk:
            break
        body += chunk
    ok += head.startswith(b"HTTP/1.1 200") and body.strip() == b"slow p1"
for s in socks:
    s.close()
print("answered", ok)
PY
[ "$(cat "$T/burst.out")" = "answered $N" ] || fail "the burst: $(cat "$T/burst.out")"
# The backend logs each connection it accepts.
opened=$(grep -c '^conn p1 ' "$T/backend-p1.log")
[ "$opened" -gt 40 ] ||
	fail "only $opened backend connections opened for $N requests: the burst did not overlap"

log "the burst's $opened connections stay pooled (more than 32), none closed as surplus yet"
# all_pooled: every connection opened is open (on the backend's side of
# the sockets) or was closed by the shrink, which may start a second after
# the burst ended; read twice so that a shrink in between does not count.
all_pooled() {
	local t1 n t2
	t1=$(metric zkrouter_upstream_pool_trimmed_total)
	n=$(conns_to "$PP1")
	t2=$(metric zkrouter_upstream_pool_trimmed_total)
	[ -n "$t1" ] && [ "$t1" = "$t2" ] && [ $((n + t1)) = "$opened" ]
}
wait_for 5 all_pooled ||
	fail "$(conns_to "$PP1") connections to the backend and $(metric zkrouter_upstream_pool_trimmed_total) shrunk after the burst, of $opened"
[ "$(metric zkrouter_upstream_pool_full_closed_total)" = 0 ] ||
	fail "connections closed as the pool was full: $(metric zkrouter_upstream_pool_full_closed_total)"
[ "$(metric zkrouter_upstream_connections_opened_total)" = "$opened" ] ||
	fail "/metrics counts $(metric zkrouter_upstream_connections_opened_total) connections opened, the backend $opened"
reused=$(metric zkrouter_upstream_pool_reused_total)
[ "$(pcurl p.test /)" = "ok p1" ] || fail "no answer after the burst"
wait_for 5 metric_is zkrouter_upstream_pool_reused_total $((reused + 1)) ||
	fail "the next request did not reuse a pooled connection"
[ "$(grep -c '^conn p1 ' "$T/backend-p1.log")" = "$opened" ] ||
	fail "the next request opened a connection"

log "unused, the pool shrinks to one spare connection, long before the idle timeout"
# Halved each second (rounded down): 50 take 6 s; the last one is the idle
# timeout's (120 s here).
wait_for 20 sh -c "[ \$(ss -Htn state established '( dport = :$PP1 )' | wc -l) -le 1 ]" ||
	fail "$(conns_to "$PP1") connections still open to the backend 20 s after the burst"
wait_for 5 metric_is zkrouter_upstream_idle_connections 1 ||
	fail "/metrics counts $(metric zkrouter_upstream_idle_connections) idle connections, want 1"
trimmed=$(metric zkrouter_upstream_pool_trimmed_total)
[ "${trimmed:-0}" = $((opened - 1)) ] ||
	fail "${trimmed:-no} connections closed by the pool's shrink, want $((opened - 1))"
[ "$(pcurl p.test /)" = "ok p1" ] || fail "no answer after the pool shrank"
router_alive
exit 0
