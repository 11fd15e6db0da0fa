#!/usr/bin/env bash
# Relay restart without media loss (PROTOCOL.md D6), with the real daemons:
# media-dispatcher and media-relay in the relay namespace r of the netns bed,
# a call placed through the dispatcher's proxy socket (tests/tools/mpctl.py,
# offer from a's SDP, answer from b's), phones a and b talking RTP through
# the relay without pause. Mid-stream the relay is SIGKILLed (a crash) or
# sent SIGUSR2 (restart keeping media), then started again:
#   - xdp and conntrack: the kernel keeps forwarding while no relay runs
#     (packets counted in the gap) and nothing is lost end to end;
#   - userspace: media stops during the gap (expected) and resumes;
#   - every backend: the relay reloads the session from its runtime dir,
#     the dispatcher's resync keeps the call (no "no longer knows" line),
#     management `sessions` shows counters that never go back and keep
#     growing, and after `remove` the final counters (the jsonl accounting
#     record) equal what arrived.
# A clean TERM at the end leaves no session file, pins, nftables table or
# marked conntrack entries.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"

if [ "$(id -u)" -ne 0 ]; then
	skip "relay restart in network namespaces" "needs root (netns, XDP, conntrack)"
	tap_done
fi
for _bin in "$BIN/media-dispatcher" "$BIN/media-relay" "$MP_BUILD/tests/helpers/udp_peer"; do
	if [ ! -x "$_bin" ]; then
		not_ok "$_bin is built"
		tap_done
	fi
done
netns_setup || { not_ok "netns test bed"; tap_done; }
netns_pin_dir || { not_ok "bpffs is mounted"; tap_done; }
"$MP_ROOT/tls/make-certs.sh" "$TMP/tls" >/dev/null 2>&1 || { not_ok "make-certs.sh"; tap_done; }

PY=${PYTHON:-python3}
MPCTL=$MP_ROOT/tests/tools/mpctl.py
U=$MP_BUILD/tests/helpers/udp_peer
PIN=$NS_PIN_DIR/relay
DPORT=25060 MPORT=25061          # inside r: private to this run
SOCK=$TMP/disp/dispatcher.sock
RUN=$TMP/relay                   # the relay's runtime dir, kept across restarts
STORE=$RUN/relay-$R4.sessions.json
CT_MARK=0x4d500001
COUNT=3000 INTERVAL_US=2000 SIZE=172   # ~6.5 s of 172-byte RTP each way
GAP_S=1                          # how long no relay runs

# Daemons and phones run in the background straight under nsenter (no
# --fork: it execs), so that $! is their own pid, to signal and to wait for.

# ---- the dispatcher, once for every run ---------------------------------------

mkdir -p "$TMP/disp" "$RUN"
cat >"$TMP/dispatcher.ini" <<EOF
[Dispatcher]
socket_path = $SOCK
listen = $R4:$DPORT
listen_management = $R4:$MPORT
management_use_tls = no
log_level = DEBUG
relay_timeout = 2
accounting = jsonl
accounting_file = $TMP/accounting.jsonl
accounting_spool = $TMP/spool
[TLS]
certs_path = $TMP/tls
EOF
DLOG=$TMP/dispatcher.log
ACCT=$TMP/accounting.jsonl
nsenter --net="/run/netns/$NS_R" -- "$BIN/media-dispatcher" --no-fork --config-file "$TMP/dispatcher.ini" \
	--runtime-dir "$TMP/disp" >"$DLOG" 2>&1 &
DISP_PID=$!
at_exit "stop_pid $DISP_PID"
if ! wait_for 5 test -S "$SOCK"; then
	not_ok "media-dispatcher starts in r ($(tail -3 "$DLOG"))"
	tap_done
fi

# ---- the relay -----------------------------------------------------------------

RELAY_PID=""
relay_conf() {   # relay_conf BACKEND
	cat >"$TMP/relay-$1.ini" <<EOF
[Relay]
dispatchers = $R4:$DPORT
relay_ip = $R4
port_range = 40000:40100
forwarding = $1
bpf_pin_dir = $PIN
routable_private_ranges = 10.0.0.0/8
reconnect_delay = 1
keepalive_interval = 1
log_level = DEBUG
[TLS]
certs_path = $TMP/tls
EOF
}

resyncs() { grep -c "relay $R4 resynchronised" "$DLOG"; }
resynced_since() { [ "$(resyncs)" -gt "$1" ]; }

# relay_start BACKEND LOG: starts it and waits until the dispatcher has
# resynchronised with it (it asks for `sessions` on every connection).
relay_start() {
	local before
	before=$(resyncs)
	nsenter --net="/run/netns/$NS_R" -- "$BIN/media-relay" --no-fork --config-file "$TMP/relay-$1.ini" \
		--runtime-dir "$RUN" >"$2" 2>&1 &
	RELAY_PID=$!
	at_exit "kill -KILL $RELAY_PID 2>/dev/null"
	wait_for 10 resynced_since "$before"
}

relay_stop() {   # TERM: a clean exit
	[ -n "$RELAY_PID" ] || return 0
	stop_pid "$RELAY_PID"
	RELAY_PID=""
}

# ---- measuring -----------------------------------------------------------------

# counters CALL_ID: "caller_packets callee_packets caller_bytes callee_bytes"
# of its first stream, from management `sessions`; empty if not listed.
counters() {
	in_ns "$NS_R" "$PY" "$MPCTL" mgmt --host "$R4" --port "$MPORT" sessions 2>/dev/null |
		"$PY" -c '
import json, sys
for line in sys.stdin:
    try:
        o = json.loads(line)
    except ValueError:
        continue
    for s in (o if isinstance(o, list) else [o]):
        if s.get("call_id") == sys.argv[1] and s.get("streams"):
            st = s["streams"][0]
            print(st["caller_packets"], st["callee_packets"], st["caller_bytes"], st["callee_bytes"])
' "$1"
}

# What the kernel forwarded so far (both directions), per backend.
kernel_packets() {
	case "$1" in
	xdp)
		bpftool -j map dump pinned "$PIN/relay_flows" 2>/dev/null | "$PY" -c '
import json, sys
d = json.load(sys.stdin)
print(sum(e.get("formatted", e)["value"]["packets"] for e in d))'
		;;
	conntrack)
		in_ns "$NS_R" conntrack -L --mark "$CT_MARK" 2>/dev/null |
			sed -n 's/.*packets=\([0-9]*\).*packets=\([0-9]*\).*/\1 \2/p' |
			awk '{s += $1 + $2} END {print s + 0}'
		;;
	*) echo 0 ;;
	esac
}

# field NAME LINE: the value of NAME=value in LINE.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# The final statistics of a removed call: its jsonl accounting record.
final_counters() {
	wait_for 5 grep -qF "\"call_id\":\"$1\"" "$ACCT"
	"$PY" - "$ACCT" "$1" <<'EOF'
import json, sys
for line in open(sys.argv[1], errors="replace"):
    o = json.loads(line)
    if o.get("call_id") == sys.argv[2]:
        st = o["streams"][0]
        print(st["caller_packets"], st["callee_packets"], st["caller_bytes"], st["callee_bytes"])
EOF
}

# The caller and callee packets the session table file holds for a call:
# user space and removed rules plus the kernel's last read.
saved_counters() {
	"$PY" - "$STORE" "$1" <<'EOF'
import json, sys
for s in json.load(open(sys.argv[1]))["sessions"]:
    if s["call_id"] == sys.argv[2]:
        r = s["streams"][0]["relay"]
        print(*(r[side]["packets"] + r[side]["rtp"]["kernel_packets"] + r[side]["rtcp"]["kernel_packets"]
                for side in ("caller", "callee")))
EOF
}

ge() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" -ge "$2" ]; }

# ---- one run ------------------------------------------------------------------

run() {   # run BACKEND SIGNAL
	local b=$1 sig=$2 name="$1, SIG$2" cid="restart-$1-$2@$A4" reply pe pc
	local c1 c2 c3 c4 fin k1 k2 t1 t2 a_out b_out a_sent b_sent a_recv b_recv rc saved cp ep
	local log1=$TMP/relay-$b-$sig-1.log log2=$TMP/relay-$b-$sig-2.log
	relay_conf "$b"
	if ! relay_start "$b" "$log1"; then
		not_ok "$name: the relay starts with forwarding = $b and the dispatcher resyncs ($(tail -3 "$log1"))"
		relay_stop
		return
	fi
	ok "$name: the relay starts with forwarding = $b and the dispatcher resyncs"

	reply=$("$PY" "$MPCTL" --socket "$SOCK" update --call-id "$cid" --from-tag ft \
		--type request --cseq 1 --media "audio:$A4:7000:sendrecv:ice=no")
	pe=${reply#"$R4 "}
	reply=$("$PY" "$MPCTL" --socket "$SOCK" update --call-id "$cid" --from-tag ft \
		--to-tag tt --type reply --cseq 1 --media "audio:$B4:8000:sendrecv:ice=no")
	pc=${reply#"$R4 "}
	if ! [[ "$pe" =~ ^[0-9]+$ && "$pc" =~ ^[0-9]+$ ]]; then
		not_ok "$name: offer and answer get relay ports ($pe / $reply)"
		relay_stop
		return
	fi

	a_out=$TMP/a-$b-$sig.out b_out=$TMP/b-$b-$sig.out
	nsenter --net="/run/netns/$NS_A" -- "$U" talk --bind "$A4:7000" --to "$R4:$pc" --count $COUNT \
		--delay-ms 300 --interval-us $INTERVAL_US --expect $COUNT --timeout-ms 2500 \
		--size $SIZE >"$a_out" &
	local pa=$!
	nsenter --net="/run/netns/$NS_B" -- "$U" talk --bind "$B4:8000" --to "$R4:$pe" --count $COUNT \
		--delay-ms 300 --interval-us $INTERVAL_US --expect $COUNT --timeout-ms 2500 \
		--size $SIZE >"$b_out" &
	local pb=$!

	sleep 1.8
	c1=$(counters "$cid")
	check "$name: media flows before the restart ($c1)" ge "${c1%% *}" 100
	k1=$(kernel_packets "$b")
	kill -"$sig" "$RELAY_PID"
	wait_for 5 process_gone "$RELAY_PID"
	wait "$RELAY_PID" 2>/dev/null
	rc=$?
	if [ "$sig" = USR2 ]; then
		check "$name: SIGUSR2 exits with status 0 ($rc)" test "$rc" -eq 0
		check "$name: the relay left its forwarding in place" \
			grep -q "SIGUSR2: restarting, leaving media forwarding in place" "$log1"
	fi
	saved=$(saved_counters "$cid")
	check "$name: the session table on disk holds the call ($saved)" test -n "$saved"
	sleep $GAP_S
	k2=$(kernel_packets "$b")
	t1=$(date +%s%N)
	if ! relay_start "$b" "$log2"; then
		not_ok "$name: the relay starts again ($(tail -3 "$log2"))"
		wait "$pa" "$pb"
		relay_stop
		return
	fi
	t2=$(date +%s%N)
	ok "$name: restarted after a ${GAP_S}s gap, up and resynchronised in $(( (t2 - t1) / 1000000 )) ms"
	check "$name: it restored the session from $STORE" \
		grep -q "session table: restored 1 of 1 sessions" "$log2"
	if [ "$b" != userspace ]; then
		check "$name: it took the kernel's flow over" grep -q "1 of 1 $b flows taken over" "$log2"
		check "$name: the kernel kept forwarding with no relay running ($((k2 - k1)) packets in ${GAP_S}s)" \
			test $((k2 - k1)) -ge $((GAP_S * 1000000 / INTERVAL_US / 2))
	fi
	c2=$(counters "$cid")
	check "$name: management lists the call after the restart, counters at least the saved ones ($saved -> $c2)" \
		ge "${c2%% *}" "${saved%% *}"
	if [ "$b" != userspace ] || [ "$sig" = USR2 ]; then
		check "$name: and not behind what was counted before the $sig ($c1 -> $c2)" \
			ge "${c2%% *}" "${c1%% *}"
	fi
	sleep 0.5
	c3=$(counters "$cid")
	check "$name: the counters keep growing ($c2 -> $c3)" test -n "$c3" -a "${c3%% *}" -gt "${c2%% *}" 2>/dev/null

	wait "$pa" "$pb"
	a_sent=$(field sent "$(head -1 "$a_out")") b_sent=$(field sent "$(head -1 "$b_out")")
	a_recv=$(field packets "$(tail -1 "$a_out")") b_recv=$(field packets "$(tail -1 "$b_out")")
	echo "# $name: a sent $a_sent, b received $b_recv (lost $((a_sent - b_recv))); b sent $b_sent, a received $a_recv (lost $((b_sent - a_recv))); kernel forwarded $((k2 - k1)) in the ${GAP_S}s gap"
	c4=$(counters "$cid")
	read -r cp ep _ _ <<<"$c4"
	if [ "$b" = userspace ]; then
		check "$name: media resumed after the restart (b got $b_recv of $a_sent)" \
			test "${b_recv:-0}" -gt "${c2%% *}"
		check "$name: some media was lost while no relay ran, as expected in user space" \
			test "${b_recv:-0}" -lt "${a_sent:-0}"
	else
		check "$name: nothing lost end to end (b got $b_recv of $a_sent, a got $a_recv of $b_sent)" \
			test "$b_recv" = "$a_sent" -a "$a_recv" = "$b_sent"
	fi
	# whatever reached b came through the relay and was counted: the
	# caller's counter is what b got (and the callee's what a got) ...
	if [ "$b" != userspace ] || [ "$sig" = USR2 ]; then
		check "$name: counters equal what crossed the relay ($cp/$ep vs b $b_recv, a $a_recv)" \
			test "$cp" = "$b_recv" -a "$ep" = "$a_recv"
	else
		# ... except that a crashed userspace relay loses what it
		# counted since its last write, at most SESSION_STORE_REFRESH_USER_S
		local most=$((2 * 1000000 / INTERVAL_US))
		check "$name: counters short of what crossed the relay by at most 2 s of media ($cp/$ep vs b $b_recv, a $a_recv)" \
			test "$cp" -le "$b_recv" -a "$ep" -le "$a_recv" -a \
			"$((b_recv - cp))" -le "$most" -a "$((a_recv - ep))" -le "$most"
	fi

	reply=$("$PY" "$MPCTL" --socket "$SOCK" remove --call-id "$cid" --from-tag ft --to-tag tt)
	check "$name: remove answers removed ($reply)" test "$reply" = removed
	fin=$(final_counters "$cid")
	check "$name: the final counters are the totals ($fin)" \
		test "$(cut -d' ' -f1,2 <<<"$fin")" = "$cp $ep"
	check "$name: the dispatcher kept the call through the restart" \
		bash -c "! grep -q 'no longer knows call $cid' '$DLOG'"

	relay_stop
	check "$name: no sanitizer report" \
		bash -c "! grep -qE 'Sanitizer|runtime error' '$log1' '$log2'"
	check "$name: a clean exit removes the session table" test ! -e "$STORE"
	case "$b" in
	xdp)
		check "$name: no pins left" test -z "$(ls -A "$PIN" 2>/dev/null)"
		check "$name: no XDP program left in r" \
			bash -c "! nsenter --net=/run/netns/$NS_R ip link show | grep -q xdp"
		;;
	conntrack)
		check "$name: no nftables table of ours left" \
			bash -c "! nsenter --net=/run/netns/$NS_R nft list tables | grep -q mediaproxy"
		check "$name: no marked conntrack entries left" \
			test "$(in_ns "$NS_R" conntrack -L --mark "$CT_MARK" 2>/dev/null | wc -l)" -eq 0
		;;
	esac
}

for backend in xdp conntrack userspace; do
	for sig in KILL USR2; do
		run "$backend" "$sig"
	done
done
tap_done
