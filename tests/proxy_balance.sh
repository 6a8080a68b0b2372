#!/bin/bash
# Per-app settings from ZooKeeper (AppConfig) reach the request path:
# smooth weighted round-robin follows the instances' weights, hashing on a
# header or a cookie keeps a user on one instance (and keeps users of the
# instances that stay where they were when another leaves), an app's own
# response timeout and retry count override the router's, and an app with
# redirect_https gets plain-HTTP requests redirected, never proxied.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

proxy_setup
for b in r1 r2 h1 h2 h3 t1 x1 s1; do
	start_backend "$b"
	eval "P_$b=$BACKEND_PORT"
done
app_add rr.test app:balance=round-robin
app_add hh.test app:balance=hash-header,hash_key=X-User
app_add hc.test app:balance=hash-cookie,hash_key=sid
app_add to.test app:response_timeout_ms=500
app_add nr.test app:retries=0
app_add tls.test app:redirect_https=1
register rr.test r1 "$P_r1" weight=300
register rr.test r2 "$P_r2" weight=100
for h in h1 h2 h3; do
	eval "register hh.test $h \$P_$h"
	eval "register hc.test c$h \$P_$h"
done
register to.test t1 "$P_t1"
register nr.test x1 "$P_x1"
register nr.test xdead "$(free_port)"
register tls.test s1 "$P_s1"
for i in r1 r2 h1 h2 h3 ch1 ch2 ch3 t1 x1 xdead s1; do wait_instance any "$i"; done

log "weighted round-robin: weights 300 and 100 give 3:1"
n1=0 n2=0
for _ in $(seq 1 80); do
	case $(pcurl rr.test /) in
	"ok r1") n1=$((n1 + 1)) ;;
	"ok r2") n2=$((n2 + 1)) ;;
	*) fail "rr.test answered something else" ;;
	esac
done
log "r1=$n1 r2=$n2"
[ "$n1" -ge 56 ] && [ "$n1" -le 64 ] || fail "weights 300:100 gave $n1:$n2 of 80"

log "hash on X-User: each user stays on one instance"
declare -A home
for u in $(seq 1 24); do
	first=$(pcurl hh.test / -H "X-User: user-$u")
	for _ in 1 2 3; do
		[ "$(pcurl hh.test / -H "X-User: user-$u")" = "$first" ] || fail "user-$u moved between instances"
	done
	home[$u]=${first#ok }
done
used=$(printf '%s\n' "${home[@]}" | sort -u | wc -l)
[ "$used" -ge 2 ] || fail "24 users all hashed to one instance"

log "an instance leaves: users of the others stay where they were"
deregister h3
wait_instance hh.test h3 gone
for u in $(seq 1 24); do
	now=$(pcurl hh.test / -H "X-User: user-$u")
	now=${now#ok }
	[ "$now" != h3 ] || fail "user-$u still sent to the removed h3"
	if [ "${home[$u]}" != h3 ] && [ "$now" != "${home[$u]}" ]; then
		fail "user-$u moved from ${home[$u]} to $now although ${home[$u]} stayed"
	fi
done

log "hash on the sid cookie"
for s in a b c d e f; do
	first=$(pcurl hc.test / -H "Cookie: theme=dark; sid=$s; lang=en")
	for _ in 1 2 3; do
		[ "$(pcurl hc.test / -H "Cookie: lang=fr; sid=$s")" = "$first" ] || fail "sid=$s moved between instances"
	done
done

log "the app's response timeout (500 ms) overrides the router's (60 s)"
t0=$(now_ms)
code=$(pcurl to.test '/slow?ms=3000' -o /dev/null -w '%{http_code}')
ms=$(( $(now_ms) - t0 ))
[ "$code" = 504 ] || fail "to.test slow answer gave $code, want 504"
[ "$ms" -lt 2500 ] || fail "504 after $ms ms (app timeout 500 ms)"

log "the app's retries=0: a dead instance's failure reaches the client"
n502=0
for i in $(seq 1 20); do
	case $(pcurl nr.test "/?i=$i" -o /dev/null -w '%{http_code}') in
	200) ;;
	502) n502=$((n502 + 1)) ;;
	*) fail "nr.test request $i: unexpected status" ;;
	esac
done
log "$n502 of 20 requests got 502"
[ "$n502" -ge 1 ] || fail "no 502 with retries=0 and a dead instance: the app's retries were ignored"

log "redirect_https: plain HTTP gets a redirect to the same host and target"
pcurl tls.test '/path/x?q=1' -D "$T/hr" -o /dev/null >/dev/null
case $(first_status "$T/hr") in 301 | 302 | 307 | 308) ;; *) fail "redirect_https app: $(cat "$T/hr")" ;; esac
loc=$(grep -i '^location:' "$T/hr" | tr -d '\r' | cut -d' ' -f2-)
case $loc in https://tls.test/path/x?q=1 | https://tls.test:*/path/x?q=1) ;; *) fail "redirect Location: '$loc'" ;; esac
grep -q '^req s1' "$T/backend-s1.log" && fail "a request to a redirect_https app reached the backend"

router_alive
log "ok"
