#!/bin/bash
# Client connection limits of zkrouterd: past --max-client-connections it
# stops accepting (a connection beyond the cap waits in the backlog and is
# served once another closes), and when file descriptors run out (a small
# ulimit -n) it backs off instead of spinning on accept, then recovers. In
# both cases the router must not burn CPU while at the limit.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

# cpu_ticks PID: user + system time of a process, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# busy_check PID WHAT: fails if PID used more than a quarter of a CPU over 2 s.
busy_check() {
	local t0 t1
	t0=$(cpu_ticks "$1")
	sleep 2
	t1=$(cpu_ticks "$1")
	log "$2: $((t1 - t0)) ticks of CPU in 2 s (HZ $HZ)"
	[ $((t1 - t0)) -lt $((HZ / 2)) ] || fail "$2: the router spins ($((t1 - t0)) ticks in 2 s)"
}

client_conns() { curl -s --max-time 5 "http://$ADMIN/metrics" | awk '$1 == "zkrouter_client_connections" { print $2 }'; }

# ask FD: sends a request on FD and prints the status line (empty on timeout).
ask() {
	local line=""
	printf 'GET /?conns HTTP/1.1\r\nHost: a.test\r\n\r\n' >&"$1" || return 1
	read -r -t "${2:-3}" -u "$1" line
	echo "${line%$'\r'}"
}

proxy_setup --max-client-connections 20 --head-timeout-ms 60000 --client-idle-timeout-ms 60000
start_backend a1
app_add a.test
register a.test a1 "$BACKEND_PORT"
wait_instance a.test a1

log "20 connections held: the 25th is not served while they stay"
open_conns 20
[ "$(ask "${FDS[0]}")" = "HTTP/1.1 200 OK" ] || fail "first held connection not served"
wait_for 15 sh -c "[ \"\$(curl -s --max-time 5 http://$ADMIN/metrics | awk '\$1 == \"zkrouter_client_connections\" { print \$2 }')\" = 20 ]" ||
	fail "the router holds $(client_conns) client connections, want 20"
open_conns 5
# The five wait in the listen backlog, unaccepted, so none can be served.
wait_for 15 backlog_is 5 || fail "$(backlog) connections in the backlog, want the 5 past the cap"
printf 'GET /?conns=25th HTTP/1.1\r\nHost: a.test\r\n\r\n' >&"${FDS[24]}" || fail "write on the 25th connection"
# A request on a held connection, sent after the 25th's, is answered: the
# router's loop ran with the backlog pending, and still left it there.
[ "$(ask "${FDS[1]}" 15)" = "HTTP/1.1 200 OK" ] || fail "a held connection not served at the cap"
backlog_is 5 || fail "a connection past the cap of 20 was accepted ($(backlog) left in the backlog)"
[ "$(client_conns)" = 20 ] || fail "the router holds $(client_conns) client connections past its cap of 20"
read -r -t 0 -u "${FDS[24]}" && fail "the connection past the cap was answered"
busy_check "$ROUTER_PID" "at the connection cap"

log "close ten: the waiting connection is served"
for i in $(seq 1 10); do fd=${FDS[$i]}; exec {fd}>&-; done
line=""
read -r -t 15 -u "${FDS[24]}" line
[ "${line%$'\r'}" = "HTTP/1.1 200 OK" ] || fail "the waiting connection was not served after others closed: '$line'"
close_conns
wait_for 15 sh -c "[ \"\$(curl -s --max-time 5 -H 'Host: a.test' http://$PROXY/)\" = 'ok a1' ]" ||
	fail "router does not serve after the cap was reached"

log "a router with 64 descriptors and 120 connections: no spin, then recovery"
stop_pid "$ROUTER_PID"
PROXY_PORT=$(free_port)
PROXY=127.0.0.1:$PROXY_PORT
spawn zkrouterd-lowfd bash -c 'ulimit -n 64 && exec "$@"' zkrouterd "$ZKROUTERD" "$WORKERS_ARG" --zk "$ZK/zkrouter" \
	--listen "$PROXY" --admin off --node-id "lowfd-$$" --state-dir "$T/state" --head-timeout-ms 60000 \
	--client-idle-timeout-ms 60000 --max-client-connections 1000 --log-level debug
LOWFD_PID=$SPAWNED_PID
wait_for 20 sh -c "[ \"\$(curl -s --max-time 2 -H 'Host: a.test' http://$PROXY/)\" = 'ok a1' ]" ||
	fail "low-descriptor router does not serve"
open_conns 120
wait_for 15 grep -q 'warn: accept on port .*Too many open files; pausing' "$T/zkrouterd-lowfd.log" ||
	fail "the router never ran out of descriptors (no EMFILE warning)"
busy_check "$LOWFD_PID" "out of descriptors"
# Accepts are retried every 100 ms while descriptors lack; the warning is
# not repeated each time (at most one per 10 s, the first at once). Each
# retry that found no descriptor has a debug line: wait for three.
retries() { [ "$(grep -c 'pausing accepts for 100 ms again (warned already)' "$T/zkrouterd-lowfd.log")" -ge 3 ]; }
wait_for 15 retries || fail "no three accept retries out of descriptors: $(grep -ci 'too many open' "$T/zkrouterd-lowfd.log") lines"
n_warn=$(grep -c 'warn: accept on port .*Too many open files' "$T/zkrouterd-lowfd.log")
log "out-of-descriptor warnings: $n_warn, retries: $(grep -c 'warned already' "$T/zkrouterd-lowfd.log")"
[ "$n_warn" -le 1 ] || fail "the descriptor warning repeats every retry ($n_warn lines)"
kill -0 "$LOWFD_PID" 2>/dev/null || fail "router died when descriptors ran out"
close_conns
wait_for 15 sh -c "[ \"\$(curl -s --max-time 2 -H 'Host: a.test' http://$PROXY/)\" = 'ok a1' ]" ||
	fail "router did not recover after descriptors came back"
log "ok"
