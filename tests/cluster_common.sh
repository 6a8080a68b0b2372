# Shared setup for the cluster tests (sourced after tests/lib/harness.sh,
# not run by itself): a real 3-member ZooKeeper ensemble, N real zkrouterd
# routers, real backends (tests/backend) registered by real zkrouter-agent
# processes, and tests/loadgen counting every failed request.
#
#   cluster_setup [N [ZKROUTERD-ARGS...]]  ensemble + `zkrouterctl init` + N
#                        routers; sets R_PORT_i, R_ADMIN_i, R_PID_i, TARGETS
#   ctl ARGS...          zkrouterctl against the ensemble
#   start_backend NAME   a backend; sets BACKEND_PORT, BACKEND_PID_<NAME>
#   agent_start ID DOMAIN PORT [ARGS]   registers ID; pid in AGENT_PID_<ID>
#   agent_stop ID [SIGNAL]              ends that agent (SIGTERM: deregisters)
#   fetch_routes         every router's /routes into $T/routes.<i>
#   converged ID present|absent [DOMAIN]  all routers agree on one digest
#                        and have (or lack) instance ID
#   wait_converged SECS ID present|absent  polls `converged`; CONVERGED_AT ms
#   loadgen_start NAME ARGS...  / loadgen_stop NAME   / lg NAME KEY
#
# CLUSTER_FULL=1 selects the full-size counts of issue 5 (tests/bench/cluster-bench
# sets it); without it the counts are cut down for make check.

BUILD=$top_builddir
ZKROUTERD=$BUILD/zkrouterd
AGENT=$BUILD/zkrouter-agent
CTL=$BUILD/zkrouterctl
BACKEND=$BUILD/tests/backend
LOADGEN=$BUILD/tests/loadgen
: "${CLUSTER_FULL:=0}"

# Short sessions keep the tests short: a crashed agent's node lingers
# AGENT_SESSION_MS, a killed router's ROUTER_SESSION_MS.
AGENT_SESSION_MS=2000
ROUTER_SESSION_MS=4000

cluster_require() {
	local f
	for f in "$ZKROUTERD" "$AGENT" "$CTL"; do
		[ -x "$f" ] || skip "$(basename "$f") is not built"
	done
	[ -x "$BACKEND" ] && [ -x "$LOADGEN" ] || hard_error "tests/backend or tests/loadgen missing"
	command -v curl >/dev/null || skip "curl not installed"
	command -v ss >/dev/null || skip "ss not installed (iproute2)"
}

ctl() { "$CTL" --zk "$ZK" --timeout 10000 "$@"; }

tag_of() { echo "${1//[^A-Za-z0-9_]/_}"; }

cluster_setup() {
	local n=${1:-3} i ports
	[ $# -gt 0 ] && shift
	cluster_require
	zk_ensemble_start 3 500
	ctl init >>"$T/ctl.log" 2>&1 || fail "zkrouterctl init failed: $(cat "$T/ctl.log")"
	N_ROUTERS=$n
	ports=$(free_port $((2 * n))) || hard_error "no free ports"
	set -- $ports "$@"
	TARGETS=""
	ADMINS=""
	for i in $(seq 1 "$n"); do
		eval "R_PORT_$i=\$1 R_ADMIN_$i=\$2"
		shift 2
	done
	for i in $(seq 1 "$n"); do
		router_start "$i" "$@"
		TARGETS="$TARGETS --target 127.0.0.1:$(r_port "$i")"
	done
	for i in $(seq 1 "$n"); do
		wait_for 30 router_healthy "$i" || fail "router r$i did not become healthy"
	done
}

r_port() { eval "echo \$R_PORT_$1"; }
r_admin() { eval "echo \$R_ADMIN_$1"; }
r_pid() { eval "echo \$R_PID_$1"; }

# router_start I [ARGS]: (re)starts router rI on its ports.
router_start() {
	local i=$1
	shift
	spawn "r$i" "$ZKROUTERD" "$WORKERS_ARG" --zk "$ZK" --node-id "r$i" \
		--listen "127.0.0.1:$(r_port "$i")" --admin "127.0.0.1:$(r_admin "$i")" \
		--zk-session-timeout-ms "$ROUTER_SESSION_MS" --drain-timeout-ms 2000 --state-dir "$T/state" "$@"
	eval "R_PID_$i=\$SPAWNED_PID"
}

router_healthy() {
	[ "$(curl -s -o /dev/null --max-time 2 -w '%{http_code}' "http://127.0.0.1:$(r_admin "$1")/healthz")" = 200 ]
}

routers_alive() {
	local i
	for i in $(seq 1 "$N_ROUTERS"); do
		[ -z "$(r_pid "$i")" ] && continue
		kill -0 "$(r_pid "$i")" 2>/dev/null || fail "router r$i (pid $(r_pid "$i")) died"
	done
}

app_add() {
	ctl app add "$@" >>"$T/ctl.log" 2>&1 || fail "zkrouterctl app add $* failed: $(tail -n 3 "$T/ctl.log")"
}

start_backend() {
	local name=$1 tag
	shift
	tag=$(tag_of "$name")
	rm -f "$T/$name.port"
	spawn "backend-$name" "$BACKEND" --id "$name" --ready-file "$T/$name.port" "$@"
	eval "BACKEND_PID_$tag=\$SPAWNED_PID"
	wait_for 10 test -s "$T/$name.port" || hard_error "backend $name did not start"
	BACKEND_PORT=$(cat "$T/$name.port")
	eval "BACKEND_PORT_$tag=\$BACKEND_PORT"
}

backend_pid() { eval "echo \$BACKEND_PID_$(tag_of "$1")"; }
backend_port() { eval "echo \$BACKEND_PORT_$(tag_of "$1")"; }

# agent_start ID DOMAIN PORT [AGENT-ARGS...]: registers 127.0.0.1:PORT as ID.
agent_start() {
	local id=$1 domain=$2 port=$3 tag
	shift 3
	tag=$(tag_of "$id")
	spawn "agent-$tag" "$AGENT" --zk "$ZK" --domain "$domain" --host 127.0.0.1 --port "$port" \
		--id "$id" --session-timeout "$AGENT_SESSION_MS" "$@"
	eval "AGENT_PID_$tag=\$SPAWNED_PID"
}

agent_pid() { eval "echo \$AGENT_PID_$(tag_of "$1")"; }

agent_stop() {
	stop_pid "$(agent_pid "$1")" "${2:-TERM}"
}

# fetch_routes: every router's /routes, one line of JSON each, into
# $T/routes.I (empty when a router does not answer).
fetch_routes() {
	local i args=()
	for i in $(seq 1 "$N_ROUTERS"); do
		: >"$T/routes.$i"
		[ -z "$(r_pid "$i")" ] && continue
		args+=(-o "$T/routes.$i" "http://127.0.0.1:$(r_admin "$i")/routes")
	done
	curl -s --max-time 3 "${args[@]}" 2>/dev/null
	return 0
}

# digest_of I: the table digest router I published in its last /routes.
digest_of() { tr -d ' \n' <"$T/routes.$1" | grep -o '"digest":"[0-9a-f]*"' | head -n 1 | cut -d'"' -f4; }

# converged ID present|absent: every live router answered, all with the
# same digest, and each has (or lacks) an instance named ID (ID "" checks
# the digests only). One awk over the answers keeps a poll to a few ms.
converged() {
	local id=$1 want=$2 i files=()
	fetch_routes
	for i in $(seq 1 "$N_ROUTERS"); do
		[ -z "$(r_pid "$i")" ] && continue
		files+=("$T/routes.$i")
	done
	for i in "${files[@]}"; do
		[ -s "$i" ] || return 1
	done
	CONVERGED_DIGEST=$(awk -v id="$id" -v want="$want" '
		function check(   d, has) {
			gsub(/[ \t]/, "", doc)
			if (!match(doc, /"digest":"[0-9a-f]+"/)) return 0
			d = substr(doc, RSTART + 10, RLENGTH - 11)
			if (first == "") first = d
			if (d != first) return 0
			has = id == "" ? want : (index(doc, "\"id\":\"" id "\"") ? "present" : "absent")
			doc = ""
			return has == want
		}
		FNR == 1 && NR > 1 && !check() { bad = 1; exit }
		{ doc = doc $0 }
		END { if (bad || NR == 0 || !check()) exit 1; print first }' "${files[@]}") || return 1
	[ -n "$CONVERGED_DIGEST" ]
}

# wait_converged SECS ID present|absent: polls converged; sets CONVERGED_AT
# (ms since the epoch, when it was first seen true).
wait_converged() {
	local deadline=$(( $(now_ms) + $1 * 1000 ))
	while :; do
		if converged "$2" "$3"; then
			CONVERGED_AT=$(now_ms)
			return 0
		fi
		[ "$(now_ms)" -lt "$deadline" ] || return 1
		sleep 0.01
	done
}

# published_at DIGEST: when the last of the live routers published its
# table with DIGEST, from their own log lines ("routing table generation
# N: ..., digest PREFIX", millisecond UTC timestamps); the last such line
# of each router counts. Prints "LAST FIRST" in ms since the epoch (FIRST:
# the earliest router), or fails.
published_at() {
	local d=${1:0:16} i line ts max=0 min=0
	for i in $(seq 1 "$N_ROUTERS"); do
		[ -z "$(r_pid "$i")" ] && continue
		line=$(grep "routing table generation .*digest $d" "$T/r$i.log" | tail -n 1)
		[ -n "$line" ] || return 1
		ts=${line%% *}
		ts=$(date -u -d "$(echo "${ts%Z}" | tr T ' ')" +%s%3N 2>/dev/null) || return 1
		[ "$ts" -gt "$max" ] && max=$ts
		{ [ "$min" -eq 0 ] || [ "$ts" -lt "$min" ]; } && min=$ts
	done
	echo "$max $min"
}

# registered_at ID: the registered_at_ms router 1 shows for instance ID.
registered_at() {
	tr -d ' \n' <"$T/routes.1" | grep -o "\"id\":\"$1\"[^}]*" |
		grep -o '"registered_at_ms":[0-9]*' | head -n 1 | cut -d: -f2
}

# through_router I DOMAIN PATH: status and X-Backend-Id of one request.
through_router() {
	curl -s --max-time 10 -o /dev/null -D - -H "Host: $2" "http://127.0.0.1:$(r_port "$1")$3" |
		tr -d '\r' | awk 'NR == 1 { s = $2 } tolower($1) == "x-backend-id:" { b = $2 }
			END { print s (b != "" ? " " b : "") }'
}

# every_router_serves DOMAIN STATUS [BACKEND-ID]: one request through
# each router answers STATUS (from BACKEND-ID when given).
every_router_serves() {
	local i got
	for i in $(seq 1 "$N_ROUTERS"); do
		[ -z "$(r_pid "$i")" ] && continue
		got=$(through_router "$i" "$1" /)
		if [ -z "${3:-}" ]; then
			[ "${got%% *}" = "$2" ] && continue
		elif [ "$got" = "$2 $3" ]; then
			continue
		fi
		echo "router r$i answered '$got' for $1, expected '$2${3:+ $3}'"
		return 1
	done
}

# ---- load -------------------------------------------------------------------

# loadgen_start NAME ARGS...: loadgen over every router (more --target
# arguments may be given); its output goes to $T/lg-NAME.log.
loadgen_start() {
	local name=$1
	shift
	spawn "lg-$name" "$LOADGEN" $TARGETS "$@"
	eval "LG_PID_$(tag_of "$name")=\$SPAWNED_PID"
}

# loadgen_stop NAME: SIGTERM (requests in flight finish), then its result.
loadgen_stop() {
	local pid
	eval "pid=\$LG_PID_$(tag_of "$1")"
	kill -0 "$pid" 2>/dev/null || log "loadgen $1 had already exited"
	stop_pid "$pid"
	grep -q '^result:' "$T/lg-$1.log" || fail "loadgen $1 printed no result: $(tail -n 5 "$T/lg-$1.log")"
}

# lg NAME KEY: a field of loadgen NAME's result line.
lg() { sed -n 's/^result: //p' "$T/lg-$1.log" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

# loadgen_assert_clean NAME: it did work and no request failed.
loadgen_assert_clean() {
	local ok failed
	ok=$(lg "$1" ok)
	failed=$(lg "$1" failed)
	log "loadgen $1: $(grep '^result:' "$T/lg-$1.log")"
	[ "${ok:-0}" -gt 0 ] || fail "loadgen $1 completed no request"
	if [ "${failed:-1}" -ne 0 ]; then
		grep -v '^progress:' "$T/lg-$1.log" | head -n 40
		fail "loadgen $1: $failed request(s) failed"
	fi
}

# percentile P FILE: the P-th percentile (nearest rank) of the numbers in FILE.
percentile() {
	sort -n "$2" | awk -v p="$1" '{ v[NR] = $1 } END {
		if (NR == 0) { print "n/a"; exit }
		r = int((p / 100) * NR + 0.999999); if (r < 1) r = 1; print v[r] }'
}
