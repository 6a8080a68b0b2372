# The ThreadSanitizer pass, shared by .ci/run and tests/bench/tsan-run
# (sourced, not run; bash). It sets:
#   TSAN_OPTIONS   the first race stops the process with exit code 66, so
#                  the test that ran it fails (tests/lib/harness.sh adds
#                  log_path and prints every report in the test's log)
#   TSAN_RUN       a command prefix that lets TSan binaries start on this
#                  kernel (empty, or setarch -R; see tsan_prepare)
# and the functions tsan_prepare and tsan_tests.

# Where the suppressions live: for false positives inside uninstrumented
# libraries only, each entry with its reason.
TSAN_SUPP=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tsan.supp
export TSAN_OPTIONS="halt_on_error=1:exitcode=66:second_deadlock_stack=1:suppressions=$TSAN_SUPP${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
TSAN_RUN=()

# Tests left out of this pass, each with its reason. Empty means every
# request-path and cluster test runs. Each still runs in the two other
# passes of .ci/run.
TSAN_EXCLUDED=()

# tsan_tests BUILDDIR: the tests of the TSan pass, from the build's own
# list (so a new test is in the pass without an edit here): the CUnit
# suites and every process-level test of the request path and the
# cluster, minus TSAN_EXCLUDED.
tsan_tests() {
	local t x keep
	make -s -C "$1" -f Makefile -f - tsan-print-tests <<'MK' 2>/dev/null | tr ' ' '\n' |
tsan-print-tests:
	@echo $(TESTS)
MK
	while read -r t; do
		case $t in
		tests/test_* | tests/proxy_*.sh | tests/cluster_*.sh | tests/zkrouterd_*.sh) ;;
		*) continue ;;
		esac
		keep=yes
		for x in "${TSAN_EXCLUDED[@]}"; do [ "${x%%:*}" = "$t" ] && keep=no; done
		[ "$keep" = yes ] && echo "$t"
	done
}

# tsan_prepare: TSan's runtime maps its shadow memory at fixed addresses
# and aborts with "FATAL: ThreadSanitizer: unexpected memory mapping" when
# the kernel places the program elsewhere, which kernels with more ASLR
# entropy (vm.mmap_rnd_bits above 28, the default of recent distribution
# kernels) do for the runtimes of gcc 12 and clang 14. A tiny racy
# program built here finds out: it must start and report its race. If it
# cannot start, the pass runs without address randomisation (setarch -R,
# inherited by every process a test starts); where that is refused (some
# container seccomp profiles) and we are root, vm.mmap_rnd_bits goes to
# 28, put back by tsan_restore. Returns 1 when nothing works.
TSAN_RND_BITS_SAVED=
tsan_prepare() {
	local d cc=${CC:-cc} rc
	d=$(mktemp -d "${TMPDIR:-/tmp}/tsan-probe.XXXXXX") || return 1
	cat >"$d/probe.c" <<'C'
#include <pthread.h>
static int shared;
static void *bump(void *a) { shared++; return a; }
int main(void)
{
	pthread_t t;
	pthread_create(&t, 0, bump, 0);
	shared++;
	pthread_join(t, 0);
	return 0;
}
C
	if ! "$cc" -fsanitize=thread -g -O1 -fPIE -pie -o "$d/probe" "$d/probe.c" -lpthread >"$d/cc.log" 2>&1; then
		cat "$d/cc.log"
		echo "tsan: $cc cannot build with -fsanitize=thread (gcc needs libtsan2; clang libclang-rt-14-dev)"
		rm -rf "$d"
		return 1
	fi
	tsan_probe() { TSAN_OPTIONS=halt_on_error=1:exitcode=66 "$@" "$d/probe" >"$d/run.log" 2>&1; }
	rc=0
	tsan_probe || rc=$?
	if [ "$rc" != 66 ]; then
		echo "tsan: the probe did not start (exit $rc): $(grep -m1 FATAL "$d/run.log")"
		TSAN_RUN=(setarch "$(uname -m)" -R)
		rc=0
		tsan_probe "${TSAN_RUN[@]}" || rc=$?
		if [ "$rc" = 66 ]; then
			echo "tsan: running without address randomisation (setarch -R)"
		elif [ "$(id -u)" = 0 ] && [ -w /proc/sys/vm/mmap_rnd_bits ]; then
			TSAN_RUN=()
			TSAN_RND_BITS_SAVED=$(cat /proc/sys/vm/mmap_rnd_bits)
			echo "tsan: setarch -R refused; vm.mmap_rnd_bits $TSAN_RND_BITS_SAVED -> 28 for this pass"
			echo 28 >/proc/sys/vm/mmap_rnd_bits
			rc=0
			tsan_probe || rc=$?
		fi
	fi
	rm -rf "$d"
	unset -f tsan_probe
	if [ "$rc" != 66 ]; then
		echo "tsan: ThreadSanitizer binaries cannot run on this machine (probe exit $rc)"
		tsan_restore
		return 1
	fi
	return 0
}

tsan_restore() {
	if [ -n "$TSAN_RND_BITS_SAVED" ]; then
		echo "$TSAN_RND_BITS_SAVED" >/proc/sys/vm/mmap_rnd_bits
		TSAN_RND_BITS_SAVED=
	fi
}
