#!/bin/sh
# Prints every test's result and a closing "N passed, N failed" line from
# the automake test logs in the build directory given as $1 (default: .).
# CUnit suites count each of their tests; a script counts as one test.
# Exits 1 if anything failed or nothing ran.
dir=${1:-.}
passed=0 failed=0 skipped=0
for trs in $(find "$dir/tests" -name '*.trs' | sort); do
	log=${trs%.trs}.log
	result=$(sed -n 's/^:test-result: //p' "$trs" | head -n 1)
	name=${trs#"$dir"/}
	name=${name%.trs}
	summary=$(grep -E '^ +tests +[0-9]+' "$log" 2>/dev/null | tail -n 1)
	if [ -n "$summary" ]; then
		# CUnit: "tests  Total Ran Passed Failed Inactive"
		set -- $summary
		p=$4 f=$5
		[ "$result" = PASS ] || [ "$f" -gt 0 ] || f=1
	else
		case $result in
		PASS) p=1 f=0 ;;
		SKIP) p=0 f=0; skipped=$((skipped + 1)) ;;
		*) p=0 f=1 ;;
		esac
	fi
	passed=$((passed + p))
	failed=$((failed + f))
	printf '%-5s %-40s %s passed, %s failed\n' "$result" "$name" "$p" "$f"
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
