#!/usr/bin/env bash
# The xdp forwarding backend (relayd/forward_xdp.c) on real packets. RTP and
# RTCP from ns a reach ns b, and back, through r's XDP program: rewritten to
# come from relay_ip, redirected without passing through user space, counted
# exactly. A third host and a spoofed source are not forwarded; `remove`
# stops forwarding. The program keeps forwarding while no relay process runs
# (quit keep, SIGKILL) and the next one adopts the flows with their counters
# (PROTOCOL.md D6); a clean close leaves no pin and no program. IPv6 works
# the same, and `auto` passes over XDP for a relay_ip on lo (D9).
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"

FWD_CTL=$MP_BUILD/tests/helpers/forward_ctl
UDP_PEER=$MP_BUILD/tests/helpers/udp_peer
# relay_stats indexes (enum relay_stat_reason in bpf/relay_structs.h; append-only)
STAT_FORWARDED=0
STAT_SOURCE_MISMATCH=9

if [ "$(id -u)" -ne 0 ]; then
	skip "xdp backend on veth" "needs root (netns, XDP)"
	tap_done
fi
for tool in bpftool ethtool nsenter; do
	if ! command -v "$tool" >/dev/null; then
		skip "xdp backend on veth" "$tool is not installed"
		tap_done
	fi
done
if [ ! -x "$FWD_CTL" ] || [ ! -x "$UDP_PEER" ]; then
	not_ok "test helpers are built ($FWD_CTL, $UDP_PEER)"
	tap_done
fi
if ! netns_setup; then
	not_ok "netns test bed (a, r, b, x) is set up"
	tap_done
fi
netns_pin_dir || { not_ok "bpffs is mounted"; tap_done; }
PIN=$NS_PIN_DIR

# --- driving forward_ctl ------------------------------------------------------

# ctl_start ARGS...: forward_ctl in r as a coprocess (exec'd, so $ctl_pid
# is forward_ctl itself; stderr appends to ctl.log); waits for "ready xdp".
ctl_start() {
	local line=
	coproc CTLP { exec nsenter --net="/run/netns/$NS_R" -- "$FWD_CTL" "$@" 2>>"$TMP/ctl.log"; }
	ctl_pid=$CTLP_PID
	exec {ctl_in}>&"${CTLP[1]}" {ctl_out}<&"${CTLP[0]}"
	at_exit "kill -KILL $ctl_pid 2>/dev/null"
	read -t 20 -r line <&"$ctl_out"
	[ "$line" = "ready xdp" ]
}

# ctl CMD...: sends one command; its first reply line goes to $reply.
ctl() {
	reply=
	echo "$*" >&"$ctl_in" && read -t 10 -r reply <&"$ctl_out"
}

# ctl_adopted: the "pair ..." lines of `adopted` into $adopted.
ctl_adopted() {
	local line
	adopted=
	ctl adopted && [ "$reply" = ok ] || return 1
	while read -t 10 -r line <&"$ctl_out"; do
		[ "$line" = end ] && return 0
		adopted+="$line"$'\n'
	done
	return 1
}

# ctl_stop clean|keep|kill: quits (reply in $reply) or SIGKILLs forward_ctl.
ctl_stop() {
	if [ "$1" = kill ]; then
		# reaped here, so bash reports no "Killed" job later
		{ kill -KILL "$ctl_pid" && wait "$ctl_pid"; } 2>/dev/null
	else
		ctl quit "$1"
	fi
	wait_for 10 process_gone "$ctl_pid"
	wait "$ctl_pid" 2>/dev/null
	ctl_status=$?
	exec {ctl_in}>&- {ctl_out}<&-
}

# counter NAME: a field of the last `read`/`remove` reply.
counter() { echo "$reply" | grep -o "$1=[0-9]*" | cut -d= -f2; }

# stat_packets REASON: relay_stats packets for one reason, summed over the CPUs.
stat_packets() {
	bpftool -j map lookup pinned "$PIN/relay_stats" key "$1" 0 0 0 |
		grep -o '"packets":[0-9]*' | awk -F: '{ s += $2 } END { print s + 0 }'
}

# --- traffic ------------------------------------------------------------------
recv_n=0

# recv_start NS IP:PORT [udp_peer recv options]: a receiver in the background.
recv_start() {
	local ns=$1 bind=$2
	shift 2
	recv_n=$((recv_n + 1))
	recv_out=$TMP/recv.$recv_n
	in_ns "$ns" "$UDP_PEER" recv --bind "$bind" "$@" >"$recv_out" 2>&1 &
	recv_pid=$!
	wait_for 5 grep -q '^ready' "$recv_out"
}

# recv_wait: waits for the receiver; its result line goes to $got.
recv_wait() { wait "$recv_pid"; got=$(tail -n1 "$recv_out" | sed "s/ span_ms=.*//"); }

# send NS FROM TO COUNT [udp_peer send options]
send() {
	local ns=$1 from=$2 to=$3 count=$4
	shift 4
	in_ns "$ns" "$UDP_PEER" send --bind "$from" --to "$to" --count "$count" "$@" >/dev/null
}

# check_leg WHAT FROM_NS FROM TO_NS TO RELAY_PORT WANT_SOURCE COUNT SIZE:
# every datagram sent to the relay arrives intact, from WANT_SOURCE.
check_leg() {
	local what=$1 sns=$2 src=$3 dns=$4 dst=$5 relay=$6 want=$7 count=$8 size=$9 got
	if ! recv_start "$dns" "$dst" --count "$count" --timeout-ms 3000; then
		not_ok "$what: receiver starts"
		return
	fi
	send "$sns" "$src" "$relay" "$count" --size "$size"
	recv_wait
	check "$what: $count datagrams of $size bytes arrive intact from $want ($got)" \
		test "$got" = "packets=$count bytes=$((count * size)) bad=0 sources=$want"
}

# check_silent WHAT FROM_NS FROM RELAY TO_NS TO: nothing sent reaches TO.
check_silent() {
	local what=$1 sns=$2 src=$3 relay=$4 dns=$5 dst=$6 got
	if ! recv_start "$dns" "$dst" --timeout-ms 1000; then
		not_ok "$what: receiver starts"
		return
	fi
	send "$sns" "$src" "$relay" 20 --size 100
	recv_wait
	check "$what ($got)" test "${got%% *}" = "packets=0"
}

# ctl_once NS [WRAPPER...] ARGS...: forward_ctl (after a wrapper command,
# if given) fed "quit clean"; its output in $out, status in $rc (kept in
# oneshot.log for the sanitizer check).
ctl_once() {
	local ns=$1
	shift
	[ "${1#-}" != "$1" ] && set -- "$FWD_CTL" "$@" # options only: plain forward_ctl
	out=$(echo "quit clean" | in_ns "$ns" "$@" 2>&1)
	rc=$?
	echo "$out" >>"$TMP/oneshot.log"
}

no_xdp_in_r() { ! in_ns "$NS_R" ip link show | grep -q 'prog/xdp'; }
xdp_on_all_in_r() {
	local dev
	for dev in veth-a veth-b veth-x; do
		in_ns "$NS_R" ip link show "$dev" | grep -q 'prog/xdp id [0-9]* name relay_xdp' || return 1
	done
}

# restart_midstream keep|kill: a 2 ms stream a->b runs while forward_ctl
# stops and a new one starts; the program forwards meanwhile and the new
# forward_ctl adopts the pair with counters that went on.
restart_midstream() {
	local how=$1 before stopped later got count=1200
	ctl "read $RTP_PAIR"
	before=$(counter fwd_packets)
	recv_start "$NS_B" "$B4:6000" --count "$count" --timeout-ms 10000 || not_ok "$how: receiver starts"
	send "$NS_A" "$A4:5000" "$R4:40000" "$count" --interval-us 2000 &
	local sender=$!
	sleep 0.5
	ctl_stop "$how"
	[ "$how" = kill ] || check "quit keep answers ok bye and exits 0 ($reply, $ctl_status)" \
		test "$reply" = "ok bye" -a "$ctl_status" -eq 0
	check "$how: forward_ctl is gone" process_gone "$ctl_pid"
	check "$how: link and map pins stay" test -e "$PIN/link-veth-a" -a -e "$PIN/relay_flows"
	check "$how: the program stays attached on r's interfaces" xdp_on_all_in_r
	stopped=$(stat_packets $STAT_FORWARDED)
	sleep 1
	later=$(stat_packets $STAT_FORWARDED)
	check "$how: XDP forwards while no relay process runs ($stopped -> $later)" \
		test "$later" -gt $((stopped + 200))
	check "$how: a new forward_ctl on the same pin dir starts" ctl_start "${CTL_ARGS4[@]}"
	check "$how: every pinned map was reused, none replaced" \
		test -z "$(grep 'does not fit this program' "$TMP/ctl.log")"
	check "$how: it lists the pair as adopted" ctl_adopted
	check "$how: one adopted pair, RTP a<->b (${adopted//$'\n'/ })" \
		test "$(grep -c '^pair ' <<<"$adopted")" -eq 1 -a \
		"$(grep -c "^pair 40000 $A4:5000 40002 $B4:6000 " <<<"$adopted")" -eq 1
	check "$how: the adopted counters went on (> $before)" \
		test "$(echo "$adopted" | grep -o 'fwd_packets=[0-9]*' | cut -d= -f2)" -gt "$before"
	wait "$sender"
	recv_wait
	check "$how: b got all $count datagrams across the restart ($got)" \
		test "${got%% bad=*}" = "packets=$count bytes=$((count * 172))"
	ctl "read $RTP_PAIR"
	check "$how: read after adoption counts every one ($reply)" \
		test "$(counter fwd_packets)" -eq $((before + count))
}

# --- IPv4 ---------------------------------------------------------------------
CTL_ARGS4=(--backend xdp --relay-ip "$R4" --pin-dir "$PIN")
RTP_PAIR="40000 $A4:5000 40002 $B4:6000"
RTCP_PAIR="40001 $A4:5001 40003 $B4:6001"

if ! ctl_start "${CTL_ARGS4[@]}"; then
	not_ok "forward_ctl --backend xdp opens ($(tail -n5 "$TMP/ctl.log"))"
	tap_done
fi
ok "forward_ctl --backend xdp opens on $R4 with pins in $PIN"
check "the log names the attach method and mode per interface" \
	grep -q 'xdp: veth-b: attached with a BPF link pinned at .*, native mode' "$TMP/ctl.log"
check "every r interface runs relay_xdp" xdp_on_all_in_r
check "maps and links are pinned" test -e "$PIN/relay_flows" -a -e "$PIN/relay_stats" \
	-a -e "$PIN/relay_tx_ports" -a -e "$PIN/link-veth-a" -a -e "$PIN/link-veth-b"

ctl "add $RTP_PAIR"
check "add the RTP pair ($reply)" test "$reply" = ok
ctl "add $RTCP_PAIR"
check "add the RTCP pair ($reply)" test "$reply" = ok
fwd0=$(stat_packets $STAT_FORWARDED)
check_leg "RTP a->b" "$NS_A" "$A4:5000" "$NS_B" "$B4:6000" "$R4:40000" "$R4:40002" 50 172
check_leg "RTP b->a" "$NS_B" "$B4:6000" "$NS_A" "$A4:5000" "$R4:40002" "$R4:40000" 30 160
check_leg "RTCP a->b" "$NS_A" "$A4:5001" "$NS_B" "$B4:6001" "$R4:40001" "$R4:40003" 10 80
check_leg "RTCP b->a" "$NS_B" "$B4:6001" "$NS_A" "$A4:5001" "$R4:40003" "$R4:40001" 7 64
fwd1=$(stat_packets $STAT_FORWARDED)
check "relay_stats FORWARDED rose by exactly 97 ($fwd0 -> $fwd1)" test $((fwd1 - fwd0)) -eq 97

ctl "read $RTP_PAIR"
check "RTP read: payload bytes and packets as sent ($reply)" test "$reply" = \
	"ok fwd_bytes=8600 fwd_packets=50 fwd_seen=1 back_bytes=4800 back_packets=30 back_seen=1"
ctl "read $RTCP_PAIR"
check "RTCP read: payload bytes and packets as sent ($reply)" test "$reply" = \
	"ok fwd_bytes=800 fwd_packets=10 fwd_seen=1 back_bytes=448 back_packets=7 back_seen=1"

dump=$(bpftool map dump pinned "$PIN/relay_flows")
for field in src_addr dst_addr new_src_addr new_src_port bytes packets last_seen_ns; do
	check "bpftool map dump of relay_flows names $field" grep -q "\"$field\"" <<<"$dump"
done

mis0=$(stat_packets $STAT_SOURCE_MISMATCH)
check_silent "a third host x sending to the caller's relay port is not forwarded to b" \
	"$NS_X" "$X4:5000" "$R4:40000" "$NS_B" "$B4:6000"
# x claims a's address (a route lookup from a foreign source fails, so x
# owns it as a /32) and sends from another port.
in_ns "$NS_X" ip addr add "$A4/32" dev eth0
check_silent "x spoofing a's address from another port is not forwarded to b" \
	"$NS_X" "$A4:5999" "$R4:40000" "$NS_B" "$B4:6000"
in_ns "$NS_X" ip addr del "$A4/32" dev eth0
mis1=$(stat_packets $STAT_SOURCE_MISMATCH)
check "relay_stats SOURCE_MISMATCH counted all 40 ($mis0 -> $mis1)" test $((mis1 - mis0)) -eq 40
ctl "read $RTP_PAIR"
check "foreign packets are not in the flow counters ($reply)" test "$(counter fwd_packets)" -eq 50

ctl "remove $RTCP_PAIR"
check "remove returns the final counters ($reply)" test "$reply" = \
	"ok fwd_bytes=800 fwd_packets=10 fwd_seen=1 back_bytes=448 back_packets=7 back_seen=1"
ctl "read $RTCP_PAIR"
check "a removed pair reads as absent ($reply)" test "${reply%% *}" = error
check_silent "after remove, RTCP from a is no longer forwarded" \
	"$NS_A" "$A4:5001" "$R4:40001" "$NS_B" "$B4:6001"
ctl "add $RTP_PAIR"
ctl "read $RTP_PAIR"
check "adding an installed pair again keeps its counters ($reply)" \
	test "$(counter fwd_packets)" -eq 50 -a "$(counter back_packets)" -eq 30

restart_midstream keep
restart_midstream kill

# Two relays cannot share an interface: the second one says why and
# disturbs nothing.
at_exit "rm -rf $PIN-other"
ctl_once "$NS_R" --backend xdp --relay-ip "$R4" --pin-dir "$PIN-other"
check "a second relay on another pin dir is refused, naming the conflict (status $rc)" \
	test $rc -eq 1 -a -n "$(grep 'already runs relay_xdp (id [0-9]*), attached by another relay' <<<"$out")"
check "the refused relay leaves no pin dir" test ! -e "$PIN-other"
check "the first relay's program stays attached" xdp_on_all_in_r
check_leg "RTP a->b still flows" "$NS_A" "$A4:5000" "$NS_B" "$B4:6000" "$R4:40000" "$R4:40002" 10 172

ctl_stop clean
check "quit clean answers ok bye and exits 0 ($reply, $ctl_status)" \
	test "$reply" = "ok bye" -a "$ctl_status" -eq 0
check "quit clean removes every pin and the pin dir" test ! -e "$PIN"
check "quit clean leaves no XDP program on r's interfaces" no_xdp_in_r

# --- IPv6 ---------------------------------------------------------------------
if ! ctl_start --backend xdp --relay-ip "$R6" --pin-dir "$PIN"; then
	not_ok "forward_ctl --backend xdp opens on $R6 ($(tail -n5 "$TMP/ctl.log"))"
	tap_done
fi
ok "forward_ctl --backend xdp opens on $R6"
ctl "add 40010 [$A6]:5010 40012 [$B6]:6010"
check "add an IPv6 pair ($reply)" test "$reply" = ok
check_leg "IPv6 RTP a->b" "$NS_A" "[$A6]:5010" "$NS_B" "[$B6]:6010" "[$R6]:40010" "[$R6]:40012" 40 172
check_leg "IPv6 RTP b->a" "$NS_B" "[$B6]:6010" "$NS_A" "[$A6]:5010" "[$R6]:40012" "[$R6]:40010" 20 200
ctl "read 40010 [$A6]:5010 40012 [$B6]:6010"
check "IPv6 read: payload bytes and packets as sent ($reply)" test "$reply" = \
	"ok fwd_bytes=6880 fwd_packets=40 fwd_seen=1 back_bytes=4000 back_packets=20 back_seen=1"
check_silent "IPv6: x is not forwarded to b" "$NS_X" "[$X6]:5010" "[$R6]:40010" "$NS_B" "[$B6]:6010"
ctl_stop clean
check "IPv6: quit clean exits 0 ($ctl_status)" test "$ctl_status" -eq 0
check "IPv6: quit clean removes the pins" test ! -e "$PIN"
check "IPv6: quit clean leaves no XDP program" no_xdp_in_r

# --- bpffs not mounted ---------------------------------------------------------
# In a private mount namespace without bpffs, open mounts it (there) itself.
out=$(echo "quit clean" | unshare --mount --propagation private -- sh -c "
	while mountpoint -q /sys/fs/bpf; do umount /sys/fs/bpf || exit 9; done
	exec nsenter --net=/run/netns/$NS_R -- '$FWD_CTL' --backend xdp --relay-ip $R4" 2>&1)
rc=$?
echo "$out" >>"$TMP/oneshot.log"
check "without bpffs, open mounts it and says so (status $rc)" test $rc -eq 0 -a \
	-n "$(grep 'xdp: mounted bpffs at /sys/fs/bpf' <<<"$out")" -a -n "$(grep '^ready xdp' <<<"$out")"
check "the default pin dir is /sys/fs/bpf/mediaproxy/<relay_ip, dots as _>" \
	grep -q "pinned in /sys/fs/bpf/mediaproxy/${R4//./_} " <<<"$out"
check "our own bpffs mount is untouched" mountpoint -q /sys/fs/bpf
check "and r is left without XDP" no_xdp_in_r

# --- refusals (D9) --------------------------------------------------------------
NS_L=${NS_TAG}l
ip netns add "$NS_L" && at_exit "ip netns del $NS_L 2>/dev/null"
in_ns "$NS_L" ip link set lo up
ctl_once "$NS_L" --backend auto --relay-ip 127.0.0.1 --pin-dir "$PIN-lo"
check "auto on 127.0.0.1 opens another backend ($(echo "$out" | grep '^ready'), status $rc)" \
	test $rc -eq 0 -a -n "$(grep -E '^ready (conntrack|userspace)$' <<<"$out")"
check "auto says why xdp was passed over: relay_ip on lo" grep -q \
	'xdp not usable: relay_ip 127.0.0.1 is on lo; XDP cannot redirect to local destinations' <<<"$out"
ctl_once "$NS_L" --backend xdp --relay-ip 127.0.0.1 --pin-dir "$PIN-lo"
check "forwarding = xdp on 127.0.0.1 is a startup error naming lo (status $rc)" test $rc -eq 1 -a \
	-n "$(grep 'forwarding = xdp cannot be used: relay_ip 127.0.0.1 is on lo' <<<"$out")"
check "a refused xdp open creates no pin dir" test ! -e "$PIN-lo"
ctl_once "$NS_R" --backend xdp --relay-ip "$R4" --interfaces veth-a,lo --pin-dir "$PIN"
check "interfaces = lo is refused (status $rc)" test $rc -eq 1 -a \
	-n "$(grep 'interface lo is a loopback interface' <<<"$out")"
ctl_once "$NS_R" --backend xdp --relay-ip "$R4" --interfaces nosuch0 --pin-dir "$PIN"
check "an unknown interface is refused by name (status $rc)" test $rc -eq 1 -a \
	-n "$(grep 'interface nosuch0 (from `interfaces`) does not exist' <<<"$out")"
if command -v setpriv >/dev/null; then
	ctl_once "$NS_R" setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all -- \
		"$FWD_CTL" --backend xdp --relay-ip "$R4" --pin-dir "$PIN"
	check "without root, xdp is refused as not permitted (status $rc)" test $rc -eq 1 -a \
		-n "$(grep 'forwarding = xdp cannot be used: not permitted: needs root' <<<"$out")"
else
	skip "without root, xdp is refused as not permitted" "setpriv is not installed"
fi
ctl_once "$NS_R" --backend xdp --relay-ip "$R4" --pin-dir "$PIN.v4"
check "a bpf_pin_dir with a dot is refused with the bpffs rule (status $rc)" test $rc -eq 1 -a \
	-n "$(grep "cannot create bpf_pin_dir $PIN.v4: .*(bpffs allows no '.' in names)" <<<"$out")"
check "refused opens leave no pins and no program" test ! -e "$PIN"
check "refused opens leave r without XDP" no_xdp_in_r
check "forward_ctl reported no sanitizer error" \
	test -z "$(grep -E 'Sanitizer|runtime error' "$TMP/ctl.log" "$TMP/oneshot.log")"

tap_done
