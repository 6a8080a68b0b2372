# Shared by the HTTP/2 tests, tests/proxy_h2_*.sh (sourced after
# tests/lib/harness.sh and tests/proxy_common.sh, not run by itself):
# zkrouterd with an HTTPS listener that offers ALPN h2 and a plain one with
# --h2c, real backends, and tests/h2raw.py for the frames.
#
#   h2_require             python3 with Debian's python3-h2; sets H2PY
#   h2_app DOMAIN ID [PORT] an app and one instance of it, declared before
#                          h2_start (a new backend ID when PORT is not given)
#   h2_start [ZKROUTERD-ARGS...]  starts the proxy with the apps in place;
#                          sets TLS_PORT, PROXY_PORT, ROUTER_PID
#   h2t SUBCOMMAND...      tests/h2raw.py over TLS (ALPN h2) to $H2HOST
#                          (a.test), options of h2raw.py in $H2OPTS
#   h2c SUBCOMMAND...      the same with prior knowledge on the plain port
#   tcurl PATH [CURL-ARGS...]   curl over HTTPS to a.test (add --http2 ...)
#   h2_refused_none PATTERN    the backends' logs have no request matching it,
#                          after a marker request that did arrive
#   zk_only WHAT           true with zkrouterd; with the reference proxy it
#                          logs that WHAT is left out and returns false
#
# H2_REFERENCE=haproxy runs HAProxy (alpn h2,http/1.1 on its TLS bind, h2
# detected on the plain one) in place of zkrouterd, in front of the same
# backends, routing by Host the same way: this is how each test was checked
# to detect what it names against a proxy that is known to handle HTTP/2.
# What needs the router itself (its table in ZooKeeper, /metrics) is left
# out then (zk_only). HAProxy 2.6 fails some of the cases on purpose; the
# test says which.

h2_require() {
	proxy_require
	H2PY=
	for p in python3 /usr/bin/python3; do
		"$p" -c 'import h2, hpack, hyperframe' 2>/dev/null && H2PY=$p && break
	done
	[ -n "$H2PY" ] || skip "python3-h2 not installed"
	command -v openssl >/dev/null || skip "openssl (the command) not installed"
	if [ "${H2_REFERENCE:-}" = haproxy ]; then
		command -v haproxy >/dev/null || skip "haproxy not installed"
	fi
}

H2_APPS=()
h2_app() {
	local domain=$1 id=$2 port=${3:-}
	if [ -z "$port" ]; then
		start_backend "$id"
		port=$BACKEND_PORT
	fi
	H2_APPS+=("$domain $id $port")
}

h2_cert() {
	openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=a.test -days 1 \
		-addext "subjectAltName=DNS:a.test,DNS:b.test,DNS:c.test,DNS:ws.test,DNS:other.test" \
		-keyout "$T/key.pem" -out "$T/cert.pem" >"$T/openssl.out" 2>&1 ||
		hard_error "openssl req failed: $(cat "$T/openssl.out")"
	cat "$T/cert.pem" "$T/key.pem" >"$T/both.pem"
}

h2_start() {
	local a
	h2_cert
	TLS_PORT=$(free_port) || hard_error "no free port"
	if [ "${H2_REFERENCE:-}" = haproxy ]; then
		h2_start_haproxy "$@"
		return
	fi
	proxy_setup --tls-listen "127.0.0.1:$TLS_PORT" --tls-cert "$T/cert.pem" --tls-key "$T/key.pem" \
		--h2c "$@"
	for a in "${H2_APPS[@]}"; do
		set -- $a
		grep -q "^/apps/$1 " "$T/apps.done" 2>/dev/null || { app_add "$1"; echo "/apps/$1 " >>"$T/apps.done"; }
		register "$1" "$2" "$3"
	done
	for a in "${H2_APPS[@]}"; do
		set -- $a
		wait_instance "$1" "$2"
	done
}

# h2_start_haproxy [ZKROUTERD-ARGS...]: the options with an HAProxy
# equivalent are translated: --h2-max-concurrent-streams,
# --client-idle-timeout-ms (timeout client).
h2_start_haproxy() {
	local a backends="" prev="" streams=100 client=10000
	while [ $# -gt 0 ]; do
		case $1 in
		--h2-max-concurrent-streams) streams=$2; shift ;;
		--client-idle-timeout-ms) client=$2; shift ;;
		esac
		shift
	done
	PROXY_PORT=$(free_port) || hard_error "no free port"
	PROXY=127.0.0.1:$PROXY_PORT
	for a in $(printf '%s\n' "${H2_APPS[@]}" | sort | tr ' ' '|'); do
		IFS='|' read -r d id port <<<"$a"
		[ "$d" = "$prev" ] || backends="$backends
backend be_$d
	balance roundrobin"
		backends="$backends
	server $id 127.0.0.1:$port"
		prev=$d
	done
	cat >"$T/haproxy.cfg" <<CFG
global
	nbthread 2
	tune.h2.max-concurrent-streams $streams
defaults
	mode http
	timeout connect 2s
	timeout client $client
	timeout server 60s
	timeout http-keep-alive 10s
	option forwardfor
frontend fe
	bind 127.0.0.1:$TLS_PORT ssl crt $T/both.pem alpn h2,http/1.1
	bind 127.0.0.1:$PROXY_PORT
	use_backend be_%[req.hdr(host),lower,word(1,:)]
$backends
CFG
	spawn haproxy haproxy -db -f "$T/haproxy.cfg"
	ROUTER_PID=$SPAWNED_PID
	wait_for 20 sh -c "curl -sk --max-time 2 https://127.0.0.1:$TLS_PORT/ -o /dev/null" ||
		fail "haproxy did not start: $(tail -n 5 "$T/haproxy.log")"
}

zk_only() {
	[ "${H2_REFERENCE:-}" = haproxy ] || return 0
	log "reference proxy: left out: $*"
	return 1
}

# H2OPTS: more options of h2raw.py (--timeout, --settle, --show-body).
zk_only_quiet() { [ "${H2_REFERENCE:-}" != haproxy ]; }

h2t() { "$H2PY" "$top_srcdir/tests/h2raw.py" --tls --host "${H2HOST:-a.test}" ${H2OPTS:-} "127.0.0.1:$TLS_PORT" "$@"; }
h2c() { "$H2PY" "$top_srcdir/tests/h2raw.py" --host "${H2HOST:-a.test}" ${H2OPTS:-} "127.0.0.1:$PROXY_PORT" "$@"; }

tcurl() {
	local path=$1
	shift
	curl -s --max-time 60 --cacert "$T/cert.pem" --resolve "${H2HOST:-a.test}:$TLS_PORT:127.0.0.1" \
		"$@" "https://${H2HOST:-a.test}:$TLS_PORT$path"
}

# h2_marker ID: a request through the proxy that must reach backend ID,
# waited for in its log, so that what was sent before it had its chance.
h2_marker() {
	local id=$1 tag=marker-$RANDOM$RANDOM
	tcurl "/echo?$tag" --http2 -o /dev/null
	wait_for 10 grep -q "$tag" "$T/backend-$id.log" || fail "the marker request did not reach $id"
}

# h2_refused_none PATTERN ID: nothing matching PATTERN reached any backend.
h2_refused_none() {
	h2_marker "$2"
	if grep -a -h -E "^req .*($1)" "$T"/backend-*.log; then
		fail "the backend saw a request it must not see (above)"
	fi
}

# metric_sum REGEX: the sum of the /metrics samples whose line matches
# REGEX (0 when none does), to follow counters whose labels vary.
metric_sum() {
	curl -s --max-time 5 "http://$ADMIN/metrics" | grep -v '^#' |
		awk -v re="$1" '$0 ~ re { s += $NF } END { print s + 0 }'
}

# Established client connections to the proxy's PORT that the proxy
# process still holds (a closed one may linger unowned in FIN_WAIT).
proxy_holds() {
	ss -Htnp state established "( sport = :$1 and dport = :$2 )" 2>/dev/null | grep -c "pid=$ROUTER_PID,"
}
proxy_lets_go() { [ "$(proxy_holds "$1" "$2")" = 0 ]; }

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$ROUTER_PID/status"; }

# The signal for a graceful stop: SIGTERM for zkrouterd, SIGUSR1 (soft
# stop) for HAProxy.
graceful_stop() {
	if [ "${H2_REFERENCE:-}" = haproxy ]; then kill -USR1 "$ROUTER_PID"; else kill -TERM "$ROUTER_PID"; fi
}
