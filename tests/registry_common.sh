# Helpers shared by the registry tests (sourced after tests/lib/harness.sh).
# tablewatch runs a zkr_router and rewrites $T/<name>.table on each
# published snapshot; zkput writes znodes through zkr_session.

B=$top_builddir/tests

# tw_start NAME [ARGS...]: a table holder with node id NAME; sets TW_PID.
tw_start() {
	local name=$1
	shift
	spawn "$name" "$B/tablewatch" --zk "$ZK" --out "$T/$name.table" --node-id "$name" "$@"
	TW_PID=$SPAWNED_PID
}

# has NAME PATTERN: the current table of NAME has a line matching PATTERN.
has() { [ -f "$T/$1.table" ] && grep -qE -- "$2" "$T/$1.table"; }
lacks() { [ -f "$T/$1.table" ] && ! grep -qE -- "$2" "$T/$1.table"; }
gen_of() { sed -n 's/^generation //p' "$T/$1.table" 2>/dev/null; }
digest_of() { sed -n 's/^digest //p' "$T/$1.table" 2>/dev/null; }

# expect SECONDS DESCRIPTION CMD...: waits for CMD, fails with DESCRIPTION.
expect() {
	local secs=$1 what=$2
	shift 2
	wait_for "$secs" "$@" || fail "$what"
}

put() { "$B/zkput" --zk "$ZK" "$@" >/dev/null || fail "zkput $*"; }

# hold NAME OP...: a zkput holding ephemerals until the test ends; sets HOLD_PID.
hold() {
	local name=$1
	shift
	spawn "$name" "$B/zkput" --zk "$ZK" --timeout 4000 --hold "$@"
	HOLD_PID=$SPAWNED_PID
	wait_for 10 grep -q '^ready' "$T/$name.log" || fail "$name did not register"
}
