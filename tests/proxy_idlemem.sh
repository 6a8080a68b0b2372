#!/bin/bash
# Memory per idle keep-alive client connection: 2,000 clients each send
# one request and stay idle. Once they are parked (their buffers freed,
# proxy-mem.c) and the heap trimmed, zkrouterd's resident memory must
# have grown by less than IDLE_BOUND bytes per connection (measured
# 0.6-0.7 KB; 2-3 KB when every idle client kept its bufferevent and the
# request free list its burst). Then a second request on every connection
# (its buffers made again) is answered, and the memory goes back down.
# A sanitizer build runs the same requests but not the bound (redzones
# and the quarantine are not what a client costs).
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

N=2000
IDLE_BOUND=1200
IDLE_WHAT="idle clients"
IDLE_DONE="parked and trimmed"
IDLE_ROUTER_ARGS=
IDLE_CLIENT_ARGS=
. "$(dirname "$0")/idlemem_common.sh"
exit 0
