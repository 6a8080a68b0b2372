#!/bin/bash
# tests/proxy_http.sh with a single worker thread (--workers 1): every
# other process-level test runs zkrouterd with two.
ZKR_TEST_WORKERS=1 exec bash "$(dirname "$0")/proxy_http.sh"
