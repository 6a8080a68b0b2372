#!/bin/bash
# More watches than one reconnect packet may carry: the C client re-sends
# every watch in a single SetWatches on reconnect, and a server refuses a
# packet above its jute.maxbuffer by dropping the connection, so the
# client would reconnect on the same session forever and never learn of a
# change again. The session must notice the loop, start a new session and
# re-read. The server's limit is lowered to 16 KB so that 300 apps suffice.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/registry_common.sh"

JAVA_TOOL_OPTIONS="-Djute.maxbuffer=16384" zk_start
"$B/bench/registry-load" populate "$ZK/zkrouter" 300 1 >/dev/null || fail "populate"

tw_start r1 --timeout 20000
expect 30 "first table" has r1 '^app app299\.bench\.test '

log "ZooKeeper restarts: the reconnect loop is broken by a new session"
zk_stop
JAVA_TOOL_OPTIONS="-Djute.maxbuffer=16384" zk_resume
expect 30 "new session after the reconnect loop" grep -q 'connection drops right after every reconnect' "$T/r1.log"
put mk /apps/late.example.com/instances/l1 instance:host=10.0.0.9,port=80
expect 30 "a change after the restart is seen" has r1 '^instance late\.example\.com l1 10\.0\.0\.9:80 '
has r1 '^app app0\.bench\.test ' || fail "apps lost in the re-read"
exit 0
