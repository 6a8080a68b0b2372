# Shared by the proxy benchmarks (tests/bench/proxy-bench, tls-bench,
# testssl-bench); sourced, not run. The script sets, before sourcing:
#   here, srcdir   its own directory and the source tree
#   BUILDDIR       where zkrouterd and tests/{backend,zkput,freeport} are
#   INSTALL        yes: apt-get install what is missing; no: fail instead
#   NEED_PKGS      Debian packages to install when their command is missing,
#                  as COMMAND:PACKAGE words (e.g. "haproxy:haproxy")
#   NICE, PIN      priority, and --pin (proxy on the last CPU, load elsewhere)
#   MAXCONN        the connections each proxy must accept at once
#   ZKR_ARGS       extra zkrouterd options
#   WORKERS        threads or processes per proxy (default 1): zkrouterd
#                  --workers, HAProxy nbthread, nginx worker_processes;
#                  zkrouterd gets --workers only when WORKERS is set
#   ONLY           the proxies to run, among "zkrouterd haproxy nginx", and
#                  zkrouterd1: zkrouterd with --workers 1 beside the
#                  zkrouterd with --workers WORKERS
#   OUT            the results directory
# and for HTTPS (empty for plain HTTP):
#   TLS_CERT, TLS_KEY  PEM certificate (chain) and key; TLS_PEM both in one
#   TLS_TUNED      yes: HAProxy and nginx get the settings tls-bench compares
#                  (TLS 1.2 and 1.3, the same groups, a session cache); no:
#                  their defaults with the certificate alone
#   TLS_H2         yes: HAProxy and nginx offer HTTP/2 too (alpn h2,http/1.1;
#                  listen ... http2), as zkrouterd does by default
#   RUN_LOAD       the load count_syscalls runs (default run_wrk; same arguments)
# It sources tests/lib/harness.sh ($T, spawn, wait_for, free_port, log...).

top_srcdir=$srcdir
top_builddir=$BUILDDIR
export top_srcdir top_builddir
. "$srcdir/tests/lib/harness.sh"

: "${TLS_CERT:=}" "${TLS_KEY:=}" "${TLS_PEM:=}" "${TLS_TUNED:=no}" "${TLS_H2:=no}" "${ZKR_ARGS:=}"
: "${NICE:=0}" "${PIN:=no}" "${MAXCONN:=2000}" "${INSTALL:=yes}" "${WORKERS:=}"

ZKROUTERD=
for f in "$BUILDDIR/zkrouterd" "$BUILDDIR/node/zkrouterd"; do
	[ -x "$f" ] && ZKROUTERD=$f && break
done
case " $ONLY " in
*" zkrouterd "* | *" zkrouterd1 "*) [ -n "$ZKROUTERD" ] || hard_error "zkrouterd not found under $BUILDDIR (use --builddir)" ;;
esac
for f in tests/backend tests/zkput tests/freeport; do
	[ -x "$BUILDDIR/$f" ] || hard_error "$BUILDDIR/$f not built (make check builds it; or make $f)"
done
mkdir -p "$OUT" || hard_error "cannot create $OUT"

# ---- tools -----------------------------------------------------------------

install_missing() {
	local need="" p w guard=no
	for w in $NEED_PKGS; do
		command -v "${w%%:*}" >/dev/null || need="$need ${w#*:}"
	done
	[ -z "$need" ] && return
	[ "$INSTALL" = yes ] || hard_error "missing:$need (run without --no-install, or apt-get install$need)"
	log "installing$need from Debian"
	# Never let the packages start their system services (nginx would bind
	# 0.0.0.0:80): invoke-rc.d obeys policy-rc.d.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=yes
	fi
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need >"$T/apt.log" 2>&1 ||
		{ apt-get update -q >>"$T/apt.log" 2>&1 &&
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $need >>"$T/apt.log" 2>&1; }
	p=$?
	[ "$guard" = yes ] && rm -f /usr/sbin/policy-rc.d
	[ "$p" = 0 ] || { cat "$T/apt.log"; hard_error "apt-get install$need failed"; }
}
install_missing

# Enough descriptors for every client plus the proxies' own.
ulimit -n "$(ulimit -Hn)" 2>/dev/null
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge $((MAXCONN + 1000)) ] ||
	hard_error "ulimit -n is $(ulimit -n); $MAXCONN connections need more"

# Command prefixes: priority, and with --pin the CPUs for the proxies and
# for everything else (clients, backends).
PROXY_RUN=(nice -n "$NICE")
LOAD_RUN=(nice -n "$NICE")
if [ "$PIN" = yes ]; then
	last=$(( $(nproc) - 1 ))
	[ "$last" -ge 1 ] || hard_error "--pin needs at least 2 CPUs"
	PROXY_RUN=(taskset -c "$last" "${PROXY_RUN[@]}")
	LOAD_RUN=(taskset -c "0-$((last - 1))" "${LOAD_RUN[@]}")
fi

SCHEME=http
[ -n "$TLS_CERT" ] && SCHEME=https

# ---- backends and registry -------------------------------------------------
# start_backends: ZooKeeper, the app's two backends registered; sets BPORTS.

HOSTNAME_=bench.test
start_backends() {
	local b port
	zk_start 500
	ZKPUT="$BUILDDIR/tests/zkput --zk $ZK/zkrouter --timeout 10000"
	$ZKPUT mk /apps - mk /routers - mk /apps/$HOSTNAME_ - mk /apps/$HOSTNAME_/instances - \
		>"$T/zkput.log" 2>&1 || hard_error "zkput failed"
	BPORTS=()
	for b in b1 b2; do
		spawn "backend-$b" "${LOAD_RUN[@]}" "$BUILDDIR/tests/backend" --quiet --id "$b" --ready-file "$T/$b.port"
		BACKEND_PIDS="${BACKEND_PIDS:-} $SPAWNED_PID"
		wait_for 10 test -s "$T/$b.port" || hard_error "backend $b did not start"
		port=$(cat "$T/$b.port")
		BPORTS+=("$port")
		spawn "reg-$b" "$BUILDDIR/tests/zkput" --zk "$ZK/zkrouter" --timeout 10000 --hold \
			eph "/apps/$HOSTNAME_/instances/$b" "instance:host=127.0.0.1,port=$port,id=$b"
		wait_for 15 grep -q '^ready' "$T/reg-$b.log" || hard_error "cannot register $b"
	done
}

# ---- the three proxies -----------------------------------------------------
# start_PROXY PORT: starts it, sets PROXY_PIDS (every process of it). With
# TLS_CERT, PORT is the HTTPS port (zkrouterd also gets a plain listener,
# which it requires, on a port of its own).

# Sets PROXY_ADMIN, the admin port (for /metrics). ZKR_NAME names its log
# (zkrouterd1 for the one-worker one), ZKR_WORKERS its --workers.
start_zkrouterd() {
	local admin tls=() workers=() n=${ZKR_WORKERS-$WORKERS}
	[ -n "$n" ] && workers=(--workers "$n")
	admin=$(free_port)
	if [ -n "$TLS_CERT" ]; then
		tls=(--tls-listen "127.0.0.1:$1" --tls-cert "$TLS_CERT" --tls-key "$TLS_KEY")
		set -- "$(free_port)"
	fi
	# shellcheck disable=SC2086
	spawn "${ZKR_NAME:-zkrouterd}" "${PROXY_RUN[@]}" "$ZKROUTERD" --zk "$ZK/zkrouter" --listen "127.0.0.1:$1" "${tls[@]}" \
		--admin "127.0.0.1:$admin" --node-id "${ZKR_NAME:-bench}" --log-level warn --state-dir "$T/state-${ZKR_NAME:-zkrouterd}" \
		--max-client-connections $((MAXCONN + 2000)) "${workers[@]}" $ZKR_ARGS
	PROXY_PIDS=$SPAWNED_PID PROXY_ADMIN=$admin
}

# zkrouterd with one worker, to run beside one with --workers WORKERS.
start_zkrouterd1() { ZKR_NAME=zkrouterd1 ZKR_WORKERS=1 start_zkrouterd "$@"; }

start_haproxy() {
	local bind="127.0.0.1:$1" global=""
	if [ -n "$TLS_CERT" ]; then
		bind="$bind ssl crt $TLS_PEM"
		[ "$TLS_TUNED" = yes ] &&
			bind="$bind ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3 curves X25519:P-256" &&
			global="tune.ssl.cachesize 20000"
		if [ "$TLS_H2" = yes ]; then
			bind="$bind alpn h2,http/1.1"
		elif [ "$TLS_TUNED" = yes ]; then
			bind="$bind alpn http/1.1"
		fi
	fi
	cat >"$T/haproxy.cfg" <<CFG
global
	nbthread ${WORKERS:-1}
	maxconn $((MAXCONN + 2000))
	# HAProxy reserves two descriptors per connection; idle clients use one.
	# Where the hard limit is below that, run with what there is.
	ulimit-n $(ulimit -n)
	no strict-limits
	$global
defaults
	mode http
	timeout connect 2s
	timeout client 60s
	timeout server 60s
	timeout http-keep-alive 60s
	option http-keep-alive
	option forwardfor
	unique-id-format %{+X}o%ci%cp%Ts%rt%pid
	unique-id-header X-Request-Id
frontend fe
	bind $bind
	use_backend be if { hdr(host) -i $HOSTNAME_ }
backend be
	balance leastconn
	http-reuse always
	server b1 127.0.0.1:${BPORTS[0]}
	server b2 127.0.0.1:${BPORTS[1]}
CFG
	spawn haproxy "${PROXY_RUN[@]}" haproxy -db -f "$T/haproxy.cfg"
	PROXY_PIDS=$SPAWNED_PID
}

start_nginx() {
	local listen="127.0.0.1:$1" ssl=""
	if [ -n "$TLS_CERT" ]; then
		listen="$listen ssl"
		[ "$TLS_H2" = yes ] && listen="$listen http2"
		ssl="ssl_certificate $TLS_CERT; ssl_certificate_key $TLS_KEY;"
		[ "$TLS_TUNED" = yes ] &&
			ssl="$ssl ssl_protocols TLSv1.2 TLSv1.3; ssl_ecdh_curve X25519:prime256v1;
		ssl_session_cache shared:TLS:10m; ssl_session_tickets on; ssl_prefer_server_ciphers on;"
	fi
	mkdir -p "$T/nginx/logs" "$T/nginx/tmp"
	cat >"$T/nginx/nginx.conf" <<CFG
worker_processes ${WORKERS:-1};
$( [ "$(id -u)" = 0 ] && echo "user root;" )
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/logs/error.log warn;
worker_rlimit_nofile $(ulimit -n);
events { worker_connections $((MAXCONN + 2000)); }
http {
	access_log off;
	client_body_temp_path $T/nginx/tmp/body;
	proxy_temp_path $T/nginx/tmp/proxy;
	fastcgi_temp_path $T/nginx/tmp/fastcgi;
	uwsgi_temp_path $T/nginx/tmp/uwsgi;
	scgi_temp_path $T/nginx/tmp/scgi;
	keepalive_timeout 60s;
	keepalive_requests 100000000;
	upstream be {
		least_conn;
		server 127.0.0.1:${BPORTS[0]};
		server 127.0.0.1:${BPORTS[1]};
		keepalive 64;
		keepalive_requests 100000000;
	}
	server {
		listen $listen;
		server_name $HOSTNAME_;
		$ssl
		location / {
			proxy_pass http://be;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host \$host;
			proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
			proxy_set_header X-Request-Id \$request_id;
		}
	}
}
CFG
	spawn nginx "${PROXY_RUN[@]}" nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" -e "$T/nginx/logs/error.log"
	PROXY_PIDS=$SPAWNED_PID
	wait_for 10 eval "[ \"\$(pgrep -c -P $SPAWNED_PID)\" -ge ${WORKERS:-1} ]" ||
		hard_error "nginx's ${WORKERS:-1} worker(s) did not start"
	PROXY_PIDS="$SPAWNED_PID $(pgrep -P "$SPAWNED_PID" | tr '\n' ' ')"
}

proxy_ready() {
	[ "$(curl -sk --max-time 2 -H "Host: $HOSTNAME_" "$SCHEME://127.0.0.1:$1/")" != "" ]
}

# start_proxy NAME PORT: sets PIDS_NAME, PORT_NAME and ADMIN_NAME (the
# admin port, zkrouterd only) once it answers. A proxy that exits instead
# (an option it does not know, say) stops the run with its own words.
start_proxy() {
	local name=$1 port=$2 pid
	PROXY_ADMIN=
	"start_$name" "$port"
	pid=${PROXY_PIDS%% *}
	wait_for 20 eval "proxy_ready $port || ! kill -0 $pid 2>/dev/null"
	kill -0 "$pid" 2>/dev/null ||
		hard_error "$name exited at start: $(tail -n 3 "$T/$name.log" | tr '\n' ' ')"
	proxy_ready "$port" || hard_error "$name does not answer on $port"
	eval "PIDS_$name=\"$PROXY_PIDS\""
	eval "PORT_$name=$port ADMIN_$name=$PROXY_ADMIN"
}

stop_proxy() {
	local pid pids
	eval "pids=\$PIDS_$1"
	for pid in $pids; do stop_pid "$pid"; done
}

# ---- measures ----------------------------------------------------------------

rss_kb() {
	local pid sum=0 v
	for pid in "$@"; do
		v=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
		sum=$((sum + ${v:-0}))
	done
	echo "$sum"
}

# wrk's latency ("812.00us", "1.23ms", "1.02s") in ms.
to_ms() {
	awk -v v="$1" 'BEGIN {
		n = v + 0; u = v; sub(/^[0-9.]+/, "", u)
		if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000
		printf "%.3f", n }'
}

median() { printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# cpu_ns PID...: CPU time used so far by these processes (every thread), ns.
cpu_ns() {
	local pid sum=0 t v
	for pid in "$@"; do
		for t in /proc/"$pid"/task/*/schedstat; do
			read -r v _ <"$t" 2>/dev/null && sum=$((sum + v))
		done
	done
	echo "$sum"
}

# worker_counts NAME: zkrouterd's requests so far per worker, "WORKER COUNT"
# lines from its /metrics (nothing for another proxy, or a zkrouterd
# without per-worker series).
worker_counts() {
	local admin
	eval "admin=\${ADMIN_$1:-}"
	[ -n "$admin" ] || return 0
	curl -s --max-time 5 "http://127.0.0.1:$admin/metrics" |
		sed -n 's/^zkrouter_worker_requests_total{worker="\([0-9]*\)"} \([0-9]*\).*/\1 \2/p'
}

# worker_split BEFORE AFTER: the requests each worker served between two
# worker_counts snapshots (files), with its share of the whole.
worker_split() {
	awk 'NR == FNR { b[$1] = $2; next } { d[$1] = $2 - b[$1]; t += d[$1]; n[++k] = $1 }
		END { if (k == 0) { print "no per-worker series in /metrics"; exit }
			for (i = 1; i <= k; i++)
				printf "%sworker %s %d (%.1f%%)", (i > 1 ? ", " : ""), n[i], d[n[i]], (t > 0 ? 100 * d[n[i]] / t : 0)
			printf "\n" }' "$1" "$2"
}

# ratio_rounds LABEL A B: A's and B's figures round by round (lists of
# numbers in the same order), each round's A/B and their median. Rounds
# ran back to back, so a round's ratio compares two proxies under the same
# background load: the median of those resists noise.
ratio_rounds() {
	# shellcheck disable=SC2086
	paste <(printf '%s\n' $2) <(printf '%s\n' $3) |
		awk -v l="$1" '$1 > 0 && $2 > 0 { r[++n] = $1 / $2; s = s sprintf(" %.2f", r[n]) }
		END { if (n == 0) exit
			for (i = 2; i <= n; i++) for (j = i; j > 1 && r[j - 1] > r[j]; j--) { t = r[j]; r[j] = r[j - 1]; r[j - 1] = t }
			printf "%s per round:%s (median %.2fx)\n", l, s, r[int((n + 1) / 2)] }'
}

# Busy and total CPU time of the machine so far, in clock ticks.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }

# run_wrk NAME SECONDS OUT: one wrk run against that proxy; also appends to
# OUT the proxy's CPU time per request and how busy the machine was.
run_wrk() {
	local name=$1 secs=$2 out=$3 port pids c0 c1 m0 m1 n
	eval "port=\$PORT_$name pids=\$PIDS_$name"
	# shellcheck disable=SC2086
	c0=$(cpu_ns $pids) m0=$(machine_ticks)
	"${LOAD_RUN[@]}" wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --latency -H "Host: $HOSTNAME_" \
		"$SCHEME://127.0.0.1:$port/" >"$out" 2>&1
	# shellcheck disable=SC2086
	c1=$(cpu_ns $pids) m1=$(machine_ticks)
	n=$(awk '/requests in/ { print $1 }' "$out")
	awk -v n="${n:-0}" -v c="$((c1 - c0))" -v m0="$m0" -v m1="$m1" 'BEGIN {
		split(m0, a, " "); split(m1, b, " ")
		if (n > 0) printf "Proxy CPU per request: %.2f us\n", c / n / 1000
		if (b[2] > a[2]) printf "Machine busy: %.1f%%\n", 100 * (b[1] - a[1]) / (b[2] - a[2]) }' >>"$out"
}

# count_syscalls NAME SECONDS: counts that proxy's system calls (perf stat
# tracepoints) into $OUT/syscalls-NAME.csv during one wrk run of SECONDS
# into $OUT/wrk-NAME-syscalls.txt. OUT_TAG, when set, goes into both
# file names (e.g. the key type). perf may take seconds to attach its
# hundreds of tracepoints on a loaded machine, so it starts with the
# counters off and counts exactly the wrk run: on, ack, wrk, off, ack
# (its --control FIFOs).
count_syscalls() {
	local p=$1 secs=$2 pids stat_pid sleeper ack tag=${OUT_TAG:+-$OUT_TAG}
	eval "pids=\$PIDS_$p"
	rm -f "$T/perf-ctl" "$T/perf-ack"
	mkfifo "$T/perf-ctl" "$T/perf-ack" || hard_error "cannot make perf's control FIFOs"
	# Opened read-write here, so that neither side blocks on open.
	exec 6<>"$T/perf-ack" 7<>"$T/perf-ctl"
	# shellcheck disable=SC2086
	perf stat -D -1 --control "fifo:$T/perf-ctl,$T/perf-ack" -e 'syscalls:sys_enter_*' -x, \
		-o "$OUT/syscalls-$p$tag.csv" -p "$(echo $pids | tr ' ' ',')" -- sleep 3600 \
		>"$T/perf-$p.log" 2>&1 &
	stat_pid=$!
	echo enable >&7
	read -r -t 120 ack <&6 || log "perf stat did not start counting $p's system calls within 120 s"
	"${RUN_LOAD:-run_wrk}" "$p" "$secs" "$OUT/wrk-$p$tag-syscalls.txt"
	echo disable >&7
	read -r -t 60 ack <&6 || log "perf stat did not stop counting $p's system calls within 60 s"
	# perf prints its counts when its command (the sleep) ends.
	sleeper=$(pgrep -P "$stat_pid" sleep)
	[ -n "$sleeper" ] && kill "$sleeper"
	wait "$stat_pid"
	exec 6<&- 7>&-
}

# measure_idle NAME CLIENT...: starts that proxy afresh, runs CLIENT (which
# gets ADDR:PORT HOST N appended, opens N connections, does one request on
# each, prints "ready" or "failed ...", then holds them until its stdin
# ends), and sets RSS0_NAME (KB before) and RSS_NAME (KB with the N idle
# connections, or "failed").
measure_idle() {
	local p=$1 port pids base held idle_pid
	shift
	port=$(free_port)
	start_proxy "$p" "$port"
	eval "pids=\$PIDS_$p"
	# shellcheck disable=SC2086
	base=$(rss_kb $pids)
	rm -f "$T/idle-$p.in"
	mkfifo "$T/idle-$p.in"
	"$@" "127.0.0.1:$port" "$HOSTNAME_" "$IDLE" <"$T/idle-$p.in" >"$T/idle-$p.out" 2>&1 &
	idle_pid=$!
	HARNESS_PIDS="$HARNESS_PIDS $idle_pid"
	exec 8>"$T/idle-$p.in"
	# The client prints "ready" or "failed", or exits on a usage error.
	wait_for 180 eval "grep -q '^ready\|^failed' '$T/idle-$p.out' || ! kill -0 $idle_pid"
	if grep -q '^ready' "$T/idle-$p.out"; then
		# Idle means idle for a while: long enough for zkrouterd's
		# memory janitor (1 s ticks) to park them and give back what
		# their requests used. The others are measured the same way.
		sleep "${IDLE_SETTLE:-5}"
		# shellcheck disable=SC2086
		held=$(rss_kb $pids)
		eval "RSS0_$p=$base RSS_$p=$held"
		log "$p: RSS $((base / 1024)) MB idle, $((held / 1024)) MB with $IDLE idle connections"
	else
		eval "RSS0_$p=$base RSS_$p=failed"
		log "$p: $(cat "$T/idle-$p.out")"
	fi
	exec 8>&-
	wait "$idle_pid"
	cp "$T/idle-$p.out" "$OUT/idle-$p${OUT_TAG:+-$OUT_TAG}.txt" 2>/dev/null
	HARNESS_PIDS=$(echo " $HARNESS_PIDS " | sed "s/ $idle_pid / /")
	stop_proxy "$p"
}
