#!/bin/bash
# zkrouterctl against a real ZooKeeper: bad arguments and unreachable
# servers fail fast with clear messages and the documented exit codes;
# init is idempotent; app add / set / show / rm, apps and instances say
# what is there, in words and in JSON.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/harness.sh"
. "$top_srcdir/tests/tools_common.sh"

# expect_fail CODE WORDS CMD...: CMD exits CODE and its stderr holds WORDS.
expect_fail() {
	local code=$1 words=$2
	shift 2
	"$@" >"$T/out" 2>"$T/err"
	local rc=$?
	[ "$rc" = "$code" ] || fail "'$*' exited $rc, not $code: $(cat "$T/err")"
	grep -qF -- "$words" "$T/err" || fail "'$*' did not say '$words': $(cat "$T/err")"
}

log "bad command lines: exit 2, no ZooKeeper needed"
expect_fail 2 "no command given" "$CTL" --zk 127.0.0.1:1
expect_fail 2 "--zk CONNECT is required" env -u ZKROUTER_ZK "$CTL" apps
expect_fail 2 'unknown command "frobnicate"' "$CTL" --zk 127.0.0.1:1 frobnicate
expect_fail 2 "unknown option --bogus" "$CTL" --bogus apps
expect_fail 2 "--timeout" "$CTL" --zk 127.0.0.1:1 --timeout abc apps
expect_fail 2 'invalid domain "Shop.Example.com"' "$CTL" --zk 127.0.0.1:1 instances Shop.Example.com
expect_fail 2 'invalid domain "a..b"' "$CTL" --zk 127.0.0.1:1 app add a..b
expect_fail 2 "DOMAIN missing" "$CTL" --zk 127.0.0.1:1 app add
expect_fail 2 'unknown policy "fastest"' "$CTL" --zk 127.0.0.1:1 app add x.localhost --balance fastest
expect_fail 2 "--retries" "$CTL" --zk 127.0.0.1:1 app add x.localhost --retries 11
expect_fail 2 "balance hash-header needs hash_key" "$CTL" --zk 127.0.0.1:1 app add x.localhost --balance hash-header
expect_fail 2 "--zone ZONE and --name NAME are required" "$CTL" --zk 127.0.0.1:1 dns --zone example.com
"$CTL" --help | grep -q "^usage: zkrouterctl" || fail "--help"

log "unreachable ZooKeeper: a clear error within the bounded wait"
dead=$(free_port)
ms=$(elapsed_ms expect_fail 3 "cannot reach ZooKeeper at 127.0.0.1:$dead within 1500 ms" \
	"$CTL" --zk "127.0.0.1:$dead" --timeout 1500 apps)
log "gave up after $ms ms"
[ "$ms" -lt 5000 ] || fail "took $ms ms to give up with --timeout 1500"
ms=$(elapsed_ms expect_fail 3 "within 5000 ms" "$CTL" --zk "127.0.0.1:$dead" routers)
[ "$ms" -lt 9000 ] || fail "default wait took $ms ms"

tools_zk_start
log "init is idempotent"
ctl init | grep -q "/apps already exists" || fail "second init"
expect_eq "$(ctl --json init)" '{"apps":"existed","routers":"existed"}' "init --json"

log "init --auth: only the operator adds apps, anyone reads"
"$CTL" --zk "$ZK/secure" --auth ops:pw init >/dev/null || fail "init --auth"
expect_fail 3 "permission denied" "$CTL" --zk "$ZK/secure" app add a.localhost
"$CTL" --zk "$ZK/secure" --auth ops:pw app add a.localhost >/dev/null || fail "operator app add"
"$CTL" --zk "$ZK/secure" apps | grep -q "^a.localhost " || fail "anonymous apps"

log "commands that only read leave a missing chroot missing"
expect_fail 3 "/apps does not exist: run \`zkrouterctl init\` first" "$CTL" --zk "$ZK/fresh" apps
"$CTL" --zk "$ZK/fresh" --json routers >/dev/null 2>&1
"$top_builddir/tests/zkput" --zk "$ZK/" --timeout 5000 get /fresh >/dev/null 2>&1 &&
	fail "a read-only command created the chroot /fresh"
"$CTL" --zk "$ZK/fresh" init >/dev/null || fail "init in a missing chroot"
"$top_builddir/tests/zkput" --zk "$ZK/" --timeout 5000 get /fresh >/dev/null ||
	fail "init did not create the chroot /fresh"

log "unknown domains: exit 3, named"
expect_fail 3 "unknown domain nope.localhost" ctl instances nope.localhost
expect_fail 3 "unknown domain nope.localhost" ctl app rm nope.localhost
expect_fail 3 "unknown domain nope.localhost" ctl app set nope.localhost --retries 1

log "app add, the listing and the config as given"
expect_eq "$(ctl apps)" "no apps (add one with \`zkrouterctl app add DOMAIN\`)" "empty apps"
ctl app add shop.localhost --balance round-robin --retries 2 --health-path /health \
	--health-interval 500 --connect-timeout 700 --redirect-https >/dev/null || fail "app add"
ctl app add '*.apps.localhost' >/dev/null || fail "app add of a wildcard"
expect_fail 3 "app shop.localhost already exists" ctl app add shop.localhost
json=$(ctl --json apps)
echo "$json" | grep -qF '{"domain":"*.apps.localhost","instances":0,"config":{"balance":"least-outstanding","redirect_https":false}}' ||
	fail "wildcard app in --json apps: $json"
echo "$json" | grep -qF '"domain":"shop.localhost","instances":0,"config":{"balance":"round-robin","connect_timeout_ms":700,"health_path":"/health","health_interval_ms":500,"redirect_https":true,"retries":2}' ||
	fail "shop.localhost in --json apps: $json"
ctl apps | grep -q "^shop.localhost .* 0  round-robin health=/health@500ms connect=700ms retries=2 https-only$" ||
	fail "human apps: $(ctl apps)"

log "app set changes only what it is given; invalid changes are refused"
ctl app set shop.localhost --balance hash-cookie --hash-key sid >/dev/null || fail "app set"
ctl --json app show shop.localhost | grep -qF '"config":{"balance":"hash-cookie","hash_key":"sid","connect_timeout_ms":700' ||
	fail "app show after set: $(ctl --json app show shop.localhost)"
expect_fail 2 "hash_key" ctl app set shop.localhost --hash-key 'bad key'
expect_fail 2 "nothing to change" ctl app set shop.localhost
ctl app set shop.localhost --reset --retries 1 >/dev/null || fail "app set --reset"
ctl --json app show shop.localhost | grep -qF '"config":{"balance":"least-outstanding","redirect_https":false,"retries":1}' ||
	fail "app set --reset: $(ctl --json app show shop.localhost)"

log "backend protocol: h2c set, shown and kept by other changes; garbage refused"
expect_fail 2 'unknown protocol "h3" (h2c or http1)' ctl app set shop.localhost --backend-protocol h3
expect_fail 2 'unknown protocol "H2C"' "$CTL" --zk 127.0.0.1:1 app add x.localhost --backend-protocol H2C
expect_fail 2 "option --backend-protocol needs a value" ctl app set shop.localhost --backend-protocol
ctl app set shop.localhost --backend-protocol h2c | grep -q "retries=1 backend=h2c)$" ||
	fail "app set --backend-protocol h2c"
ctl app set shop.localhost --retries 2 >/dev/null || fail "app set --retries after h2c"
ctl --json app show shop.localhost | grep -qF '"config":{"balance":"least-outstanding","redirect_https":false,"retries":2,"backend_protocol":"h2c"}' ||
	fail "app show --json after h2c: $(ctl --json app show shop.localhost)"
ctl app show shop.localhost | grep -q "^  config     least-outstanding retries=2 backend=h2c$" ||
	fail "app show: $(ctl app show shop.localhost)"
ctl apps | grep -q "^shop.localhost .* retries=2 backend=h2c$" || fail "apps: $(ctl apps)"
ctl app set shop.localhost --backend-protocol http1 >/dev/null || fail "app set --backend-protocol http1"
ctl --json app show shop.localhost | grep -qF '"retries":2,"backend_protocol":"http1"}' ||
	fail "app show after http1: $(ctl --json app show shop.localhost)"
ctl apps | grep -q "backend=" && fail "http1 shown in the summary: $(ctl apps)"
log "a record holding an unknown backend protocol is refused with its reason"
"$top_builddir/tests/zkput" --zk "$ZK/zkrouter" --timeout 5000 mk /apps/odd.localhost app:backend_protocol=7 mk /apps/odd.localhost/instances - \
	>/dev/null || fail "zkput odd.localhost"
expect_fail 3 "holds an invalid AppConfig: backend_protocol 7 unknown (http1 or h2c)" \
	ctl app show odd.localhost
expect_fail 3 "backend_protocol 7 unknown" ctl app set odd.localhost --backend-protocol h2c
"$top_builddir/tests/zkput" --zk "$ZK/zkrouter" --timeout 5000 set /apps/odd.localhost app:backend_protocol=1 \
	>/dev/null || fail "zkput odd.localhost h2c"
ctl --json app show odd.localhost | grep -qF '"backend_protocol":"h2c"' ||
	fail "h2c written by another writer: $(ctl --json app show odd.localhost)"
"$top_builddir/tests/zkput" --zk "$ZK/zkrouter" --timeout 5000 rm /apps/odd.localhost >/dev/null ||
	fail "zkput rm odd.localhost"

log "instances, and app rm refusing while one is registered"
P=$(free_port)
spawn agent "$AGENT" --zk "$ZK" --domain shop.localhost --host 127.0.0.1 --port "$P" --id s1 \
	--session-timeout 20000
wait_for 10 has_instances shop.localhost 1 || fail "agent did not register"
ctl apps | grep -q "^shop.localhost  *1  " || fail "instance count in apps: $(ctl apps)"
expect_fail 3 "has 1 registered instance" ctl app rm shop.localhost
ctl app rm --force shop.localhost | grep -q "and 1 instance node" || fail "app rm --force"
expect_fail 3 "unknown domain shop.localhost" ctl instances shop.localhost
log "the agent notices its app was removed and exits 3"
wait_for 10 eval '! kill -0 '"$SPAWNED_PID"' 2>/dev/null' || fail "the agent kept running"
wait "$SPAWNED_PID"
expect_eq "$?" 3 "agent exit status after app rm --force"
grep -q "does not exist" "$T/agent.log" || fail "agent did not say why"
ctl app rm '*.apps.localhost' >/dev/null || fail "app rm"
expect_eq "$(ctl --json apps)" '{"apps":[]}' "apps after removing both"
log "an agent with --wait-app waits for its app instead of exiting"
spawn late "$AGENT" --zk "$ZK" --domain late.localhost --host 127.0.0.1 --port "$P" --id l1 --wait-app
L=$SPAWNED_PID
wait_for 10 grep -q "app late.localhost does not exist yet" "$T/late.log" || fail "no waiting message"
kill -0 "$L" || fail "the agent with --wait-app exited"
ctl app add late.localhost >/dev/null || fail "app add late.localhost"
wait_for 15 has_instances late.localhost 1 || fail "the waiting agent did not register"
log "ok"
