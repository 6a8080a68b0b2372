#!/bin/bash
# zkrouter-agent's and zkrouterctl's credentials from a file, never on
# their command lines: --auth-file or $ZKROUTER_AUTH_FILE. Against a real
# ZooKeeper and an app whose ACL admits only its owner's agents: the
# operator's zkrouterctl and the owner's agent work with their files; a
# file its group or others may read, a missing or malformed one, or auth
# given twice are refused before anything reaches ZooKeeper. The
# identities zkrouterctl writes into ACLs (--owner, --router-auth) come
# from files the same way.
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib/harness.sh"
. "$top_srcdir/tests/tools_common.sh"
. "$top_srcdir/tests/certs_common.sh"

tools_zk_start
D=owned.localhost
printf 'ops:ops-secret\n' >"$T/op.auth"
printf 'shop:shop-secret\n' >"$T/shop.auth"
chmod 600 "$T/op.auth" "$T/shop.auth"

# refused WORDS CMD...: exit 2, WORDS on stderr, no secret printed.
refused() {
	local words=$1 rc=0
	shift
	"$@" >"$T/ref.out" 2>&1 || rc=$?
	[ "$rc" = 2 ] || fail "$* exited $rc, want 2: $(cat "$T/ref.out")"
	grep -qF -- "$words" "$T/ref.out" || fail "$*: output lacks '$words': $(cat "$T/ref.out")"
	grep -q 'secret' "$T/ref.out" && fail "$* printed a password"
	return 0
}

log "zkrouterctl: the operator's identity from --auth-file"
ctl --auth-file "$T/op.auth" app add "$D" --owner shop:shop-secret --router-auth router:rt-secret >"$T/add.out" 2>&1 ||
	fail "app add with --auth-file: $(cat "$T/add.out")"
ctl --auth-file "$T/op.auth" app show "$D" >"$T/show" || fail "app show with --auth-file"
grep -q 'digest:ops:.* cdrwa$' "$T/show" || fail "the operator's ACL is not the file's identity: $(cat "$T/show")"
log "zkrouterctl: from \$ZKROUTER_AUTH_FILE; without it the owned app is refused"
ZKROUTER_AUTH_FILE=$T/op.auth ctl instances "$D" >"$T/env.out" 2>&1 ||
	fail "instances with \$ZKROUTER_AUTH_FILE: $(cat "$T/env.out")"
rc=0
ctl instances "$D" >"$T/anon.out" 2>&1 || rc=$?
expect_eq "$rc" 3 "anonymous read of the owned app"

log "zkrouter-agent: the owner's identity from --auth-file registers"
P=$(free_port)
spawn owner "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port "$P" --id shop-1 \
	--auth-file "$T/shop.auth" --session-timeout 2000
list() { ZKROUTER_AUTH_FILE=$T/op.auth ctl --json instances "$D"; }
wait_for 10 eval 'list | grep -q "\"id\":\"shop-1\""' || fail "the agent with --auth-file did not register"
tr '\0' ' ' <"/proc/$SPAWNED_PID/cmdline" | grep -q secret && fail "a password is on the agent's command line"
log "zkrouter-agent: from \$ZKROUTER_AUTH_FILE"
P2=$(free_port)
ZKROUTER_AUTH_FILE=$T/shop.auth spawn owner2 "$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 \
	--port "$P2" --id shop-2 --session-timeout 2000
wait_for 10 eval 'list | grep -q "\"id\":\"shop-2\""' || fail "the agent with \$ZKROUTER_AUTH_FILE did not register"

log "a file its group or others may read is refused, with the fix"
chmod 644 "$T/shop.auth"
refused "--auth-file: $T/shop.auth: mode 0644 lets its group or others read or change the credentials; refused (chmod 600 $T/shop.auth)" \
	"$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port 9 --auth-file "$T/shop.auth"
refused "mode 0644 lets its group or others" env ZKROUTER_AUTH_FILE="$T/shop.auth" \
	"$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port 9
chmod 640 "$T/op.auth"
refused "--auth-file: $T/op.auth: mode 0640 lets its group or others" ctl --auth-file "$T/op.auth" apps
refused "mode 0640 lets its group or others" env ZKROUTER_AUTH_FILE="$T/op.auth" "$CTL" --zk "$ZK" apps
chmod 600 "$T/op.auth" "$T/shop.auth"

log "missing, malformed, or given twice: a clear error"
refused "$T/none: cannot open: No such file or directory" ctl --auth-file "$T/none" apps
refused "$T/none: cannot open: No such file or directory" \
	"$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port 9 --auth-file "$T/none"
printf 'nocolon\n' >"$T/bad"; chmod 600 "$T/bad"
refused "$T/bad: expected USER:PASSWORD" ctl --auth-file "$T/bad" apps
refused "$T/bad: expected USER:PASSWORD" \
	"$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port 9 --auth-file "$T/bad"
refused "--auth and --auth-file both given" ctl --auth a:b --auth-file "$T/op.auth" apps
refused "--auth and --auth-file both given" \
	"$AGENT" --zk "$ZK" --domain "$D" --host 127.0.0.1 --port 9 --auth a:b --auth-file "$T/shop.auth"
refused "ZKROUTER_AUTH and ZKROUTER_AUTH_FILE are both set" \
	env ZKROUTER_AUTH=a:b ZKROUTER_AUTH_FILE="$T/op.auth" "$CTL" --zk "$ZK" apps
log "zkrouterctl: --owner-file and --router-auth-file keep the app's identities off the command line"
printf 'shop2:shop2-secret\n' >"$T/shop2.auth"
printf 'router:rt-secret\n' >"$T/rt.auth"
chmod 600 "$T/shop2.auth" "$T/rt.auth"
ctl --auth-file "$T/op.auth" app add filed.localhost --owner-file "$T/shop2.auth" \
	--router-auth-file "$T/rt.auth" >"$T/add2.out" 2>&1 || fail "app add with identity files: $(cat "$T/add2.out")"
ctl --auth-file "$T/op.auth" app show filed.localhost >"$T/show2" || fail "app show filed.localhost"
grep -q 'digest:shop2:.* cd$' "$T/show2" || fail "no owner ACL from --owner-file: $(cat "$T/show2")"
# The same identity gives the same digest, whether from a file or not.
want=$(grep -o 'digest:router:[^ ]*' "$T/show")
[ -n "$want" ] && grep -qF "$want" "$T/show2" ||
	fail "--router-auth-file gave another digest than --router-auth: $(cat "$T/show2")"
mkcert c1 30 c1.localhost
ctl --auth-file "$T/op.auth" cert add "$T/c1.pem" --key "$T/c1.key" --router-auth-file "$T/rt.auth" \
	>"$T/cert.out" 2>&1 || fail "cert add --router-auth-file: $(cat "$T/cert.out")"
ctl --auth-file "$T/op.auth" cert show c1.localhost | grep -qF "$want" ||
	fail "the certificate's router ACL is not the file's identity"
refused "--owner and --owner-file both given" ctl --auth-file "$T/op.auth" app add x.localhost \
	--owner a:b --owner-file "$T/shop2.auth"
: >"$T/empty"; chmod 600 "$T/empty"
refused "--owner-file: $T/empty is empty" ctl --auth-file "$T/op.auth" app add x.localhost --owner-file "$T/empty"
chmod 644 "$T/rt.auth"
refused "--router-auth-file: $T/rt.auth: mode 0644 lets its group or others" \
	ctl --auth-file "$T/op.auth" cert add "$T/c1.pem" --key "$T/c1.key" --router-auth-file "$T/rt.auth"
exit 0
