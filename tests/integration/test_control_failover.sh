#!/usr/bin/env bash
# The control plane when things go wrong, with the real daemons on loopback:
# one media-dispatcher and two media-relays (127.0.0.2, 127.0.0.3, D8).
# A dispatcher restart keeps its calls (§2.9); a hung relay (SIGSTOP) costs
# a new call less than the module's 500 ms (D2); a killed relay's calls get
# error while new ones go to the other relay, and its restart resyncs (§2.7);
# relay SIGHUP halts gracefully (§2.6) and SIGTERM reports its calls expired
# (§2.8).
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"

make_test_certs || { echo "Bail out! make-certs.sh failed"; exit 1; }
read -r D_PORT D_MGMT < <(free_ports 2)
SOCK=$TMP/d/dispatcher.sock
DLOG=$TMP/d.log

write_dispatcher_conf "$TMP/d.ini" "$D_PORT" "$D_MGMT"
write_relay_conf "$TMP/r2.ini" 127.0.0.2 "$D_PORT" 0
write_relay_conf "$TMP/r3.ini" 127.0.0.3 "$D_PORT" 1
start_daemon d media-dispatcher "$TMP/d.ini" "$TMP/d" "$DLOG"
wait_for 5 log_has "$DLOG" 'started: module socket'
start_daemon r2 media-relay "$TMP/r2.ini" "$TMP/r2" "$TMP/r2.log"
start_daemon r3 media-relay "$TMP/r3.ini" "$TMP/r3" "$TMP/r3.log"
resynced() {    # resynced LOG IP...: each relay has been resynchronised
	local log=$1 ip; shift
	for ip; do log_has "$log" "relay $ip resynchronised" || return 1; done
}
if wait_for 10 resynced "$DLOG" 127.0.0.2 127.0.0.3; then
	ok "the dispatcher and both relays are up"
else
	not_ok "the dispatcher and both relays are up (log: $(tail -5 "$DLOG"))"
	tap_done
fi

M1=audio:127.0.0.1:4000:sendrecv:ice=no
M2=audio:127.0.0.1:4002:sendrecv:ice=no
# call CALL-ID [RELAY-IP]: offer and answer (dialog_id h:i); prints the
# offer's reply, or "mismatch: ..." when the answer's names another relay.
call() {
	local cid=$1 pref=() o a
	[ $# -lt 2 ] || pref=(--media-relay "$2")
	o=$(offer "$SOCK" "$cid" "ft-$cid" "$M1" --dialog-id "1:${#cid}" "${pref[@]}")
	a=$(answer "$SOCK" "$cid" "ft-$cid" "tt-$cid" "$M2" --dialog-id "1:${#cid}")
	[ "${o%% *}" = "${a%% *}" ] || o="mismatch: $o / answer: $a"
	echo "$o"
}
hangup() { mod "$SOCK" remove --call-id "$1" --from-tag "ft-$1" --to-tag "tt-$1"; }
relay_of() { echo "${1%% *}"; }
# timed_offer CALL-ID [RELAY-IP]: one offer; sets REPLY and ELAPSED (s).
timed_offer() {
	local pref=()
	[ $# -lt 2 ] || pref=(--media-relay "$2")
	REPLY=$(mod "$SOCK" --elapsed update --type request --call-id "$1" --from-tag "ft-$1" \
		--dialog-id 2:3 --media "$M1" "${pref[@]}" 2>"$TMP/elapsed")
	ELAPSED=$(sed -n 's/^elapsed=//p' "$TMP/elapsed")
	: "${ELAPSED:=99}"
}
under() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }
# mark_log, then log_new ERE: a line matching ERE was written to the
# dispatcher's log after the mark (earlier events log the same lines).
MARK=0
mark_log() { MARK=$(wc -l <"$DLOG"); }
log_new() { tail -n +$((MARK + 1)) "$DLOG" | grep -qE -- "$1"; }
status_is() { test "$(relay_status "$D_MGMT" "$1")" = "$2"; }
session_count() {    # session_count IP: the relay's session_count in summary
	mgmt "$D_MGMT" summary | "$PY" -c "
import json, sys
print([o['session_count'] for o in map(json.loads, sys.stdin) if o['ip'] == '$1'] or ['absent'])" |
		tr -d "[]'"
}

# --- dispatcher restart (§2.9) ---------------------------------------------------
p2=$(call restart-2 127.0.0.2)
p3=$(call restart-3 127.0.0.3)
check "a call placed on each relay ($p2; $p3)" \
	test "$(relay_of "$p2")" = 127.0.0.2 -a "$(relay_of "$p3")" = 127.0.0.3
stop_daemon d; rc=$?
check "the dispatcher exits 0 on SIGTERM" test $rc -eq 0
check "it saves its 2 calls" log_has "$DLOG" 'call table: saved 2 call\(s\)'
DLOG=$TMP/d-2.log
start_daemon d media-dispatcher "$TMP/d.ini" "$TMP/d" "$DLOG"
check "started again, it restores them: '2 call(s) restored'" \
	wait_for 5 log_has "$DLOG" 'started: module socket .*, 2 call\(s\) restored'
kept() {
	log_has "$DLOG" 'relay 127.0.0.2 resynchronised: 1 session\(s\) on the relay, 0 stale' &&
		log_has "$DLOG" 'relay 127.0.0.3 resynchronised: 1 session\(s\) on the relay, 0 stale'
}
check "both relays reconnect and the resync keeps both calls" wait_for 10 kept
check "a remove for a restored call reaches relay 127.0.0.2: removed" test "$(hangup restart-2)" = removed
check "a remove for a restored call reaches relay 127.0.0.3: removed" test "$(hangup restart-3)" = removed
check "the dispatcher logs both removals at the relays" \
	log_has "$DLOG" 'call_id restart-2: removed from relay 127.0.0.2'
check "... (127.0.0.3)" log_has "$DLOG" 'call_id restart-3: removed from relay 127.0.0.3'

# --- a hung relay (SIGSTOP): failover inside the module's 500 ms (D2) ---------------
mark_log
kill -STOP "${PID[r3]}"
timed_offer stop-pref 127.0.0.3
check "with 127.0.0.3 hung, a call preferring it is placed on 127.0.0.2 ($REPLY)" \
	test "$(relay_of "$REPLY")" = 127.0.0.2
check "... answered in ${ELAPSED} s, under the module's 0.5 s" under "$ELAPSED" 0.5
check "the dispatcher logs the relay's missed deadline" \
	log_new 'relay 127.0.0.3: no reply to update [0-9]+ within'
placed=0 slow=0
for i in 1 2 3 4; do
	timed_offer "stop-$i"
	[ "$(relay_of "$REPLY")" = 127.0.0.2 ] && placed=$((placed + 1))
	under "$ELAPSED" 0.5 || slow=$((slow + 1))
done
check "the next 4 calls all go to 127.0.0.2 ($placed of 4), none slower than 0.5 s ($slow)" \
	test $placed -eq 4 -a $slow -eq 0
kill -CONT "${PID[r3]}"
check "after SIGCONT the relay's ping makes it active again" \
	wait_for 5 log_new 'relay 127.0.0.3: ping received, active again'
timed_offer stop-back 127.0.0.3
check "the recovered relay takes calls again ($REPLY)" test "$(relay_of "$REPLY")" = 127.0.0.3
removed=0
for c in stop-pref stop-1 stop-2 stop-3 stop-4 stop-back; do
	[ "$(mod "$SOCK" remove --call-id "$c" --from-tag "ft-$c")" = removed ] && removed=$((removed + 1))
done
check "all 6 of those calls are removed" test $removed -eq 6

# --- a dead relay (SIGKILL) -------------------------------------------------------------
k3=$(call kill-3 127.0.0.3)
k2=$(call kill-2 127.0.0.2)
check "a call on each relay before the kill ($k3; $k2)" \
	test "$(relay_of "$k3")" = 127.0.0.3 -a "$(relay_of "$k2")" = 127.0.0.2
R3_TABLE=$TMP/r3/relay-127.0.0.3.sessions.json
mark_log
kill -KILL "${PID[r3]}"; reap r3
check "the dispatcher notices the killed relay's connection is lost" \
	wait_for 5 log_new 'relay 127.0.0.3 disconnected; [1-9][0-9]* call\(s\) wait'
check "summary no longer lists it" test "$(relay_status "$D_MGMT" 127.0.0.3)" = absent
placed=0 slow=0
for i in 1 2 3 4; do
	timed_offer "dead-$i" 127.0.0.3
	[ "$(relay_of "$REPLY")" = 127.0.0.2 ] && placed=$((placed + 1))
	under "$ELAPSED" 0.5 || slow=$((slow + 1))
done
check "new calls (even preferring the dead relay) go to 127.0.0.2 ($placed of 4; $slow slow)" \
	test $placed -eq 4 -a $slow -eq 0
out=$(mod "$SOCK" update --type request --call-id kill-3 --from-tag ft-kill-3 --to-tag tt-kill-3 \
	--cseq 2 --dialog-id 1:6 --media "$M1")
check "a re-INVITE for a call on the dead relay gets error ($out)" test "$out" = error
check "... and the dispatcher logs that its relay is gone" \
	log_new 'call_id kill-3: relay 127.0.0.3 no longer connected'
check "the call on the surviving relay is unaffected: removed" test "$(hangup kill-2)" = removed

# With D6 the relay keeps its table on disk and a restart keeps the call.
if [ -s "$R3_TABLE" ]; then
	mark_log
	start_daemon r3 media-relay "$TMP/r3.ini" "$TMP/r3" "$TMP/r3-d6.log"
	check "D6: the restarted relay reloads its sessions and the resync keeps the call" \
		wait_for 10 log_new 'relay 127.0.0.3 resynchronised: [1-9][0-9]* session\(s\) on the relay, 0 stale'
	check "D6: the call survives the relay's SIGKILL: removed" test "$(hangup kill-3)" = removed
	b3=$(call kill-3b 127.0.0.3)
	check "D6: another call on the relay before killing it again ($b3)" \
		test "$(relay_of "$b3")" = 127.0.0.3
	mark_log
	kill -KILL "${PID[r3]}"; reap r3
	wait_for 5 log_new 'relay 127.0.0.3 disconnected; [1-9]'
	lost=kill-3b
else
	skip "D6: a SIGKILLed relay restarted with its session table keeps the call" \
		"needs D6 persistence (no $(basename "$R3_TABLE") written)"
	lost=kill-3
fi
# A relay that lost its table (no D6 file): the resync drops the call.
rm -f "$R3_TABLE"
mark_log
start_daemon r3 media-relay "$TMP/r3.ini" "$TMP/r3" "$TMP/r3-2.log"
check "the killed relay, restarted, reconnects" \
	wait_for 10 log_new 'relay 127.0.0.3 resynchronised: 0 session\(s\) on the relay, [1-9][0-9]* stale call\(s\) dropped'
check "the resync drops the call the relay no longer knows (log line)" \
	log_new "relay 127.0.0.3 no longer knows call $lost "
check "a remove for the dropped call gets error" test "$(hangup "$lost")" = error
check "summary lists the restarted relay as active" test "$(relay_status "$D_MGMT" 127.0.0.3)" = active
removed=0
for i in 1 2 3 4; do
	[ "$(mod "$SOCK" remove --call-id "dead-$i" --from-tag "ft-dead-$i")" = removed ] &&
		removed=$((removed + 1))
done
check "the 4 calls placed during the outage are removed" test $removed -eq 4

# --- relay SIGHUP: halting (§2.6) ------------------------------------------------------
h2=$(call halt-2 127.0.0.2)
check "a call on 127.0.0.2, its only one ($h2)" \
	test "$(relay_of "$h2")" = 127.0.0.2 -a "$(session_count 127.0.0.2)" = 1
mark_log
kill -HUP "${PID[r2]}"
check "after SIGHUP summary shows 127.0.0.2 halting" wait_for 5 status_is 127.0.0.2 halting
timed_offer halt-new 127.0.0.2
check "a new call preferring the halting relay goes to 127.0.0.3 ($REPLY, ${ELAPSED} s)" \
	test "$(relay_of "$REPLY")" = 127.0.0.3
check "... the dispatcher logs that the relay is halting" \
	log_new 'call_id halt-new: relay 127.0.0.2 is halting; trying the next relay'
placed=0
for i in 1 2 3; do
	timed_offer "halt-more-$i"
	[ "$(relay_of "$REPLY")" = 127.0.0.3 ] && placed=$((placed + 1))
done
check "new calls all go to 127.0.0.3 ($placed of 3)" test $placed -eq 3
check "the halting relay keeps running while it has a session" kill -0 "${PID[r2]}"
check "its existing call is still served: removed" test "$(hangup halt-2)" = removed
check "the halting relay exits once its last session is removed" \
	wait_for 5 process_gone "${PID[r2]}"
reap r2; rc=$?
check "... with status 0, saying why" \
	test $rc -eq 0 -a -n "$(grep 'halting: the last session has ended' "$TMP/r2.log")"
check "summary then lists 127.0.0.3 only" wait_for 5 status_is 127.0.0.2 absent
for c in halt-new halt-more-1 halt-more-2 halt-more-3; do mod "$SOCK" remove --call-id "$c" --from-tag "ft-$c" >/dev/null; done

# --- relay SIGTERM with an active call (§2.8) ---------------------------------------------
t3=$(call term-3 127.0.0.3)
check "a call on 127.0.0.3 ($t3)" test "$(relay_of "$t3")" = 127.0.0.3
mark_log
kill -TERM "${PID[r3]}"
wait_for 5 process_gone "${PID[r3]}"
reap r3; rc=$?
check "on SIGTERM the relay ends its sessions and exits 0 (status $rc)" test $rc -eq 0
check "the dispatcher logs the expired report for the call" \
	wait_for 5 log_new 'relay 127.0.0.3: call term-3 expired'
check "the relay logged ending 1 session" log_has "$TMP/r3-2.log" 'SIGTERM: ending all 1 sessions'

stop_daemon d; rc=$?
check "the dispatcher exits 0 on SIGTERM" test $rc -eq 0
check "no sanitizer report in any daemon log" sanitizer_clean
tap_done
