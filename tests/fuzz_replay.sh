#!/usr/bin/env bash
# Replays every committed fuzz corpus (tests/fuzz/corpus/<target>/)
# through its harness, built with tests/fuzz/replay.c instead of
# libFuzzer: quick and deterministic, and under --enable-sanitizers with
# ASan and UBSan watching. Every corpus needs a harness and every harness
# a corpus, so a target cannot be added half-way.
. "$(dirname "$0")/lib/harness.sh"

corpora="$top_srcdir/tests/fuzz/corpus"
n=0
for dir in "$corpora"/*/; do
	target=$(basename "$dir")
	bin="$top_builddir/tests/fuzz/fuzz_$target"
	[ -x "$bin" ] || fail "corpus $target has no harness $bin (FUZZ_TARGETS in tests/Makefile.inc)"
	seeds=$(find "$dir" -type f | wc -l)
	[ "$seeds" -gt 0 ] || fail "corpus $target is empty"
	out=$("$bin" "$dir" 2>&1) || { echo "$out" | tail -n 40; fail "replay of $target failed"; }
	log "$target: $out"
	n=$((n + 1))
done
for src in "$top_srcdir"/tests/fuzz/fuzz_*.c; do
	target=$(basename "$src" .c)
	target=${target#fuzz_}
	[ -d "$corpora/$target" ] || fail "harness $src has no corpus $corpora/$target/"
done
[ "$n" -gt 0 ] || fail "no corpus found under $corpora"
log "replayed $n corpora"
