# Shared helpers for the process-level tests (sourced, not run).
#
# Each test gets its own temp directory ($T), starts real processes with
# `spawn`, and on exit ends exactly those processes, by pid. Ports are
# picked at run time. On failure the logs of every process are printed.
# Exit codes follow automake: 0 pass, 1 fail, 77 skip, 99 hard error.

: "${top_builddir:=$(cd "$(dirname "$0")/.." && pwd)}"
: "${top_srcdir:=$top_builddir}"
export top_builddir top_srcdir

# Every zkrouterd a test starts runs this many worker threads, so that
# races between them show up in make check; ZKR_TEST_WORKERS overrides
# (tests/proxy_http_1worker.sh runs one test with a single worker).
WORKERS_ARG="--workers=${ZKR_TEST_WORKERS:-2}"

T=$(mktemp -d "${TMPDIR:-/tmp}/zkrtest.XXXXXX") || exit 99
HARNESS_PIDS=""
HARNESS_FAILED=0

# In a sanitizer build (./configure --enable-sanitizers) every report of
# every program this test runs lands in $T/sanitizer.PID, so that one from
# a daemon the test ended (a leak found at exit, say) is not lost with its
# exit status: on exit each is printed and the test fails.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}log_path=$T/sanitizer"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:+$UBSAN_OPTIONS:}log_path=$T/sanitizer"
# The same for a ThreadSanitizer build (./configure --enable-tsan), whose
# reports would otherwise stay in the log of a daemon that passed.
export TSAN_OPTIONS="${TSAN_OPTIONS:+$TSAN_OPTIONS:}log_path=$T/sanitizer"

harness_cleanup() {
	local rc=$?
	local pid
	for pid in $HARNESS_PIDS; do
		kill -CONT "$pid" 2>/dev/null
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in $HARNESS_PIDS; do
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		{ wait "$pid"; } 2>/dev/null
	done
	for f in "$T"/sanitizer.*; do
		[ -f "$f" ] || continue
		echo "----- sanitizer report $f"
		head -n 60 "$f"
		[ "$(wc -l <"$f")" -le 60 ] || grep "^SUMMARY" "$f"
		rc=1
	done
	if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
		for f in "$T"/*.log; do
			[ -f "$f" ] || continue
			echo "----- $f (last 60 lines)"
			tail -n 60 "$f"
		done
	fi
	rm -rf "$T"
	exit "$rc"
}
trap harness_cleanup EXIT
trap 'exit 1' INT TERM

. "$(dirname "${BASH_SOURCE[0]}")/report.sh"

# True in a build made with ./configure --enable-sanitizers, where memory
# is measured differently (freed blocks wait in ASan's quarantine).
sanitizer_build() { grep -q '^#define ZKR_SANITIZERS 1' "$top_builddir/config.h"; }

# Prints one free loopback port (or N with an argument).
free_port() { "$top_builddir/tests/freeport" "$@"; }

# spawn NAME CMD...: runs CMD in the background, output to $T/NAME.log;
# sets SPAWNED_PID. The process is ended on exit.
spawn() {
	local name=$1
	shift
	"$@" >"$T/$name.log" 2>&1 &
	SPAWNED_PID=$!
	HARNESS_PIDS="$HARNESS_PIDS $SPAWNED_PID"
}

# stop_pid PID [SIGNAL]: ends a process this test spawned (default
# SIGTERM, then SIGKILL after 10 s), reaps it, and forgets it.
stop_pid() {
	local pid=$1 sig=${2:-TERM}
	kill -CONT "$pid" 2>/dev/null
	kill "-$sig" "$pid" 2>/dev/null
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	{ wait "$pid"; } 2>/dev/null
	HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $pid / /")
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds.
wait_for() {
	local deadline=$(( $(date +%s%N) / 1000000 + $1 * 1000 ))
	shift
	while ! "$@" >/dev/null 2>&1; do
		[ $(( $(date +%s%N) / 1000000 )) -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# Milliseconds since the epoch.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ---- ZooKeeper -------------------------------------------------------------

ZK_CLASSPATH=/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar:/usr/share/java/slf4j-simple.jar

zk_require() {
	[ -f /usr/share/java/zookeeper.jar ] || skip "ZooKeeper not installed (apt-get install zookeeper)"
	command -v java >/dev/null || skip "java not installed (apt-get install default-jre-headless)"
}

# Sends a four-letter word to 127.0.0.1:PORT and prints the answer.
zk_4lw() {
	exec 3<>"/dev/tcp/127.0.0.1/$1" || return 1
	printf '%s' "$2" >&3
	timeout 2 cat <&3
	exec 3<&-
}

# Serving, not just listening: srvr names a Mode only then.
zk_ready() { zk_4lw "$1" srvr 2>/dev/null | grep -q "^Mode:"; }

# zk_start [TICK_MS]: a standalone server on a free port. Sets ZK_PORT,
# ZK_PID, ZK_DIR and ZK (the connect string, no chroot). Session timeouts
# may be negotiated between 2 and 20 ticks.
zk_start() {
	zk_require
	ZK_DIR=$T/zk
	mkdir -p "$ZK_DIR/data"
	ZK_PORT=$(free_port)
	zk_write_cfg "$ZK_DIR" "$ZK_PORT" "${1:-500}" >"$ZK_DIR/zoo.cfg"
	zk_resume
}

# zk_write_cfg DIR PORT TICK_MS: prints the settings every test server
# shares: loopback only, no admin server on 0.0.0.0:8080, no per-client
# connection cap, and sessions of 2 to 60 ticks.
zk_write_cfg() {
	cat <<CFG
tickTime=$3
dataDir=$1/data
clientPort=$2
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat,mntr,cons
maxClientCnxns=0
minSessionTimeout=$(( $3 * 2 ))
maxSessionTimeout=$(( $3 * 60 ))
CFG
}

# zk_java NAME CLASS CFG: runs a ZooKeeper server class, small and quick to start.
zk_java() {
	spawn "$1" java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
		-Dzookeeper.log.dir="$(dirname "$3")" -cp "$ZK_CLASSPATH" "$2" "$3"
}

# zk_resume: starts the server again on the same port and data.
zk_resume() {
	zk_java zookeeper org.apache.zookeeper.server.ZooKeeperServerMain "$ZK_DIR/zoo.cfg"
	ZK_PID=$SPAWNED_PID
	ZK=127.0.0.1:$ZK_PORT
	wait_for 60 zk_ready "$ZK_PORT" || hard_error "ZooKeeper did not start on port $ZK_PORT"
}

# zk_stop: stops the server (the data stays for zk_resume).
zk_stop() {
	stop_pid "$ZK_PID"
}

# ---- a ZooKeeper ensemble ---------------------------------------------------

# zk_ensemble_start N [TICK_MS]: N quorum members on loopback. Sets
# ZK (the connect string), ZKE_N, and per member i (1..N) ZKE_PORT_i,
# ZKE_PID_i. Returns once every member reports a Mode.
zk_ensemble_start() {
	zk_require
	ZKE_N=$1
	local tick=${2:-500} i servers="" ports
	ports=$(free_port $((ZKE_N * 3))) || hard_error "no free ports"
	set -- $ports
	for i in $(seq 1 "$ZKE_N"); do
		eval "ZKE_PORT_$i=\$1"
		servers="${servers}server.$i=127.0.0.1:$2:$3
"
		shift 3
	done
	ZK=""
	for i in $(seq 1 "$ZKE_N"); do
		local dir=$T/zk$i port
		eval "port=\$ZKE_PORT_$i"
		mkdir -p "$dir/data"
		echo "$i" >"$dir/data/myid"
		{
			zk_write_cfg "$dir" "$port" "$tick"
			printf 'initLimit=20\nsyncLimit=5\n%s' "$servers"
		} >"$dir/zoo.cfg"
		ZK="${ZK:+$ZK,}127.0.0.1:$port"
		zk_member_start "$i"
	done
	for i in $(seq 1 "$ZKE_N"); do
		eval "port=\$ZKE_PORT_$i"
		wait_for 90 zk_ready "$port" || hard_error "ensemble member $i did not join"
	done
}

# zk_member_start I: (re)starts member I of the ensemble.
zk_member_start() {
	zk_java "zk$1" org.apache.zookeeper.server.quorum.QuorumPeerMain "$T/zk$1/zoo.cfg"
	eval "ZKE_PID_$1=\$SPAWNED_PID"
}

# zk_member_stop I [SIGNAL]: stops member I (default SIGKILL: a crash).
zk_member_stop() {
	local pid
	eval "pid=\$ZKE_PID_$1"
	stop_pid "$pid" "${2:-KILL}"
}

# zk_leader: prints the index of the member that is the leader now.
zk_leader() {
	local i port
	for i in $(seq 1 "$ZKE_N"); do
		eval "port=\$ZKE_PORT_$i"
		if zk_4lw "$port" srvr 2>/dev/null | grep -q '^Mode: leader'; then
			echo "$i"
			return 0
		fi
	done
	return 1
}
