#!/bin/bash
# Domain ownership: an app added with --owner accepts instances only from
# agents holding the owner's credentials. Others are refused with a clear
# ZNOAUTH message naming the domain and exit 3, and the node set stays
# exactly as it was. Readers need the router identity when one is set.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/harness.sh"
. "$top_srcdir/tests/tools_common.sh"

tools_zk_start
D=shop.localhost
OP=ops:ops-secret
log "--owner without an operator identity is refused (nobody would keep admin rights)"
ctl app add "$D" --owner shop:shop-secret >"$T/out" 2>&1
expect_eq "$?" 2 "app add --owner without --auth"
grep -q -- "--auth" "$T/out" || fail "unclear message: $(cat "$T/out")"

ctl --auth "$OP" app add "$D" --owner shop:shop-secret --router-auth router:rt-secret >/dev/null ||
	fail "app add with owner"
ctl --auth "$OP" app show "$D" >"$T/show" || fail "app show"
grep -q "digest:shop:.* cd$" "$T/show" || fail "owner ACL missing: $(cat "$T/show")"
grep -q "digest:router:.* r$" "$T/show" || fail "router ACL missing: $(cat "$T/show")"

list() { ctl --auth router:rt-secret --json instances "$D"; }

log "the owner's agent registers"
P=$(free_port)
spawn owner "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P" --id shop-1 \
	--auth shop:shop-secret --session-timeout 2000
wait_for 10 eval 'list | grep -q "\"id\":\"shop-1\""' || fail "the owner's agent did not register"
before=$(list | sed 's/"session":"[^"]*"//')

log "an agent without credentials is refused: ZNOAUTH, the domain named, exit 3"
"$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port 9 --id intruder \
	--session-timeout 2000 >"$T/anon.out" 2>&1
expect_eq "$?" 3 "exit status without credentials"
grep -q "ZNOAUTH" "$T/anon.out" && grep -q "$D" "$T/anon.out" ||
	fail "unclear refusal: $(cat "$T/anon.out")"

log "an agent with the wrong credentials is refused the same way"
"$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port 9 --id intruder \
	--auth shop:guess --session-timeout 2000 >"$T/wrong.out" 2>&1
expect_eq "$?" 3 "exit status with wrong credentials"
grep -q "ZNOAUTH" "$T/wrong.out" && grep -q "not this app's owner" "$T/wrong.out" ||
	fail "unclear refusal: $(cat "$T/wrong.out")"

log "nor may it replace the owner's node by taking its id"
"$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P" --id shop-1 \
	--auth other:pw --session-timeout 2000 >"$T/steal.out" 2>&1
expect_eq "$?" 3 "exit status when taking the owner's id"

after=$(list | sed 's/"session":"[^"]*"//')
expect_eq "$after" "$before" "node set after the refusals"

log "reading is for the router identity and the operator only"
ctl instances "$D" >"$T/anon-read" 2>&1
expect_eq "$?" 3 "anonymous read of an owned app"
grep -q "permission denied" "$T/anon-read" || fail "unclear: $(cat "$T/anon-read")"
ctl --auth "$OP" instances "$D" | grep -q "^shop-1 .*127.0.0.1:$P " || fail "operator cannot read the record"
list | grep -qF '"id":"shop-1","host":"127.0.0.1","port":'"$P" || fail "router cannot read the record: $(list)"

log "app rm needs the operator and refuses while instances are registered"
ctl app rm "$D" >/dev/null 2>&1
expect_eq "$?" 3 "anonymous app rm"
ctl --auth "$OP" app rm "$D" >"$T/rm" 2>&1
expect_eq "$?" 3 "app rm with a live instance"
grep -q "1 registered instance" "$T/rm" || fail "unclear: $(cat "$T/rm")"
log "ok"
