#!/bin/bash
# Digest auth in the registry core, against a real ZooKeeper and the ACLs
# zkrouterctl puts on an owned app: a router with the routers' identity
# sees the app's instances; one without it is refused (ZNOAUTH, logged
# with the path) and still serves every other app; after its session
# expires, the authenticated router authenticates its new session again
# and keeps seeing them.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/registry_common.sh"

CTL=$top_builddir/zkrouterctl
[ -x "$CTL" ] || skip "zkrouterctl not built"
zk_start
"$CTL" --zk "$ZK" init >"$T/ctl.log" 2>&1 || { cat "$T/ctl.log"; fail "zkrouterctl init"; }
"$CTL" --zk "$ZK" --auth op:op-pw app add secure.example.com --owner app:app-pw --router-auth rt:rt-pw \
	>"$T/ctl.log" 2>&1 || { cat "$T/ctl.log"; fail "app add with an owner"; }
put mk /apps/open.example.com/instances/o1 instance:host=10.0.0.1,port=80

spawn s1 "$B/zkput" --zk "$ZK" --auth app:app-pw --timeout 4000 --hold \
	eph /apps/secure.example.com/instances/s1 instance:host=10.0.0.2,port=80
wait_for 10 grep -q '^ready' "$T/s1.log" || fail "the owner could not register"

log "the routers' identity reads the owned app"
tw_start r1 --timeout 2000 --auth rt:rt-pw
R1=$TW_PID
expect 15 "r1 sees s1" has r1 '^instance secure\.example\.com s1 10\.0\.0\.2:80 '
has r1 '^instance open\.example\.com o1 ' || fail "r1 misses the open app"

log "no identity: refused on the owned app, logged with its path, the rest served"
tw_start r2 --timeout 4000
expect 15 "r2 table" has r2 '^instance open\.example\.com o1 '
lacks r2 '^instance secure\.example\.com ' || fail "r2 read instances it may not read"
grep -q 'list /zkrouter/apps/secure.example.com/instances: not authenticated' "$T/r2.log" ||
	fail "no log line for the refused read"

# session_of NAME: the session NAME connected on last (its log says).
session_of() { sed -n 's/.* zk: connected, session \(0x[0-9a-f]*\),.*/\1/p' "$T/$1.log" | tail -n 1; }
# expired SESSION: ZooKeeper logged the expiry of SESSION.
expired() { grep -q "Expiring session $1," "$T/zookeeper.log"; }

log "the authenticated router's session expires: it authenticates again"
s1=$(session_of r1)
kill -STOP "$R1"
spawn s2 "$B/zkput" --zk "$ZK" --auth app:app-pw --timeout 4000 --hold \
	eph /apps/secure.example.com/instances/s2 instance:host=10.0.0.3,port=80
wait_for 10 grep -q '^ready' "$T/s2.log" || fail "the owner could not register s2"
expect 30 "ZooKeeper expired r1's session $s1" expired "$s1"
kill -CONT "$R1"
expect 20 "r1's session expired" grep -q 'session expired' "$T/r1.log"
expect 20 "r1 sees s2 after the re-read" has r1 '^instance secure\.example\.com s2 10\.0\.0\.3:80 '
has r1 '^instance secure\.example\.com s1 ' || fail "r1 lost s1 after the re-read"
grep -q 'not authenticated' "$T/r1.log" && fail "r1 was refused after its new session"

log "the routers lose read access: the served instances stay, also through a re-read"
op() { "$B/zkput" --zk "$ZK" --auth op:op-pw "$@" >/dev/null || fail "zkput $*"; }
op acl /apps/secure.example.com/instances digest:op:op-pw:cdrwa,digest:app:app-pw:cd
spawn s3 "$B/zkput" --zk "$ZK" --auth app:app-pw --timeout 4000 --hold \
	eph /apps/secure.example.com/instances/s3 instance:host=10.0.0.5,port=80
wait_for 10 grep -q '^ready' "$T/s3.log" || fail "the owner could not register s3"
# The server no longer tells r1 of changes there (events are filtered by
# READ), so the loss shows when r1 has to read the app again: its re-read.
s1=$(session_of r1)
kill -STOP "$R1"
expect 30 "ZooKeeper expired r1's session $s1" expired "$s1"
kill -CONT "$R1"
expect 20 "r1 re-read without access" grep -q 'secure.example.com: reads failed in the re-read; keeping the served version' "$T/r1.log"
expect 10 "r1 published the re-read" sh -c "[ \$(grep -c 'read complete' $T/r1.log) -ge 3 ]"
has r1 '^instance secure\.example\.com s1 ' && has r1 '^instance secure\.example\.com s2 ' ||
	fail "the re-read emptied the app it could not read"
has r1 '^instance open\.example\.com o1 ' || fail "the open app lost in the re-read"

log "read access restored: the app is read again, s3 included"
op acl /apps/secure.example.com/instances digest:op:op-pw:cdrwa,digest:app:app-pw:cd,digest:rt:rt-pw:r
expect 40 "r1 sees s3" has r1 '^instance secure\.example\.com s3 10\.0\.0\.5:80 '
exit 0
