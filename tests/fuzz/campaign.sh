#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
#
# The long form of fuzzing (make check only replays the corpora): run each
# named fuzzer until it has had CPU_SECONDS of CPU time, in 5-minute rounds
# that share one scratch corpus, then report executions, coverage and CPU.
# CPU time, not wall time, is counted, so a busy machine only makes the
# campaign longer. Crashes stop the fuzzer and are kept in OUT/<name>/.
#
#   make fuzz && tests/fuzz/campaign.sh OUT CPU_SECONDS name...
#   e.g. tests/fuzz/campaign.sh /tmp/fuzz 1200 spec varfile serve
#
# New inputs stay in OUT/<name>/corpus; to keep the ones that add coverage:
#   build-fuzz/fuzz_NAME -merge=1 tests/fuzz/corpus-NAME OUT/NAME/corpus
set -eu

[ $# -ge 3 ] || { sed -n "4,14p" "$0"; exit 2; }
out=$1; budget=$2; shift 2
here=$(cd "$(dirname "$0")" && pwd)
bin=$here/../../build-fuzz

for name in "$@"; do
	fz=$bin/fuzz_$name
	[ -x "$fz" ] || { echo "campaign: $fz missing (run make fuzz)" >&2; exit 2; }
	seed=$here/corpus-$name
	[ "$name" = spec ] && seed=$here/corpus
	dict=
	[ -f "$here/$name.dict" ] && dict=-dict=$here/$name.dict
	dir=$out/$name
	mkdir -p "$dir/corpus" "$dir/crashes"
	cp -n "$seed"/* "$dir/corpus/" 2>/dev/null || true
	# A private copy of the binary: a rebuild during the campaign does not
	# change what is being fuzzed.
	cp "$fz" "$dir/fuzz_$name"
	cpu=0 execs=0 n=0
	while [ "$cpu" -lt "$budget" ]; do
		n=$((n + 1))
		# A round lasts at most 5 minutes and no longer than what is left.
		round=$((budget - cpu + 5))
		[ "$round" -gt 300 ] && round=300
		log=$dir/round$n.log
		st=0
		/usr/bin/time -f '%U %S' -o "$dir/time$n" \
			"$dir/fuzz_$name" -max_total_time=$round -rss_limit_mb=2048 \
			-timeout=10 -print_final_stats=1 $dict \
			-artifact_prefix="$dir/crashes/" "$dir/corpus" \
			>"$log" 2>&1 || st=$?
		used=$(awk '{ printf "%d", $1 + $2 }' "$dir/time$n")
		cpu=$((cpu + used))
		e=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		execs=$((execs + ${e:-0}))
		if [ "$st" -ne 0 ]; then
			echo "campaign: fuzz_$name failed in round $n (exit $st), see $log" >&2
			ls "$dir/crashes" >&2
			exit 1
		fi
	done
	cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
	files=$(ls "$dir/corpus" | wc -l)
	echo "fuzz_$name: $cpu CPU-s in $n rounds, $execs executions, $cov, corpus $files files, no crash" \
		| tee -a "$out/summary"
done
