# What the E2E suites share (sourced after tests/integration/lib.sh and
# netns.sh): the test bed, media-dispatcher and media-relay in r, the sipp
# calls of tests/e2e/sipp/ and what every call is checked for. Each suite
# (test_e2e_kamailio.sh, test_e2e_opensips.sh) adds only its SIP proxy:
#
#   e2e_prerequisites NAME TOOL...   # skips the suite unless it can run
#   e2e_bed                          # namespaces, certificates, media
#   e2e_daemons                      # dispatcher and relay, linked
#   (start the proxy on $R4:$SIP_PORT with module socket $SOCK and its
#    datagram management socket on $MI_SOCK; set E2E_DLG_LIST and
#    E2E_MI_ENDED, below)
#   e2e_calls MODE                   # the seven calls and their checks
#   (stop the proxy)
#   e2e_relay_expiring               # the relay again, stream_timeout short
#   (start the proxy) e2e_expire_call MODE (stop the proxy)
#   e2e_records_final                # one record per answered call, no more
#   e2e_daemon_logs_clean
#
# Every call that saw an SDP answer must leave exactly one accounting
# record (jsonl, $ACCT_FILE) with the dialog_id the proxy's module sent
# (read from the proxy's own dialog list while the call is up) and the
# counters the relay showed; a call that never did, none (PROTOCOL.md D16).
#
# E2E_KEEP=DIR copies the logs, sipp traces and samples there before
# cleaning up.
# shellcheck shell=bash

E2E=$MP_ROOT/tests/e2e
MPCTL=$MP_ROOT/tests/tools/mpctl.py
SIPP_PCAP=/usr/share/sip-tester/g711a.pcap
SIP_PORT=5060
MGMT_PORT=25061
LINK_PORT=25060
UAC_MP=16000   # caller's media port (audio; video +2)
UAS_MP=26000   # callee's media port
PCAP_PACKETS=50  # RTP packets each call plays (the first 50 of g711a.pcap, 1.5 s)
SOCK=$TMP/run/dispatcher.sock
# The proxy's datagram management socket ([OpenSIPS] socket_path): every
# proxy the suite starts binds this one path, so one dispatcher config
# serves them all.
MI_SOCK=$TMP/run/proxy.mi
ACCT_FILE=$TMP/accounting.jsonl
# The "media stops" calls: the relay's stream_timeout for them (s), and how
# long the use-style caller waits before hanging up itself (ms): past the
# expiry (1.5 s of media + the timeout + up to 1 s until the relay's timer
# looks), with room for a wrong BYE from the proxy to arrive first.
EXPIRE_TIMEOUT=3
USE_EXPIRE_MS=8000
# Set by the suite: the proxy's JSON-RPC method that lists its dialogs, and
# how the dispatcher's MI client must report ending one ("DIALECT, FORM").
E2E_DLG_LIST=${E2E_DLG_LIST:-}
E2E_MI_ENDED=${E2E_MI_ENDED:-}
E2E_MODE=

if [ -n "${E2E_KEEP:-}" ]; then
	at_exit "mkdir -p '$E2E_KEEP' && cp -a '$TMP'/. '$E2E_KEEP'/ 2>/dev/null"
fi

# --- prerequisites and the bed ------------------------------------------------

# e2e_prerequisites NAME [TOOL...]: ends the test with a skip naming what is
# missing (root, a tool, sipp's sample pcap), or a failure when the daemons
# are not built.
e2e_prerequisites() {
	local name=$1 tool
	shift
	if [ "$(id -u)" -ne 0 ]; then
		skip "$name" "needs root (netns, XDP, sipp's raw socket for pcap play)"
		tap_done
	fi
	for tool in sipp bpftool nsenter ethtool python3 ss "$@"; do
		if ! command -v "$tool" >/dev/null; then
			skip "$name" "$tool is not installed"
			tap_done
		fi
	done
	if [ ! -r "$SIPP_PCAP" ]; then
		skip "$name" "$SIPP_PCAP (sip-tester) is missing"
		tap_done
	fi
	if [ ! -x "$BIN/media-dispatcher" ] || [ ! -x "$BIN/media-relay" ]; then
		not_ok "daemons are built ($BIN)"
		tap_done
	fi
}

# e2e_bed: the namespaces, a bpffs pin directory ($PIN), certificates and
# the media every caller plays ($TMP/media.pcap, $PCAP_BYTES UDP payload
# bytes); ends the test on failure.
e2e_bed() {
	local pcap_n
	if ! netns_setup; then
		not_ok "netns test bed (a, r, b) is set up"
		tap_done
	fi
	netns_pin_dir || { not_ok "bpffs is mounted"; tap_done; }
	PIN=$NS_PIN_DIR/relay
	"$MP_ROOT/tls/make-certs.sh" "$TMP/tls" >/dev/null 2>&1 || { not_ok "make-certs.sh"; tap_done; }
	# A 1.5 s slice of sipp's G.711 A-law sample.
	python3 "$E2E/pcap_udp.py" head "$SIPP_PCAP" "$TMP/media.pcap" "$PCAP_PACKETS" ||
		{ not_ok "pcap_udp.py cuts $SIPP_PCAP"; tap_done; }
	read -r pcap_n PCAP_BYTES < <(python3 "$E2E/pcap_udp.py" count "$TMP/media.pcap")
	if [ "${pcap_n:-0}" -ne "$PCAP_PACKETS" ] || [ "${PCAP_BYTES:-0}" -le 0 ]; then
		not_ok "the media pcap holds $PCAP_PACKETS UDP packets (pcap_udp.py: ${pcap_n:-?} ${PCAP_BYTES:-?})"
		tap_done
	fi
}

# --- the daemons in r ---------------------------------------------------------

# start_daemon NAME [CONFIG]: runs media-NAME in r in the foreground (with
# CONFIG, default $TMP/config.ini), appending to $TMP/NAME.log (a restarted
# daemon keeps one log); sets $pid.
# (nsenter, not the in_ns function: a backgrounded function is a subshell,
# and $! must be the daemon itself for stop_pid.)
start_daemon() {
	nsenter --net="/run/netns/$NS_R" -- "$BIN/media-$1" --no-fork \
		--config-file "${2:-$TMP/config.ini}" \
		--runtime-dir "$TMP/run-$1" >>"$TMP/$1.log" 2>&1 &
	pid=$!
	at_exit "stop_pid $pid"
}

mgmt() { in_ns "$NS_R" python3 "$MPCTL" mgmt --host 127.0.0.1 --port "$MGMT_PORT" "$1"; }
relay_linked() { mgmt summary | grep -q "\"ip\": *\"$R4\""; }

# e2e_config FILE [RELAY_OPTION...]: the config both daemons read, with
# the extra "name = value" lines in [Relay]. The dispatcher writes jsonl
# accounting and ends dialogs through $MI_SOCK (mi_protocol auto: D13
# picks the dialect from the dialog_id's form).
e2e_config() {
	local file=$1 opt
	shift
	{
		cat <<EOF
[Relay]
dispatchers = $R4:$LINK_PORT
relay_ip = $R4
forwarding = xdp
bpf_pin_dir = $PIN
routable_private_ranges = 10.0.0.0/8
port_range = 40000:40400
reconnect_delay = 1
log_level = DEBUG
EOF
		for opt in "$@"; do echo "$opt"; done
		cat <<EOF
[Dispatcher]
socket_path = $SOCK
listen = $R4:$LINK_PORT
listen_management = 127.0.0.1:$MGMT_PORT
management_use_tls = no
log_level = DEBUG
accounting = jsonl
accounting_file = $ACCT_FILE
accounting_spool = $TMP/spool
[OpenSIPS]
socket_path = $MI_SOCK
mi_protocol = auto
[TLS]
certs_path = $TMP/tls
EOF
	} >"$file"
}

# e2e_daemons: config.ini, then media-dispatcher ($DISPATCHER_PID) and
# media-relay ($RELAY_PID, forwarding = xdp) in r, linked; ends the test
# unless both are up.
e2e_daemons() {
	mkdir -p "$TMP/run"
	e2e_config "$TMP/config.ini"
	# The proxy modules connect at child_init and then wait 10 s after a
	# failure: the dispatcher's socket must exist before the proxy starts.
	start_daemon dispatcher
	DISPATCHER_PID=$pid
	if ! wait_for 10 test -S "$SOCK"; then
		not_ok "media-dispatcher starts and creates its module socket"
		sed 's/^/# /' "$TMP/dispatcher.log"
		tap_done
	fi
	ok "media-dispatcher starts and creates its module socket"
	check "media-dispatcher writes jsonl accounting ($ACCT_FILE, spool $TMP/spool)" \
		grep -q 'accounting: jsonl backend ready' "$TMP/dispatcher.log"
	check "media-dispatcher's MI client sends to $MI_SOCK (mi_protocol auto)" \
		grep -qF "sends to $MI_SOCK (mi_protocol auto" "$TMP/dispatcher.log"
	start_daemon relay
	RELAY_PID=$pid
	check "media-relay starts" wait_for 10 grep -qs 'media-relay.*started' "$TMP/relay.log"
	check "media-relay forwards through xdp" grep -q 'forwarding through xdp' "$TMP/relay.log"
	check "media-relay is linked to media-dispatcher (management summary lists $R4)" \
		wait_for 15 relay_linked
	if ! kill -0 "$DISPATCHER_PID" 2>/dev/null || ! kill -0 "$RELAY_PID" 2>/dev/null ||
		! relay_linked; then
		not_ok "daemons are up; the calls need them"
		tail -n 5 "$TMP/dispatcher.log" "$TMP/relay.log" | sed 's/^/# /'
		tap_done
	fi
}

udp_listening() { in_ns "$1" ss -Hlun "src $2" | grep -q .; }

# --- one call -----------------------------------------------------------------

# run_call CALL UAC_XML UAS_XML DURATION_MS [DURING]: one call; the callee
# in b, the caller in a, both tracing their messages into $TMP/CALL/ and
# pausing DURATION_MS where their scenario says <pause/>. While the call is
# up, DURING (a function, given the call's directory) runs. Sets uac_rc,
# uas_rc and during_rc.
run_call() {
	local dir=$TMP/$1 uac=$2 uas=$3 duration=$4 during=${5:-} uac_pid uas_pid
	mkdir -p "$dir"
	cp "$TMP/media.pcap" "$dir/media.pcap"   # the scenarios play it from their cwd
	(cd "$dir" && exec nsenter --net="/run/netns/$NS_B" -- sipp -sf "$E2E/sipp/$uas" \
		-i "$B4" -p "$SIP_PORT" -mi "$B4" -mp "$UAS_MP" -rtp_echo -d "$duration" \
		-m 1 -nostdin -timeout 20 -timeout_error -trace_msg -message_file "$dir/uas.msg" \
		-trace_err -error_file "$dir/uas.err" >"$dir/uas.out" 2>&1) &
	uas_pid=$!
	CALL_PIDS=$uas_pid
	wait_for 5 udp_listening "$NS_B" "$B4:$SIP_PORT"
	(cd "$dir" && exec nsenter --net="/run/netns/$NS_A" -- sipp "$R4:$SIP_PORT" \
		-sf "$E2E/sipp/$uac" -s uas -i "$A4" -p "$SIP_PORT" -mi "$A4" -mp "$UAC_MP" \
		-d "$duration" -m 1 -nostdin -timeout 20 -timeout_error \
		-trace_msg -message_file "$dir/uac.msg" \
		-trace_err -error_file "$dir/uac.err" >"$dir/uac.out" 2>&1) &
	uac_pid=$!
	CALL_PIDS+=" $uac_pid"
	during_rc=0
	if [ -n "$during" ]; then
		"$during" "$dir" || during_rc=$?
	fi
	wait "$uac_pid"; uac_rc=$?
	wait "$uas_pid"; uas_rc=$?
	CALL_PIDS=
}

# The phones of a call cut short by a signal (ours, so known by pid only
# while they run).
CALL_PIDS=
# shellcheck disable=SC2086 # two pids, split on purpose
stop_phones() { [ -z "$CALL_PIDS" ] || kill $CALL_PIDS 2>/dev/null; }
at_exit stop_phones

# mgmt_sessions FILE: `sessions` into FILE.json, its summary (e2e_check.py)
# into FILE.
mgmt_sessions() { mgmt sessions >"$1.json" && python3 "$E2E/e2e_check.py" sessions "$1.json" >"$1"; }

# wait_streams FILE SECONDS PATTERN: polls `sessions` into FILE until the
# summary matches the extended regex PATTERN; FILE.log keeps every sample
# (for E2E_KEEP).
wait_streams() {
	local file=$1 deadline=$((SECONDS + $2)) pattern=$3
	until mgmt_sessions "$file" && cat "$file" >>"$file.log" && grep -qE -- "$pattern" "$file"; do
		[ $SECONDS -lt $deadline ] || return 1
		sleep 0.1
	done
}

sessions_empty() { mgmt_sessions "$TMP/empty" && grep -qx 'sessions=0' "$TMP/empty"; }

# flows_dump FILE: the pinned relay_flows map into FILE.json, its summary
# into FILE.
flows_dump() {
	bpftool -j map dump pinned "$PIN/relay_flows" >"$1.json" 2>/dev/null &&
		python3 "$E2E/e2e_check.py" flows "$1.json" >"$1"
}

# media_pattern [x2]: the summary of one session whose streams ($streams)
# each carried one pcap (two with x2) in each direction, all of it counted.
media_pattern() {
	local n=$PCAP_PACKETS b=$PCAP_BYTES type out=''
	[ "${1:-}" = x2 ] && n=$((2 * n)) b=$((2 * b))
	for type in $streams; do
		out+=" $type status=active codecs=G711a/G711a packets=$n/$n bytes=$b/$b local=[0-9]+/[0-9]+"
	done
	echo "^sessions=1$out\$"
}

# fax_pattern: after the switch to T.38, the audio stream is closed with
# its pcap counted, and the image stream carried one pcap each way.
fax_pattern() {
	local n=$PCAP_PACKETS b=$PCAP_BYTES
	echo "^sessions=1 audio status=closed codecs=G711a/G711a packets=$n/$n bytes=$b/$b local=[0-9/]+ image status=active codecs=[^ ]+ packets=$n/$n bytes=$b/$b local=[0-9/]+\$"
}

# capture_dialogs DIR: in the engage style, the proxy's dialog list (its
# JSON-RPC $E2E_DLG_LIST over $MI_SOCK) into DIR/dlg.json, while the call
# is up: the dialog_id its module sent is read from there (check_record).
# A failure leaves DIR/dlg.err, which check_record reports.
capture_dialogs() {
	[ "$E2E_MODE" = engage ] || return 0
	python3 "$E2E/mi_rpc.py" "$MI_SOCK" "$E2E_DLG_LIST" >"$1/dlg.json" 2>"$1/dlg.err"
}

# DURING functions, run while a call is up; $1 = the call's directory.
# They return 1 when the first media did not cross the relay in time, 2 and
# 3 for their later steps.
# during_media: all the media crossed the relay; photograph the XDP flows.
during_media() {
	wait_streams "$1/media" 8 "$(media_pattern)" || return 1
	capture_dialogs "$1"
	flows_dump "$1/flows" || true
}

# during_hold: media, then on hold, then active again with a second pcap.
during_hold() {
	wait_streams "$1/media" 8 "$(media_pattern)" || return 1
	capture_dialogs "$1"
	wait_streams "$1/held" 6 "^sessions=1 audio status=on hold " || return 2
	wait_streams "$1/resumed" 8 "$(media_pattern x2)" || return 3
	flows_dump "$1/flows" || true
}

# during_t38: audio media, then the fax stream carried the second pcap;
# photographs the XDP flows after each.
during_t38() {
	wait_streams "$1/media" 8 "$(media_pattern)" || return 1
	capture_dialogs "$1"
	flows_dump "$1/flows" || true
	wait_streams "$1/fax" 8 "$(fax_pattern)" || return 2
	flows_dump "$1/fax-flows" || true
}

# during_expire: the media crossed the relay, then the relay expires the
# session (`sessions` is empty again) within stream_timeout and a few
# seconds (2 if not). In the use style the caller must still be in its
# pause then (3 if not: the session may have ended by its BYE instead).
during_expire() {
	local caller=${CALL_PIDS##* }
	wait_streams "$1/media" 8 "$(media_pattern)" || return 1
	capture_dialogs "$1"
	wait_streams "$1/expired" $((EXPIRE_TIMEOUT + 8)) '^sessions=0$' || return 2
	[ "$E2E_MODE" = engage ] || kill -0 "$caller" 2>/dev/null || return 3
}

# --- what every call is checked for -------------------------------------------

# check_eq DESCRIPTION WANT GOT
check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else not_ok "$1 (want '$2', got '$3')"; fi
}

# sdp_of CALL uac|uas REGEX [NTH]: the SDP a phone received (e2e_check.py).
sdp_of() { python3 "$E2E/e2e_check.py" sdp "$TMP/$1/$2.msg" received "$3" "${4:-1}"; }

# relay_sdp caller|callee DIRECTION SUMMARY [TYPE]: the SDP streams that
# phone must get: the relay's address and the ports on its side, per stream
# (of TYPE, if given) of the session summary file SUMMARY.
relay_sdp() {
	local side=$1 dir=$2 only=${4:-} word type='' ports out='' words
	read -r -a words <"$3"
	for word in "${words[@]}"; do
		case $word in
		audio | video | image) type=$word ;;
		local=*)
			[ -n "$only" ] && [ "$type" != "$only" ] && continue
			ports=${word#local=}
			if [ "$side" = caller ]; then ports=${ports%/*}; else ports=${ports#*/}; fi
			out+="${out:+ }$type=$R4:$ports:$dir"
			;;
		esac
	done
	echo "$out"
}

# check_phones CALL: both sipp scenarios ran to their end.
check_phones() {
	check_eq "$1: caller and callee scenarios complete (sipp exit codes)" "0 0" "$uac_rc $uas_rc"
	if [ "$uac_rc" -ne 0 ] || [ "$uas_rc" -ne 0 ]; then
		cat "$TMP/$1/uac.err" "$TMP/$1/uas.err" 2>/dev/null | grep -v '^$' | tail -n 6 | sed 's/^/# /'
	fi
}

# check_media CALL ANSWER_REGEX: both SDPs point at the relay, the media
# crossed it and was counted exactly, and the XDP program forwarded it.
check_media() {
	local call=$1 dir=$TMP/$1 nstreams want got
	if [ "$during_rc" -eq 1 ] || [ ! -s "$dir/media" ]; then
		not_ok "$call: the media crossed the relay both ways (last seen: $(cat "$dir/media" 2>/dev/null))"
		return
	fi
	ok "$call: $PCAP_PACKETS RTP packets ($PCAP_BYTES bytes) per stream crossed the relay each way ($(cat "$dir/media"))"
	check_eq "$call: the callee got the offer with the relay's address and callee-side ports" \
		"$(relay_sdp callee sendrecv "$dir/media")" "$(sdp_of "$call" uas '^INVITE')"
	check_eq "$call: the caller got the answer with the relay's address and caller-side ports" \
		"$(relay_sdp caller sendrecv "$dir/media")" "$(sdp_of "$call" uac "$2")"
	nstreams=$(grep -oE '(audio|video) status' "$dir/media" | wc -l)
	got=$(cat "$dir/flows" 2>/dev/null)
	want="^flows=$((2 * nstreams)) packets=([1-9][0-9]*,){$((2 * nstreams - 1))}[1-9][0-9]*\$"
	if [[ $got =~ $want ]]; then
		ok "$call: the XDP program forwarded both directions of every stream ($got)"
	else
		not_ok "$call: the XDP program forwarded both directions of every stream (relay_flows: '$got')"
	fi
}

# check_hold CALL: hold and unhold kept the stream and its ports.
check_hold() {
	local call=$1 dir=$TMP/$1
	if [ "$during_rc" -eq 1 ] || [ ! -s "$dir/media" ]; then
		not_ok "$call: the hold checks need the media before the hold (last seen: $(cat "$dir/media" 2>/dev/null))"
		return
	fi
	check "$call: the relay shows the stream on hold during the hold" test "$during_rc" -ne 2
	check_eq "$call: the callee got the hold offer (sendonly) on the same relay port" \
		"$(relay_sdp callee sendonly "$dir/media")" "$(sdp_of "$call" uas '^INVITE' 2)"
	check_eq "$call: the caller got the hold answer (recvonly) on the same relay port" \
		"$(relay_sdp caller recvonly "$dir/media")" "$(sdp_of "$call" uac '^SIP/2.0 200' 2)"
	check_eq "$call: the callee got the unhold offer (sendrecv) on the same relay port" \
		"$(relay_sdp callee sendrecv "$dir/media")" "$(sdp_of "$call" uas '^INVITE' 3)"
	check_eq "$call: the caller got the unhold answer (sendrecv) on the same relay port" \
		"$(relay_sdp caller sendrecv "$dir/media")" "$(sdp_of "$call" uac '^SIP/2.0 200' 3)"
	if [ "$during_rc" -eq 0 ]; then
		ok "$call: after unhold the stream is active and a second pcap crossed it exactly ($(cat "$dir/resumed"))"
	else
		not_ok "$call: after unhold the stream is active and a second pcap crossed it exactly (last seen: $(cat "$dir/resumed" 2>/dev/null))"
	fi
	check "$call: the XDP program forwarded both directions after unhold ($(cat "$dir/flows" 2>/dev/null))" \
		grep -qsE '^flows=2 packets=[1-9][0-9]*,[1-9][0-9]*$' "$dir/flows"
}

# check_t38 CALL: the re-INVITE moved the call to a new fax stream on the
# relay, and fax packets crossed it in the XDP program.
check_t38() {
	local call=$1 dir=$TMP/$1
	if [ "$during_rc" -ne 0 ] || [ ! -s "$dir/fax" ]; then
		not_ok "$call: after the T.38 re-INVITE the fax stream carried the pcap each way (last seen: $(cat "$dir/fax" 2>/dev/null))"
		return
	fi
	ok "$call: after the T.38 re-INVITE the audio stream is closed and the fax stream carried the pcap each way ($(cat "$dir/fax"))"
	check_eq "$call: the callee got the T.38 offer with the relay's address and the fax stream's port" \
		"$(relay_sdp callee sendrecv "$dir/fax" image)" "$(sdp_of "$call" uas '^INVITE' 2)"
	check_eq "$call: the caller got the T.38 answer with the relay's address and the fax stream's port" \
		"$(relay_sdp caller sendrecv "$dir/fax" image)" "$(sdp_of "$call" uac '^SIP/2.0 200' 2)"
	check "$call: the XDP program forwarded both directions of the fax stream ($(cat "$dir/fax-flows" 2>/dev/null))" \
		grep -qsE '^flows=2 packets=[1-9][0-9]*,[1-9][0-9]*$' "$dir/fax-flows"
}

check_gone() { check "$1: the relay has no session after the call" wait_for 5 sessions_empty; }

# log_clean DESCRIPTION REGEX LOG [EXCEPT]: no line of LOG matches REGEX
# (other than lines that also match EXCEPT).
log_clean() {
	local lines
	lines=$(grep -E -- "$2" "$3" | grep -vE -- "${4:-^\$^}")
	if [ -z "$lines" ]; then
		ok "$1"
	else
		not_ok "$1"
		echo "$lines" | head -n 5 | sed 's/^/# /'
	fi
}

# --- accounting ---------------------------------------------------------------

# call_id_of CALL: the Call-ID of the call (from the caller's trace).
call_id_of() { sed -n 's/^Call-ID: *//p' "$TMP/$1/uac.msg" 2>/dev/null | head -n 1 | tr -d '\r'; }

# record_of CALL_ID: e2e_check.py's summary of the call's records.
record_of() { python3 "$E2E/e2e_check.py" record "$ACCT_FILE" "$1" 2>/dev/null; }
record_arrived() { record_of "$1" | grep -q '^records=[1-9]'; }

# The calls checked for a record (exactly one) and for none, by name.
RECORD_CALLS=()
NO_RECORD_CALLS=()

# expected_dialog CALL: the dialog_id the module sent for CALL: none in the
# use style; in the engage style the proxy's own id of the call's dialog,
# from the list capture_dialogs took (the proxy names it as its module
# does: Kamailio h_entry:h_id, OpenSIPS the 64-bit decimal db_id).
expected_dialog() {
	local dir=$TMP/$1
	if [ "$E2E_MODE" = use ]; then
		echo null
	elif [ -s "$dir/dlg.json" ]; then
		python3 "$E2E/e2e_check.py" dialog "$dir/dlg.json" "$2"
	else
		echo "unknown(no $E2E_DLG_LIST: $(head -c 200 "$dir/dlg.err" 2>/dev/null))"
	fi
}

# check_record CALL SAMPLE TIMED_OUT [ALL_STREAMS_ICE]: an accounting
# record of the call arrives within 10 s, the only one so far, with the
# dialog_id the module sent, timed_out TIMED_OUT, all_streams_ice as given
# ("-": absent, as in a record of a call ended by remove; PROTOCOL.md §3.3)
# and the counters, codecs and ports of every stream exactly as the relay
# showed them in the `sessions` sample SAMPLE (DIR/SAMPLE.json, the last
# one taken: no media flowed after it). e2e_records_final checks later that
# no second record came.
check_record() {
	local call=$1 sample=$TMP/$1/$2.json timed_out=$3 ice=${4:--} cid want got
	local what="one accounting record with the module's dialog_id, timed_out $timed_out"
	[ "$ice" = - ] || what+=", all_streams_ice $ice"
	what+=" and the relay's counters"
	RECORD_CALLS+=("$1")
	cid=$(call_id_of "$call")
	if [ -z "$cid" ]; then
		not_ok "$call: $what (no Call-ID in the caller's trace)"
		return
	fi
	if ! wait_for 10 record_arrived "$cid"; then
		not_ok "$call: $what (no record of $cid in $ACCT_FILE after 10 s)"
		return
	fi
	want="records=1 dialog_id=$(expected_dialog "$call" "$cid") timed_out=$timed_out"
	want+=" all_streams_ice=$ice $(python3 "$E2E/e2e_check.py" counters "$sample" 2>&1)"
	got=$(record_of "$cid")
	check_eq "$call: $what" "$want" "$got"
}

# check_no_record CALL: no accounting record of the call (PROTOCOL.md D16).
# Only meaningful once the record of a later call has arrived: one backend
# delivers its spool in order, so a record of CALL would be there by then.
check_no_record() {
	local cid
	NO_RECORD_CALLS+=("$1")
	cid=$(call_id_of "$1")
	if [ -z "$cid" ]; then
		not_ok "$1: no accounting record (no Call-ID in the caller's trace)"
		return
	fi
	check_eq "$1: no accounting record: no answer with SDP was ever seen (D16)" \
		records=0 "$(record_of "$cid")"
}

# e2e_records_final: after all the calls, every call check_record looked at
# has exactly one record and every check_no_record call none, and the file
# holds nothing else.
e2e_records_final() {
	local call cid n bad='' total=0 lines
	for call in "${RECORD_CALLS[@]}"; do
		cid=$(call_id_of "$call")
		n=$(record_of "$cid" | sed -n 's/^records=\([0-9]*\).*/\1/p')
		[ "${n:-x}" = 1 ] || bad+=" $call:${n:-?}"
		total=$((total + 1))
	done
	for call in "${NO_RECORD_CALLS[@]}"; do
		cid=$(call_id_of "$call")
		n=$(record_of "$cid" | sed -n 's/^records=\([0-9]*\).*/\1/p')
		[ "${n:-x}" = 0 ] || bad+=" $call:${n:-?}"
	done
	lines=$(grep -c . "$ACCT_FILE" 2>/dev/null)
	[ "${lines:-0}" = "$total" ] || bad+=" lines:${lines:-0}"
	if [ -z "$bad" ]; then
		ok "accounting: $total records for the $total answered calls, one each; none for the ${#NO_RECORD_CALLS[@]} unanswered"
	else
		not_ok "accounting: one record per answered call (${#RECORD_CALLS[@]}), none per unanswered (${#NO_RECORD_CALLS[@]}), nothing else (call:records found:$bad)"
	fi
}

# --- expected warnings ----------------------------------------------------------

# Lines of the daemons' logs a test causes on purpose, and only those:
# NAME (dispatcher or relay), a window of line numbers and an extended
# regex (matched through awk's ENVIRON, so backslashes stay as written).
EXPECT_NAME=() EXPECT_FROM=() EXPECT_TO=() EXPECT_RE=()
log_lines() { wc -l <"$TMP/$1.log"; }
# expect_log NAME FROM TO REGEX: lines FROM+1 .. TO of NAME's log matching
# REGEX are expected.
expect_log() { EXPECT_NAME+=("$1"); EXPECT_FROM+=("$2"); EXPECT_TO+=("$3"); EXPECT_RE+=("$4"); }

# expected_filter NAME: stdin (NAME's log) with the expected lines blanked
# (not deleted: later filters count lines too).
expected_filter() {
	local i tmp=$TMP/$1.log.expected
	cat >"$tmp"
	for i in "${!EXPECT_NAME[@]}"; do
		[ "${EXPECT_NAME[i]}" = "$1" ] || continue
		RE=${EXPECT_RE[i]} awk -v from="${EXPECT_FROM[i]}" -v to="${EXPECT_TO[i]}" \
			'NR > from && NR <= to && $0 ~ ENVIRON["RE"] { print ""; next } { print }' \
			"$tmp" >"$tmp.next" && mv "$tmp.next" "$tmp"
	done
	cat "$tmp"
}

# re_quote TEXT: TEXT as an extended regex matching itself.
re_quote() { printf '%s' "$1" | sed 's/[][\.*^$+?(){}|]/\\&/g'; }

# --- the calls ----------------------------------------------------------------

# e2e_calls MODE: the seven calls through the proxy that is up, named
# MODE-audio, MODE-video and so on, each with its checks.
e2e_calls() {
	local mode=$1
	E2E_MODE=$mode

	streams=audio   # (1) audio call, the caller hangs up
	run_call "$mode-audio" uac_call.xml uas_call.xml 3000 during_media
	check_phones "$mode-audio"
	check_media "$mode-audio" '^SIP/2.0 200'
	check_gone "$mode-audio"
	check_record "$mode-audio" media false

	streams="audio video"   # (2) audio and video
	run_call "$mode-video" uac_av.xml uas_av.xml 3000 during_media
	check_phones "$mode-video"
	check_media "$mode-video" '^SIP/2.0 200'
	check_gone "$mode-video"
	check_record "$mode-video" media false

	streams=audio   # (3) hold and unhold by re-INVITE
	run_call "$mode-hold" uac_hold.xml uas_hold.xml 2500 during_hold
	check_phones "$mode-hold"
	check_hold "$mode-hold"
	check_gone "$mode-hold"
	check_record "$mode-hold" resumed false

	streams=audio   # (4) T.38 re-INVITE
	run_call "$mode-t38" uac_t38.xml uas_t38.xml 2500 during_t38
	check_phones "$mode-t38"
	check_media "$mode-t38" '^SIP/2.0 200'
	check_t38 "$mode-t38"
	check_gone "$mode-t38"
	check_record "$mode-t38" fax false

	# (5) CANCEL after a 183 with SDP, with early media through the relay:
	# the 183 was an answer, so the call has a record (D16)
	run_call "$mode-cancel" uac_cancel.xml uas_cancel.xml 2500 during_media
	check_phones "$mode-cancel"
	check_media "$mode-cancel" '^SIP/2.0 183'
	check_gone "$mode-cancel"
	check_record "$mode-cancel" media false

	# (6) the callee is busy: 486 without SDP, no answer ever, no record
	# (checked after the next call's record arrived)
	run_call "$mode-busy" uac_busy.xml uas_busy.xml 0
	check_phones "$mode-busy"
	check_gone "$mode-busy"

	# (7) the callee hangs up
	run_call "$mode-callee-bye" uac_callee_bye.xml uas_callee_bye.xml 3000 during_media
	check_phones "$mode-callee-bye"
	check_media "$mode-callee-bye" '^SIP/2.0 200'
	check_gone "$mode-callee-bye"
	check_record "$mode-callee-bye" media false
	check_no_record "$mode-busy"
}

# --- media stops: the relay expires the call -----------------------------------

# e2e_relay_expiring: media-relay stopped and started again with
# [Relay] stream_timeout = $EXPIRE_TIMEOUT (and traffic_sampling_period = 1,
# so that its timer looks every second), for e2e_expire_call. The other
# calls keep the default 90 s: the OpenSIPS suite's restart call is 6.5 s
# without media. The dispatcher's warning on losing the relay is expected.
e2e_relay_expiring() {
	local from
	from=$(log_lines dispatcher)
	stop_pid "$RELAY_PID"
	e2e_config "$TMP/config-expire.ini" "stream_timeout = $EXPIRE_TIMEOUT" \
		"traffic_sampling_period = 1"
	start_daemon relay "$TMP/config-expire.ini"
	RELAY_PID=$pid
	if wait_for 15 relay_connected_since "$from"; then
		ok "media-relay restarted with stream_timeout = $EXPIRE_TIMEOUT and linked again"
	else
		not_ok "media-relay restarted with stream_timeout = $EXPIRE_TIMEOUT and linked again"
		tail -n 5 "$TMP/relay.log" | sed 's/^/# /'
	fi
	# (the restart is on purpose)
	expect_log dispatcher "$from" "$(log_lines dispatcher)" \
		"relay $(re_quote "$R4")(: connection lost: connection closed by peer| disconnected; 0 call\\(s\\) wait)"
}

# bye_counts CALL: "caller got G sent S, callee got G sent S", the BYE
# requests in the phones' traces, any count above 0 written "1+" (a BYE
# may be retransmitted).
bye_counts() {
	local side out="" got sent
	for side in caller:uac callee:uas; do
		got=$(python3 "$E2E/e2e_check.py" count "$TMP/$1/${side#*:}.msg" received '^BYE ')
		sent=$(python3 "$E2E/e2e_check.py" count "$TMP/$1/${side#*:}.msg" sent '^BYE ')
		[ "${got:-0}" -gt 0 ] 2>/dev/null && got=1+
		[ "${sent:-0}" -gt 0 ] 2>/dev/null && sent=1+
		out+="${out:+, }${side%%:*} got $got sent $sent"
	done
	echo "$out"
}

# relay_connected_since LINE: the dispatcher logged the relay's link after
# line LINE of its log.
relay_connected_since() {
	awk -v from="$1" 'NR > from' "$TMP/dispatcher.log" | grep -q "relay $R4 connected"
}

# e2e_expire_call MODE: the "media stops" call through the proxy that is
# up, against the relay of e2e_relay_expiring, and its checks. The caller
# plays its 1.5 s of media and nothing after; the relay expires the session
# and reports it. Engage style: the dispatcher ends the dialog through the
# proxy's MI ($E2E_MI_ENDED) and the proxy's BYE is what ends both phones'
# scenarios (uac_expire.xml, uas_expire.xml). Use style: the module sent no
# dialog_id, so no MI request and no BYE from the proxy: the caller hangs up
# itself after $USE_EXPIRE_MS ms (uac_call.xml), and a BYE from the proxy
# before that would fail it (an unexpected message). Both: one record,
# timed_out true, all_streams_ice false.
e2e_expire_call() {
	local mode=$1 call=$1-expire dir=$TMP/$1-expire cid did line
	E2E_MODE=$mode
	streams=audio
	if [ "$mode" = engage ]; then
		run_call "$call" uac_expire.xml uas_expire.xml 0 during_expire
		check_eq "$call: both phones got the proxy's BYE, sent when the media stopped (sipp exit codes)" \
			"0 0" "$uac_rc $uas_rc"
	else
		run_call "$call" uac_call.xml uas_call.xml "$USE_EXPIRE_MS" during_expire
		check_eq "$call: no BYE from the proxy; the caller hung up itself after $((USE_EXPIRE_MS / 1000)) s (sipp exit codes)" \
			"0 0" "$uac_rc $uas_rc"
	fi
	if [ "$uac_rc" -ne 0 ] || [ "$uas_rc" -ne 0 ]; then
		cat "$dir/uac.err" "$dir/uas.err" 2>/dev/null | grep -v '^$' | tail -n 6 | sed 's/^/# /'
	fi
	if [ "$mode" = engage ]; then
		check_eq "$call: the BYEs came from the proxy: both phones got one, neither sent one" \
			"caller got 1+ sent 0, callee got 1+ sent 0" "$(bye_counts "$call")"
	else
		check_eq "$call: the caller got no BYE and sent one, which reached the callee" \
			"caller got 0 sent 1+, callee got 1+ sent 0" "$(bye_counts "$call")"
	fi
	if [ "$during_rc" -eq 1 ] || [ ! -s "$dir/media" ]; then
		not_ok "$call: the media crossed the relay both ways before it stopped (last seen: $(cat "$dir/media" 2>/dev/null))"
	else
		ok "$call: the media crossed the relay both ways before it stopped ($(cat "$dir/media"))"
	fi
	cid=$(call_id_of "$call")
	case $during_rc in
	0) ok "$call: the relay's session ended within $((EXPIRE_TIMEOUT + 8)) s of the media" ;;
	3) not_ok "$call: the relay's session ended within $((EXPIRE_TIMEOUT + 8)) s of the media (but only after the caller hung up)" ;;
	*) not_ok "$call: the relay's session ended within $((EXPIRE_TIMEOUT + 8)) s of the media (last seen: $(cat "$dir/expired" 2>/dev/null))" ;;
	esac
	check "$call: media-relay logged the session's expiry" \
		grep -qF "session $cid: expired" "$TMP/relay.log"
	check "$call: media-dispatcher took it as media timed out" \
		grep -qF "call $cid expired (media timed out)" "$TMP/dispatcher.log"
	if [ "$mode" = engage ]; then
		did=$(expected_dialog "$call" "$cid")
		line="call $cid: dialog $did ended through $E2E_MI_ENDED id"
		check "$call: media-dispatcher ended dialog $did through the proxy's MI ('$line')" \
			wait_for 5 grep -qxE ".*\]: $(re_quote "$line")" "$TMP/dispatcher.log"
	else
		log_clean "$call: media-dispatcher sent no MI request: the module gave no dialog_id" \
			"call $(re_quote "$cid"): .*dialog" "$TMP/dispatcher.log"
	fi
	check_record "$call" media true false
	check_gone "$call"
	if [ "$mode" != engage ]; then
		# The caller's BYE made the module send a remove for the call the
		# dispatcher keeps marked expired: answered locally, no warning.
		check "$call: the proxy's later remove is answered locally" \
			grep -qF "call_id $cid: remove of an expired call answered locally" \
			"$TMP/dispatcher.log"
	fi
}

# e2e_daemon_logs_clean: neither daemon logged a warning or an error,
# except the lines a test caused on purpose and named with expect_log. (A
# second remove, a late update or a failed relay request all leave such a
# line.)
e2e_daemon_logs_clean() {
	local name
	for name in dispatcher relay; do
		expected_filter "$name" <"$TMP/$name.log" >"$TMP/$name.log.checked"
		log_clean "media-$name logged no error or warning" '\[(WARNING|ERROR|CRITICAL)\]' \
			"$TMP/$name.log.checked"
	done
}
