#!/usr/bin/env bash
# Builds the real OpenSIPS 3.4 that the OpenSIPS E2E test runs
# (tests/integration/test_e2e_opensips.sh; docs: ../shared/docs/SERVICES.md)
# from ../shared/vendor/opensips-3.4.tar.gz, once, into a cache directory
# outside the repository keyed by the tarball's sha256, and prints the path
# of the built tree (opensips binary at its top, modules in modules/).
#
#   scripts/build-opensips.sh [--check]
#
# --check only says whether the tree is built (exit 0, path printed) or not
# (exit 4), without building.
#
# Exit status: 0 built (or already built); 3 the tarball is absent (a clone
# without ../shared): the caller skips, with the message on stderr as the
# reason; 1 the build failed or timed out (the tail of the build log on
# stderr); 4 not built (--check).
#
# Environment: OPENSIPS_TARBALL (default ../shared/vendor/opensips-3.4.tar.gz
# next to the repository), OPENSIPS_CACHE (default
# /var/cache/mediaproxy-xdp, or ~/.cache/mediaproxy-xdp when that is not
# writable), OPENSIPS_BUILD_TIMEOUT (seconds, default 900),
# OPENSIPS_JOBS (default: the number of CPUs).
#
# Test equipment only: nothing of OpenSIPS is built into or shipped with
# the product.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARBALL=${OPENSIPS_TARBALL:-$ROOT/../shared/vendor/opensips-3.4.tar.gz}
TIMEOUT=${OPENSIPS_BUILD_TIMEOUT:-900}
JOBS=${OPENSIPS_JOBS:-$(nproc 2>/dev/null || echo 2)}
# SERVICES.md's list: what tests/e2e/opensips.cfg loads, plus mi_fifo,
# signaling and textops for configurations run by hand. A tree missing any
# of them is rebuilt. (proto_udp, also listed there, is part of the 3.4
# core, net/proto_udp, and needs no build of its own.)
MODULES=(sl tm rr maxfwd dialog mediaproxy mi_datagram mi_fifo signaling
	sipmsgops textops)

check_only=0
case "${1:-}" in
--check) check_only=1 ;;
'') ;;
*) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

if [ ! -r "$TARBALL" ]; then
	echo "OpenSIPS source tarball $TARBALL is absent" >&2
	exit 3
fi

if [ -n "${OPENSIPS_CACHE:-}" ]; then
	cache=$OPENSIPS_CACHE
elif mkdir -p /var/cache/mediaproxy-xdp 2>/dev/null && [ -w /var/cache/mediaproxy-xdp ]; then
	cache=/var/cache/mediaproxy-xdp
else
	cache=${XDG_CACHE_HOME:-$HOME/.cache}/mediaproxy-xdp
fi
mkdir -p "$cache"
sha=$(sha256sum "$TARBALL" | cut -d' ' -f1)
tree=$cache/opensips-$sha
log=$tree.build.log
# The stamp is written last, so a tree without it is a build that was cut
# short and is started again from scratch.
stamp=$tree/.mediaproxy-built

complete() {
	local m
	[ -x "$tree/opensips" ] || return 1
	for m in "${MODULES[@]}"; do
		[ -f "$tree/modules/$m/$m.so" ] || return 1
	done
}
built() { [ -f "$stamp" ] && complete; }

if built; then
	echo "$tree"
	exit 0
fi
if [ "$check_only" -eq 1 ]; then
	exit 4
fi

# Two test runs at once build once: the second waits for the first.
exec 9>"$tree.lock"
if ! flock -w "$TIMEOUT" 9; then
	echo "build-opensips: another build of $tree held the lock for ${TIMEOUT}s" >&2
	exit 1
fi
if built; then
	echo "$tree"
	exit 0
fi

fail() {
	echo "build-opensips: $1; the end of $log:" >&2
	tail -n 30 "$log" | sed 's/^/    /' >&2
	exit 1
}

rm -rf "$tree"
mkdir -p "$tree"
echo "build-opensips: building OpenSIPS from $TARBALL into $tree ($JOBS jobs; log $log)" >&2
start=$SECONDS
{
	echo "== $(date -u '+%F %T') tar xzf $TARBALL"
	tar xzf "$TARBALL" -C "$tree"
} >"$log" 2>&1 || fail "unpacking failed"
mods=()
for m in "${MODULES[@]}"; do mods+=("modules/$m"); done
# The two make steps share one deadline, so a wedged compiler is a clear
# failure rather than a hung test run.
deadline=$((SECONDS + TIMEOUT))
{
	echo "== make app"
	timeout "$TIMEOUT" make -C "$tree" -j"$JOBS" app
} >>"$log" 2>&1 || fail "make app failed (or ran over ${TIMEOUT}s)"
left=$((deadline - SECONDS))
[ "$left" -gt 0 ] || fail "the build ran over ${TIMEOUT}s"
{
	echo "== make modules"
	timeout "$left" make -C "$tree" -j"$JOBS" modules modules="${mods[*]}"
} >>"$log" 2>&1 || fail "make modules failed (or ran over ${TIMEOUT}s)"
complete || fail "the build finished but a module is missing"
"$tree/opensips" -V >>"$log" 2>&1 || fail "the built opensips does not run"
touch "$stamp"
echo "build-opensips: built in $((SECONDS - start)) s" >&2
echo "$tree"
