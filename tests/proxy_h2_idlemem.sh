#!/bin/bash
# Memory per idle HTTP/2 connection: 1,000 h2c clients (prior knowledge)
# each send one request and stay idle. Once the memory janitor found them
# idle, nghttp2's frame buffer and stream map have given their pages back
# (h2-mem.c) and the response fields' buffers are freed: zkrouterd's
# resident memory must have grown by less than IDLE_BOUND bytes per
# connection (measured 8.2 KB; 17 KB when those blocks came from
# the heap). Then a second request on every connection (on pages given
# back, read as zeros) is answered, and the memory goes back down. A
# sanitizer build runs the requests but not the bound.
. "$(dirname "$0")/lib/harness.sh"
. "$(dirname "$0")/proxy_common.sh"

N=1000
IDLE_BOUND=12000
IDLE_WHAT="idle HTTP/2 connections"
IDLE_DONE="given back"
IDLE_ROUTER_ARGS=--h2c
IDLE_CLIENT_ARGS=--h2
. "$(dirname "$0")/idlemem_common.sh"
exit 0
