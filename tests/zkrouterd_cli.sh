#!/bin/bash
# zkrouterd's command line: --help and --version exit 0; every option in
# --help is documented in the man page; usage and config-file mistakes get
# a clear message and exit 2; a port already in use or an unwritable access
# log stop the start with exit 1. No ZooKeeper needed: all of these happen
# before the daemon connects.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

ZKROUTERD=
for f in "$top_builddir/zkrouterd" "$top_builddir/node/zkrouterd"; do
	[ -x "$f" ] && ZKROUTERD=$f && break
done
[ -n "$ZKROUTERD" ] || skip "zkrouterd is not built"
MAN=$top_srcdir/node/zkrouterd.8

# expect_exit CODE WORDS -- ARGS...: runs zkrouterd, checks status and stderr.
expect_exit() {
	local want=$1 words=$2
	shift 3
	local rc=0
	timeout 10 "$ZKROUTERD" "$@" >"$T/out" 2>"$T/err" || rc=$?
	[ "$rc" = "$want" ] || fail "zkrouterd $* exited $rc, want $want; stderr: $(cat "$T/err")"
	grep -qF -- "$words" "$T/err" ||
		fail "zkrouterd $*: stderr lacks '$words': $(cat "$T/err")"
}

log "--help and --version"
"$ZKROUTERD" --help >"$T/help" 2>&1 || fail "--help exited non-zero"
for w in "--zk CONNECT" "--listen ADDR:PORT" "--admin ADDR:PORT" "--node-id ID" \
	"--config FILE" "--access-log PATH" "--auth USER:PASS" "--syslog" "(default 3)"; do
	grep -qF -- "$w" "$T/help" || fail "--help lacks '$w'"
done
ver=$("$ZKROUTERD" --version) || fail "--version exited non-zero"
echo "$ver" | grep -Eq '^zkrouterd \(zkrouter\) [0-9]+\.[0-9]+' || fail "--version printed '$ver'"

log "every option in --help is in the man page"
[ -f "$MAN" ] || fail "no man page at $MAN"
opts=$(grep -Eo -- '^  --[a-z-]+' "$T/help" | sed 's/^ *--//')
[ "$(echo "$opts" | wc -l)" -ge 25 ] || fail "--help lists too few options: $opts"
for o in $opts; do
	grep -qF -- "\\-\\-$(echo "$o" | sed 's/-/\\-/g')" "$MAN" || fail "option --$o missing from zkrouterd.8"
done

log "--check-config prints the effective configuration, or the error"
printf 'zk = 127.0.0.1:1\nretries = 4\nauth = u:secret\n' >"$T/ok.conf"
"$ZKROUTERD" --config "$T/ok.conf" --node-id n1 --listen 127.0.0.1:9 --check-config >"$T/eff" 2>&1 ||
	fail "--check-config on a valid file exited non-zero: $(cat "$T/eff")"
for w in 'zk = "127.0.0.1:1"' 'node-id = "n1"' 'retries = 4' 'listen = "127.0.0.1:9"' 'connect-timeout-ms = 2000'; do
	grep -qxF -- "$w" "$T/eff" || fail "--check-config output lacks '$w'"
done
grep -q secret "$T/eff" && fail "--check-config printed the ZooKeeper password"
expect_exit 2 ":2: retries: 40 out of range" -- --config <(printf 'zk = a:1\nretries = 40\n') --check-config

log "--tls-cert twice on the command line is two certificates; over the file's, it is said"
"$ZKROUTERD" --zk 127.0.0.1:1 --tls-cert /x/a.pem --tls-cert /x/b.pem --check-config >"$T/eff2" 2>&1 ||
	fail "--check-config with two --tls-cert exited non-zero: $(cat "$T/eff2")"
[ "$(grep -cE '^tls-cert = "/x/(a|b).pem"$' "$T/eff2")" = 2 ] || fail "two --tls-cert: $(grep tls-cert "$T/eff2")"
printf 'zk = 127.0.0.1:1\ntls-cert = /x/a.pem\n' >"$T/cert.conf"
"$ZKROUTERD" --config "$T/cert.conf" --tls-cert /x/b.pem --check-config >"$T/eff3" 2>&1 ||
	fail "--check-config with a file's tls-cert exited non-zero: $(cat "$T/eff3")"
grep -qF -- "--tls-cert on the command line replaces the 1 value of tls-cert in $T/cert.conf" "$T/eff3" ||
	fail "the command line replaced the file's tls-cert silently: $(cat "$T/eff3")"
expect_exit 2 'access-log-format: "xml" is neither logfmt nor json' -- --zk 127.0.0.1:1 --access-log-format xml

log "usage mistakes: exit 2 with a clear message"
expect_exit 2 "zk: no ZooKeeper connect string" --
expect_exit 2 "unknown option --bogus" -- --zk 127.0.0.1:1 --bogus
expect_exit 2 "--listen needs a value" -- --zk 127.0.0.1:1 --listen
expect_exit 2 "retries: 11 out of range 0-10" -- --zk 127.0.0.1:1 --retries 11
expect_exit 2 "listen: \"nowhere\" is not ADDR:PORT" -- --zk 127.0.0.1:1 --listen nowhere
expect_exit 2 "unexpected argument \"extra\"" -- --zk 127.0.0.1:1 extra
expect_exit 2 "cannot open" -- --config "$T/missing.conf"

log "config-file mistakes name the file, the line and the text"
printf 'zk = 127.0.0.1:1\n# fine so far\nconnect-timeout-ms = soon\n' >"$T/bad.conf"
expect_exit 2 "$T/bad.conf:3: connect-timeout-ms: \"soon\" is not a whole number: connect-timeout-ms = soon" \
	-- --config "$T/bad.conf"
printf 'zk = 127.0.0.1:1\nlisten 127.0.0.1:80\n' >"$T/bad2.conf"
expect_exit 2 "$T/bad2.conf:2: expected \"name = value\"" -- --config "$T/bad2.conf"

log "a port in use stops the start with exit 1"
start_backend holder
expect_exit 1 "127.0.0.1:$BACKEND_PORT" -- --zk 127.0.0.1:1 --node-id t --listen "127.0.0.1:$BACKEND_PORT" --admin off
free=$(free_port)
expect_exit 1 "admin: cannot listen on 127.0.0.1:$BACKEND_PORT" -- --zk 127.0.0.1:1 --node-id t \
	--listen "127.0.0.1:$free" --admin "127.0.0.1:$BACKEND_PORT"

log "an access log that cannot be opened stops the start with exit 1"
expect_exit 1 "$T/no/such/dir/access.log" -- --zk 127.0.0.1:1 --node-id t --listen "127.0.0.1:$free" \
	--admin off --access-log "$T/no/such/dir/access.log"
exit 0
