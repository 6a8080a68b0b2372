#!/bin/bash
# The Debian package, end to end (run by .ci/run as a step of its own, not
# by make check: building the package builds the project again). Copies
# the source tree (git's files, committed or not), builds the package with
# `dpkg-buildpackage -us -uc -b`, runs lintian (an error fails; warnings
# are printed), installs it with `apt-get install ./zkrouter_*.deb`, and
# checks what it installed: the three programs and their man pages, the
# zkrouter user, /var/lib/zkrouter, the conffile (valid, and readable by
# the user: zkrouterd --check-config as zkrouter), the logrotate snippet,
# `systemd-analyze verify` on both units, and the `systemd-analyze
# security` exposure of zkrouterd.service, which must not exceed that of
# HAProxy's Debian unit. Then it purges the package.
#
# Needs root (it installs a package) and debhelper, dpkg-dev, lintian,
# systemd (systemd-analyze) and haproxy; skips without them (exit 77),
# unless ZKR_TEST_NO_SKIP is set. Refuses to run if zkrouter is installed.
#
#   tests/deb_package.sh [--keep DIR]   (--keep: leave the .deb files in DIR)
set -uo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
keep=
[ "${1:-}" = --keep ] && keep=$2

. "$src/tests/lib/report.sh"

[ "$(id -u)" = 0 ] || skip "not root: installing a package needs root"
for tool in dpkg-buildpackage dh lintian apt-get systemd-analyze logrotate; do
	command -v "$tool" >/dev/null || skip "$tool not installed (apt-get install debhelper dpkg-dev lintian systemd logrotate)"
done
[ -f /lib/systemd/system/haproxy.service ] || skip "haproxy not installed: its unit is the bar for systemd-analyze security"
if dpkg-query -W -f='${Status}' zkrouter 2>/dev/null | grep -q 'ok installed'; then
	fail "zkrouter is installed already; this check would replace and purge it"
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/zkrouter-deb.XXXXXX") || exit 99
installed=0
cleanup() {
	local rc=$?
	if [ "$installed" = 1 ]; then
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -q zkrouter >>"$tmp/purge.log" 2>&1 ||
			echo "WARNING: could not purge zkrouter: $(tail -n 5 "$tmp/purge.log")"
	fi
	if [ "$rc" != 0 ] && [ "$rc" != 77 ]; then
		for f in "$tmp"/*.log; do
			[ -f "$f" ] || continue
			echo "----- $f (last 40 lines)"
			tail -n 40 "$f"
		done
	fi
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT

log "build: dpkg-buildpackage -us -uc -b in a copy of the tree"
mkdir -p "$tmp/zkrouter"
# dpkg-buildpackage writes its results next to the tree: a copy keeps
# them (and the in-tree build) out of the checkout.
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
	(cd "$src" && git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done |
		tar --null -T - -cf -) | tar -x -C "$tmp/zkrouter" || fail "cannot copy the source tree"
else
	cp -a "$src"/. "$tmp/zkrouter"/ || fail "cannot copy the source tree"
fi
t0=$(date +%s)
(cd "$tmp/zkrouter" && dpkg-buildpackage -us -uc -b) >"$tmp/build.log" 2>&1 ||
	fail "dpkg-buildpackage failed"
log "built in $(( $(date +%s) - t0 )) s: $(cd "$tmp" && ls ./*.deb | tr '\n' ' ')"
deb=$(ls "$tmp"/zkrouter_*.deb) || fail "no zkrouter_*.deb"

log "lintian"
lintian --fail-on error --display-info "$tmp"/zkrouter_*.changes >"$tmp/lintian.log" 2>&1
lrc=$?
grep -v 'running with root privileges' "$tmp/lintian.log" | sed 's/^/  /'
[ "$lrc" = 0 ] || fail "lintian reports errors (status $lrc)"
log "lintian: $(grep -c '^E:' "$tmp/lintian.log") errors, $(grep -c '^W:' "$tmp/lintian.log") warnings, $(grep -c '^I:' "$tmp/lintian.log") notes"

log "apt-get install ./$(basename "$deb")"
installed=1
(cd "$tmp" && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "./$(basename "$deb")") \
	>"$tmp/install.log" 2>&1 </dev/null || fail "apt-get install failed"

log "what it installed"
ver=$(zkrouterd --version) || fail "zkrouterd --version failed"
echo "  $ver"
echo "$ver" | grep -q '^zkrouterd (zkrouter) ' || fail "zkrouterd --version printed '$ver'"
for p in /usr/bin/zkrouterd /usr/bin/zkrouter-agent /usr/bin/zkrouterctl; do
	[ -x "$p" ] || fail "$p not installed"
done
zkrouter-agent --version >/dev/null && zkrouterctl --version >/dev/null || fail "--version of the tools"
for m in zkrouterd zkrouter-agent zkrouterctl; do
	[ -f "/usr/share/man/man8/$m.8.gz" ] || fail "man page $m(8) not installed"
done
id zkrouter >/dev/null 2>&1 || fail "no zkrouter user"
[ "$(stat -c %U /var/lib/zkrouter)" = zkrouter ] || fail "/var/lib/zkrouter is not the zkrouter user's"
dpkg-query -W -f='${Conffiles}\n' zkrouter | grep -q ' /etc/zkrouter/zkrouterd.conf ' ||
	fail "/etc/zkrouter/zkrouterd.conf is not a conffile"
runuser -u zkrouter -- zkrouterd --config /etc/zkrouter/zkrouterd.conf --check-config >"$tmp/check.log" 2>&1 ||
	fail "the packaged zkrouterd.conf does not pass --check-config as zkrouter"
logrotate -d /etc/logrotate.d/zkrouter >"$tmp/logrotate.log" 2>&1 || fail "logrotate rejects its snippet"
grep -q 'rotating pattern: /var/log/zkrouter/\*.log' "$tmp/logrotate.log" ||
	fail "the logrotate snippet does not cover /var/log/zkrouter"

log "systemd-analyze verify on the installed units"
systemd-analyze verify /lib/systemd/system/zkrouterd.service >"$tmp/verify.log" 2>&1 ||
	fail "systemd-analyze verify zkrouterd.service: $(cat "$tmp/verify.log")"
systemd-analyze verify zkrouter-agent@check.service >>"$tmp/verify.log" 2>&1 ||
	fail "systemd-analyze verify zkrouter-agent@check.service: $(cat "$tmp/verify.log")"
[ ! -s "$tmp/verify.log" ] || fail "systemd-analyze verify warns: $(cat "$tmp/verify.log")"

log "systemd-analyze security --offline=yes: zkrouterd against HAProxy"
score() { systemd-analyze security --offline=yes "$1" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'; }
ours=$(score /lib/systemd/system/zkrouterd.service)
agent=$(score /lib/systemd/system/zkrouter-agent@.service)
theirs=$(score /lib/systemd/system/haproxy.service)
[ -n "$ours" ] && [ -n "$theirs" ] || fail "no exposure level (zkrouterd '$ours', haproxy '$theirs')"
echo "  zkrouterd.service $ours, zkrouter-agent@.service ${agent:-?}, haproxy.service $theirs (lower is better)"
awk -v a="$ours" -v b="$theirs" 'BEGIN { exit !(a <= b) }' ||
	fail "zkrouterd.service is more exposed ($ours) than haproxy.service ($theirs)"

log "apt-get purge zkrouter"
installed=0
DEBIAN_FRONTEND=noninteractive apt-get purge -y -q zkrouter >"$tmp/purge.log" 2>&1 </dev/null ||
	fail "apt-get purge failed"
[ ! -e /usr/bin/zkrouterd ] && [ ! -e /etc/zkrouter ] && [ ! -e /lib/systemd/system/zkrouterd.service ] ||
	fail "files left after purge: $(ls -d /usr/bin/zkrouterd /etc/zkrouter /lib/systemd/system/zkrouterd.service 2>/dev/null)"
if [ -n "$keep" ]; then
	mkdir -p "$keep" && cp "$tmp"/*.deb "$keep"/ && log "kept the packages in $keep"
fi
echo "PASS: the zkrouter package builds, installs, verifies and purges"
exit 0
