# Shared setup for the process-level proxy tests (sourced after
# tests/lib/harness.sh, not run by itself): a real ZooKeeper, real
# zkrouterd, real backends (tests/backend) and instances registered as
# ephemeral znodes, the way an agent does it.
#
#   proxy_setup [ZKROUTERD-ARGS...]   ZooKeeper + /apps + zkrouterd; sets
#                                     PROXY (ip:port), PROXY_PORT, ADMIN, ROUTER_PID
#   start_backend NAME [ARGS...]      sets BACKEND_PORT; pid in BACKEND_PID_<NAME>
#   app_add DOMAIN [app:k=v,...]      persistent /apps/DOMAIN and its instances node
#   register DOMAIN ID PORT           an ephemeral instance held by a zkput
#                                     session; deregister ID ends that session
#   wait_instance DOMAIN ID [gone]    until /routes shows (or no longer shows) ID
#   pcurl HOST PATH [CURL-ARGS...]    curl through the proxy with that Host
#   hc [HCLIENT-ARGS...]              hclient to the proxy

BUILD=$top_builddir
BACKEND_BIN=$BUILD/tests/backend
HCLIENT_BIN=$BUILD/tests/hclient
ZKPUT_BIN=$BUILD/tests/zkput

proxy_require() {
	ZKROUTERD=
	for f in "$BUILD/zkrouterd" "$BUILD/node/zkrouterd"; do
		[ -x "$f" ] && ZKROUTERD=$f && break
	done
	[ -n "$ZKROUTERD" ] || skip "zkrouterd is not built"
	[ -x "$ZKPUT_BIN" ] || skip "tests/zkput is not built"
	[ -x "$BACKEND_BIN" ] && [ -x "$HCLIENT_BIN" ] || hard_error "tests/backend or tests/hclient missing"
	command -v curl >/dev/null || skip "curl not installed"
}

# zkput against the test tree; the chroot is explicit so every tool agrees.
zkput() { "$ZKPUT_BIN" --zk "$ZK/zkrouter" --timeout 10000 "$@"; }

start_backend() {
	local name=$1
	shift
	rm -f "$T/$name.port"
	spawn "backend-$name" "$BACKEND_BIN" --id "$name" --ready-file "$T/$name.port" "$@"
	eval "BACKEND_PID_${name//[^A-Za-z0-9_]/_}=$SPAWNED_PID"
	wait_for 10 test -s "$T/$name.port" || hard_error "backend $name did not start"
	BACKEND_PORT=$(cat "$T/$name.port")
}

backend_pid() { eval "echo \$BACKEND_PID_${1//[^A-Za-z0-9_]/_}"; }

app_add() {
	local domain=$1 data=${2:--}
	zkput mk "/apps/$domain" "$data" mk "/apps/$domain/instances" - >>"$T/zkput.log" 2>&1 ||
		hard_error "cannot create app $domain"
}

# register DOMAIN ID PORT [EXTRA k=v,...]: an ephemeral instance node, held
# by its own session until `deregister ID` (as if its agent stopped).
register() {
	local domain=$1 id=$2 port=$3 extra=${4:+,$4}
	local tag=${id//[^A-Za-z0-9_]/_}
	spawn "reg-$tag" "$ZKPUT_BIN" --zk "$ZK/zkrouter" --timeout 10000 --hold \
		eph "/apps/$domain/instances/$id" "instance:host=127.0.0.1,port=$port,id=$id$extra"
	eval "REG_PID_$tag=$SPAWNED_PID"
	wait_for 15 grep -q '^ready' "$T/reg-$tag.log" || hard_error "cannot register $domain/$id"
}

deregister() {
	local tag=${1//[^A-Za-z0-9_]/_}
	local pid
	eval "pid=\$REG_PID_$tag"
	stop_pid "$pid"
}

routes() { curl -s --max-time 5 "http://$ADMIN/routes"; }

# wait_instance DOMAIN ID [gone]: the router's table has (or lost) the instance.
wait_instance() {
	local domain=$1 id=$2 gone=${3:-}
	if [ -z "$gone" ]; then
		wait_for 15 sh -c "curl -s --max-time 5 http://$ADMIN/routes | tr -d ' \n' | grep -q '\"$id\"'" ||
			fail "router never saw instance $domain/$id"
	else
		wait_for 15 sh -c "! curl -s --max-time 5 http://$ADMIN/routes | tr -d ' \n' | grep -q '\"$id\"'" ||
			fail "router still has instance $domain/$id"
	fi
}

# wait_app DOMAIN: the router's table knows the app (even with no instance).
wait_app() {
	wait_for 15 sh -c "curl -s --max-time 5 http://$ADMIN/routes | grep -q '\"$1\"'" ||
		fail "router never saw app $1"
}

proxy_setup() {
	proxy_require
	zk_start 500
	zkput mk /apps - mk /routers - >>"$T/zkput.log" 2>&1 || hard_error "cannot create /apps"
	local ports
	ports=$(free_port 2) || hard_error "no free ports"
	PROXY_PORT=$(echo "$ports" | sed -n 1p)
	ADMIN_PORT=$(echo "$ports" | sed -n 2p)
	PROXY=127.0.0.1:$PROXY_PORT
	ADMIN=127.0.0.1:$ADMIN_PORT
	spawn zkrouterd "$ZKROUTERD" "$WORKERS_ARG" --zk "$ZK/zkrouter" --listen "$PROXY" --admin "$ADMIN" \
		--node-id "test-$$" --zk-session-timeout-ms 10000 --access-log "$T/access.log" \
		--state-dir "$T/state" "$@"
	ROUTER_PID=$SPAWNED_PID
	wait_for 20 sh -c "curl -sf --max-time 2 http://$ADMIN/healthz" ||
		fail "zkrouterd did not become healthy"
}

router_alive() { kill -0 "$ROUTER_PID" 2>/dev/null || fail "zkrouterd died"; }

pcurl() {
	local host=$1 path=$2
	shift 2
	curl -s --max-time 20 -H "Host: $host" "$@" "http://$PROXY$path"
}

hc() { "$HCLIENT_BIN" "$PROXY" "$@"; }

# http_status RESPONSE-FILE: the status code of the first response in it.
first_status() { head -n 1 "$1" | tr -d '\r' | awk '{print $2}'; }

# Peak resident memory of a process, in kB.
peak_rss_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }

# Under ASan a freed block waits in a quarantine (256 MB by default)
# before it is reused, so peak RSS follows the bytes a router moved, not
# what it held at once, and the memory bounds of these tests (proxy_http.sh)
# would measure the quarantine. In a sanitizer build their processes get a
# small one: a use after free is still caught within the last few MB freed,
# and the bounds hold as they are (ASan's redzones add far less).
if sanitizer_build; then
	export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
fi

# Established TCP connections towards 127.0.0.1:PORT.
conns_to() { ss -Htn state established "( dport = :$1 )" 2>/dev/null | wc -l; }

# open_conns N: opens N connections to the proxy from this shell; their
# descriptors go to FDS.
FDS=()
open_conns() {
	local i fd
	for i in $(seq 1 "$1"); do
		exec {fd}<>"/dev/tcp/127.0.0.1/$PROXY_PORT" || fail "connect $i failed"
		FDS+=("$fd")
	done
}
close_conns() {
	local fd
	for fd in "${FDS[@]}"; do exec {fd}>&- 2>/dev/null; done
	FDS=()
}

# backlog: connections the kernel completed on the proxy's port that the
# router has not accepted (the Recv-Q of its listening sockets, one per
# worker).
backlog() { ss -Hltn "sport = :$PROXY_PORT" | awk '{ n += $2 } END { print n + 0 }'; }
backlog_is() { [ "$(backlog)" = "$1" ]; }

# ws_table_change I PORT: the I-th of a cycle of four table changes around
# a tunnel to ws.test (an instance w2 of ws.test and o1 of other.test, on
# PORT, added and then removed), each waited for until the router has it.
ws_table_change() {
	local i=$1 port=$2
	case $((i % 4)) in
	1) zkput mk /apps/ws.test/instances/w2 "instance:host=127.0.0.1,port=$port,id=w2" >>"$T/zkput.log" 2>&1 ;;
	2) zkput mk /apps/other.test/instances/o1 "instance:host=127.0.0.1,port=$port,id=o1" >>"$T/zkput.log" 2>&1 ;;
	3) zkput rm /apps/ws.test/instances/w2 >>"$T/zkput.log" 2>&1 ;;
	0) zkput rm /apps/other.test/instances/o1 >>"$T/zkput.log" 2>&1 ;;
	esac || hard_error "zkput failed at change $i"
	case $((i % 4)) in
	1) wait_instance ws.test w2 ;;
	2) wait_instance other.test o1 ;;
	3) wait_instance ws.test w2 gone ;;
	0) wait_instance other.test o1 gone ;;
	esac
}
