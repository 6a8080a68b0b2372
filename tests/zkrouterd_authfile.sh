#!/bin/bash
# zkrouterd's ZooKeeper credentials from a file, never on its command
# line: auth-file (command line or config file) or $ZKROUTER_AUTH_FILE;
# a file its group or others may read is refused with the fix named, and
# so are a missing or malformed file and auth given twice; an empty file
# means no credentials. Then a real router, its credentials from
# $ZKROUTER_AUTH_FILE, reads an app whose ACL admits only the routers'
# identity, and routes to it. --check-config also opens the certificate
# files, for systemd's ExecReload.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"
. "$(dirname "$0")/certs_common.sh"

proxy_require
CTL=$top_builddir/zkrouterctl
[ -x "$CTL" ] || skip "zkrouterctl not built"

# expect_exit CODE WORDS -- ARGS...: runs zkrouterd, checks status and stderr.
expect_exit() {
	local want=$1 words=$2
	shift 3
	local rc=0
	timeout 10 "$ZKROUTERD" "$@" >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" = "$want" ] || fail "zkrouterd $* exited $rc, want $want; stderr: $(cat "$T/err")"
	[ -z "$words" ] || grep -qF -- "$words" "$T/err" || fail "zkrouterd $*: stderr lacks '$words': $(cat "$T/err")"
	grep -q 'rt-pw' "$T/err" "$T/out" && fail "zkrouterd $* printed the password"
	return 0
}
BASE=(--zk 127.0.0.1:1 --node-id n1 --listen 127.0.0.1:9 --check-config)

printf 'rt:rt-pw\n' >"$T/rt.auth"
chmod 600 "$T/rt.auth"

log "--check-config reads the auth file, never prints the secret"
expect_exit 0 "" -- "${BASE[@]}" --auth-file "$T/rt.auth"
grep -qxF "auth-file = \"$T/rt.auth\"" "$T/out" || fail "auth-file not in the effective configuration"
grep -qxF "# auth = (set, not shown)" "$T/out" || fail "the credentials read are not reported as set"
printf 'zk = 127.0.0.1:1\nauth-file = %s\n' "$T/rt.auth" >"$T/f.conf"
expect_exit 0 "" -- --config "$T/f.conf" --node-id n1 --listen 127.0.0.1:9 --check-config
grep -qxF "# auth = (set, not shown)" "$T/out" || fail "auth-file in the config file not read"
ZKROUTER_AUTH_FILE=$T/rt.auth expect_exit 0 "" -- "${BASE[@]}"
grep -qxF "auth-file = \"$T/rt.auth\"" "$T/out" || fail "\$ZKROUTER_AUTH_FILE not read"

log "a file its group or others may read is refused, with the fix"
for mode in 644 640 604 660; do
	chmod "$mode" "$T/rt.auth"
	expect_exit 2 "auth-file: $T/rt.auth: mode 0$mode lets its group or others read or change the credentials; refused (chmod 600 $T/rt.auth)" \
		-- "${BASE[@]}" --auth-file "$T/rt.auth"
done
ZKROUTER_AUTH_FILE=$T/rt.auth expect_exit 2 "mode 0660 lets its group or others" -- "${BASE[@]}"
chmod 400 "$T/rt.auth"
expect_exit 0 "" -- "${BASE[@]}" --auth-file "$T/rt.auth"

log "missing, malformed, or given twice: a clear error"
expect_exit 2 "auth-file: $T/none: cannot open: No such file or directory" -- "${BASE[@]}" --auth-file "$T/none"
printf 'no-colon\n' >"$T/bad1"; chmod 600 "$T/bad1"
expect_exit 2 "$T/bad1: expected USER:PASSWORD" -- "${BASE[@]}" --auth-file "$T/bad1"
printf 'a:b\nc:d\n' >"$T/bad2"; chmod 600 "$T/bad2"
expect_exit 2 "$T/bad2: more than one line" -- "${BASE[@]}" --auth-file "$T/bad2"
head -c 2000 /dev/zero | tr '\0' a >"$T/bad3"; chmod 600 "$T/bad3"
expect_exit 2 "$T/bad3: longer than 1024 bytes" -- "${BASE[@]}" --auth-file "$T/bad3"
expect_exit 2 "$T: not a regular file" -- "${BASE[@]}" --auth-file "$T"
expect_exit 2 "auth and auth-file are both set: keep one" -- "${BASE[@]}" --auth-file "$T/rt.auth" --auth a:b
: >"$T/empty"; chmod 600 "$T/empty"
expect_exit 0 "" -- "${BASE[@]}" --auth-file "$T/empty"
grep -q '^# auth = (set' "$T/out" && fail "an empty auth file gave credentials"

log "--check-config opens the certificate files"
mkcert site 30 site.test
expect_exit 0 "" -- "${BASE[@]}" --tls-listen 127.0.0.1:10 --tls-cert "$T/site.pem" --tls-key "$T/site.key"
expect_exit 1 "$T/gone.pem" -- "${BASE[@]}" --tls-listen 127.0.0.1:10 --tls-cert "$T/gone.pem"
printf 'not a certificate\n' >"$T/junk.pem"
expect_exit 1 "$T/junk.pem" -- "${BASE[@]}" --tls-listen 127.0.0.1:10 --tls-cert "$T/junk.pem"
mkcert other 30 other.test
expect_exit 1 "$T/site.pem" -- "${BASE[@]}" --tls-listen 127.0.0.1:10 --tls-cert "$T/site.pem" \
	--tls-key "$T/other.key"

log "a router with \$ZKROUTER_AUTH_FILE reads an app only the routers' identity may read"
printf 'op:op-pw\n' >"$T/op.auth"
chmod 600 "$T/op.auth"
export ZKROUTER_AUTH_FILE=$T/rt.auth
proxy_setup
unset ZKROUTER_AUTH_FILE
start_backend s1
"$CTL" --zk "$ZK/zkrouter" --auth-file "$T/op.auth" app add secret.test --owner app:app-pw \
	--router-auth rt:rt-pw >"$T/ctl.log" 2>&1 || fail "app add: $(cat "$T/ctl.log")"
spawn reg "$ZKPUT_BIN" --zk "$ZK/zkrouter" --auth app:app-pw --timeout 10000 --hold \
	eph /apps/secret.test/instances/s1 "instance:host=127.0.0.1,port=$BACKEND_PORT,id=s1"
wait_for 15 grep -q '^ready' "$T/reg.log" || hard_error "cannot register secret.test/s1"
wait_instance secret.test s1
[ "$(pcurl secret.test /)" = "ok s1" ] || fail "secret.test not routed with the routers' identity"
tr '\0' ' ' <"/proc/$ROUTER_PID/cmdline" | grep -q rt-pw && fail "the password is on the command line"
grep -q 'not authenticated' "$T/zkrouterd.log" && fail "the router was refused: $(grep 'not authenticated' "$T/zkrouterd.log")"
exit 0
