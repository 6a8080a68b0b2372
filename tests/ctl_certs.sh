#!/bin/bash
# zkrouterctl cert against a real ZooKeeper: `cert add` refuses, with the
# reason and without writing anything, every certificate a router would
# skip (a chain that does not parse, a key that does not match, expired,
# not yet valid, no DNS names) and a record it would store readable by
# anyone unless asked; it prints the names it serves; a second add of the
# same name replaces the first; ls, show, rm and `certs --expiring` say
# what is there, in words and JSON, with their exit codes; show never
# prints the private key. The ACL keeps the keys to the operator and the
# routers' identity: neither anonymous clients (world) nor an app agent's
# identity can list /certs or read a record (ZNOAUTH), through zkrouterctl
# and through the C client directly.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/harness.sh"
. "$top_srcdir/tests/tools_common.sh"
. "$top_srcdir/tests/certs_common.sh"

ZKPUT=$top_builddir/tests/zkput
[ -x "$ZKPUT" ] || hard_error "$ZKPUT not built"

# expect_fail CODE WORDS CMD...: CMD exits CODE and its stderr holds WORDS.
expect_fail() {
	local code=$1 words=$2
	shift 2
	"$@" >"$T/out" 2>"$T/err"
	local rc=$?
	[ "$rc" = "$code" ] || fail "'$*' exited $rc, not $code: $(cat "$T/err")"
	grep -qF -- "$words" "$T/err" || fail "'$*' did not say '$words': $(cat "$T/err")"
}

OP=op:op-pw
RT=rt:rt-pw
op() { ctl --auth "$OP" "$@"; }
add() { op cert add "$@" --router-auth "$RT"; }

mkcert good 10 shop.test www.shop.test
mkcert long 400 '*.long.test'
mkcert good2 20 shop.test www.shop.test
mkcert other 10 other.test
mkcert nodns 10
mkcert_dated expired 20200101000000Z 20210101000000Z old.test
mkcert_dated future 20400101000000Z 20410101000000Z new.test
echo "not a certificate" >"$T/garbage.pem"
cat "$T/good.key" "$T/good.pem" >"$T/both.pem"

tools_zk_start
# An app whose agents hold the identity app:app-pw.
op app add shop.test --owner app:app-pw --router-auth "$RT" >/dev/null || fail "app add with an owner"

log "refusals: exit 2 with the reason, nothing written"
expect_fail 2 "no certificate in the chain" add "$T/garbage.pem" --key "$T/good.key"
expect_fail 2 "key does not match the certificate" add "$T/good.pem" --key "$T/other.key"
expect_fail 2 "expired" add "$T/expired.pem" --key "$T/expired.key"
expect_fail 2 "not valid before 2040-01-01" add "$T/future.pem" --key "$T/future.key"
expect_fail 2 "DNS" add "$T/nodns.pem" --key "$T/nodns.key"
expect_fail 2 "no private key" add "$T/good.pem"
expect_fail 2 "cannot read $T/missing.pem" add "$T/missing.pem" --key "$T/good.key"
expect_fail 2 '--name "Bad/Name"' add "$T/good.pem" --key "$T/good.key" --name Bad/Name
expect_fail 2 "give --auth (the operator) and --router-auth" \
	ctl cert add "$T/good.pem" --key "$T/good.key"
expect_fail 2 "give --auth (the operator) and --router-auth" \
	op cert add "$T/good.pem" --key "$T/good.key"
expect_fail 2 "one FILE" add
expect_fail 2 "unknown option --bogus" op cert ls --bogus
expect_fail 2 'unknown subcommand "frob"' op cert frob
expect_fail 2 "--expiring" op certs --expiring soon
out=$(op cert ls) || fail "cert ls on nothing: $out"
[ "$out" = "no certificates (add one with \`zkrouterctl cert add FILE\`)" ] ||
	fail "a refused add wrote something: $out"
"$ZKPUT" --zk "$ZK/zkrouter" get /certs >/dev/null 2>&1 && fail "a refused add created /certs"

log "cert add: the names it serves, a sequential node, the ACL of /certs and the record"
out=$(add "$T/good.pem" --key "$T/good.key") || fail "cert add: $out"
echo "$out" | grep -q "^certificate shop.test stored at /certs/shop.test.0000000000$" ||
	fail "cert add output: $out"
echo "$out" | grep -q "serves *shop.test,www.shop.test$" || fail "no names in: $out"
out=$(add "$T/long.pem" --key "$T/long.key") || fail "wildcard add: $out"
echo "$out" | grep -q "certificate _wildcard.long.test stored" || fail "wildcard name: $out"
out=$(add "$T/both.pem" --name both-in-one) || fail "chain and key in one file: $out"
show=$(op cert show shop.test) || fail "cert show: $show"
echo "$show" | grep -q "acl *digest:op:[^ ]* cdrwa$" || fail "operator ACL: $show"
echo "$show" | grep -q "^ *digest:rt:[^ ]* r$" || fail "router ACL: $show"
[ "$(echo "$show" | grep -c "digest:\|world:")" = 2 ] || fail "more than two ACL entries: $show"
echo "$show" | grep -q "world" && fail "world in the ACL: $show"
echo "$show" | grep -q "PRIVATE KEY" && fail "cert show printed the key"
op --json cert show shop.test | grep -q "PRIVATE KEY" && fail "cert show --json printed the key"
op --json cert show shop.test | grep -q '"sha256":"[0-9a-f]\{64\}"' || fail "no fingerprint in show --json"

log "ls and certs --expiring"
ls=$(op cert ls) || fail "cert ls: $ls"
# A 10-day certificate made a moment ago has 9 whole days left (10 at most).
echo "$ls" | grep -q "^shop.test  *[0-9T:.-]*Z  *\(9\|10\)  shop.test,www.shop.test  */CN=shop.test$" ||
	fail "ls row: $ls"
echo "$ls" | grep -q "^_wildcard.long.test .* \*.long.test " || fail "ls wildcard row: $ls"
want='{"name":"shop.test","node":"shop.test.0000000000","names":\["shop.test","www.shop.test"\],'
want=$want'"issuer":"/CN=shop.test","not_after":"[0-9T:.-]*Z","days_left":\(9\|10\)}'
op --json cert ls | grep -q "$want" || fail "ls --json: $(op --json cert ls)"
out=$(op certs --expiring 5); rc=$?
[ "$rc" = 0 ] || fail "nothing expires within 5 days, exit $rc: $out"
out=$(op certs --expiring 30); rc=$?
[ "$rc" = 1 ] || fail "two expire within 30 days, exit $rc: $out"
echo "$out" | grep -q "^shop.test " || fail "--expiring 30 lacks shop.test: $out"
echo "$out" | grep -q "long.test" && fail "--expiring 30 lists the 400-day one: $out"
[ "$(op --json certs --expiring 30 | grep -o '"name"' | wc -l)" = 2 ] ||
	fail "--expiring --json: $(op --json certs --expiring 30)"

log "a second add of one name replaces it: new node first, the old one gone"
out=$(add "$T/good2.pem" --key "$T/good2.key") || fail "replacing add: $out"
echo "$out" | grep -q "stored at /certs/shop.test.0000000003 (replacing the previous one)" ||
	fail "replacement output: $out"
[ "$(op --json cert show shop.test | grep -o '"node":' | wc -l)" = 1 ] ||
	fail "old node left: $(op --json cert show shop.test)"
op --json cert show shop.test | grep -q "\"sha256\":\"$(fingerprint "$T/good2.pem" | tr -d : | tr A-F a-f)\"" ||
	fail "the shown certificate is not the new one"

log "nobody but the operator and the routers reads /certs or a record"
expect_fail 3 "not authenticated" ctl cert ls
expect_fail 3 "not authenticated" ctl --auth app:app-pw cert ls
expect_fail 3 "not authenticated" ctl --auth app:app-pw cert show shop.test
ctl --auth "$RT" cert ls >/dev/null || fail "the routers' identity cannot list"
for who in "" "--auth app:app-pw"; do
	# shellcheck disable=SC2086
	"$ZKPUT" --zk "$ZK/zkrouter" $who get /certs/shop.test.0000000003 >"$T/out" 2>&1 &&
		fail "read a record as '${who:-world}': $(cat "$T/out")"
	grep -q "not authenticated" "$T/out" || fail "'${who:-world}' read: $(cat "$T/out")"
done
"$ZKPUT" --zk "$ZK/zkrouter" --auth "$RT" get /certs/shop.test.0000000003 >/dev/null ||
	fail "the routers' identity cannot read a record"
# An agent cannot add one either (no create right on /certs).
"$ZKPUT" --zk "$ZK/zkrouter" --auth app:app-pw mk /certs/evil.0000000099 text:x >"$T/out" 2>&1 &&
	fail "an agent created a record"

log "--world-readable is what it says, and only when asked"
out=$(op cert add "$T/other.pem" --key "$T/other.key" --world-readable) || fail "world-readable add: $out"
"$ZKPUT" --zk "$ZK/zkrouter" get "$(echo "$out" | sed -n 's/.* stored at \([^ ]*\).*/\1/p')" >/dev/null ||
	fail "a --world-readable record is not readable"

log "rm: every node of the name; unknown names exit 3"
out=$(op cert rm shop.test) || fail "cert rm: $out"
echo "$out" | grep -q "certificate shop.test removed (1 node)" || fail "rm output: $out"
expect_fail 3 "no certificate named shop.test" op cert rm shop.test
expect_fail 3 "no certificate named shop.test" op cert show shop.test
op cert ls | grep -q "^shop.test " && fail "shop.test still listed"
op cert ls | grep -q "^_wildcard.long.test " || fail "rm took another certificate"

log "a record that does not decode is listed as invalid, the others still"
"$ZKPUT" --zk "$ZK/zkrouter" --auth "$OP" mk /certs/broken.0000000042 text:garbage >/dev/null ||
	fail "writing a garbage record"
ls=$(op cert ls) || fail "ls with a broken record: $ls"
echo "$ls" | grep -q "^broken  *INVALID (broken.0000000042)" || fail "broken record row: $ls"
echo "$ls" | grep -q "^_wildcard.long.test " || fail "a broken record hid the others: $ls"
log "ok"
