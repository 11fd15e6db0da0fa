# Shared helpers for the integration tests (sourced, not run): TAP output,
# a temp dir removed on exit, and waiting for conditions with a deadline.
# shellcheck shell=bash

MP_ROOT=${MP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MP_BUILD=${MP_BUILD:-build}
case "$MP_BUILD" in /*) ;; *) MP_BUILD=$MP_ROOT/$MP_BUILD ;; esac
BIN=$MP_BUILD/bin

tap_n=0
tap_failed=0
ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
not_ok() { tap_n=$((tap_n + 1)); tap_failed=1; echo "not ok $tap_n - $*"; }
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $1 # SKIP $2"; }
# check DESCRIPTION COMMAND...: one test from a command's exit status.
check() { local d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }
tap_done() { exit "$tap_failed"; }

TMP=$(mktemp -d /tmp/mp-it.XXXXXX)
_cleanups=()
at_exit() { _cleanups+=("$*"); }
_run_cleanups() {
	local i
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do eval "${_cleanups[i]}" || true; done
	rm -rf "$TMP"
}
trap _run_cleanups EXIT
# A signal ends the script through exit, so the EXIT trap still cleans up.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# wait_for SECONDS COMMAND...: polls every 50 ms until COMMAND succeeds.
wait_for() {
	local deadline=$((SECONDS + $1)); shift
	until "$@"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.05
	done
}

process_gone() { ! kill -0 "$1" 2>/dev/null; }

# stop_pid PID: TERM, then KILL after 5 s; only for processes we started.
stop_pid() {
	kill -TERM "$1" 2>/dev/null || return 0
	wait_for 5 process_gone "$1" || kill -KILL "$1" 2>/dev/null
	wait "$1" 2>/dev/null || true
}
