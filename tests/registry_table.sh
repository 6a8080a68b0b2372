#!/bin/bash
# The watched table against a real ZooKeeper: registration, removal, bad
# records and names, AppConfig changes, an instance replaced between two
# lists, the /routers node, and digest equality of two table holders.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/registry_common.sh"

zk_start
put mk /apps/a.example.com app:balance=round-robin,retries=2 \
    mk /apps/a.example.com/instances - mk /apps/c.example.com - \
    mk '/apps/*.wild.example.com/instances' -

tw_start r1 --timeout 4000
expect 15 "first table" has r1 '^generation '
has r1 '^app a\.example\.com balance=round-robin retries=2 .* instances=0$' || fail "a.example.com config"
has r1 '^app c\.example\.com balance=least-outstanding retries=-1 .*instances=0$' || fail "c.example.com defaults"
has r1 '^app \*\.wild\.example\.com ' || fail "wildcard app"

log "register an instance: it appears with its record"
hold i1 eph /apps/a.example.com/instances/i1 'instance:host=127.0.0.1,port=8080,weight=7,zone=z1'
expect 10 "i1 in the table" has r1 '^instance a\.example\.com i1 127\.0\.0\.1:8080 weight=7 zone=z1 up$'
has r1 'instances=1$' || fail "instance count"

log "garbage and invalid records are skipped, named in the log, the app intact"
put mk /apps/a.example.com/instances/junk text:not-a-protobuf \
    mk /apps/a.example.com/instances/noport instance:host=10.0.0.9 \
    mk /apps/a.example.com/instances/i2 instance:host=10.0.0.2,port=80
expect 10 "i2 in the table" has r1 '^instance a\.example\.com i2 10\.0\.0\.2:80 '
has r1 '^instance a\.example\.com i1 ' || fail "i1 lost after a bad record"
lacks r1 'junk|noport' || fail "bad records routed"
grep -q '/zkrouter/apps/a.example.com/instances/junk: bad Instance record skipped' "$T/r1.log" ||
	fail "no log line naming the garbage record's path"
grep -q '/zkrouter/apps/a.example.com/instances/noport: bad Instance record skipped: port missing' "$T/r1.log" ||
	fail "no log line naming the invalid record's path"

log "an invalid domain under /apps is ignored with a log line"
put mk /apps/Not_A_Domain -
expect 10 "log line for the bad domain" grep -q '/zkrouter/apps/Not_A_Domain: not a valid app domain' "$T/r1.log"
lacks r1 'Not_A_Domain' || fail "bad domain routed"

log "deregister: the instance goes"
stop_pid "$HOLD_PID"
expect 10 "i1 removed" lacks r1 '^instance a\.example\.com i1 '
has r1 '^instance a\.example\.com i2 ' || fail "i2 lost with i1"

log "AppConfig changes apply; bad AppConfig keeps the previous one"
put set /apps/a.example.com 'app:balance=hash-header,hash_key=X-User,sticky_cookie=sid'
expect 10 "new config" has r1 '^app a\.example\.com balance=hash-header retries=-1 .*sticky=sid '
has r1 '^app a\.example\.com .* backend=http1 ' || fail "backend protocol absent: not http1"
put set /apps/a.example.com 'app:balance=hash-header,hash_key=X-User,sticky_cookie=sid,backend_protocol=1'
expect 10 "backend h2c" has r1 '^app a\.example\.com balance=hash-header .* backend=h2c '
put set /apps/a.example.com app:backend_protocol=7
expect 10 "log line for the unknown backend protocol" \
	grep -q '/zkrouter/apps/a.example.com: bad AppConfig skipped.*backend_protocol 7 unknown' "$T/r1.log"
has r1 '^app a\.example\.com balance=hash-header .* backend=h2c ' ||
	fail "an unknown backend protocol replaced the good config"
put set /apps/a.example.com text:garbage
expect 10 "log line for the bad AppConfig" grep -q '/zkrouter/apps/a.example.com: bad AppConfig skipped' "$T/r1.log"
has r1 '^app a\.example\.com balance=hash-header ' || fail "bad AppConfig replaced the good one"
put set /apps/a.example.com -
expect 10 "empty AppConfig means defaults" has r1 '^app a\.example\.com balance=least-outstanding '

log "an instance deleted and created again between two lists (re-register as DRAINING)"
put rm /apps/a.example.com/instances/i2 mk /apps/a.example.com/instances/i2 instance:host=10.0.0.2,port=80,state=draining
expect 10 "i2 draining" has r1 '^instance a\.example\.com i2 10\.0\.0\.2:80 .* draining$'

log "an app removed goes with its instances; one added appears"
put rm /apps/c.example.com mk /apps/d.example.com/instances/d1 instance:host=::1,port=9000
expect 10 "c removed" lacks r1 '^app c\.example\.com '
expect 10 "d added" has r1 '^instance d\.example\.com d1 ::1:9000 '

log "an app deleted and created again at once: its new config is read and watched"
put rm /apps/d.example.com mk /apps/d.example.com app:balance=round-robin,retries=1 \
    mk /apps/d.example.com/instances/d2 instance:host=10.0.0.7,port=9001
expect 10 "re-created app's config" has r1 '^app d\.example\.com balance=round-robin retries=1 '
expect 10 "re-created app's instance" has r1 '^instance d\.example\.com d2 10\.0\.0\.7:9001 '
lacks r1 '^instance d\.example\.com d1 ' || fail "d1 survived its app's deletion"
put set /apps/d.example.com app:balance=round-robin,retries=3
expect 10 "later config change of the re-created app" has r1 '^app d\.example\.com balance=round-robin retries=3 '

log "a second, independent table holder computes the same digest"
tw_start r2 --timeout 4000
expect 15 "r2 table" has r2 '^generation '
expect 10 "equal digests" sh -c "[ \"\$(sed -n 's/^digest //p' $T/r1.table)\" = \"\$(sed -n 's/^digest //p' $T/r2.table)\" ]"
[ "$(grep -v '^generation' "$T/r1.table")" = "$(grep -v '^generation' "$T/r2.table")" ] || fail "tables differ"

log "each router's /routers node carries the digest of its table"
d=$(digest_of r1)
check_router() { "$B/zkput" --zk "$ZK" get "/routers/$1" | grep -q "node=$1 .*digest=$d"; }
expect 20 "r1's /routers node current" check_router r1
expect 20 "r2's /routers node current" check_router r2

log "a burst of changes: /routers writes rate-limited, the last table always written"
node_version() { "$B/zkput" --zk "$ZK" get /routers/r1 | sed -n 's/.* version=\([0-9]*\).*/\1/p'; }
v0=$(node_version)
g0=$(gen_of r1)
ops=""
for i in $(seq 1 40); do ops="$ops mk /apps/burst$i.example.com -"; done
t0=$(now_ms)
put $ops
expect 10 "burst applied" has r1 '^app burst40\.example\.com '
final_written() { [ "$("$B/zkput" --zk "$ZK" get /routers/r1 | sed -n 's/.* digest=//p')" = "$(digest_of r1)" ]; }
expect 20 "r1's node shows the final table" final_written
t1=$(now_ms)
writes=$(( $(node_version) - v0 ))
published=$(( $(gen_of r1) - g0 ))
log "$published tables published, $writes node writes in $(( t1 - t0 )) ms"
[ "$writes" -le $(( (t1 - t0) / 200 + 2 )) ] || fail "$writes writes in $(( t1 - t0 )) ms: not rate-limited"
[ "$writes" -ge 1 ] && [ "$writes" -le "$published" ] || fail "$writes writes for $published tables"

log "a stopped holder's /routers node goes at once"
stop_pid "$TW_PID"
"$B/zkput" --zk "$ZK" get /routers/r2 >/dev/null 2>&1 && fail "r2's node survived a clean exit"
exit 0
