#!/usr/bin/env bash
# A quick a -> r -> b forwarding rate for each backend, in one run on the
# same test bed (not part of make test; the full benchmark is `make bench`
# once it exists). a floods the relay with 172-byte datagrams through
# sendmmsg; b counts what arrives and for how long.
#   sudo tests/bench/quick_pps.sh [PACKETS]
set -u
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../integration/netns.sh"

PACKETS=${1:-500000}
U=$MP_BUILD/tests/helpers/udp_peer
LAB=$MP_BUILD/tests/helpers/relay_lab
netns_setup || { echo "netns setup failed"; exit 1; }
netns_pin_dir || exit 1

for backend in userspace conntrack xdp; do
	coproc L { in_ns "$NS_R" "$LAB" --backend "$backend" --relay-ip "$R4" --ports 40000:41000 \
		--routable 10.0.0.0/8 --pin-dir "$NS_PIN_DIR/$backend" --nft-table mpbench$$ 2>/dev/null; }
	read -r -t 10 line <&"${L[0]}"
	echo "stream $A4:7000 $B4:8000" >&"${L[1]}"
	read -r -t 10 line <&"${L[0]}"
	set -- $line
	cp=$3 ep=$4
	# latch both sides, then flood
	in_ns "$NS_B" "$U" talk --bind "$B4:8000" --to "$R4:$ep" --count 3 --interval-us 1000 \
		--expect 0 --timeout-ms 300 >/dev/null &
	in_ns "$NS_A" "$U" talk --bind "$A4:7000" --to "$R4:$cp" --count 3 --interval-us 1000 \
		--expect 0 --timeout-ms 300 >/dev/null
	sleep 0.5
	in_ns "$NS_B" "$U" recv --bind "$B4:8000" --timeout-ms 8000 >"$TMP/recv" &
	rpid=$!
	sleep 0.3
	in_ns "$NS_A" "$U" send --bind "$A4:7000" --to "$R4:$cp" --count "$PACKETS" --size 172 >/dev/null
	wait "$rpid"
	got=$(tail -1 "$TMP/recv")
	packets=$(sed -n 's/.*packets=\([0-9]*\).*/\1/p' <<<"$got")
	span=$(sed -n 's/.*span_ms=\([0-9]*\).*/\1/p' <<<"$got")
	[ "${span:-0}" -gt 0 ] || span=1
	printf '%-10s sent %d, received %d in %d ms: %d pps\n' "$backend" "$PACKETS" "$packets" \
		"$span" $((packets * 1000 / span))
	echo "quit clean" >&"${L[1]}"
	read -r -t 10 line <&"${L[0]}"
	sleep 0.3
done
