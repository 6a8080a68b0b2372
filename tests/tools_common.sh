# Shared by the zkrouter-agent and zkrouterctl tests (sourced after
# tests/lib/harness.sh): the programs, a ZooKeeper with the tree
# initialised, and small readers for zkrouterctl's one-line JSON.

CTL=$top_builddir/zkrouterctl
AGENT=$top_builddir/zkrouter-agent
BACKEND=$top_builddir/tests/backend
ROUTERNODE=$top_builddir/tests/routernode
for prog in "$CTL" "$AGENT" "$BACKEND" "$ROUTERNODE"; do
	[ -x "$prog" ] || hard_error "$prog not built"
done

ctl() { "$CTL" --zk "$ZK" --timeout 5000 "$@"; }

# tools_zk_start: a ZooKeeper (500 ms ticks: sessions of 1-30 s) with
# /apps and /routers.
tools_zk_start() {
	zk_start 500
	ctl init >"$T/init.out" 2>&1 || { cat "$T/init.out"; hard_error "zkrouterctl init failed"; }
}

# Reads one field of `ctl --json instances DOMAIN` for instance ID.
# instance_field DOMAIN ID FIELD -> the value (strings unquoted).
instance_field() {
	ctl --json instances "$1" 2>/dev/null | sed 's/{"id":/\n{"id":/g' | grep -F "{\"id\":\"$2\"" |
		grep -o "\"$3\":\(\"[^\"]*\"\|[^,}]*\)" | head -n 1 | cut -d: -f2- | tr -d '"'
}

# Number of instances registered for DOMAIN (empty output on error).
instance_count() {
	local out
	out=$(ctl --json instances "$1" 2>/dev/null) || return 1
	echo "$out" | grep -o '"id":' | wc -l
}

has_instances() { [ "$(instance_count "$1")" = "$2" ]; }

# Milliseconds a command took: elapsed_ms CMD... (its status is kept in $RC).
elapsed_ms() {
	local t0
	t0=$(now_ms)
	"$@"
	RC=$?
	echo $(( $(now_ms) - t0 ))
}

expect_eq() {
	[ "$1" = "$2" ] || fail "$3: expected '$2', got '$1'"
}
