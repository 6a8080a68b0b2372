#!/bin/bash
# An instance that dies under a request: it accepted a fresh connection,
# read the request head, and reset or closed the connection with no
# response byte (tests/dyingapp.py, what the sockets of a SIGKILLed or
# crashing app do). A request that is safe to send twice (GET, HEAD,
# OPTIONS, DELETE, a PUT with no body) goes to another instance, within
# --retries, and never fails; the dying instance is ejected. A request
# that is not (POST), or whose body was already sent (a PUT with one),
# reached the app once and gets 502, never a second copy. Under concurrent
# keep-alive load no request fails.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

command -v python3 >/dev/null || skip "python3 not installed"

# A short ejection, so that the dying instances keep being picked and the
# retry path runs many times; --retries 2 is what two dying instances need.
proxy_setup --retries 2 --eject-base-ms 10 --eject-max-ms 10
start_backend h1; PH1=$BACKEND_PORT
dying() {
	spawn "dying-$1" python3 "$top_srcdir/tests/dyingapp.py" "$T/$1.port" "$2"
	wait_for 10 test -s "$T/$1.port" || hard_error "tests/dyingapp.py $1 did not start"
	DYING_PORT=$(cat "$T/$1.port")
}
dying dr reset; PDR=$DYING_PORT
dying dc close; PDC=$DYING_PORT
app_add die.test
register die.test h1 "$PH1"
register die.test dr "$PDR"
register die.test dc "$PDC"
for i in h1 dr dc; do wait_instance die.test "$i"; done

reached() { grep -c "^req $1 $2 " "$T/dying-$3.log"; }

log "idempotent requests: each one answered by h1, however many reach a dying instance"
i=0
while [ "$(reached reset GET dr)" -lt 3 ] || [ "$(reached close GET dc)" -lt 3 ] ||
	[ "$i" -lt 40 ]; do
	i=$((i + 1))
	[ "$i" -le 400 ] || fail "400 requests and the dying instances got $(reached reset GET dr) and $(reached close GET dc) GETs"
	out=$(pcurl die.test "/?get=$i")
	[ "$out" = "ok h1" ] || fail "GET $i: '$out'"
done
log "$i GETs, $(reached reset GET dr) reached dr (reset), $(reached close GET dc) reached dc (closed)"
grep -q ' attempts=2 ' "$T/access.log" || fail "no access-log line shows a retried request"
for m in HEAD OPTIONS DELETE PUT; do
	n=0
	while [ "$(grep -c "^req [a-z]* $m " "$T/dying-dr.log" "$T/dying-dc.log" |
		awk -F: '{s+=$2} END {print s}')" -lt 2 ]; do
		n=$((n + 1))
		[ "$n" -le 200 ] || fail "200 ${m}s and none reached a dying instance twice"
		if [ "$m" = HEAD ]; then
			code=$(pcurl die.test "/?m=$n" -I -o /dev/null -w '%{http_code}')
			[ "$code" = 200 ] || fail "HEAD $n: $code"
		else
			out=$(pcurl die.test "/?m=$n" -X "$m")
			[ "$out" = "ok h1" ] || fail "$m $n (no body): '$out'"
		fi
	done
done

log "the dying instances are ejected (passive): their failures are counted"
routes | python3 -c '
import json, sys
t = json.load(sys.stdin)
insts = {i["id"]: i["runtime"] for a in t["apps"] for i in a["instances"]}
for i in ("dr", "dc"):
    assert insts[i]["consecutive_failures"] >= 1, (i, insts[i])
assert insts["h1"]["consecutive_failures"] == 0, insts["h1"]
' || fail "dying instances not counted as failing: $(routes)"

log "a POST that reached a dying instance gets 502, and reached it once"
hit=
for i in $(seq 1 200); do
	code=$(pcurl die.test "/?post=$i" -X POST -D "$T/post.h" -o "$T/post.out" -w '%{http_code}')
	case $code in
	200) [ "$(cat "$T/post.out")" = "ok h1" ] || fail "POST $i: $(cat "$T/post.out")" ;;
	502) hit=$i; break ;;
	*) fail "POST $i: $code $(cat "$T/post.out")" ;;
	esac
done
[ -n "$hit" ] || fail "200 POSTs and none reached a dying instance"
[ "$(grep -c "POST /?post=$hit " "$T/dying-dr.log" "$T/dying-dc.log" |
	awk -F: '{s+=$2} END {print s}')" = 1 ] || fail "POST $hit reached the dying instances more than once"
grep -q "POST /?post=$hit\$" "$T/backend-h1.log" && fail "POST $hit was sent again to h1"
grep -qi '^x-zkrouter-error: backend_failed' "$T/post.h" || fail "the POST's 502 is not backend_failed: $(cat "$T/post.h")"

log "a PUT whose body was sent to a dying instance is not sent again"
hit=
for i in $(seq 1 200); do
	code=$(pcurl die.test "/?putbody=$i" -X PUT --data-binary "some body" -o "$T/put.out" -w '%{http_code}')
	case $code in
	200) ;;
	502) hit=$i; break ;;
	*) fail "PUT $i with a body: $code $(cat "$T/put.out")" ;;
	esac
done
[ -n "$hit" ] || fail "200 PUTs with a body and none reached a dying instance"
grep -q "PUT /?putbody=$hit\$" "$T/backend-h1.log" && fail "PUT $hit with its body was sent again to h1"

log "concurrent keep-alive load over the dying instances: no request fails"
"$BUILD/tests/loadgen" --target "$PROXY" --host die.test --connections 8 --requests 2000 \
	--by-header X-Backend-Id >"$T/lg.log" 2>&1 || {
	cat "$T/lg.log"
	fail "loadgen saw failed requests"
}
grep '^result:' "$T/lg.log"

router_alive
log "ok"
