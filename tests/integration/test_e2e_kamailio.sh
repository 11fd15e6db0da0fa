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
# media); the callee hangs up. Each is made twice: with
# engage_media_proxy() + dlg_manage(), and with use_media_proxy() /
# end_media_session() (tests/e2e/kamailio.cfg, -A WITH_USE_MEDIA_PROXY).
#
# For each call the test asserts that both phones completed their scenario
# (sipp exit codes), that every SDP either phone received names the relay's
# address and the port of the right side, that the media (sipp playing a
# pcap, sipp -rtp_echo sending it back) crossed the relay and was counted
# exactly (management `sessions` while the call is up), that the XDP
# program forwarded it (counters of the pinned relay_flows map), and that
# the session is gone after the call. At the end, no daemon and no
# Kamailio logged a warning or an error. About a minute.
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

# start_kamailio MODE: engage | use; sets $KAM_PID.
start_kamailio() {
	local mode=$1 dir=$TMP/kam-$1 args=()
	mkdir -p "$dir"
	[ "$mode" = use ] && args+=(-A WITH_USE_MEDIA_PROXY)
	nsenter --net="/run/netns/$NS_R" -- kamailio -DD -E -f "$E2E/kamailio.cfg" \
		-Y "$dir" -P "$dir/kamailio.pid" -w "$dir" -l "udp:$R4:$SIP_PORT" \
		-A "MP_SOCKET=\"$SOCK\"" -A "RPC_SOCKET=\"$dir/kamailio.jsonrpc\"" \
		-A "UAS_URI=\"sip:$B4:$SIP_PORT\"" "${args[@]}" >"$TMP/kamailio-$mode.log" 2>&1 &
	KAM_PID=$!
	wait_for 10 udp_listening "$NS_R" "$R4:$SIP_PORT"
}

KAM_PID=
stop_kamailio() { [ -z "$KAM_PID" ] || stop_pid "$KAM_PID"; KAM_PID=; }
at_exit stop_kamailio

# --- the calls, in both module styles -----------------------------------------

for mode in ${E2E_MODES:-engage use}; do
	if ! start_kamailio "$mode"; then
		not_ok "$mode: Kamailio starts and listens on $R4:$SIP_PORT"
		tail -n 20 "$TMP/kamailio-$mode.log" | sed 's/^/# /'
		continue
	fi
	ok "$mode: Kamailio starts and listens on $R4:$SIP_PORT"
	e2e_calls "$mode"
	# (before stopping it: shutting down has its own noise)
	log_clean "$mode: Kamailio logged no error or warning" ' (WARNING|ERROR|CRITICAL|ALERT|BUG):' \
		"$TMP/kamailio-$mode.log"
	stop_kamailio
done

e2e_daemon_logs_clean

tap_done
