# Shared set-up for the accounting tests (test_accounting_*.sh; sourced
# after lib.sh and control_lib.sh, not run): one media-dispatcher with
# accounting configured as the test says, one media-relay (relay_ip
# 127.0.0.2, userspace forwarding) and answered calls with real media
# between two udp_peer phones, each ending with a `remove` that makes the
# dispatcher write one accounting record.
# shellcheck shell=bash

ACCT_FILE=$TMP/accounting.jsonl
ACCT_SPOOL=$TMP/spool
ACCT_RUN=$TMP/d1
ACCT_SOCK=$ACCT_RUN/dispatcher.sock
ACCT_LOG=$TMP/d1.log
ACCT_CALLS=0

# acct_start_daemons LINE...: writes $TMP/d1.ini with the [Dispatcher]
# accounting lines given (they may open further sections, e.g. [Database])
# plus accounting_file and accounting_spool in $TMP, starts the dispatcher
# and the relay and waits until the relay is linked. Sets ACCT_PORT and
# ACCT_MGMT. Returns non-zero if the daemons did not come up.
acct_start_daemons() {
	[ -n "${ACCT_PORT:-}" ] || read -r ACCT_PORT ACCT_MGMT < <(free_ports 2)
	make_test_certs || return 1
	write_dispatcher_conf "$TMP/d1.ini" "$ACCT_PORT" "$ACCT_MGMT" \
		"management_use_tls = no" "accounting_file = $ACCT_FILE" \
		"accounting_spool = $ACCT_SPOOL" "$@"
	acct_start_dispatcher || return 1
	write_relay_conf "$TMP/r2.ini" 127.0.0.2 "$ACCT_PORT" 0
	start_daemon r2 media-relay "$TMP/r2.ini" "$TMP/r2" "$TMP/r2.log"
	wait_for 10 acct_relay_linked
}

# acct_start_dispatcher: (again) with the config written before; waits for
# it to listen and, when a relay runs, for the relay to be linked again.
acct_start_dispatcher() {
	local before
	before=$(grep -c 'resynchronised' "$ACCT_LOG" 2>/dev/null)
	start_daemon d1 media-dispatcher "$TMP/d1.ini" "$ACCT_RUN" "$ACCT_LOG"
	wait_for 10 acct_started_since "${before:-0}" || return 1
	[ -z "${PID[r2]:-}" ] || wait_for 15 acct_resynced_since "${before:-0}"
}
acct_started_since() {
	[ "$(grep -c 'started: module socket' "$ACCT_LOG")" -gt "$(grep -c 'media-dispatcher stopped\|KILLED' "$ACCT_LOG")" ] ||
		return 1
}
acct_resynced_since() { [ "$(grep -c 'resynchronised' "$ACCT_LOG")" -gt "$1" ]; }
acct_relay_linked() { log_has "$ACCT_LOG" 'relay 127\.0\.0\.2 resynchronised'; }

# acct_kill_dispatcher: SIGKILL, the way a crash ends it.
acct_kill_dispatcher() {
	kill -KILL "${PID[d1]}" 2>/dev/null
	wait "${PID[d1]}" 2>/dev/null
	PID[d1]=""
	echo "--- KILLED ---" >>"$ACCT_LOG"
}

# acct_call CALL-ID [DIALOG-ID]: an answered call with 20 packets each way
# through the relay, then removed. 0 when every step was answered as it
# should be; the reason on stderr otherwise.
acct_call() {
	local cid=$1 dlg=${2:-} pa pb offer answer rip cport kport
	ACCT_CALLS=$((ACCT_CALLS + 1))
	read -r pa pb < <(free_ports 2 udp)
	offer=$(offer "$ACCT_SOCK" "$cid" "ft-$cid" "audio:127.0.0.1:$pa:sendrecv:ice=no" \
		${dlg:+--dialog-id "$dlg"} --from-uri "alice@example.com" --to-uri "bob@example.com")
	answer=$(answer "$ACCT_SOCK" "$cid" "ft-$cid" "tt-$cid" \
		"audio:127.0.0.1:$pb:sendrecv:ice=no" ${dlg:+--dialog-id "$dlg"} \
		--from-uri "alice@example.com" --to-uri "bob@example.com")
	read -r rip kport <<<"$offer"
	read -r _ cport <<<"$answer"
	if [ -z "$cport" ] || [ -z "$kport" ]; then
		echo "acct_call $cid: offer '$offer' / answer '$answer'" >&2
		return 1
	fi
	"$UDP_PEER" talk --bind "127.0.0.1:$pa" --to "$rip:$cport" --count 20 --size 172 --pt 0 \
		--expect 20 --interval-us 1000 --delay-ms 50 --timeout-ms 3000 >/dev/null 2>&1 &
	local caller=$!
	"$UDP_PEER" talk --bind "127.0.0.1:$pb" --to "$rip:$kport" --count 20 --size 100 --pt 8 \
		--expect 20 --interval-us 1000 --delay-ms 50 --timeout-ms 3000 >/dev/null 2>&1
	wait "$caller"
	local removed
	removed=$(mod "$ACCT_SOCK" remove --call-id "$cid" --from-tag "ft-$cid" --to-tag "tt-$cid")
	if [ "$removed" != removed ]; then
		echo "acct_call $cid: remove answered '$removed'" >&2
		return 1
	fi
}

# acct_status: the `accounting` management command (plain TCP).
acct_status() { "$PY" "$MPCTL" mgmt --port "$ACCT_MGMT" accounting; }

# acct_pending BACKEND: its backlog from `accounting` (D12), or "absent".
acct_pending() {
	acct_status 2>/dev/null | "$PY" -c '
import json, sys
b = [o for o in map(json.loads, filter(str.strip, sys.stdin)) if o.get("backend") == sys.argv[1]]
print(b[0]["pending"] if b else "absent")' "$1"
}

# jsonl_count CALL-ID: how many records of the call the jsonl file holds.
jsonl_count() {
	[ -f "$ACCT_FILE" ] || { echo 0; return; }
	"$PY" -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    if json.loads(line).get("call_id") == sys.argv[2]:
        n += 1
print(n)' "$ACCT_FILE" "$1"
}

# jsonl_record CALL-ID: the call's (last) record, one line.
jsonl_record() { grep -F "\"call_id\":\"$1\"" "$ACCT_FILE" | tail -1; }

# jsonl_has N CALL-ID...: each call has exactly N records (for wait_for).
jsonl_has() {
	local n=$1 cid
	shift
	for cid in "$@"; do [ "$(jsonl_count "$cid")" = "$n" ] || return 1; done
}
