#!/bin/bash
# Session resumption on any router: the ticket keys live in ZooKeeper at
# /tls/ticket-keys. A real ZooKeeper, two (then three) real zkrouterd
# with the routers' identity, a real backend, and Python's ssl as the
# client, which keeps its sessions across commands (tests/tlsresume.py).
#
#   - a ticket router A issued resumes on router B, TLS 1.2 and 1.3;
#   - only the routers' identity reads the keys: an agent's and the world
#     get "not authenticated";
#   - after a rotation (period set by SIGHUP) the old tickets still resume
#     on both routers and both use the new key;
#   - two routers due at once (both stopped past the due time, continued
#     together) rotate once: the znode's version advances by one, the
#     loser counts a conflict; over the whole run every rotation came a
#     full period after the one before, and each wrote the next version;
#   - a record that does not decode is ignored (keys kept), one that
#     others may read is warned about; deleted, the keys are created
#     again, shared, and closed to others;
#   - with ZooKeeper stopped, tickets keep resuming on both and no key
#     changes; a router started meanwhile uses local keys, then the
#     shared ones once ZooKeeper is back;
#   - a router without the identity keeps local keys, says why, and
#     leaves the shared record alone.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_require
zk_require
command -v openssl >/dev/null || skip "openssl (the command) not installed"
command -v python3 >/dev/null || skip "python3 not installed"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=app.test \
	-days 1 -addext "subjectAltName=DNS:app.test" -keyout "$T/key.pem" -out "$T/cert.pem" \
	>"$T/openssl.out" 2>&1 || hard_error "openssl req failed: $(cat "$T/openssl.out")"

AUTH=rt:rt-pw
PERIOD=8          # seconds, once the rotation phase begins: long enough that
                  # no second rotation comes while a round reads its result,
                  # on a loaded machine too. A round stops both routers for
                  # a period: their sessions (30 s) must outlast that, or the
                  # client library, silent past 2/3 of it, reconnects
                  # first and the two never race.

zk_start 500
zkput mk /apps - mk /routers - >>"$T/zkput.log" 2>&1 || hard_error "cannot create /apps"
start_backend a1
app_add app.test
register app.test a1 "$BACKEND_PORT"

# start_router NAME [ARGS...]: a router with a plain, a TLS and an admin
# port and its own config file $T/NAME.conf (rewritten for SIGHUP); sets
# TLS_<NAME>, ADMIN_<NAME>, PID_<NAME>. The routers' identity unless
# ROUTER_AUTH is set empty.
start_router() {
	local name=$1 ports
	shift
	ports=$(free_port 3) || hard_error "no free ports"
	set -- $ports "$@"
	: >>"$T/$name.conf"
	spawn "$name" "$ZKROUTERD" "$WORKERS_ARG" --zk "$ZK/zkrouter" --node-id "$name" ${ROUTER_AUTH-"--auth=$AUTH"} \
		--config "$T/$name.conf" --listen "127.0.0.1:$1" --tls-listen "127.0.0.1:$2" \
		--admin "127.0.0.1:$3" --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" \
		--state-dir off --zk-session-timeout-ms 30000 "${@:4}"
	eval "TLS_$name=$2 ADMIN_$name=127.0.0.1:$3 PID_$name=$SPAWNED_PID"
	wait_for 20 curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$3/metrics" ||
		fail "router $name did not start"
}

admin_of() { eval "echo \$ADMIN_$1"; }
tls_of() { eval "echo \$TLS_$1"; }
pid_of() { eval "echo \$PID_$1"; }

# metric NAME METRIC: the value of one sample (METRIC may carry labels).
metric() { curl -s --max-time 5 "http://$(admin_of "$1")/metrics" | awk -v m="$2" '$1 == m {print $2; exit}'; }
# metric_sum METRIC NAMES...: the sum over routers.
metric_sum() {
	local m=$1 r sum=0 v
	shift
	for r in "$@"; do
		v=$(metric "$r" "$m")
		sum=$(( sum + ${v:-0} ))
	done
	echo "$sum"
}
# key_of NAME: "NAME-HEX VERSION" of the key a router encrypts with.
key_of() {
	curl -s --max-time 5 "http://$(admin_of "$1")/metrics" |
		sed -n 's/^zkrouter_tls_ticket_key_info{name="\([0-9a-f]*\)",version="\(-\?[0-9]*\)"} 1$/\1 \2/p'
}
shared() { [ "$(metric "$1" zkrouter_tls_ticket_keys_shared)" = 1 ]; }

# zk_keys: the record as the routers' identity reads it (zkput get).
zk_keys() { "$ZKPUT_BIN" --zk "$ZK/zkrouter" --auth "$AUTH" --timeout 5000 get /tls/ticket-keys; }
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
first_name() { field "$1" names | cut -d, -f1; }

# agree NAMES...: every router encrypts with keys[0] of the record, at its version.
agree() {
	local rec want r
	rec=$(zk_keys) || return 1
	want="$(first_name "$rec") $(field "$rec" version)"
	for r in "$@"; do
		[ "$(key_of "$r")" = "$want" ] || return 1
	done
}

coproc TLSC { exec python3 "$top_srcdir/tests/tlsresume.py" "$T/cert.pem" 2>>"$T/tlsresume.log"; }
HARNESS_PIDS="$HARNESS_PIDS $TLSC_PID"
# tls COMMAND...: one tlsresume command; its answer in $ANSWER.
tls() {
	echo "$*" >&"${TLSC[1]}" || fail "tlsresume is gone"
	ANSWER=
	read -r -t 40 ANSWER <&"${TLSC[0]}" || fail "tlsresume: no answer to '$*'"
	echo "tls $*: $ANSWER" >>"$T/tlsresume.log"
	case $ANSWER in ok*) ;; *) fail "tls $*: $ANSWER" ;; esac
}
# resumes SESSION ROUTER: session SESSION resumes on ROUTER.
resumes() {
	tls resume "$1" "$(tls_of "$2")"
	case $ANSWER in *reused=1*) ;; *) fail "session $1 did not resume on router $2: $ANSWER" ;; esac
}
# fresh SESSION ROUTER VERSION: a full handshake that left a ticket.
fresh() {
	tls new "$1" "$(tls_of "$2")" "$3" app.test
	case $ANSWER in *reused=0*ticket=1*) ;; *) fail "new session $1 on $2: $ANSWER" ;; esac
}

log "two routers with the routers' identity share the keys in ZooKeeper"
start_router A
start_router B
wait_for 20 agree A B || fail "the routers do not use the keys of ZooKeeper: A $(key_of A), B $(key_of B), record $(zk_keys)"
rec=$(zk_keys)
echo "record: $rec"
[ "$(field "$rec" keys)" = 1 ] || fail "a new record holds one key: $rec"
case $(field "$rec" rotated_by) in A | B) ;; *) fail "created by neither router: $rec" ;; esac
grep -q 'tls tickets: created /zkrouter/tls/ticket-keys' "$T/A.log" "$T/B.log" ||
	fail "no router logged the creation"

log "a ticket from router A resumes on router B (TLS 1.2 and 1.3)"
for v in tls1.2 tls1.3; do
	fresh "old-$v" A "$v"
	resumes "old-$v" B
	resumes "old-$v" A
done
[ "$(metric B zkrouter_tls_tickets_resumed_total)" -ge 2 ] ||
	fail "router B counted no resumption: $(metric B zkrouter_tls_tickets_resumed_total)"
[ "$(metric A zkrouter_tls_tickets_issued_total)" -ge 2 ] || fail "router A counted no ticket"

log "only the routers' identity reads the keys"
for who in "--auth app:app-pw" ""; do
	# shellcheck disable=SC2086
	if "$ZKPUT_BIN" --zk "$ZK/zkrouter" $who --timeout 5000 get /tls/ticket-keys >"$T/get.out" 2>&1; then
		fail "read the ticket keys with '${who:-no identity}': $(cat "$T/get.out")"
	fi
	grep -q 'not authenticated' "$T/get.out" || fail "'${who:-no identity}': $(cat "$T/get.out")"
	# shellcheck disable=SC2086
	"$ZKPUT_BIN" --zk "$ZK/zkrouter" $who --timeout 5000 set /tls/ticket-keys text:x >"$T/set.out" 2>&1 &&
		fail "wrote the ticket keys with '${who:-no identity}'"
	grep -q 'not authenticated' "$T/set.out" || fail "'${who:-no identity}' write: $(cat "$T/set.out")"
done

# period SECONDS ROUTERS...: a new rotation period by SIGHUP, applied.
period() {
	local secs=$1 r n
	shift
	for r in "$@"; do
		n=$(grep -c 'reload applied: .*tls-ticket-rotate-s' "$T/$r.log")
		echo "tls-ticket-rotate-s = $secs" >"$T/$r.conf"
		kill -HUP "$(pid_of "$r")"
		wait_for 10 sh -c "[ \$(grep -c 'reload applied: .*tls-ticket-rotate-s' '$T/$r.log') -gt $n ]" ||
			fail "router $r did not apply tls-ticket-rotate-s $secs"
	done
}

log "a rotation: the period becomes $PERIOD s on SIGHUP; old tickets still resume on both"
v0=$(field "$(zk_keys)" version)
period "$PERIOD" A B
wait_for 30 sh -c "[ \$('$ZKPUT_BIN' --zk '$ZK/zkrouter' --auth '$AUTH' --timeout 5000 get /tls/ticket-keys | tr ' ' '\n' | sed -n 's/^version=//p') -gt $v0 ]" ||
	fail "no rotation within 30 s: $(zk_keys)"
wait_for 10 agree A B || fail "the routers disagree after the rotation: A $(key_of A), B $(key_of B), record $(zk_keys)"
rec=$(zk_keys)
[ "$(field "$rec" keys)" -ge 2 ] || fail "the previous key was dropped: $rec"
renewed=$(metric_sum zkrouter_tls_tickets_renewed_total A B)
for v in tls1.2 tls1.3; do
	resumes "old-$v" B
	resumes "old-$v" A
done
[ "$(metric_sum zkrouter_tls_tickets_renewed_total A B)" -ge $(( renewed + 4 )) ] ||
	fail "tickets under the previous key were not renewed"

log "two routers due at once rotate once"
# Both are stopped past the due time, then continued together: both timers
# fire before either hears of the other's write, so both write.
conflicts=0
for round in 1 2 3; do
	rec=$(zk_keys)
	v=$(field "$rec" version)
	at=$(field "$rec" rotated_at_ms)
	rot=$(metric_sum 'zkrouter_tls_ticket_key_rotations_total{keys="zookeeper"}' A B)
	rot_a=$(metric A 'zkrouter_tls_ticket_key_rotations_total{keys="zookeeper"}')
	c0=$(metric_sum zkrouter_tls_ticket_key_rotation_conflicts_total A B)
	kill -STOP "$PID_A" "$PID_B"
	# The due time plus the largest jitter (a twentieth of the period).
	until [ "$(now_ms)" -gt $(( at + PERIOD * 1000 + PERIOD * 50 + 300 )) ]; do sleep 0.1; done
	kill -CONT "$PID_A" "$PID_B"
	rotated() { [ "$(metric_sum 'zkrouter_tls_ticket_key_rotations_total{keys="zookeeper"}' A B)" -gt "$rot" ]; }
	wait_for 10 rotated || fail "round $round: nobody rotated"
	rec=$(zk_keys)
	after=$(field "$rec" version)
	[ "$after" = $(( v + 1 )) ] || fail "round $round: version $v became $after, want $(( v + 1 ))"
	# The record names the router that counted the rotation.
	winner=B
	[ "$(metric A 'zkrouter_tls_ticket_key_rotations_total{keys="zookeeper"}')" -gt "$rot_a" ] && winner=A
	[ "$(field "$rec" rotated_by)" = "$winner" ] || fail "round $round: rotated by $winner, record says $rec"
	# The loser's answer follows the winner's at once.
	raced() { [ "$(metric_sum zkrouter_tls_ticket_key_rotation_conflicts_total A B)" -gt "$c0" ]; }
	wait_for 2 raced || true
	c1=$(metric_sum zkrouter_tls_ticket_key_rotation_conflicts_total A B)
	echo "round $round: version $v -> $after, conflicts $c0 -> $c1"
	if [ "$c1" -gt "$c0" ]; then
		conflicts=1
		break
	fi
done
[ "$conflicts" = 1 ] || fail "in 3 rounds the two routers never raced (no ZBADVERSION seen)"
wait_for 10 agree A B || fail "the routers disagree after the race: A $(key_of A), B $(key_of B)"

log "ZooKeeper stopped: tickets keep resuming on both routers, with the same keys"
# Rotations wait while the keys are taken and ZooKeeper stops.
period 3600 A B
wait_for 10 agree A B || fail "the routers disagree: A $(key_of A), B $(key_of B), record $(zk_keys)"
fresh down-tls1.3 A tls1.3
fresh down-tls1.2 B tls1.2
key_a=$(key_of A)
key_b=$(key_of B)
zk_stop
for r in A B; do
	wait_for 20 sh -c "curl -s http://$(admin_of $r)/metrics | grep -q '^zkrouter_zk_connected 0\$'" ||
		fail "router $r never noticed that ZooKeeper stopped"
done
# Due at once with ZooKeeper away: the keys stay as they were.
period 1 A B
for r in A B; do
	wait_for 10 grep -q 'rotation due but ZooKeeper is unreachable; keeping the keys' "$T/$r.log" ||
		fail "router $r: no rotation fell due"
done
period 3600 A B
resumes down-tls1.3 B
resumes down-tls1.2 A
fresh down2 B tls1.3
resumes down2 A
[ "$(key_of A)" = "$key_a" ] && [ "$(key_of B)" = "$key_b" ] ||
	fail "keys changed while ZooKeeper was away: A $key_a -> $(key_of A), B $key_b -> $(key_of B)"

log "a router started without ZooKeeper uses local keys, then the shared ones"
start_router C
[ "$(key_of C | cut -d' ' -f2)" = -1 ] || fail "router C claims shared keys: $(key_of C)"
shared C && fail "router C has shared keys without ZooKeeper"
tls new c-local "$TLS_C" tls1.3 app.test
[ "$(metric C zkrouter_tls_tickets_issued_total)" -ge 1 ] || fail "router C issued no ticket"
zk_resume
resumed_ms=$(now_ms)
# A router whose reconnect landed on the server while it was starting waits
# for an answer up to 2/3 of its session (20 s) before it tries again.
for r in A B C; do
	wait_for 40 sh -c "curl -s http://$(admin_of $r)/metrics | grep -q '^zkrouter_zk_connected 1\$'" ||
		fail "router $r did not reconnect to ZooKeeper within 40 s"
	echo "router $r connected $(( $(now_ms) - resumed_ms )) ms after ZooKeeper was back"
done
wait_for 30 agree A B C || fail "router C never took the shared keys: C $(key_of C), A $(key_of A), record $(zk_keys)"
resumes down2 C
# Each router is still alive and every rotation is in the logs.
for r in A B C; do kill -0 "$(pid_of "$r")" 2>/dev/null || fail "router $r died"; done

log "history: each rotation wrote the next version, a full period after the previous one"
sed -n 's/.*tls tickets: rotated the keys: version=\([0-9]*\) rotated_at_ms=\([0-9]*\) previous_ms=\([0-9]*\) period_s=\([0-9]*\).*/\1 \2 \3 \4/p' \
	"$T/A.log" "$T/B.log" "$T/C.log" | sort -n >"$T/history"
cat "$T/history"
# The record was created at version 0 and written by rotations only.
[ "$(wc -l <"$T/history")" -ge 2 ] || fail "fewer rotations than the test made"
[ "$(cut -d' ' -f1 "$T/history" | tr '\n' ' ')" = "$(seq 1 "$(wc -l <"$T/history")" | tr '\n' ' ')" ] ||
	fail "the rotations did not write versions 1, 2, 3... once each"
[ "$(field "$(zk_keys)" version)" = "$(wc -l <"$T/history")" ] ||
	fail "the record's version is not the number of rotations logged: $(zk_keys)"
[ "$(metric_sum 'zkrouter_tls_ticket_key_rotations_total{keys="zookeeper"}' A B C)" = "$(wc -l <"$T/history")" ] ||
	fail "the routers count other rotations than they logged"
while read -r ver at prev period; do
	[ $(( at - prev )) -ge $(( period * 1000 )) ] ||
		fail "version $ver rotated $(( at - prev )) ms after the previous keys (period $period s)"
done <"$T/history"
log "a record that does not decode is ignored; deleted, it is created again"
key_a=$(key_of A)
rej=$(metric A zkrouter_tls_ticket_key_rejected_total)
# Opened to the world by hand first: the routers warn at their next read.
"$ZKPUT_BIN" --zk "$ZK/zkrouter" --auth "$AUTH" --timeout 5000 acl /tls/ticket-keys \
	"digest:$AUTH:cdrwa,world:anyone:r" >>"$T/zkput.log" 2>&1 || fail "cannot open the ACL"
"$ZKPUT_BIN" --zk "$ZK/zkrouter" --auth "$AUTH" --timeout 5000 set /tls/ticket-keys text:garbage \
	>>"$T/zkput.log" 2>&1 || fail "cannot write garbage as the routers' identity"
wait_for 10 sh -c "[ \$(curl -s http://$ADMIN_A/metrics | sed -n 's/^zkrouter_tls_ticket_key_rejected_total //p') -gt $rej ]" ||
	fail "router A did not count the undecodable record"
grep -q 'tls tickets: /zkrouter/tls/ticket-keys version [0-9]* ignored: ' "$T/A.log" ||
	fail "router A did not log the undecodable record"
[ "$(key_of A | cut -d' ' -f1)" = "${key_a% *}" ] || fail "router A changed keys on garbage: $(key_of A)"
wait_for 10 grep -q 'tls tickets: /zkrouter/tls/ticket-keys is open to world:anyone' "$T/A.log" ||
	fail "router A did not warn of a world-readable record"
fresh garbage-time B tls1.3
resumes garbage-time A
"$ZKPUT_BIN" --zk "$ZK/zkrouter" --auth "$AUTH" --timeout 5000 rm /tls/ticket-keys \
	>>"$T/zkput.log" 2>&1 || fail "cannot delete the record"
wait_for 20 agree A B || fail "no shared keys after the delete: A $(key_of A), B $(key_of B), record $(zk_keys)"
"$ZKPUT_BIN" --zk "$ZK/zkrouter" --timeout 5000 get /tls/ticket-keys >"$T/get.out" 2>&1 &&
	fail "the world reads the record created again: $(cat "$T/get.out")"
resumes garbage-time A

log "a router without the routers' identity keeps its keys to itself"
rec=$(zk_keys)
ROUTER_AUTH= start_router D
grep -q 'tls tickets: no --auth, so the session-ticket keys are not shared' "$T/D.log" ||
	fail "router D did not say why its keys are local"
[ "$(key_of D | cut -d' ' -f2)" = -1 ] || fail "router D claims shared keys: $(key_of D)"
fresh d-own D tls1.3
resumes d-own D
tls resume garbage-time "$TLS_D"
case $ANSWER in *reused=0*) ;; *) fail "router D resumed a shared ticket: $ANSWER" ;; esac
[ "$(zk_keys)" = "$rec" ] || fail "router D touched the shared keys: $rec -> $(zk_keys)"
log "ok"
