#!/usr/bin/env bash
# The project's test runner: runs every suite, prints each suite's duration,
# one summary, and ends with "N passed, N failed[, N skipped]".
#
# Every test program speaks TAP on stdout ("ok N - name", "not ok N - name",
# "... # SKIP reason"); cmocka does so with CMOCKA_MESSAGE_OUTPUT=TAP. A
# program that exits non-zero without reporting a failure, or reports no test
# at all, counts as one failure, so a crash is never mistaken for success.
#
#   tests/run.sh [--build DIR] [--only SUITE] [--fuzz-seconds N]
#   suites: unit unit-san bpf integration fuzz
set -uo pipefail

cd "$(dirname "$0")/.."
BUILD=build
ONLY=""
FUZZ_SECONDS=${FUZZ_SECONDS:-60}   # total for all fuzz targets in `make test`

while [ $# -gt 0 ]; do
	case "$1" in
	--build) BUILD=$2; shift 2 ;;
	--only) ONLY=$2; shift 2 ;;
	--fuzz-seconds) FUZZ_SECONDS=$2; shift 2 ;;
	*) echo "usage: $0 [--build DIR] [--only SUITE] [--fuzz-seconds N]" >&2; exit 2 ;;
	esac
done

export MP_BUILD=$BUILD MP_ROOT=$PWD CMOCKA_MESSAGE_OUTPUT=TAP
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

LOGDIR=$(mktemp -d /tmp/mp-tests.XXXXXX)
trap 'rm -rf "$LOGDIR"' EXIT

total_pass=0 total_fail=0 total_skip=0
failures=() skips=() durations=()

# record NAME LOGFILE STATUS: counts the TAP lines a program printed.
record() {
	local name=$1 log=$2 status=$3 pass fail skip
	pass=$(grep -cE '^ok [0-9]+' "$log" | head -1)
	skip=$(grep -cE '^(not )?ok [0-9]+.*# ?SKIP' "$log" | head -1)
	fail=$(grep -cE '^not ok [0-9]+' "$log" | head -1)
	# cmocka prints skips as "not ok N # SKIP name"; a skip is neither.
	local skip_ok skip_notok
	skip_ok=$(grep -cE '^ok [0-9]+.*# ?SKIP' "$log")
	skip_notok=$(grep -cE '^not ok [0-9]+.*# ?SKIP' "$log")
	pass=$((pass - skip_ok))
	fail=$((fail - skip_notok))
	while IFS= read -r line; do
		failures+=("$name: $line")
	done < <(grep -E '^not ok [0-9]+' "$log" | grep -vE '# ?SKIP')
	while IFS= read -r line; do
		local reason
		reason=$(grep -B3 -F -- "$line" "$log" | grep -E '^# ' | tail -1 | sed 's/^# //')
		skips+=("$name: $line${reason:+ ($reason)}")
	done < <(grep -E '^(not )?ok [0-9]+.*# ?SKIP' "$log")
	if [ "$status" -ne 0 ] && [ "$fail" -eq 0 ]; then
		fail=1
		failures+=("$name: exited with status $status without reporting a failed test")
	fi
	if [ $((pass + fail + skip)) -eq 0 ]; then
		fail=1
		failures+=("$name: ran no test")
	fi
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	total_skip=$((total_skip + skip))
	printf '  %-40s %3d passed %3d failed %3d skipped\n' "$name" "$pass" "$fail" "$skip"
	if [ "$fail" -gt 0 ]; then
		sed 's/^/    | /' "$log" | tail -40
	fi
}

run_program() {        # run_program NAME CMD...
	local name=$1 log="$LOGDIR/$(echo "$1" | tr '/ ' '__').log" status
	shift
	"$@" >"$log" 2>&1 </dev/null
	status=$?
	record "$name" "$log" "$status"
}

want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }

suite_begin() { SUITE=$1; SUITE_START=$(date +%s%N); echo "== suite $1"; }
suite_end() {
	local ms secs
	ms=$(( ($(date +%s%N) - SUITE_START) / 1000000 ))
	secs=$(printf '%d.%01d' $((ms / 1000)) $(((ms % 1000) / 100)))
	echo "== suite $SUITE: ${secs}s"
	durations+=("$SUITE ${secs}s")
}

run_dir_programs() {   # run_dir_programs SUITE DIR
	local suite=$1 dir=$2 prog found=0
	for prog in "$dir"/*; do
		[ -x "$prog" ] && [ -f "$prog" ] || continue
		found=1
		run_program "$suite/$(basename "$prog")" "$prog"
	done
	if [ "$found" -eq 0 ]; then
		total_fail=$((total_fail + 1))
		failures+=("$suite: no test programs in $dir (not built?)")
		echo "  no test programs in $dir"
	fi
}

if want unit; then
	suite_begin unit
	run_dir_programs unit "$BUILD/tests/unit"
	suite_end
fi

if want unit-san && [ "$BUILD" = build ] && [ -d build/san/tests/unit ]; then
	suite_begin unit-san
	run_dir_programs unit-san build/san/tests/unit
	suite_end
fi

if want bpf; then
	suite_begin bpf
	run_dir_programs bpf "$BUILD/tests/bpf"
	suite_end
fi

if want integration; then
	suite_begin integration
	for script in tests/integration/test_*.sh; do
		[ -f "$script" ] || continue
		run_program "integration/$(basename "$script" .sh)" bash "$script"
	done
	suite_end
fi

if want fuzz; then
	suite_begin fuzz
	targets=(build/fuzz/fuzz_*)
	if [ ! -x "${targets[0]}" ]; then
		total_fail=$((total_fail + 1))
		failures+=("fuzz: no fuzz targets in build/fuzz (run make fuzz-build)")
	else
		per=$(( FUZZ_SECONDS / ${#targets[@]} ))
		[ "$per" -ge 1 ] || per=1
		for target in "${targets[@]}"; do
			name=$(basename "$target")
			corpus="$LOGDIR/corpus-$name"
			mkdir -p "$corpus" build/fuzz/artifacts
			cp -r "tests/fuzz/corpus/${name#fuzz_}/." "$corpus/" 2>/dev/null || true
			log="$LOGDIR/$name.log"
			"$target" -max_total_time="$per" -timeout=10 -rss_limit_mb=2048 \
				-artifact_prefix="build/fuzz/artifacts/$name-" \
				"$corpus" >"$log" 2>&1 </dev/null
			status=$?
			if [ $status -eq 0 ]; then
				echo "ok 1 - $name ran ${per}s: $(grep -oE 'Done [0-9]+ runs' "$log" | tail -1)" >>"$log"
			else
				echo "not ok 1 - $name crashed or leaked (status $status)" >>"$log"
			fi
			record "fuzz/$name" "$log" 0
		done
	fi
	suite_end
fi

echo
echo "== summary"
for d in "${durations[@]}"; do echo "  duration: $d"; done
for s in "${skips[@]+"${skips[@]}"}"; do echo "  SKIP $s"; done
for f in "${failures[@]+"${failures[@]}"}"; do echo "  FAIL $f"; done
line="$total_pass passed, $total_fail failed"
[ "$total_skip" -gt 0 ] && line="$line, $total_skip skipped"
echo "$line"
[ "$total_fail" -eq 0 ]
