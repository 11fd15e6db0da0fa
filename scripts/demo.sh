#!/usr/bin/env bash
# `make demo`: one real call through Debian's Kamailio and its stock
# mediaproxy module, with our media-dispatcher and media-relay doing the
# media, shown step by step (issue 5, "make run").
#
#   a: sipp caller  --  r: Kamailio, media-dispatcher, media-relay  --  b: sipp callee
#
# The network namespaces are the integration tests' bed
# (tests/integration/netns.sh); Kamailio's config and the sipp scenarios
# are the E2E test's (tests/e2e/). While the call is up it prints the
# dispatcher's management `summary` and `sessions`; after it, the call's
# accounting record as the jsonl backend wrote it. Everything lives in a temp dir that is removed on
# exit, and every process is stopped by its pid. Needs root.
#
# DEMO_KEEP=DIR copies the logs, configs and sipp traces there first.
set -u

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo: needs root (network namespaces, XDP, sipp's raw socket for RTP);" \
		"run: sudo make demo" >&2
	exit 1
fi

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export MP_ROOT=$ROOT   # lib.sh: $BIN is $MP_ROOT/build/bin
# shellcheck source=tests/integration/lib.sh
. "$ROOT/tests/integration/lib.sh"      # $TMP, at_exit, wait_for, stop_pid
# shellcheck source=tests/integration/netns.sh
. "$ROOT/tests/integration/netns.sh"    # namespaces a, r, b; in_ns

E2E=$ROOT/tests/e2e
SIPP_PCAP=/usr/share/sip-tester/g711a.pcap
KAM_MODULES=/usr/lib/x86_64-linux-gnu/kamailio/modules
SIP_PORT=5060 LINK_PORT=25060 MGMT_PORT=25061
UAC_MP=16000 UAS_MP=26000
PACKETS=100      # RTP packets the caller plays: 2 s of G.711 A-law
CALL_MS=4000     # how long the call stays up after the answer

say() { printf '\n== %s\n' "$*"; }
die() { echo "make demo: $*" >&2; exit 1; }

if [ -n "${DEMO_KEEP:-}" ]; then
	at_exit "mkdir -p '$DEMO_KEEP' && cp -a '$TMP'/. '$DEMO_KEEP'/ 2>/dev/null"
fi

for tool in kamailio sipp nsenter ethtool python3 ss; do
	command -v "$tool" >/dev/null || die "$tool is not installed (make deps installs it)"
done
for mod in mediaproxy dialog jsonrpcs tm rr; do
	[ -e "$KAM_MODULES/$mod.so" ] || die "Kamailio module $mod.so is not installed"
done
[ -r "$SIPP_PCAP" ] || die "$SIPP_PCAP (package sip-tester) is missing"
if [ ! -x "$BIN/media-dispatcher" ] || [ ! -x "$BIN/media-relay" ]; then
	die "build first: make all"
fi

# --- the bed ------------------------------------------------------------------

say "network namespaces"
netns_setup || die "cannot build the network namespaces"
netns_pin_dir || die "bpffs is not mounted on /sys/fs/bpf and cannot be"
echo "caller $A4 in $NS_A | Kamailio, dispatcher, relay $R4 in $NS_R | callee $B4 in $NS_B"

"$ROOT/tls/make-certs.sh" "$TMP/tls" >/dev/null 2>&1 || die "tls/make-certs.sh failed"
python3 "$E2E/pcap_udp.py" head "$SIPP_PCAP" "$TMP/media.pcap" "$PACKETS" ||
	die "cannot cut $SIPP_PCAP"
read -r pcap_n pcap_bytes < <(python3 "$E2E/pcap_udp.py" count "$TMP/media.pcap")

# --- the daemons --------------------------------------------------------------

SOCK=$TMP/run/dispatcher.sock
mkdir -p "$TMP/run"
cat >"$TMP/config.ini" <<EOF
; make demo: a lab set-up in network namespaces (tests/integration/netns.sh)
[Relay]
dispatchers = $R4:$LINK_PORT
relay_ip = $R4
forwarding = auto
bpf_pin_dir = $NS_PIN_DIR/relay
; private addresses count as routable in a lab (PROTOCOL.md D5)
routable_private_ranges = 10.0.0.0/8
port_range = 40000:40400
reconnect_delay = 1
log_level = INFO
[Dispatcher]
socket_path = $SOCK
listen = $R4:$LINK_PORT
listen_management = 127.0.0.1:$MGMT_PORT
management_use_tls = no
log_level = INFO
accounting = jsonl
accounting_file = $TMP/accounting.jsonl
accounting_spool = $TMP/accounting-spool
[TLS]
certs_path = $TMP/tls
EOF

# start_daemon NAME: media-NAME in r, in the foreground; sets $pid.
start_daemon() {
	nsenter --net="/run/netns/$NS_R" -- "$BIN/media-$1" --no-fork \
		--config-file "$TMP/config.ini" --runtime-dir "$TMP/run-$1" >"$TMP/$1.log" 2>&1 &
	pid=$!
	at_exit "stop_pid $pid"
}

mgmt() {
	in_ns "$NS_R" python3 "$ROOT/tests/tools/mpctl.py" mgmt --host 127.0.0.1 \
		--port "$MGMT_PORT" "$1"
}
pretty() { python3 -m json.tool --json-lines; }   # one JSON object a line
relay_linked() { mgmt summary 2>/dev/null | grep -q "\"ip\": *\"$R4\""; }
show_log() { echo "--- last lines of $1:"; tail -n 15 "$TMP/$1" | sed 's/^/  /'; }

say "media-dispatcher and media-relay (in $NS_R)"
start_daemon dispatcher
DISPATCHER_PID=$pid
# Kamailio's module connects once at start, then only every 10 s.
wait_for 10 test -S "$SOCK" || { show_log dispatcher.log; die "the dispatcher did not start"; }
start_daemon relay
RELAY_PID=$pid
wait_for 10 grep -qs 'media-relay.*started' "$TMP/relay.log" ||
	{ show_log relay.log; die "the relay did not start"; }
wait_for 15 relay_linked || { show_log relay.log; die "the relay did not link to the dispatcher"; }
echo "media-dispatcher pid $DISPATCHER_PID: module socket $SOCK," \
	"relay links $R4:$LINK_PORT (TLS), management 127.0.0.1:$MGMT_PORT (plain)"
echo "media-relay pid $RELAY_PID, relay_ip $R4; the relay's log on the backend:"
grep -E 'forwarding = auto|forwarding through' "$TMP/relay.log" | sed 's/^/  /'

# --- Kamailio -----------------------------------------------------------------

say "Kamailio (in $NS_R, $R4:$SIP_PORT, engage_media_proxy())"
mkdir -p "$TMP/kam"
nsenter --net="/run/netns/$NS_R" -- kamailio -DD -E -f "$E2E/kamailio.cfg" \
	-Y "$TMP/kam" -P "$TMP/kam/kamailio.pid" -w "$TMP/kam" -l "udp:$R4:$SIP_PORT" \
	-A "MP_SOCKET=\"$SOCK\"" -A "RPC_SOCKET=\"$TMP/kam/kamailio.jsonrpc\"" \
	-A "UAS_URI=\"sip:$B4:$SIP_PORT\"" >"$TMP/kamailio.log" 2>&1 &
KAM_PID=$!
at_exit "stop_pid $KAM_PID"
udp_listening() { in_ns "$1" ss -Hlun "src $2" | grep -q .; }
wait_for 10 udp_listening "$NS_R" "$R4:$SIP_PORT" || { show_log kamailio.log; die "Kamailio did not start"; }
echo "kamailio pid $KAM_PID, config tests/e2e/kamailio.cfg, mediaproxy_socket $SOCK"

# --- the call -----------------------------------------------------------------

# The phones, while they run (once reaped, their pids are not ours any more).
PHONES=
# shellcheck disable=SC2086 # two pids, split on purpose
stop_phones() { [ -z "$PHONES" ] || kill $PHONES 2>/dev/null; }
at_exit stop_phones

say "one audio call: sipp $A4 -> Kamailio -> sipp $B4, $pcap_n RTP packets ($pcap_bytes bytes) each way"
CALL=$TMP/call
mkdir -p "$CALL"
cp "$TMP/media.pcap" "$CALL/media.pcap"   # the caller's scenario plays it from its cwd
(cd "$CALL" && exec nsenter --net="/run/netns/$NS_B" -- sipp -sf "$E2E/sipp/uas_call.xml" \
	-i "$B4" -p "$SIP_PORT" -mi "$B4" -mp "$UAS_MP" -rtp_echo -m 1 -nostdin \
	-timeout 20 -timeout_error -trace_msg -message_file "$CALL/uas.msg" \
	-trace_err -error_file "$CALL/uas.err" >"$CALL/uas.out" 2>&1) &
UAS_PID=$!
PHONES=$UAS_PID
wait_for 5 udp_listening "$NS_B" "$B4:$SIP_PORT"
(cd "$CALL" && exec nsenter --net="/run/netns/$NS_A" -- sipp "$R4:$SIP_PORT" \
	-sf "$E2E/sipp/uac_call.xml" -s uas -i "$A4" -p "$SIP_PORT" -mi "$A4" -mp "$UAC_MP" \
	-d "$CALL_MS" -m 1 -nostdin -timeout 20 -timeout_error \
	-trace_msg -message_file "$CALL/uac.msg" \
	-trace_err -error_file "$CALL/uac.err" >"$CALL/uac.out" 2>&1) &
UAC_PID=$!
PHONES+=" $UAC_PID"
echo "caller sipp pid $UAC_PID (plays the pcap, hangs up after ${CALL_MS} ms);" \
	"callee sipp pid $UAS_PID (echoes the RTP back)"

# Until every packet was relayed each way (or 8 s), then the snapshot.
media_relayed() {
	mgmt sessions >"$CALL/sessions.json" 2>/dev/null &&
		python3 "$E2E/e2e_check.py" sessions "$CALL/sessions.json" >"$CALL/media" &&
		grep -q "packets=$pcap_n/$pcap_n bytes=" "$CALL/media"
}
media_ok=
if wait_for 8 media_relayed; then
	media_ok=1
	echo "all the media crossed the relay: $(cat "$CALL/media")"
else
	echo "(the media has not all crossed the relay yet: $(cat "$CALL/media" 2>/dev/null))"
fi

# Which packets the XDP program itself forwarded (its pinned flow map).
if grep -q 'forwarding through xdp' "$TMP/relay.log" && command -v bpftool >/dev/null &&
	bpftool -j map dump pinned "$NS_PIN_DIR/relay/relay_flows" >"$CALL/flows.json" 2>/dev/null; then
	echo "packets the XDP program forwarded by itself (pinned relay_flows map, one flow" \
		"per direction): $(python3 "$E2E/e2e_check.py" flows "$CALL/flows.json")"
fi

say "management: summary (while the call is up)"
mgmt summary | pretty
echo "(bps_relayed is sampled every traffic_sampling_period, 15 s by default: a call this short shows 0)"
say "management: sessions (while the call is up)"
pretty <"$CALL/sessions.json"

wait "$UAC_PID"; uac_rc=$?
wait "$UAS_PID"; uas_rc=$?
PHONES=
say "the call ended: caller sipp exit $uac_rc, callee sipp exit $uas_rc (0 = scenario complete)"
if [ "$uac_rc" -ne 0 ] || [ "$uas_rc" -ne 0 ]; then
	cat "$CALL/uac.err" "$CALL/uas.err" 2>/dev/null | grep -v '^$' | tail -n 6
fi

# --- the accounting line ------------------------------------------------------

say "the accounting record of the call ($TMP/accounting.jsonl)"
ended() { [ -s "$TMP/accounting.jsonl" ]; }
if wait_for 5 ended; then
	tail -n 1 "$TMP/accounting.jsonl" | pretty
	echo "The relay's final statistics of the call, answered to the dispatcher's remove at"
	echo "hang-up, plus dialog_id and timed_out: one line of [Dispatcher] accounting_file"
	echo "(accounting = jsonl), written through the durable spool."
	say "management: accounting (the backends' backlog)"
	mgmt accounting | pretty
else
	echo "(no record in $TMP/accounting.jsonl)"
	show_log dispatcher.log
fi
say "management: summary (after the call)"
mgmt summary | pretty

echo
echo "make demo: stopping Kamailio, media-relay and media-dispatcher; removing $TMP"
[ "$uac_rc" -eq 0 ] && [ "$uas_rc" -eq 0 ] && [ -n "$media_ok" ] && ended
