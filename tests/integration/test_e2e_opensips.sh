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
# The same six calls as the Kamailio suite (audio; audio+video; hold and
# unhold by re-INVITE; T.38 re-INVITE; CANCEL after a 183 with SDP; the
# callee hangs up), each made with engage_media_proxy() (the module creates
# the dialog) and with use_media_proxy() / end_media_session()
# (tests/e2e/opensips.cfg), and the same checks: sipp exit codes, both SDPs
# rewritten to the relay, the media counted exactly by the relay and
# forwarded by the XDP program, no session left after the call.
#
# What differs from Kamailio is the dialog_id: OpenSIPS's module sends one
# 64-bit decimal, (h_entry << 32) | h_id. A seventh call, in the engage
# style, checks that it reached the dispatcher in that form: while the call
# is up the dispatcher is restarted (TERM saves its call table), the saved
# dialog_id must be the decimal of OpenSIPS's own dialog (its MI dlg_list,
# over mi_datagram: db_id, and the reverse-hex ID that dlg_end_dlg wants,
# PROTOCOL.md §5.3), and the call must go on and end cleanly through the
# restarted dispatcher (the module reconnects after EPIPE).
#
# At the end, no daemon and no OpenSIPS logged a warning or an error. About
# a minute and a quarter, plus the first build.
#
# E2E_KEEP=DIR copies the logs, sipp traces and samples there before
# cleaning up; E2E_MODES="engage" (or "use") runs one style only.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"
. "$MP_ROOT/tests/e2e/e2e_lib.sh"

NAME="E2E calls through OpenSIPS 3.4"

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

# start_opensips MODE: engage | use; a copy of tests/e2e/opensips.cfg with
# this run's values in $TMP/os-MODE/, OpenSIPS in r with its main process
# in the foreground; sets $OS_PID and $MI_SOCK.
start_opensips() {
	local mode=$1 dir=$TMP/os-$1 use=0
	[ "$mode" = use ] && use=1
	mkdir -p "$dir"
	MI_SOCK=$dir/opensips.mi
	sed -e "s|@MPATH@|$OPENSIPS_TREE/modules/|g" \
		-e "s|@SIP_SOCKET@|udp:$R4:$SIP_PORT|g" \
		-e "s|@MP_SOCKET@|$SOCK|g" \
		-e "s|@MI_SOCKET@|$MI_SOCK|g" \
		-e "s|@UAS_URI@|sip:$B4:$SIP_PORT|g" \
		-e "s|@USE_MEDIA_PROXY@|$use|g" "$E2E/opensips.cfg" >"$dir/opensips.cfg"
	if grep -q '@[A-Z_]*@' "$dir/opensips.cfg"; then
		echo "# a placeholder of opensips.cfg is not filled in" >>"$TMP/opensips-$mode.log"
		return 1
	fi
	nsenter --net="/run/netns/$NS_R" -- "$OPENSIPS_TREE/opensips" -F -f "$dir/opensips.cfg" \
		-P "$dir/opensips.pid" -w "$dir" >"$TMP/opensips-$mode.log" 2>&1 &
	OS_PID=$!
	wait_for 10 udp_listening "$NS_R" "$R4:$SIP_PORT" && wait_for 5 test -S "$MI_SOCK"
}

OS_PID=
stop_opensips() { [ -z "$OS_PID" ] || stop_pid "$OS_PID"; OS_PID=; }
at_exit stop_opensips

# opensips_mi METHOD: OpenSIPS's JSON-RPC reply to METHOD over its
# mi_datagram socket (PROTOCOL.md §5.4), from a socket of our own.
opensips_mi() {
	python3 - "$MI_SOCK" "$1" "$TMP/mi-client.sock" <<'EOF'
import json, os, socket, sys
server, method, me = sys.argv[1:4]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
if os.path.exists(me):
    os.unlink(me)
s.bind(me)
s.settimeout(3)
try:
    s.sendto(json.dumps({"jsonrpc": "2.0", "method": method, "id": 1}).encode(), server)
    print(s.recv(65536).decode())
finally:
    os.unlink(me)
EOF
}

# --- the dialog_id call: the dispatcher restarts under it ---------------------

# The lines of each daemon's log between these line numbers (by daemon
# name) were written during the dispatcher's restart.
declare -A RESTART_FROM RESTART_TO

# during_restart: the media crossed the relay; OpenSIPS's dialog list; the
# dispatcher stopped (saving its call table), started again and linked to
# the relay again, with the call resynchronised, all well before the BYE.
# Returns 1 (no media), 2 (no dialog list), 3 (no saved table) or 4 (the
# relay did not link again).
during_restart() {
	local dir=$1
	wait_streams "$dir/media" 8 "$(media_pattern)" || return 1
	flows_dump "$dir/flows" || true
	opensips_mi dlg_list >"$dir/dlg_list.json" 2>"$dir/dlg_list.err" || return 2
	RESTART_FROM[relay]=$(wc -l <"$TMP/relay.log")
	RESTART_FROM[dispatcher]=$(wc -l <"$TMP/dispatcher.log")
	stop_pid "$DISPATCHER_PID"
	cp "$TMP/run-dispatcher/dispatcher_state" "$dir/dispatcher_state" 2>/dev/null || return 3
	start_daemon dispatcher
	DISPATCHER_PID=$pid
	wait_for 10 relay_linked &&
		grep -qs 'started: .* 1 call(s) restored' "$TMP/dispatcher.log" &&
		wait_for 5 grep -qs 'resynchronised: 1 session(s) on the relay, 0 stale' "$TMP/dispatcher.log" ||
		return 4
	RESTART_TO[relay]=$(wc -l <"$TMP/relay.log")
	RESTART_TO[dispatcher]=$(wc -l <"$TMP/dispatcher.log")
}

# dialog_id_check CALL: prints "dialog_id=D ID=X" for the one call in the
# saved table, or why it does not match OpenSIPS's dialog of that Call-ID;
# non-zero on a mismatch. D must be OpenSIPS's db_id for the dialog, a
# 64-bit decimal (h_entry << 32 | h_id), and its h_entry.h_id in reverse
# hex must be OpenSIPS's dialog ID (what dlg_end_dlg takes).
dialog_id_check() {
	python3 - "$TMP/$1/dispatcher_state" "$TMP/$1/dlg_list.json" <<'EOF'
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

# restart_call: the seventh call (engage style only) and its checks.
restart_call() {
	local call=engage-restart dir=$TMP/engage-restart got
	streams=audio
	# 8 s: the restart and the relay's reconnect (1 s) end long before the BYE.
	run_call "$call" uac_call.xml uas_call.xml 8000 during_restart
	check_phones "$call"
	check_media "$call" '^SIP/2.0 200'
	if [ "$during_rc" -eq 2 ]; then
		not_ok "$call: OpenSIPS answers dlg_list over mi_datagram ($(cat "$dir/dlg_list.err"))"
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
}

# restart_filter NAME: NAME's log without the lines the restart causes on
# purpose, and only those, within the restart's window:
# the relay's losing the dispatcher (a warning) and an error per failed
# reconnect while it is down. The dispatcher's log is taken as it is.
restart_filter() {
	local from=${RESTART_FROM[$1]:-} to=${RESTART_TO[$1]:-} expected
	case $1 in
	relay) expected='lost connection to dispatcher|cannot connect to' ;;
	*) cat; return ;;
	esac
	if [ -n "$from" ] && [ -n "$to" ]; then
		# (the pattern through the environment: awk -v would eat its backslashes)
		RE=$expected awk -v from="$from" -v to="$to" 'NR <= from || NR > to || $0 !~ ENVIRON["RE"]'
	else
		cat
	fi
}

# --- the calls, in both module styles -----------------------------------------

for mode in ${E2E_MODES:-engage use}; do
	if ! start_opensips "$mode"; then
		not_ok "$mode: OpenSIPS starts and listens on $R4:$SIP_PORT and $MI_SOCK"
		tail -n 20 "$TMP/opensips-$mode.log" | sed 's/^/# /'
		stop_opensips
		continue
	fi
	ok "$mode: OpenSIPS starts and listens on $R4:$SIP_PORT and $MI_SOCK"
	e2e_calls "$mode"
	[ "$mode" = engage ] && restart_call
	# (before stopping it: shutting down has its own noise)
	log_clean "$mode: OpenSIPS logged no error or warning" \
		'\] (WARNING|ERROR|CRITICAL|ALERT|BUG):' "$TMP/opensips-$mode.log"
	stop_opensips
done

e2e_daemon_logs_clean restart_filter

tap_done
