#!/usr/bin/env bash
# Real calls through OpenSIPS 3.4 and its stock mediaproxy module, with sipp
# phones, our media-dispatcher and our media-relay on the XDP fast path
# (issue 5, "E2E", OpenSIPS part; the Kamailio part is
# test_e2e_kamailio.sh, and the two share tests/e2e/e2e_lib.sh).
#
#   a: sipp caller  --  r: OpenSIPS on R4:5060, media-dispatcher,  --  b: sipp callee
#      (A4)              media-relay (relay_ip R4, forwarding = xdp)     (B4)
#
# OpenSIPS is not packaged by Debian: scripts/build-opensips.sh builds it
# from ../shared/vendor/opensips-3.4.tar.gz once (about a minute on two
# cores) into a cache directory keyed by the tarball's sha256, and later
# runs reuse it. Without the tarball (a clone without ../shared) the test
# skips and says so; a failed build is a failure with the build log's end.
#
# The same seven calls as the Kamailio suite (audio; audio+video; hold and
# unhold by re-INVITE; T.38 re-INVITE; CANCEL after a 183 with SDP; a busy
# callee; the callee hangs up), each made with engage_media_proxy() (the
# module creates the dialog) and with use_media_proxy() /
# end_media_session() (tests/e2e/opensips.cfg), and the same checks: sipp
# exit codes, both SDPs rewritten to the relay, the media counted exactly
# by the relay and forwarded by the XDP program, no session left after the
# call, exactly one jsonl accounting record per answered call with the
# relay's counters and the dialog_id the module sent (OpenSIPS's db_id,
# from its dlg_list over mi_datagram; null in the use style), none for the
# busy call (PROTOCOL.md D16).
#
# What differs from Kamailio is the dialog_id: OpenSIPS's module sends one
# 64-bit decimal, (h_entry << 32) | h_id. An eighth call, in the engage
# style, checks that it reached the dispatcher in that form: while the call
# is up the dispatcher is restarted (TERM saves its call table), the saved
# dialog_id must be the decimal of OpenSIPS's own dialog (its MI dlg_list,
# over mi_datagram: db_id, and the reverse-hex ID that dlg_end_dlg wants,
# PROTOCOL.md §5.3), and the call must go on and end cleanly through the
# restarted dispatcher (the module reconnects after EPIPE), leaving one
# accounting record.
#
# Then "media stops" (issue 6), once per style, with the relay restarted
# with stream_timeout = 3 s: the caller's media ends after 1.5 s and the
# relay expires the session. Engage style: the dispatcher ends the dialog
# through OpenSIPS's mi_datagram (JSON-RPC dlg_end_dlg with the reverse-hex
# DID that OpenSIPS >= 3.1 takes, PROTOCOL.md §5.3: the opensips-json
# dialect of mi_protocol = auto) and OpenSIPS's BYE ends both phones'
# scenarios. Use style: no dialog_id, so no MI request and no BYE (the
# caller hangs up itself later). Both: one record, timed_out true,
# all_streams_ice false.
#
# At the end, no daemon and no OpenSIPS logged a warning or an error,
# except the lines the test causes on purpose, each named where it is
# caused. About a minute and three quarters, plus the first build.
#
# E2E_KEEP=DIR copies the logs, sipp traces and samples there before
# cleaning up; E2E_MODES="engage" (or "use") runs one style only.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
. "$MP_ROOT/tests/e2e/e2e_lib.sh"

NAME="E2E calls through OpenSIPS 3.4"
# What e2e_lib.sh asks the proxy for its dialogs, and how the dispatcher
# must report ending one through it.
# shellcheck disable=SC2034 # both read by e2e_lib.sh
E2E_DLG_LIST=dlg_list
# shellcheck disable=SC2034
E2E_MI_ENDED="opensips-json, reverse-hex"

# --- prerequisites and OpenSIPS itself -----------------------------------------

e2e_prerequisites "$NAME"

build_start=$SECONDS
OPENSIPS_TREE=$("$MP_ROOT/scripts/build-opensips.sh" 2>"$TMP/build-opensips.err")
build_rc=$?
build_secs=$((SECONDS - build_start))
case $build_rc in
0) ;;
3)
	skip "$NAME" "$(tail -n 1 "$TMP/build-opensips.err")"
	tap_done
	;;
*)
	not_ok "OpenSIPS 3.4 is built from the vendor tarball (scripts/build-opensips.sh exit $build_rc)"
	tail -n 40 "$TMP/build-opensips.err" | sed 's/^/# /'
	tap_done
	;;
esac
if grep -q 'built in' "$TMP/build-opensips.err"; then
	ok "OpenSIPS 3.4 is built from the vendor tarball (${build_secs}s, into $OPENSIPS_TREE)"
else
	ok "OpenSIPS 3.4 is built from the vendor tarball (cached in $OPENSIPS_TREE)"
fi

e2e_bed
e2e_daemons

# --- OpenSIPS ------------------------------------------------------------------

# start_opensips MODE [NAME]: engage | use; a copy of
# tests/e2e/opensips.cfg with this run's values in $TMP/os-NAME/ (NAME
# defaults to MODE), OpenSIPS in r with its main process in the foreground,
# logging to $TMP/opensips-NAME.log, its mi_datagram socket on $MI_SOCK;
# sets $OS_PID.
start_opensips() {
	local mode=$1 name=${2:-$1} dir=$TMP/os-${2:-$1} use=0
	[ "$mode" = use ] && use=1
	mkdir -p "$dir"
	rm -f "$MI_SOCK"   # (the last proxy's, if it left it: wait for this one's)
	sed -e "s|@MPATH@|$OPENSIPS_TREE/modules/|g" \
		-e "s|@SIP_SOCKET@|udp:$R4:$SIP_PORT|g" \
		-e "s|@MP_SOCKET@|$SOCK|g" \
		-e "s|@MI_SOCKET@|$MI_SOCK|g" \
		-e "s|@UAS_URI@|sip:$B4:$SIP_PORT|g" \
		-e "s|@USE_MEDIA_PROXY@|$use|g" "$E2E/opensips.cfg" >"$dir/opensips.cfg"
	if grep -q '@[A-Z_]*@' "$dir/opensips.cfg"; then
		echo "# a placeholder of opensips.cfg is not filled in" >>"$TMP/opensips-$name.log"
		return 1
	fi
	nsenter --net="/run/netns/$NS_R" -- "$OPENSIPS_TREE/opensips" -F -f "$dir/opensips.cfg" \
		-P "$dir/opensips.pid" -w "$dir" >"$TMP/opensips-$name.log" 2>&1 &
	OS_PID=$!
	wait_for 10 udp_listening "$NS_R" "$R4:$SIP_PORT" && wait_for 5 test -S "$MI_SOCK"
}

OS_PID=
stop_opensips() { [ -z "$OS_PID" ] || stop_pid "$OS_PID"; OS_PID=; }
at_exit stop_opensips

# --- the dialog_id call: the dispatcher restarts under it ---------------------

# during_restart: the media crossed the relay; OpenSIPS's dialog list; the
# dispatcher stopped (saving its call table), started again and linked to
# the relay again, with the call resynchronised, all well before the BYE.
# Returns 1 (no media), 2 (no dialog list), 3 (no saved table) or 4 (the
# relay did not link again).
during_restart() {
	local dir=$1
	local from
	wait_streams "$dir/media" 8 "$(media_pattern)" || return 1
	flows_dump "$dir/flows" || true
	# (OpenSIPS's JSON-RPC over mi_datagram, PROTOCOL.md §5.4)
	capture_dialogs "$dir" || return 2
	from=$(log_lines relay)
	stop_pid "$DISPATCHER_PID"
	cp "$TMP/run-dispatcher/dispatcher_state" "$dir/dispatcher_state" 2>/dev/null || return 3
	start_daemon dispatcher
	DISPATCHER_PID=$pid
	wait_for 10 relay_linked &&
		grep -qs 'started: .* 1 call(s) restored' "$TMP/dispatcher.log" &&
		wait_for 5 grep -qs 'resynchronised: 1 session(s) on the relay, 0 stale' "$TMP/dispatcher.log" ||
		return 4
	# (on purpose: the relay loses the dispatcher (a warning) and logs an
	# error per failed reconnect while it is down)
	expect_log relay "$from" "$(log_lines relay)" 'lost connection to dispatcher|cannot connect to'
}

# dialog_id_check CALL: prints "dialog_id=D ID=X" for the one call in the
# saved table, or why it does not match OpenSIPS's dialog of that Call-ID;
# non-zero on a mismatch. D must be OpenSIPS's db_id for the dialog, a
# 64-bit decimal (h_entry << 32 | h_id), and its h_entry.h_id in reverse
# hex must be OpenSIPS's dialog ID (what dlg_end_dlg takes).
dialog_id_check() {
	python3 - "$TMP/$1/dispatcher_state" "$TMP/$1/dlg.json" <<'EOF'
import json, re, sys
state_path, list_path = sys.argv[1:3]
with open(state_path) as f:
    calls = [json.loads(line) for line in f if line.strip()][1:]
if len(calls) != 1:
    sys.exit("the saved table has %d calls, not the one up" % len(calls))
call = calls[0]
with open(list_path) as f:
    # (the dialogs of earlier calls may linger a while in state 5, deleted)
    dialogs = [d for d in json.load(f)["result"]["Dialogs"] if d["callid"] == call["call_id"]]
if len(dialogs) != 1:
    sys.exit("OpenSIPS lists %d dialogs for call %s" % (len(dialogs), call["call_id"]))
dlg = dialogs[0]
did = call.get("dialog_id")
if not isinstance(did, str) or not re.fullmatch(r"[0-9]{1,20}", did) or int(did) >= 1 << 64:
    sys.exit("saved dialog_id %r is not one 64-bit decimal" % did)
if did != dlg["db_id"]:
    sys.exit("saved dialog_id %s is not OpenSIPS's db_id %s" % (did, dlg["db_id"]))
def reverse_hex(n):   # OpenSIPS ut.h int2reverse_hex
    return ("%x" % n)[::-1]
n = int(did)
want = "%s.%s" % (reverse_hex(n >> 32), reverse_hex(n & 0xffffffff))
if want != dlg["ID"]:
    sys.exit("dialog_id %s is h_entry.h_id %s in reverse hex, but OpenSIPS's ID is %s"
             % (did, want, dlg["ID"]))
print("dialog_id=%s ID=%s" % (did, dlg["ID"]))
EOF
}

# restart_call: the eighth call (engage style only) and its checks.
restart_call() {
	local call=engage-restart dir=$TMP/engage-restart got
	streams=audio
	# 8 s: the restart and the relay's reconnect (1 s) end long before the BYE.
	run_call "$call" uac_call.xml uas_call.xml 8000 during_restart
	check_phones "$call"
	check_media "$call" '^SIP/2.0 200'
	if [ "$during_rc" -eq 2 ]; then
		not_ok "$call: OpenSIPS answers dlg_list over mi_datagram ($(cat "$dir/dlg.err"))"
	elif [ "$during_rc" -eq 3 ]; then
		not_ok "$call: the stopped dispatcher saved its call table"
	elif [ "$during_rc" -ne 1 ]; then
		if got=$(dialog_id_check "$call" 2>&1); then
			ok "$call: the dispatcher kept OpenSIPS's dialog_id, one 64-bit decimal (h_entry << 32 | h_id) matching OpenSIPS's dialog ($got)"
		else
			not_ok "$call: the dispatcher kept OpenSIPS's dialog_id, one 64-bit decimal matching OpenSIPS's dialog ($got)"
		fi
	fi
	check "$call: the restarted dispatcher restored the call and the relay linked again" \
		test "$during_rc" -eq 0 -o "$during_rc" -eq 1
	# The BYE's remove went through the restarted dispatcher to the relay.
	check_gone "$call"
	check_record "$call" media false
}

# --- the calls, in both module styles -----------------------------------------

# engage_calls MODE: the seven calls, and in the engage style the restart
# call after them.
engage_calls() {
	e2e_calls "$1"
	[ "$1" = engage ] && restart_call
}

# run_mode MODE NAME CALLS...: OpenSIPS in style MODE (log NAME), the CALLS
# (functions, given MODE), OpenSIPS's log checked, OpenSIPS stopped.
run_mode() {
	local mode=$1 name=$2 calls
	shift 2
	if ! start_opensips "$mode" "$name"; then
		not_ok "$name: OpenSIPS starts and listens on $R4:$SIP_PORT and $MI_SOCK"
		tail -n 20 "$TMP/opensips-$name.log" | sed 's/^/# /'
		stop_opensips
		return
	fi
	ok "$name: OpenSIPS starts and listens on $R4:$SIP_PORT and $MI_SOCK"
	for calls in "$@"; do "$calls" "$mode"; done
	# (before stopping it: shutting down has its own noise). OpenSIPS
	# warns when its own timer process ran late on a busy machine ("timer
	# job <x> has a N us delay"), which says nothing about us.
	log_clean "$name: OpenSIPS logged no error or warning" \
		'\] (WARNING|ERROR|CRITICAL|ALERT|BUG):' "$TMP/opensips-$name.log" \
		'WARNING:core:handle_timer_job: .*timer job <[^>]*> has a [0-9]+ us delay'
	stop_opensips
}

for mode in ${E2E_MODES:-engage use}; do
	run_mode "$mode" "$mode" engage_calls
done

# Media stops: the relay again, with a short stream_timeout.
e2e_relay_expiring
for mode in ${E2E_MODES:-engage use}; do
	run_mode "$mode" "$mode-expire" e2e_expire_call
done

e2e_records_final
e2e_daemon_logs_clean

tap_done
