#!/usr/bin/env bash
# The relay's data plane end to end, on every backend: a stream created
# through the relay's own stream API (relay_lab) between phone a and phone b,
# real packets through the relay namespace r. RTP and RTCP in both
# directions arrive intact with the relay's address as source; the stream's
# counters equal what was sent (D4); the in-kernel backends really carried
# the media after latching; a third host x and a spoofed source are never
# forwarded but counted as dropped; closing the stream stops forwarding; a
# clean exit leaves no pins, nftables table or conntrack entries.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"

if [ "$(id -u)" -ne 0 ]; then
	skip "data plane in network namespaces" "needs root (netns, XDP, conntrack)"
	tap_done
fi
netns_setup || { not_ok "netns test bed"; tap_done; }
netns_pin_dir || { not_ok "bpffs is mounted"; tap_done; }
PIN=$NS_PIN_DIR
U=$MP_BUILD/tests/helpers/udp_peer
LAB=$MP_BUILD/tests/helpers/relay_lab
NFT=mplab$$
CT_MARK=0x4d500001
RTP_COUNT=150 RTCP_COUNT=20 SIZE=172

lab_start() {    # lab_start BACKEND RELAY_IP
	coproc LABP { in_ns "$NS_R" "$LAB" --backend "$1" --relay-ip "$2" --ports 40000:41000 \
		--routable 10.0.0.0/8,fd00::/8 --pin-dir "$PIN/$1" --nft-table "$NFT" \
		2>>"$TMP/lab-$1.log"; }
	LAB_PID=$LABP_PID
	at_exit "kill -KILL $LAB_PID 2>/dev/null"
	lab_read && [ "$REPLY" = "ready $1" ]
}
lab_read() { read -r -t 10 REPLY <&"${LABP[0]}"; }
lab() { echo "$*" >&"${LABP[1]}" && lab_read; }

# Waits for the phones started in the background, not for the coprocess.
phones_wait() {
	local pid
	for pid in $(jobs -p); do
		[ "$pid" = "$LAB_PID" ] || wait "$pid"
	done
}

# field NAME LINE: the value of NAME=value in LINE.
field() { sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"; }

# addr FAMILY IPV4 IPV6 PORT: ip:port in the family's notation.
ep() { if [ "$1" = 4 ]; then echo "$2:$4"; else echo "[$3]:$4"; fi; }

kernel_carried() {   # kernel_carried BACKEND: did the kernel forward media?
	case "$1" in
	xdp)
		bpftool -j map dump pinned "$PIN/xdp/relay_flows" 2>/dev/null |
			python3 -c 'import json,sys; d=json.load(sys.stdin); print(sum(e.get("formatted", e)["value"]["packets"] for e in d))'
		;;
	conntrack)
		in_ns "$NS_R" conntrack -L --mark "$CT_MARK" 2>/dev/null |
			sed -n 's/.*packets=\([0-9]*\).*/\1/p' | awk '{s+=$1} END {print s+0}'
		;;
	esac
}

run_backend() {   # run_backend BACKEND FAMILY
	local b=$1 f=$2 relay a_ip b_ip x_ip name="$1 IPv$2" resp cp epo st
	if [ "$f" = 4 ]; then relay=$R4 a_ip=$A4 b_ip=$B4 x_ip=$X4; else relay=$R6 a_ip=$A6 b_ip=$B6 x_ip=$X6; fi
	if ! lab_start "$b" "$relay"; then
		not_ok "$name: relay_lab opens the $b backend ($(tail -3 "$TMP/lab-$b.log"))"
		return
	fi
	ok "$name: relay_lab opens the $b backend"
	lab "stream $(ep "$f" "$A4" "$A6" 7000) $(ep "$f" "$B4" "$B6" 8000)"
	set -- $REPLY
	if [ "$1" != ok ]; then not_ok "$name: stream created ($REPLY)"; return; fi
	cp=$3 epo=$4

	# Both phones talk at once on RTP and RTCP (symmetric, one socket each).
	in_ns "$NS_A" "$U" talk --delay-ms 300 --bind "$(ep "$f" "$A4" "$A6" 7000)" --to "$(ep "$f" "$R4" "$R6" "$cp")" \
		--count $RTP_COUNT --interval-us 2000 --expect $RTP_COUNT --timeout-ms 4000 --size $SIZE >"$TMP/a.rtp" &
	in_ns "$NS_B" "$U" talk --delay-ms 300 --bind "$(ep "$f" "$B4" "$B6" 8000)" --to "$(ep "$f" "$R4" "$R6" "$epo")" \
		--count $RTP_COUNT --interval-us 2000 --expect $RTP_COUNT --timeout-ms 4000 --size $SIZE >"$TMP/b.rtp" &
	in_ns "$NS_A" "$U" talk --delay-ms 300 --bind "$(ep "$f" "$A4" "$A6" 7001)" --to "$(ep "$f" "$R4" "$R6" $((cp + 1)))" \
		--count $RTCP_COUNT --interval-us 10000 --expect $RTCP_COUNT --timeout-ms 4000 --size 80 >"$TMP/a.rtcp" &
	in_ns "$NS_B" "$U" talk --delay-ms 300 --bind "$(ep "$f" "$B4" "$B6" 8001)" --to "$(ep "$f" "$R4" "$R6" $((epo + 1)))" \
		--count $RTCP_COUNT --interval-us 10000 --expect $RTCP_COUNT --timeout-ms 4000 --size 80 >"$TMP/b.rtcp" &
	phones_wait

	local relay_cp relay_ep
	relay_cp=$(ep "$f" "$R4" "$R6" "$cp") relay_ep=$(ep "$f" "$R4" "$R6" "$epo")
	resp=$(tail -1 "$TMP/b.rtp" | sed "s/ span_ms=.*//")
	check "$name: b receives all $RTP_COUNT RTP packets intact from $relay_ep ($resp)" \
		test "$resp" = "packets=$RTP_COUNT bytes=$((RTP_COUNT * SIZE)) bad=0 sources=$relay_ep"
	resp=$(tail -1 "$TMP/a.rtp" | sed "s/ span_ms=.*//")
	check "$name: a receives all $RTP_COUNT RTP packets intact from $relay_cp ($resp)" \
		test "$resp" = "packets=$RTP_COUNT bytes=$((RTP_COUNT * SIZE)) bad=0 sources=$relay_cp"
	resp=$(tail -1 "$TMP/b.rtcp" | sed "s/ span_ms=.*//")
	check "$name: b receives the RTCP from $(ep "$f" "$R4" "$R6" $((epo + 1))) ($resp)" \
		test "$resp" = "packets=$RTCP_COUNT bytes=$((RTCP_COUNT * 80)) bad=0 sources=$(ep "$f" "$R4" "$R6" $((epo + 1)))"
	resp=$(tail -1 "$TMP/a.rtcp" | sed "s/ span_ms=.*//")
	check "$name: a receives the RTCP from $(ep "$f" "$R4" "$R6" $((cp + 1))) ($resp)" \
		test "$resp" = "packets=$RTCP_COUNT bytes=$((RTCP_COUNT * 80)) bad=0 sources=$(ep "$f" "$R4" "$R6" $((cp + 1)))"

	lab "stats 0"; st=$REPLY
	local want_packets=$((RTP_COUNT + RTCP_COUNT)) want_bytes=$((RTP_COUNT * SIZE + RTCP_COUNT * 80))
	check "$name: caller counters = sent payload ($st)" \
		test "$(field caller_packets "$st")" = $want_packets -a "$(field caller_bytes "$st")" = $want_bytes
	check "$name: callee counters = sent payload" \
		test "$(field callee_packets "$st")" = $want_packets -a "$(field callee_bytes "$st")" = $want_bytes
	check "$name: latched addresses are the phones' ($st)" \
		test "$(field caller_remote "$st")" = "$(ep "$f" "$A4" "$A6" 7000)" -a \
		     "$(field callee_remote "$st")" = "$(ep "$f" "$B4" "$B6" 8000)"
	check "$name: codec detected from the payload type" test "$(field caller_codec "$st")" = G711u
	if [ "$b" != userspace ]; then
		carried=$(kernel_carried "$b")
		check "$name: the kernel carried the media after latching ($carried packets)" \
			test "${carried:-0}" -gt $((want_packets / 2))
	fi

	# A third host, then a spoofed source (x owning a's address, another
	# port): never forwarded, counted as dropped.
	in_ns "$NS_B" "$U" recv --bind "$(ep "$f" "$B4" "$B6" 8000)" --timeout-ms 1500 >"$TMP/b.x" &
	sleep 0.2
	in_ns "$NS_X" "$U" send --bind "$(ep "$f" "$X4" "$X6" 7000)" --to "$relay_cp" --count 30 --interval-us 1000 >/dev/null
	if [ "$f" = 4 ]; then in_ns "$NS_X" ip addr add "$A4/32" dev eth0; else in_ns "$NS_X" ip addr add "$A6/128" dev eth0 nodad; fi
	in_ns "$NS_X" "$U" send --bind "$(ep "$f" "$A4" "$A6" 7100)" --to "$relay_cp" --count 30 --interval-us 1000 >/dev/null
	if [ "$f" = 4 ]; then in_ns "$NS_X" ip addr del "$A4/32" dev eth0; else in_ns "$NS_X" ip addr del "$A6/128" dev eth0; fi
	phones_wait
	resp=$(tail -1 "$TMP/b.x" | sed "s/ span_ms=.*//")
	check "$name: third-party and spoofed packets never reach b ($resp)" grep -q '^packets=0 ' <<<"$resp"
	lab "stats 0"; st=$REPLY
	check "$name: they are counted as dropped ($(field dropped "$st"))" test "$(field dropped "$st")" -ge 60
	check "$name: and not in the caller's counters" test "$(field caller_packets "$st")" = $want_packets

	# Closing the stream stops forwarding.
	lab "close 0"
	in_ns "$NS_B" "$U" recv --bind "$(ep "$f" "$B4" "$B6" 8000)" --timeout-ms 1000 >"$TMP/b.closed" &
	sleep 0.2
	in_ns "$NS_A" "$U" send --bind "$(ep "$f" "$A4" "$A6" 7000)" --to "$relay_cp" --count 20 --interval-us 1000 >/dev/null 2>&1
	phones_wait
	check "$name: nothing is forwarded after close" grep -q '^packets=0 ' "$TMP/b.closed"

	lab "quit clean"
	wait_for 5 process_gone "$LAB_PID"
	check "$name: relay_lab exits cleanly" test "$REPLY" = "ok bye"
	check "$name: no sanitizer report" \
		bash -c "! grep -qE 'Sanitizer|runtime error' '$TMP/lab-$b.log'"
	case "$b" in
	xdp)
		check "$name: no pins left" test -z "$(ls -A "$PIN/xdp" 2>/dev/null)"
		check "$name: no XDP program left on the relay's interfaces" \
			bash -c "! nsenter --net=/run/netns/$NS_R ip link show | grep -q 'xdp'"
		;;
	conntrack)
		check "$name: no nftables table left" bash -c "! nsenter --net=/run/netns/$NS_R nft list table inet $NFT >/dev/null 2>&1"
		check "$name: no marked conntrack entries left" \
			test "$(in_ns "$NS_R" conntrack -L --mark "$CT_MARK" 2>/dev/null | wc -l)" -eq 0
		;;
	esac
}

for backend in userspace conntrack xdp; do
	for family in 4 6; do
		run_backend "$backend" "$family"
	done
done
tap_done
