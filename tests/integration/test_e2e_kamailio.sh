#!/usr/bin/env bash
# Real calls through Debian's Kamailio 5.6 and its stock mediaproxy module,
# with sipp phones, our media-dispatcher and our media-relay on the XDP fast
# path (issue 5, "E2E", Kamailio part).
#
#   a: sipp caller  --  r: Kamailio on R4:5060, media-dispatcher,  --  b: sipp callee
#      (A4)              media-relay (relay_ip R4, forwarding = xdp)     (B4)
#
# Calls (sipp scenarios in tests/e2e/sipp/): audio; audio+video; hold and
# unhold by re-INVITE; T.38 re-INVITE; CANCEL after a 183 with SDP (early
# media); a busy callee (486, no SDP); the callee hangs up. Each is made
# twice: with engage_media_proxy() + dlg_manage(), and with
# use_media_proxy() / end_media_session() (tests/e2e/kamailio.cfg,
# -A WITH_USE_MEDIA_PROXY).
#
# For each call the test asserts that both phones completed their scenario
# (sipp exit codes), that every SDP either phone received names the relay's
# address and the port of the right side, that the media (sipp playing a
# pcap, sipp -rtp_echo sending it back) crossed the relay and was counted
# exactly (management `sessions` while the call is up), that the XDP
# program forwarded it (counters of the pinned relay_flows map), that the
# session is gone after the call, and that the dispatcher wrote exactly one
# jsonl accounting record with the relay's counters and the dialog_id
# Kamailio's module sent (h_entry:h_id, read from Kamailio's dlg.list over
# jsonrpcs; null in the use style), timed_out false; none for the busy
# call, one for the cancelled call (its 183 had SDP; PROTOCOL.md D16).
#
# Then "media stops" (issue 6), once per style, with the relay restarted
# with stream_timeout = 3 s: the caller's media ends after 1.5 s and the
# relay expires the session. Engage style: the dispatcher ends the dialog
# through Kamailio's jsonrpcs (dlg.end_dlg [h_entry, h_id], the
# kamailio-jsonrpc dialect of mi_protocol = auto) and Kamailio's BYE ends
# both phones' scenarios. Use style: no dialog_id, so no MI request and no
# BYE (the caller hangs up itself later). Both: one record, timed_out true,
# all_streams_ice false.
#
# At the end, no daemon and no Kamailio logged a warning or an error,
# except the lines the test causes on purpose, each named where it is
# caused. About a minute and a half.
#
# The bed, the daemons, the calls and their checks are shared with the
# OpenSIPS suite: tests/e2e/e2e_lib.sh.
#
# E2E_KEEP=DIR copies the logs, sipp traces and samples there before
# cleaning up; E2E_MODES="engage" (or "use") runs one style only.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
. "$MP_ROOT/tests/e2e/e2e_lib.sh"

KAM_MODULES=/usr/lib/x86_64-linux-gnu/kamailio/modules
# What e2e_lib.sh asks the proxy for its dialogs, and how the dispatcher
# must report ending one through it.
# shellcheck disable=SC2034 # both read by e2e_lib.sh
E2E_DLG_LIST=dlg.list
# shellcheck disable=SC2034
E2E_MI_ENDED="kamailio-jsonrpc, pair"

# --- prerequisites, the bed and the daemons -----------------------------------

e2e_prerequisites "E2E calls through Kamailio" kamailio
for mod in mediaproxy dialog jsonrpcs tm rr; do
	if [ ! -e "$KAM_MODULES/$mod.so" ]; then
		skip "E2E calls through Kamailio" "Kamailio module $mod.so is not installed"
		tap_done
	fi
done
e2e_bed
e2e_daemons

# --- Kamailio -----------------------------------------------------------------

# start_kamailio MODE [NAME]: engage | use, logging to
# $TMP/kamailio-NAME.log (NAME defaults to MODE), its jsonrpcs datagram
# socket on $MI_SOCK; sets $KAM_PID.
start_kamailio() {
	local mode=$1 name=${2:-$1} dir=$TMP/kam-${2:-$1} args=()
	mkdir -p "$dir"
	[ "$mode" = use ] && args+=(-A WITH_USE_MEDIA_PROXY)
	rm -f "$MI_SOCK"   # (the last proxy's, if it left it: wait for this one's)
	nsenter --net="/run/netns/$NS_R" -- kamailio -DD -E -f "$E2E/kamailio.cfg" \
		-Y "$dir" -P "$dir/kamailio.pid" -w "$dir" -l "udp:$R4:$SIP_PORT" \
		-A "MP_SOCKET=\"$SOCK\"" -A "RPC_SOCKET=\"$MI_SOCK\"" \
		-A "UAS_URI=\"sip:$B4:$SIP_PORT\"" "${args[@]}" >"$TMP/kamailio-$name.log" 2>&1 &
	KAM_PID=$!
	wait_for 10 udp_listening "$NS_R" "$R4:$SIP_PORT" && wait_for 5 test -S "$MI_SOCK"
}

KAM_PID=
stop_kamailio() { [ -z "$KAM_PID" ] || stop_pid "$KAM_PID"; KAM_PID=; }
at_exit stop_kamailio

# --- the calls, in both module styles -----------------------------------------

# run_mode MODE NAME CALLS...: Kamailio in style MODE (log NAME), the
# CALLS (e2e_lib functions, given MODE), Kamailio's log checked, Kamailio
# stopped.
run_mode() {
	local mode=$1 name=$2 calls
	shift 2
	if ! start_kamailio "$mode" "$name"; then
		not_ok "$name: Kamailio starts and listens on $R4:$SIP_PORT and $MI_SOCK"
		tail -n 20 "$TMP/kamailio-$name.log" | sed 's/^/# /'
		stop_kamailio
		return
	fi
	ok "$name: Kamailio starts and listens on $R4:$SIP_PORT and $MI_SOCK"
	for calls in "$@"; do "$calls" "$mode"; done
	# (before stopping it: shutting down has its own noise)
	log_clean "$name: Kamailio logged no error or warning" \
		' (WARNING|ERROR|CRITICAL|ALERT|BUG):' "$TMP/kamailio-$name.log"
	stop_kamailio
}

for mode in ${E2E_MODES:-engage use}; do
	run_mode "$mode" "$mode" e2e_calls
done

# Media stops: the relay again, with a short stream_timeout.
e2e_relay_expiring
for mode in ${E2E_MODES:-engage use}; do
	run_mode "$mode" "$mode-expire" e2e_expire_call
done

e2e_records_final
e2e_daemon_logs_clean

tap_done
