# Certificates made at run time for the tests of /certs (sourced after
# tests/lib/harness.sh, not run by itself). Every file lands in $T.
#
#   mkcert NAME DAYS SAN...   self-signed RSA certificate NAME.pem and key
#                             NAME.key, valid from now for DAYS days, with
#                             the DNS names SAN... (none: no subjectAltName)
#   mkcert_dated NAME FROM TO SAN   the same, valid FROM..TO
#                             (YYYYMMDDHHMMSSZ), for expired and future ones
#   fingerprint FILE          the SHA-256 fingerprint of a certificate file
#   served_fp PORT SNI        that of the certificate a TLS listener on
#                             127.0.0.1:PORT presents for SNI (empty: none)

command -v openssl >/dev/null || skip "openssl (the command) not installed"

mkcert() {
	local name=$1 days=$2 san="" d
	shift 2
	for d in "$@"; do
		san="${san:+$san,}DNS:$d"
	done
	openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=${1:-nodns.test}" -days "$days" \
		${san:+-addext "subjectAltName=$san"} \
		-keyout "$T/$name.key" -out "$T/$name.pem" >>"$T/openssl.log" 2>&1 ||
		hard_error "openssl req for $name failed: $(tail -n 5 "$T/openssl.log")"
}

mkcert_dated() {
	local name=$1 from=$2 to=$3 san=$4 dir=$T/ca.$1
	mkdir -p "$dir"
	: >"$dir/index.txt"
	echo 01 >"$dir/serial"
	cat >"$dir/ca.cnf" <<CNF
[ca]
default_ca = d
[d]
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
default_md = sha256
policy = p
copy_extensions = copy
unique_subject = no
[p]
commonName = supplied
CNF
	openssl req -new -newkey rsa:2048 -nodes -subj "/CN=$san" -addext "subjectAltName=DNS:$san" \
		-keyout "$T/$name.key" -out "$dir/req.csr" >>"$T/openssl.log" 2>&1 &&
		openssl ca -batch -config "$dir/ca.cnf" -selfsign -keyfile "$T/$name.key" -in "$dir/req.csr" \
			-startdate "$from" -enddate "$to" -out "$T/$name.pem" >>"$T/openssl.log" 2>&1 ||
		hard_error "openssl ca for $name failed: $(tail -n 5 "$T/openssl.log")"
}

fingerprint() {
	openssl x509 -in "$1" -noout -fingerprint -sha256 | cut -d= -f2
}

served_fp() {
	timeout 5 openssl s_client -connect "127.0.0.1:$1" -servername "$2" </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null | cut -d= -f2
}
