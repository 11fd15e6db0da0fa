#!/usr/bin/env bash
# `make bench` (issue 7): forwarding, realistic call load, BPF_PROG_TEST_RUN,
# control plane and memory, one part after another in one run on this
# machine, side by side with conntrack, userspace and rtpengine. Prints a
# summary table and writes build/bench/latest.json (plus a timestamped
# copy) with the machine's facts and the exact command. Not part of
# `make test`: absolute numbers on a shared machine are noisy; the ratios
# within one run are what we compare.
#
#   sudo make bench                    # everything (< 15 minutes)
#   sudo tests/bench/run.sh --quick    # every part with tiny durations
#   sudo tests/bench/run.sh --only forwarding,control
set -u
cd "$(dirname "$0")/../.." || exit 1
export MP_ROOT=$PWD MP_BUILD=${MP_BUILD:-$PWD/build}
OUT_DIR=$MP_BUILD/bench
PARTS=(forwarding load control)
QUICK=()
COMMAND="$0 $*"

while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=(--quick) ;;
	--only) IFS=, read -r -a PARTS <<<"$2"; shift ;;
	*) echo "usage: $0 [--quick] [--only forwarding,load,control]" >&2; exit 2 ;;
	esac
	shift
done

if [ "$(id -u)" -ne 0 ]; then
	echo "make bench: needs root (network namespaces, XDP, conntrack); run 'sudo make bench'" >&2
	exit 1
fi
# rtpengine is the peer we compare with; the bench installs it itself.
if ! command -v rtpengine >/dev/null 2>&1; then
	echo "make bench: installing rtpengine-daemon (--no-install-recommends)"
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get update -q && apt-get install -y -q --no-install-recommends rtpengine-daemon; } \
		>"$OUT_DIR.apt.log" 2>&1 ||
		echo "make bench: rtpengine-daemon could not be installed (see $OUT_DIR.apt.log); its columns stay empty"
fi
mkdir -p "$OUT_DIR"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
work=$(mktemp -d /tmp/mp-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

failed=()
start_all=$(date +%s)
for part in "${PARTS[@]}"; do
	echo
	echo "=== $part ==="
	t0=$(date +%s)
	if ! bash "tests/bench/$part.sh" --out "$work/$part.json" "${QUICK[@]}"; then
		failed+=("$part")
		echo "--- $part could not measure (exit status above)"
	fi
	echo "--- $part took $(( $(date +%s) - t0 )) s"
done

python3 tests/bench/summary.py --out "$OUT_DIR/latest.json" --command "$COMMAND" \
	--seconds "$(( $(date +%s) - start_all ))" "$work"/*.json || exit 1
cp "$OUT_DIR/latest.json" "$OUT_DIR/bench-$stamp.json"
echo
echo "written: $OUT_DIR/latest.json and $OUT_DIR/bench-$stamp.json"
[ ${#failed[@]} -eq 0 ] || { echo "parts that could not measure: ${failed[*]}"; exit 1; }
