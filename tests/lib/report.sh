# How a test script reports, with automake's exit codes: sourced by
# tests/lib/harness.sh and by the scripts that run without it
# (tests/deb_package.sh).

log() { echo "# $*"; }
fail() { echo "FAIL: $*"; exit 1; }
# A test skips when the machine lacks a tool it needs. CI installs them
# all (.ci/run sets ZKR_TEST_NO_SKIP=1), so there a skip means a broken
# environment and is an error, not a quiet pass.
skip() {
	if [ -n "${ZKR_TEST_NO_SKIP:-}" ]; then
		echo "ERROR: would skip, but ZKR_TEST_NO_SKIP is set: $*"
		exit 99
	fi
	echo "SKIP: $*"
	exit 77
}
hard_error() { echo "ERROR: $*"; exit 99; }
