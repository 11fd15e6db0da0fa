#!/usr/bin/env bash
# RADIUS accounting (PROTOCOL.md §5.2, D14) into a private FreeRADIUS
# (`freeradius -X`, radius_lib.sh) whose detail file the test parses:
#  - through the real dispatcher + relay: an answered call's record arrives
#    with every attribute equal to what §5.2 derives from the same call's
#    jsonl record, Acct-Delay-Time exactly once, nothing radcli adds on its
#    own (no NAS-Port);
#  - server down, then up: the records wait in the spool and arrive once;
#  - failover: two acctservers in the radcli config, the first dead (a UDP
#    sink that counts what it gets): delivered via the second, once, with
#    Acct-Delay-Time still the post-dial delay;
#  - records the relay seldom makes (null to_tag, timeout, ICE, counters
#    past 32 bits, a long UTF-8 user agent, no stream, an IPv6 relay),
#    handed to the backend directly by tests/helpers/acct_deliver;
#  - configuration errors name the file or attribute at fault.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/control_lib.sh"
. "$(dirname "$0")/accounting_lib.sh"
. "$(dirname "$0")/radius_lib.sh"

DELIVER=$MP_BUILD/tests/helpers/acct_deliver
# a copy: radcli reads at most 63 characters of an $INCLUDE path
DICT=$TMP/mediaproxy.dictionary
cp "$MP_ROOT/radius/dictionary" "$DICT"
RADCONF=$TMP/radcli.conf

if ! rad_available; then
	skip "RADIUS accounting" "freeradius is not installed (apt-get install freeradius)"
	tap_done
fi
if [ ! -x "$DELIVER" ]; then
	echo "Bail out! $DELIVER is not built (make all)"
	exit 1
fi
if ! rad_start; then
	not_ok "a private FreeRADIUS starts ($(tail -3 "$RAD_LOG" | tr '\n' ' '))"
	tap_done
fi
ok "a private FreeRADIUS starts (acct port $RAD_ACCT_PORT)"
rad_client_conf "$RADCONF" "127.0.0.1:$RAD_ACCT_PORT"

# check_detail CALL-ID ACCOUNTING-RECORD [any-nas]: a TAP line comparing
# the call's detail record with the accounting record.
check_detail() {
	local cid=$1 rec=$2 got why
	got=$(rad_record "$cid")
	if [ -z "$got" ]; then
		not_ok "$cid: no detail record"
		return
	fi
	if why=$(rad_check_record "$rec" "$got" "${3:-}"); then
		ok "$cid: every §5.2 attribute arrives with the right value, nothing else"
	else
		not_ok "$cid: detail record differs: $why"
		echo "# accounting record: $rec"
		echo "# detail record:     $got"
	fi
}

# attr_count CALL-ID NAME: how many times NAME is in the call's detail record.
attr_count() {
	rad_record "$1" | "$PY" -c '
import json, sys
print(len(json.loads(sys.stdin.read() or "{}").get(sys.argv[1], [])))' "$2"
}

# --- through the dispatcher and the relay -----------------------------------
daemons_up=0
if acct_start_daemons "accounting = jsonl, radius" "[Radius]" "config_file = $RADCONF" \
	"additional_dictionary = $DICT"; then
	daemons_up=1
	ok "dispatcher and relay come up with accounting = jsonl, radius"
else
	not_ok "dispatcher and relay come up with accounting = jsonl, radius ($(tail -3 "$ACCT_LOG" | tr '\n' ' '))"
fi

if [ "$daemons_up" = 1 ]; then
	acct_call rad-call-1 "7:1"
	check "an answered call reaches the jsonl file and FreeRADIUS" \
		wait_for 15 eval 'jsonl_has 1 rad-call-1 && rad_has 1 rad-call-1'
	check_detail rad-call-1 "$(jsonl_record rad-call-1)"
	check "exactly one Acct-Delay-Time (D14; radcli adds one only when we send none)" \
		test "$(attr_count rad-call-1 Acct-Delay-Time)" = 1
	check "no NAS-Port (rc_acct would add NAS-Port = 0)" \
		test "$(attr_count rad-call-1 NAS-Port)" = 0

	# --- server down, then up ---------------------------------------------
	rad_stop
	acct_call rad-down-1
	acct_call rad-down-2
	pending_at_least() { [ "$(acct_pending radius)" -ge "$1" ] 2>/dev/null; }
	check "with FreeRADIUS down both records wait in the spool ($(acct_pending radius) pending)" \
		wait_for 10 pending_at_least 2
	check "the jsonl backend is not held up meanwhile" \
		wait_for 5 jsonl_has 1 rad-down-1 rad-down-2
	check "the dispatcher logs why the radius record waits" \
		wait_for 5 log_has "$ACCT_LOG" \
		"accounting radius: call rad-down-1 not delivered yet, will retry: .*no answer"
	down_count="rad-down-1: $(rad_count rad-down-1), rad-down-2: $(rad_count rad-down-2)"
	rad_start || echo "# FreeRADIUS did not restart"
	check "FreeRADIUS back up: both records arrive" \
		wait_for 40 rad_has 1 rad-down-1 rad-down-2
	nothing_pending() { [ "$(acct_pending radius)" = 0 ]; }
	check "... and nothing is pending any more" wait_for 5 nothing_pending
	sleep 1
	echo "# server down then up: detail records while down: $down_count; after:" \
		"rad-call-1: $(rad_count rad-call-1), rad-down-1: $(rad_count rad-down-1)," \
		"rad-down-2: $(rad_count rad-down-2)"
	check "exactly one record per call, none duplicated by the retries" \
		rad_has 1 rad-call-1 rad-down-1 rad-down-2
	check_detail rad-down-1 "$(jsonl_record rad-down-1)"

	# --- failover: the first acctserver is dead ----------------------------
	read -r DEAD_PORT < <(rad_free_udp_ports 1)
	rad_sink_start "$DEAD_PORT" "$TMP/dead.count"
	stop_daemon d1
	rad_client_conf "$RADCONF" "127.0.0.1:$DEAD_PORT,127.0.0.1:$RAD_ACCT_PORT"
	if acct_start_dispatcher; then
		acct_call rad-failover-1
		check "first acctserver dead: the record arrives via the second" \
			wait_for 20 rad_has 1 rad-failover-1
		echo "# failover: dead server got $(cat "$TMP/dead.count") request(s);" \
			"detail records: rad-failover-1: $(rad_count rad-failover-1)"
		check "the dead server was tried first, radius_retries + 1 = 2 times" \
			test "$(cat "$TMP/dead.count")" = 2
		check_detail rad-failover-1 "$(jsonl_record rad-failover-1)"
	else
		not_ok "the dispatcher restarts with two acctservers"
	fi
fi

# --- records handed to the backend directly ---------------------------------
DCONF=$TMP/direct.ini
rad_client_conf "$TMP/direct-radcli.conf" "127.0.0.1:$RAD_ACCT_PORT"
printf '[Radius]\nconfig_file = %s\nadditional_dictionary = %s\n' \
	"$TMP/direct-radcli.conf" "$DICT" >"$DCONF"
"$PY" - >"$TMP/edge.jsonl" <<'EOF'
import copy, json
def stream(media="audio", codec="PCMU", start=0, end=30, pdd=0.8, cin=1000, cout=900,
           local="127.0.0.2:40000"):
    return {"media_type": media, "status": "closed", "timeout_wait": 0, "caller_codec": codec,
            "callee_codec": codec, "start_time": start, "end_time": end, "post_dial_delay": pdd,
            "caller_bytes": cin, "callee_bytes": cout, "caller_packets": 10, "callee_packets": 9,
            "caller_local": local, "callee_local": "127.0.0.2:40002",
            "caller_remote": "127.0.0.1:5000", "callee_remote": "127.0.0.1:6000"}
base = {"call_id": "", "from_tag": "ft", "from_uri": "a@example.com", "to_tag": "tt",
        "to_uri": "b@example.com", "start_time": 1764000000.5, "duration": 30,
        "caller_ua": "Linphone 5", "callee_ua": "Blink 6", "username": None,
        "streams": [stream()], "dialog_id": None, "timed_out": False}
def rec(cid, **kw):
    r = copy.deepcopy(base)
    r["call_id"] = cid
    r.update(kw)
    print(json.dumps(r, ensure_ascii=False))
rec("rad-edge-null-to-tag-timeout", to_tag=None, timed_out=True)
rec("rad-edge-ice", all_streams_ice=True)
rec("rad-edge-huge", duration=5000000000,
    streams=[stream(cin=3000000000, cout=5000000000, pdd=None),
             stream(media="video", codec="H264", start=3, end=3, cin=2000000000, cout=7, pdd=2.9)])
rec("rad-edge-long-ua", caller_ua="Zoë's phone " + "é" * 130, callee_ua="x" * 20)
rec("rad-edge-user", username="alice@example.com",
    streams=[stream("video", "VP8"), stream(), stream(codec="opus", start=2, end=20)])
rec("rad-edge-ipv6", streams=[stream(local="[2001:db8::7]:40000")])
EOF
rec_no_streams=$("$PY" -c '
import json, sys
print(json.dumps({"call_id": "rad-edge-no-streams", "from_tag": "ft", "to_tag": "tt",
    "start_time": 1764000000.5, "duration": 0, "caller_ua": "Unknown", "callee_ua": "Unknown",
    "username": None, "streams": [], "dialog_id": None, "timed_out": False}))')
out=$({ cat "$TMP/edge.jsonl"; echo "$rec_no_streams"; } |
	"$DELIVER" "$DCONF" radius 2>"$TMP/direct.err")
check "acct_deliver hands 7 edge-case records to the radius backend ($(grep -c '^delivered' <<<"$out") delivered)" \
	test "$(grep -c '^delivered' <<<"$out")" = 7
while IFS= read -r line; do
	cid=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1])["call_id"])' "$line")
	check_detail "$cid" "$line"
done <"$TMP/edge.jsonl"
check_detail rad-edge-no-streams "$rec_no_streams" any-nas

# The backend alone, failover: Acct-Delay-Time stays the post-dial delay
# (rc_aaa() itself would add the 2 s spent on the dead server).
read -r DEAD2 < <(rad_free_udp_ports 1)
rad_sink_start "$DEAD2" "$TMP/dead2.count"
rad_client_conf "$TMP/fo-radcli.conf" "127.0.0.1:$DEAD2,127.0.0.1:$RAD_ACCT_PORT"
sed "s|$TMP/direct-radcli.conf|$TMP/fo-radcli.conf|" "$DCONF" >"$TMP/fo.ini"
fo_rec=$(head -1 "$TMP/edge.jsonl" | sed 's/rad-edge-null-to-tag-timeout/rad-direct-failover/')
fo_out=$("$DELIVER" "$TMP/fo.ini" radius <<<"$fo_rec" 2>&1)
echo "# backend alone, failover: dead server got $(cat "$TMP/dead2.count") request(s);" \
	"detail records of rad-direct-failover: $(rad_count rad-direct-failover)"
check "backend alone: first acctserver dead, delivered via the second ($fo_out)" \
	eval 'rad_has 1 rad-direct-failover && test "$(cat "$TMP/dead2.count")" = 2'
check_detail rad-direct-failover "$fo_rec"

# The backend alone, server down then up: -EAGAIN until it answers.
rad_stop
"$DELIVER" "$DCONF" radius --attempts 20 --retry-ms 200 <<<"${rec_no_streams//rad-edge-no-streams/rad-direct-down}" \
	>"$TMP/down.out" 2>"$TMP/down.err" &
deliver_pid=$!
at_exit "stop_pid $deliver_pid"
sleep 3
rad_start || echo "# FreeRADIUS did not restart"
wait "$deliver_pid"
check "backend alone: server down then up, delivered on a retry ($(cat "$TMP/down.out"))" \
	grep -q '^delivered rad-direct-down' "$TMP/down.out"
echo "# backend alone, server down then up: detail records of rad-direct-down: $(rad_count rad-direct-down)"
check "... exactly once" rad_has 1 rad-direct-down

# --- configuration errors -----------------------------------------------------
open_err() { "$DELIVER" "$1" radius </dev/null 2>&1 >/dev/null; }
printf '[Radius]\nconfig_file = %s\n' "$TMP/nonexistent.conf" >"$TMP/bad1.ini"
msg=$(open_err "$TMP/bad1.ini")
check "a missing radcli config is named ($msg)" \
	grep -q "config_file $TMP/nonexistent.conf: No such file or directory" <<<"$msg"

grep -v '^acctserver' "$TMP/direct-radcli.conf" >"$TMP/noacct.conf"
printf '[Radius]\nconfig_file = %s\nadditional_dictionary = %s\n' "$TMP/noacct.conf" "$DICT" \
	>"$TMP/bad2.ini"
msg=$(open_err "$TMP/bad2.ini")
check "a radcli config without acctserver is refused ($msg)" grep -q "noacct.conf: no acctserver" <<<"$msg"

printf 'ATTRIBUTE\tMedia-Codecs\t233\tstring\nATTRIBUTE\tBroken\n' >"$TMP/broken.dict"
printf '[Radius]\nconfig_file = %s\nadditional_dictionary = %s\n' "$TMP/direct-radcli.conf" \
	"$TMP/broken.dict" >"$TMP/bad3.ini"
msg=$(open_err "$TMP/bad3.ini")
check "an additional dictionary radcli cannot parse is named ($msg)" \
	grep -q "additional_dictionary $TMP/broken.dict: radcli could not parse it" <<<"$msg"

printf '[Radius]\nconfig_file = %s\nadditional_dictionary = %s\n' "$TMP/direct-radcli.conf" \
	"$TMP/no-such.dict" >"$TMP/bad4.ini"
msg=$(open_err "$TMP/bad4.ini")
check "without MediaProxy's dictionary the missing attribute is named ($msg)" \
	grep -q "attribute Sip-From-Tag is in no dictionary" <<<"$msg"
check "... after a warning that the additional dictionary does not exist" \
	grep -q "additional_dictionary $TMP/no-such.dict does not exist" <<<"$msg"

printf 'ATTRIBUTE\tMedia-Codecs\t233\tinteger\n' >"$TMP/wrongtype.dict"
printf '$INCLUDE %s\n$INCLUDE %s\n' "$DICT" "$TMP/wrongtype.dict" >"$TMP/combined.dict"
printf '[Radius]\nconfig_file = %s\nadditional_dictionary = %s\n' "$TMP/direct-radcli.conf" \
	"$TMP/combined.dict" >"$TMP/bad5.ini"
msg=$(open_err "$TMP/bad5.ini")
check "an attribute of the wrong type is refused ($msg)" \
	grep -q "attribute Media-Codecs (number 233) has the wrong type" <<<"$msg"

tap_done
