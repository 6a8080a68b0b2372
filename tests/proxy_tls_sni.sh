#!/bin/bash
# Certificates by SNI, from files and a directory, hot on SIGHUP, and the
# TLS policy; real zkrouterd, ZooKeeper, backend, openssl s_client, curl
# and Python's ssl. Certificates are made here with the openssl command:
# an ECDSA P-256 and an RSA-2048 one for the same name, a wildcard, an
# expired one, a directory of chain-plus-key files.
#   - the exact name, then a one-label wildcard (not two labels), then the
#     default (the first tls-cert); no SNI gets the default; names are
#     matched case-insensitively
#   - ECDSA for a client that can use it, RSA for one that signs only with
#     RSA or offers only ECDHE-RSA suites; never the expired certificate
#     when a valid one holds the name
#   - /certs lists every certificate, /metrics has each one's not-after;
#     one within 30 days of it (or past it) is warned about at start
#   - no CBC suite, no static-RSA key exchange
#   - SIGHUP: a renewed file is served to new connections while a
#     connection made before keeps its certificate and keeps working; a
#     broken or mismatched file keeps the previous certificate, the log
#     names the file and why; the reload line names what changed
#   - --tls-strict-sni answers an unknown name with unrecognized_name;
#     --tls-min-version 1.3 refuses TLS 1.2, and the policy reloads
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_require
zk_require
command -v openssl >/dev/null || skip "openssl (the command) not installed"
command -v python3 >/dev/null || skip "python3 not installed"

# mkcert NAME rsa|ec SANS [DAYS]: $T/NAME.pem and $T/NAME-key.pem.
mkcert() {
	local name=$1 type=$2 sans=$3 days=${4:-90} alg
	case $type in
	rsa) alg=(-newkey rsa:2048) ;;
	ec) alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256) ;;
	esac
	openssl req -x509 "${alg[@]}" -nodes -subj "/CN=$name" -days "$days" \
		-addext "subjectAltName=$sans" -keyout "$T/$name-key.pem" -out "$T/$name.pem" \
		>>"$T/openssl.out" 2>&1 || hard_error "openssl req $name failed: $(tail -n 5 "$T/openssl.out")"
}

# An expired certificate: `openssl ca` is the only tool here that sets past dates.
mkexpired() {
	local name=$1 sans=$2
	mkdir -p "$T/ca"
	: >"$T/ca/index.txt"
	echo 01 >"$T/ca/serial"
	cat >"$T/ca/ca.cnf" <<EOF
[ca]
default_ca = c
[c]
database = $T/ca/index.txt
new_certs_dir = $T/ca
serial = $T/ca/serial
default_md = sha256
policy = p
copy_extensions = copy
unique_subject = no
[p]
commonName = supplied
EOF
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$name" \
		-addext "subjectAltName=$sans" -keyout "$T/$name-key.pem" -out "$T/$name.csr" \
		>>"$T/openssl.out" 2>&1 &&
		openssl ca -batch -config "$T/ca/ca.cnf" -selfsign -keyfile "$T/$name-key.pem" \
			-in "$T/$name.csr" -startdate 20200101000000Z -enddate 20200201000000Z \
			-out "$T/$name.pem" >>"$T/openssl.out" 2>&1 ||
		hard_error "openssl ca $name failed: $(tail -n 5 "$T/openssl.out")"
}

fp() { openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2; }

# cipher PORT S_CLIENT-ARGS...: the cipher negotiated, "(NONE)" when the
# handshake failed (s_client's exit status says little: it also fails on
# the router's answer to its empty input).
cipher() {
	local port=$1
	shift
	timeout 10 openssl s_client -connect "127.0.0.1:$port" "$@" </dev/null >"$T/s_client.out" 2>&1
	sed -n 's/^New, [^,]*, Cipher is //p' "$T/s_client.out" | head -n 1
}

# served PORT S_CLIENT-ARGS...: the fingerprint of the certificate served.
served() {
	local port=$1
	shift
	timeout 10 openssl s_client -connect "127.0.0.1:$port" "$@" </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null | cut -d= -f2
}

# expect_cert WHAT WANT-FILE S_CLIENT-ARGS...
expect_cert() {
	local what=$1 want=$2 got
	shift 2
	got=$(served "$TLS_PORT" "$@")
	[ "$got" = "$(fp "$want")" ] ||
		fail "$what: got certificate '$got', want $(basename "$want") ($(fp "$want"))"
}

mkcert def rsa "DNS:default.test"
mkcert ec ec "DNS:app.test,DNS:*.wild.test"
mkcert rsa rsa "DNS:app.test"
mkcert exprsa rsa "DNS:exp.test"
mkexpired expec "DNS:exp.test"
mkdir -p "$T/dir"
mkcert dir1 ec "DNS:dir.test" 10
cat "$T/dir1.pem" "$T/dir1-key.pem" >"$T/dir/dir1.pem"
echo "ignored: not a .pem" >"$T/dir/README"

TLS_PORT=$(free_port) || hard_error "no free port"
proxy_setup --tls-listen "127.0.0.1:$TLS_PORT" --tls-cert "$T/def.pem" --tls-key "$T/def-key.pem" \
	--tls-cert "$T/ec.pem" --tls-key "$T/ec-key.pem" --tls-cert "$T/rsa.pem" --tls-key "$T/rsa-key.pem" \
	--tls-cert "$T/expec.pem" --tls-key "$T/expec-key.pem" \
	--tls-cert "$T/exprsa.pem" --tls-key "$T/exprsa-key.pem" --tls-cert-dir "$T/dir"
grep -q "TLS certificate $T/expec.pem (exp.test): expired on 2020-02-01" "$T/zkrouterd.log" ||
	fail "no warning about the expired certificate: $(grep TLS "$T/zkrouterd.log")"
grep -q "TLS certificate $T/dir/dir1.pem (dir.test) expires in \(9\|10\) days" "$T/zkrouterd.log" ||
	fail "no warning about the certificate 10 days from expiry: $(grep TLS "$T/zkrouterd.log")"
grep -q "TLS certificate $T/ec.pem (app.test) expires" "$T/zkrouterd.log" &&
	fail "a warning about a certificate 90 days from expiry"

log "SNI: exact, wildcard (one label only), default; no SNI gets the default"
expect_cert "app.test" "$T/ec.pem" -servername app.test
expect_cert "APP.Test (case)" "$T/ec.pem" -servername APP.Test
expect_cert "x.wild.test (wildcard)" "$T/ec.pem" -servername x.wild.test
expect_cert "a.b.wild.test (two labels)" "$T/def.pem" -servername a.b.wild.test
expect_cert "wild.test (the wildcard's parent)" "$T/def.pem" -servername wild.test
expect_cert "unknown.test" "$T/def.pem" -servername unknown.test
expect_cert "no SNI" "$T/def.pem" -noservername
expect_cert "dir.test (tls-cert-dir)" "$T/dir1.pem" -servername dir.test

log "ECDSA for a client that can use it, RSA for one that cannot"
expect_cert "TLS 1.3, RSA-PSS signatures only" "$T/rsa.pem" -servername app.test -sigalgs RSA-PSS+SHA256
expect_cert "TLS 1.3, ECDSA signatures only" "$T/ec.pem" -servername app.test -sigalgs ECDSA+SHA256
expect_cert "TLS 1.2, ECDHE-RSA suite only" "$T/rsa.pem" -servername app.test -tls1_2 \
	-cipher ECDHE-RSA-AES128-GCM-SHA256
expect_cert "TLS 1.2, ECDHE-ECDSA suite" "$T/ec.pem" -servername app.test -tls1_2 \
	-cipher ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256

log "an expired certificate is not served when a valid one holds the name"
expect_cert "exp.test" "$T/exprsa.pem" -servername exp.test -sigalgs ECDSA+SHA256:RSA-PSS+SHA256

log "/certs and the expiry gauge"
curl -s --max-time 5 "http://$ADMIN/certs" >"$T/certs.json" || fail "no /certs"
python3 - "$T" >"$T/certs.check" 2>&1 <<'EOF' || fail "/certs: $(cat "$T/certs.check"): $(cat "$T/certs.json")"
import json, sys
t = sys.argv[1]
certs = {c["name"]: c for c in json.load(open(t + "/certs.json"))}
assert len(certs) == 6, sorted(certs)
d = certs[t + "/def.pem"]
assert d["default"] is True and d["source"] == "file" and d["key_type"] == "RSA", d
assert d["names"] == ["default.test"] and "CN=def" in d["issuer"] and 88 <= d["days_left"] <= 90, d
e = certs[t + "/ec.pem"]
assert e["default"] is False and e["key_type"] == "ECDSA" and e["names"] == ["app.test", "*.wild.test"], e
assert certs[t + "/dir/dir1.pem"]["source"] == "dir", certs[t + "/dir/dir1.pem"]
assert certs[t + "/expec.pem"]["days_left"] < 0 and certs[t + "/expec.pem"]["not_after"] == "2020-02-01T00:00:00Z"
EOF
want=$(date -d "$(openssl x509 -in "$T/ec.pem" -noout -enddate | cut -d= -f2)" +%s)
curl -s --max-time 5 "http://$ADMIN/metrics" >"$T/metrics"
grep -qx "zkrouter_tls_certificate_expiry_timestamp_seconds{name=\"$T/ec.pem\"} $want" "$T/metrics" ||
	fail "no expiry series for ec.pem ($want): $(grep tls_cert "$T/metrics")"
[ "$(grep -c '^zkrouter_tls_certificate_expiry_timestamp_seconds{' "$T/metrics")" = 6 ] ||
	fail "want 6 expiry series: $(grep tls_cert "$T/metrics")"

log "policy: ECDHE with AEAD only (no CBC, no static RSA)"
for c in AES128-SHA AES128-GCM-SHA256 ECDHE-RSA-AES128-SHA ECDHE-RSA-AES256-SHA384; do
	got=$(cipher "$TLS_PORT" -servername app.test -tls1_2 -cipher "$c")
	[ "$got" = "(NONE)" ] || fail "TLS 1.2 with $c: '$got': $(tail -n 5 "$T/s_client.out")"
done
got=$(cipher "$TLS_PORT" -servername app.test -tls1_2 -cipher ECDHE-RSA-AES256-GCM-SHA384)
[ "$got" = ECDHE-RSA-AES256-GCM-SHA384 ] || fail "ECDHE-RSA-AES256-GCM-SHA384: '$got': $(tail -n 5 "$T/s_client.out")"

log "a connection made before a renewal keeps its certificate and keeps working"
start_backend a1
app_add app.test
register app.test a1 "$BACKEND_PORT"
wait_instance app.test a1
old_ec=$(fp "$T/ec.pem" | tr -d : | tr 'A-F' 'a-f')
spawn keep python3 "$top_srcdir/tests/tlskeep.py" "$TLS_PORT" app.test "$T/go" 60
KEEP_PID=$SPAWNED_PID
wait_for 20 grep -q '^1 ' "$T/keep.log" || fail "first request on the kept connection: $(cat "$T/keep.log")"
[ "$(cat "$T/keep.log")" = "1 200 $old_ec" ] || fail "kept connection, first request: $(cat "$T/keep.log")"
cp "$T/ec.pem" "$T/ec-old.pem"
mkcert ec ec "DNS:app.test,DNS:*.wild.test"
[ "$(fp "$T/ec.pem")" != "$(fp "$T/ec-old.pem")" ] || hard_error "the renewed certificate is the same"
kill -HUP "$ROUTER_PID"
wait_for 10 grep -q "TLS certificates reloaded: replaced $T/ec.pem\$" "$T/zkrouterd.log" ||
	fail "no reload line naming ec.pem: $(grep 'TLS cert' "$T/zkrouterd.log")"
expect_cert "app.test after the renewal" "$T/ec.pem" -servername app.test
touch "$T/go"
wait_for 20 grep -q '^2 \|^error\|^no go' "$T/keep.log" || fail "second request on the kept connection: $(cat "$T/keep.log")"
grep -qx "2 200 $old_ec" "$T/keep.log" || fail "the kept connection after the renewal: $(cat "$T/keep.log")"
{ wait "$KEEP_PID"; } 2>/dev/null
HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $KEEP_PID / /")

log "a broken renewal keeps the previous certificate; the log names the file and why"
cp "$T/ec.pem" "$T/ec-good.pem"
echo "truncated by a bad deploy" >"$T/ec.pem"
mkcert other rsa "DNS:other.test"
cp "$T/other-key.pem" "$T/rsa-key.pem"
kill -HUP "$ROUTER_PID"
wait_for 10 grep -q "TLS certificate $T/ec.pem: .*no certificate in .*; the previous certificate stays in service" \
	"$T/zkrouterd.log" || fail "no error naming ec.pem: $(grep 'TLS cert' "$T/zkrouterd.log")"
wait_for 10 grep -q "TLS certificate $T/rsa.pem: $T/rsa.pem (key $T/rsa-key.pem): key does not match the certificate; the previous" \
	"$T/zkrouterd.log" || fail "no error naming rsa-key.pem: $(grep 'TLS cert' "$T/zkrouterd.log")"
router_alive
expect_cert "app.test after a broken renewal" "$T/ec-good.pem" -servername app.test
expect_cert "app.test (RSA) after a mismatched key" "$T/rsa.pem" -servername app.test -sigalgs RSA-PSS+SHA256
tcurl_out=$(curl -s --max-time 10 -k --resolve "app.test:$TLS_PORT:127.0.0.1" "https://app.test:$TLS_PORT/echo") ||
	fail "HTTPS after the broken reload failed"
echo "$tcurl_out" | grep -q '^backend=a1$' || fail "HTTPS after the broken reload: $tcurl_out"

log "the directory: a new file is added, a deleted one removed"
mkcert dir2 rsa "DNS:dir2.test"
cat "$T/dir2.pem" "$T/dir2-key.pem" >"$T/dir/dir2.pem"
rm "$T/dir/dir1.pem"
cp "$T/ec-good.pem" "$T/ec.pem"
kill -HUP "$ROUTER_PID"
wait_for 10 grep -q "TLS certificates reloaded: added $T/dir/dir2.pem, removed $T/dir/dir1.pem\$" "$T/zkrouterd.log" ||
	fail "no reload line for the directory: $(grep 'TLS cert' "$T/zkrouterd.log")"
expect_cert "dir2.test" "$T/dir2.pem" -servername dir2.test
expect_cert "dir.test after its file went" "$T/def.pem" -servername dir.test

log "--tls-strict-sni and --tls-min-version 1.3, reloaded from a config file"
ports=$(free_port 2) || hard_error "no free ports"
P2=$(echo "$ports" | sed -n 1p)
TLS2=$(echo "$ports" | sed -n 2p)
printf 'tls-min-version = 1.3\ntls-strict-sni = yes\n' >"$T/strict.conf"
spawn strict "$ZKROUTERD" "$WORKERS_ARG" --config "$T/strict.conf" --zk 127.0.0.1:1 --node-id strict --admin off \
	--state-dir off --listen "127.0.0.1:$P2" --tls-listen "127.0.0.1:$TLS2" \
	--tls-cert "$T/def.pem" --tls-key "$T/def-key.pem" --tls-cert "$T/ec.pem" --tls-key "$T/ec-key.pem"
STRICT_PID=$SPAWNED_PID
wait_for 10 grep -q "listening on 127.0.0.1:$TLS2 (TLS)" "$T/strict.log" || fail "strict router: $(cat "$T/strict.log")"
[ "$(served "$TLS2" -servername app.test)" = "$(fp "$T/ec.pem")" ] || fail "strict: app.test not served"
[ "$(served "$TLS2" -noservername)" = "$(fp "$T/def.pem")" ] || fail "strict: no SNI does not get the default"
got=$(cipher "$TLS2" -servername unknown.test)
[ "$got" = "(NONE)" ] || fail "strict: unknown.test got a handshake ($got)"
grep -q "unrecognized name" "$T/s_client.out" || fail "strict: no unrecognized_name alert: $(tail -n 5 "$T/s_client.out")"
curl -s --max-time 10 -k --resolve "unknown.test:$TLS2:127.0.0.1" "https://unknown.test:$TLS2/" >/dev/null 2>&1 &&
	fail "strict: curl to unknown.test succeeded"
got=$(cipher "$TLS2" -servername app.test -tls1_2)
[ "$got" = "(NONE)" ] || fail "tls-min-version 1.3 accepted TLS 1.2 ($got)"
got=$(cipher "$TLS2" -servername app.test)
case $got in TLS_AES_*) ;; *) fail "tls-min-version 1.3: TLS 1.3 refused ($got)" ;; esac
printf 'tls-min-version = 1.2\n' >"$T/strict.conf"
kill -HUP "$STRICT_PID"
wait_for 10 grep -q "TLS policy changed (min 1.2)" "$T/strict.log" || fail "no policy reload: $(tail -n 5 "$T/strict.log")"
got=$(cipher "$TLS2" -servername unknown.test -tls1_2)
case $got in ECDHE-*-GCM-*) ;; *) fail "after the reload, TLS 1.2 to an unknown name ($got): $(tail -n 5 "$T/s_client.out")" ;; esac
printf 'tls-min-version = 1.2\ntls-ciphers = NOT-A-CIPHER\n' >"$T/strict.conf"
kill -HUP "$STRICT_PID"
wait_for 10 grep -q "reload failed, keeping the running configuration: .*tls-ciphers" "$T/strict.log" ||
	fail "a bad tls-ciphers was not refused by name: $(tail -n 5 "$T/strict.log")"
got=$(cipher "$TLS2" -servername app.test -tls1_2)
case $got in ECDHE-*-GCM-*) ;; *) fail "the refused reload changed the policy ($got)" ;; esac
kill -0 "$STRICT_PID" 2>/dev/null || fail "the strict router died"

router_alive
log "ok"
