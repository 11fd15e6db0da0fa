#!/usr/bin/env bash
# The conntrack backend (relayd/forward_conntrack.c) on the netns bed: RTP
# and RTCP from caller a reach callee b through relay r by kernel NAT alone
# (forward_ctl never reads its sockets), from the relay's callee-facing port,
# and back; counters are UDP payload bytes (D4); packets from a third host
# or a spoofed source port are not forwarded; the nftables table and the
# entries survive `quit keep` (D6) and are adopted by the next process, and
# `quit clean` removes both. IPv4, IPv6, and the refusal without forwarding.
set -u
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/netns.sh"

HELPERS=$MP_BUILD/tests/helpers
TABLE=mptest$$
MARK=0x4d500001 # CT_MARK in forward_conntrack.c
SIZE=172        # an RTP packet of 20 ms G.711

skip_all() {
	local what
	for what in "forwarding through the conntrack backend" "adoption after quit keep" \
		"clean removal" "IPv6"; do
		skip "$what" "$1"
	done
	tap_done
}

[ "$(id -u)" -eq 0 ] || skip_all "needs root"
for tool in nft conntrack nsenter ip; do
	command -v "$tool" >/dev/null || skip_all "$tool not installed (scripts/install-deps.sh)"
done
if [ ! -x "$HELPERS/forward_ctl" ] || [ ! -x "$HELPERS/udp_peer" ]; then
	not_ok "forward_ctl and udp_peer are built in $HELPERS"
	tap_done
fi
netns_setup || { not_ok "netns test bed set up"; tap_done; }

# --- forward_ctl as a coprocess in r --------------------------------------------
FWD_PID='' FWD_IN='' FWD_OUT='' REPLY_LINE=''
trap '' PIPE    # a dead forward_ctl fails the tests, it does not kill the script
show_log_on_failure() {  # tap_failed: lib.sh
	# shellcheck disable=SC2154
	[ "$tap_failed" -eq 0 ] || sed 's/^/# forward_ctl: /' "$TMP/ctl.log" 2>/dev/null
	return 0
}
at_exit show_log_on_failure
ctl_stop_on_exit() {
	[ -n "$FWD_OUT" ] && exec {FWD_OUT}>&-   # EOF: forward_ctl closes (keep) and exits
	[ -n "$FWD_PID" ] && stop_pid "$FWD_PID"
	return 0
}
at_exit ctl_stop_on_exit

ctl_start() {   # ctl_start RELAY_IP: 0 once it says "ready conntrack"
	coproc CTL { in_ns "$NS_R" "$HELPERS/forward_ctl" --backend conntrack \
		--relay-ip "$1" --nft-table "$TABLE" 2>>"$TMP/ctl.log"; }
	FWD_PID=$!  # not CTL_PID: bash unsets that one when the coprocess ends
	# Our own copies: bash drops the coproc's fds once it has exited.
	exec {FWD_IN}<&"${CTL[0]}" {FWD_OUT}>&"${CTL[1]}"
	read -r -t 10 REPLY_LINE <&"$FWD_IN" && [ "$REPLY_LINE" = "ready conntrack" ]
}

ctl() {         # ctl COMMAND...: sends one command; its answer in REPLY_LINE
	REPLY_LINE=
	echo "$*" >&"$FWD_OUT" && read -r -t 10 REPLY_LINE <&"$FWD_IN"
}

ctl_adopted() { # prints the "pair ..." lines of `adopted`
	local line
	ctl adopted || return 1
	while read -r -t 10 line <&"$FWD_IN" && [ "$line" != end ]; do echo "$line"; done
}

ctl_quit() {    # ctl_quit clean|keep: 0 if it said bye and exited 0
	local rc
	ctl quit "$1"
	exec {FWD_OUT}>&- {FWD_IN}<&-
	FWD_OUT='' FWD_IN=''
	wait "$FWD_PID"; rc=$?
	FWD_PID=''
	[ "$REPLY_LINE" = "ok bye" ] && [ $rc -eq 0 ]
}

# --- traffic ----------------------------------------------------------------------
RECV_PID='' RECV_OUT='' RECV_GOT='' recv_n=0
recv_start() {  # recv_start NS BIND COUNT TIMEOUT_MS (COUNT 0: until the timeout)
	recv_n=$((recv_n + 1))
	RECV_OUT=$TMP/recv.$recv_n
	in_ns "$1" "$HELPERS/udp_peer" recv --bind "$2" --count "$3" --timeout-ms "$4" \
		>"$RECV_OUT" &
	RECV_PID=$!
	wait_for 5 grep -q '^ready' "$RECV_OUT"
}
# recv_wait: waits for the receiver (in this shell: a $(...) subshell could
# not wait for it) and leaves its report in RECV_GOT.
recv_wait() { wait "$RECV_PID"; RECV_GOT=$(tail -n 1 "$RECV_OUT" | sed "s/ span_ms=.*//"); }

send() {        # send NS BIND TO COUNT [udp_peer options...]
	local ns=$1 bind=$2 to=$3 count=$4
	shift 4
	in_ns "$ns" "$HELPERS/udp_peer" send --bind "$bind" --to "$to" --count "$count" \
		--size "$SIZE" --interval-us 1000 "$@" >/dev/null
}

# expect_flow DESC NS_FROM FROM TO COUNT NS_TO AT WANT_SOURCE: COUNT packets
# from FROM to the relay address TO arrive at AT, intact, from WANT_SOURCE.
expect_flow() {
	local desc=$1 got want
	recv_start "$6" "$7" "$5" 3000 || { not_ok "$desc (receiver did not start)"; return; }
	send "$2" "$3" "$4" "$5"
	recv_wait
	got=$RECV_GOT
	want="packets=$5 bytes=$(($5 * SIZE)) bad=0 sources=$8"
	if [ "$got" = "$want" ]; then ok "$desc"; else not_ok "$desc (got: $got; want: $want)"; fi
}

# expect_nothing DESC NS_FROM FROM TO NS_TO AT [udp_peer options...]
expect_nothing() {
	local desc=$1 ns_from=$2 from=$3 to=$4 ns_to=$5 at=$6 got
	shift 6
	recv_start "$ns_to" "$at" 0 800 || { not_ok "$desc (receiver did not start)"; return; }
	send "$ns_from" "$from" "$to" 5 "$@"
	recv_wait
	got=$RECV_GOT
	case $got in
	packets=0\ *) ok "$desc" ;;
	*) not_ok "$desc (got: $got)" ;;
	esac
}

# expect_counters DESC PAIR FWD_PACKETS BACK_PACKETS: `read` shows payload
# bytes (SIZE per packet, headers taken off) and last-seen set.
expect_counters() {
	local desc=$1 pair=$2 f=$3 b=$4 want
	want="ok fwd_bytes=$((f * SIZE)) fwd_packets=$f fwd_seen=$((f > 0)) back_bytes=$((b * SIZE))"
	want="$want back_packets=$b back_seen=$((b > 0))"
	ctl read "$pair"
	if [ "$REPLY_LINE" = "$want" ]; then ok "$desc"; else
		not_ok "$desc (got: $REPLY_LINE; want: $want)"; fi
}

table_present() { in_ns "$NS_R" nft list table inet "$TABLE" >/dev/null 2>&1; }
table_absent() { ! table_present; }
entry_timeout() { # entry_timeout PORT: seconds left on our entry for PORT, or 0
	in_ns "$NS_R" conntrack -L -p udp --mark "$MARK" --orig-port-dst "$1" 2>/dev/null |
		awk '{ print $3; found = 1 } END { if (!found) print 0 }'
}
table_complete() {
	local t
	t=$(in_ns "$NS_R" nft list table inet "$TABLE") &&
		grep -q 'type nat hook prerouting' <<<"$t" &&
		grep -q 'type nat hook postrouting' <<<"$t" && grep -q 'ct mark' <<<"$t"
}
spoofed_seen() {
	in_ns "$NS_R" conntrack -L -p udp -s "$A4" --sport 5999 2>/dev/null | grep -q 'dport=40000'
}
refused_naming() { [ "$rc" -ne 0 ] && grep -q "$1" <<<"$out"; }
our_entries() { in_ns "$NS_R" conntrack -L -p udp --mark "$MARK" 2>/dev/null | grep -c 'mark='; }

# --- IPv4 -----------------------------------------------------------------------------
RTP="40000 $A4:5000 40002 $B4:6000"
RTCP="40001 $A4:5001 40003 $B4:6001"

if ! ctl_start "$R4"; then
	not_ok "forward_ctl opens the conntrack backend (got: ${REPLY_LINE:-nothing}; log: $(tail -n 3 "$TMP/ctl.log"))"
	tap_done
fi
ok "forward_ctl opens the conntrack backend"
check "our table has NAT chains on prerouting and postrouting, and a ct rule" table_complete

# Before the pair exists, the relay's sockets see the first packets (both
# ways) and the kernel makes plain entries for them; add must replace those.
send "$NS_A" "$A4:5000" "$R4:40000" 3
send "$NS_B" "$B4:6000" "$R4:40002" 3
ctl add "$RTP"
check "add RTP pair after packets made plain entries for its tuples" test "$REPLY_LINE" = ok
# The relay's own sends from its ports (user-space forwarding before both
# sides latched) leave entries holding the RTCP pair's tuples.
send "$NS_R" "$R4:40003" "$B4:6001" 2
send "$NS_R" "$R4:40001" "$A4:5001" 2
ctl add "$RTCP"
check "add RTCP pair after the relay's own sends made entries for its tuples" \
	test "$REPLY_LINE" = ok
ctl add "30000 $A4:5002 30002 $B4:6002"
check "add refuses a port outside the range" test "${REPLY_LINE%% *}" = error

expect_flow "RTP a -> b arrives intact from the relay's callee-facing port" \
	"$NS_A" "$A4:5000" "$R4:40000" 20 "$NS_B" "$B4:6000" "$R4:40002"
# One way only so far: the kernel gave the entry its 30 s "unreplied" UDP
# timeout; read_pair sets ours (60 s) again.
ctl read "$RTP"
check "read refreshes the entry's timeout" test "$(entry_timeout 40000)" -gt 45
expect_flow "RTP b -> a arrives intact from the relay's caller-facing port" \
	"$NS_B" "$B4:6000" "$R4:40002" 10 "$NS_A" "$A4:5000" "$R4:40000"
expect_flow "RTCP a -> b" "$NS_A" "$A4:5001" "$R4:40001" 4 "$NS_B" "$B4:6001" "$R4:40003"
expect_flow "RTCP b -> a" "$NS_B" "$B4:6001" "$R4:40003" 3 "$NS_A" "$A4:5001" "$R4:40001"
expect_counters "RTP counters are payload bytes and packets" "$RTP" 20 10
expect_counters "RTCP counters are payload bytes and packets" "$RTCP" 4 3

expect_nothing "a third host sending to the caller-facing port is not forwarded" \
	"$NS_X" "$X4:5000" "$R4:40000" "$NS_B" "$B4:6000"
# x sends from the caller's address (given to x: IP_FREEBIND alone does not
# let a socket send from an address the host lacks) with another port.
in_ns "$NS_X" ip addr add "$A4/32" dev eth0
expect_nothing "the caller's address with another port (spoofed by x) is not forwarded" \
	"$NS_X" "$A4:5999" "$R4:40000" "$NS_B" "$B4:6000"
in_ns "$NS_X" ip addr del "$A4/32" dev eth0
check "the spoofed packets did reach the relay" spoofed_seen
expect_counters "foreign packets are not in the pair's counters" "$RTP" 20 10

ctl remove "$RTCP"
check "remove RTCP returns the final counters" test "$REPLY_LINE" = \
	"ok fwd_bytes=$((4 * SIZE)) fwd_packets=4 fwd_seen=1 back_bytes=$((3 * SIZE)) back_packets=3 back_seen=1"
expect_nothing "after remove, RTCP is no longer forwarded" \
	"$NS_A" "$A4:5001" "$R4:40001" "$NS_B" "$B4:6001"
ctl read "$RTCP"
check "read of a removed pair says it is not there" test "$REPLY_LINE" = "error No such file or directory"

check "quit keep" ctl_quit keep
check "quit keep leaves the table" table_present
check "quit keep leaves the entry" test "$(our_entries)" -eq 1
expect_flow "with no process running, RTP a -> b still flows" \
	"$NS_A" "$A4:5000" "$R4:40000" 5 "$NS_B" "$B4:6000" "$R4:40002"

if ctl_start "$R4"; then ok "a new forward_ctl opens over the kept table"; else
	not_ok "a new forward_ctl opens over the kept table (log: $(tail -n 3 "$TMP/ctl.log"))"; tap_done; fi
adopted=$(ctl_adopted)
check "it adopts the pair with the counters that went on" test "$adopted" = \
	"pair 40000 $A4:5000 40002 $B4:6000 fwd_packets=25 back_packets=10"
expect_counters "read works on the adopted pair" "$RTP" 25 10
check "the table was not created twice: one counting rule" \
	test "$(in_ns "$NS_R" nft list chain inet "$TABLE" forward | grep -c 'ct mark')" -eq 1

check "quit clean" ctl_quit clean
check "quit clean removes the table" table_absent
check "quit clean removes our entries" test "$(our_entries)" -eq 0
expect_nothing "after quit clean, RTP is no longer forwarded" \
	"$NS_A" "$A4:5000" "$R4:40000" "$NS_B" "$B4:6000"

# --- IPv6 -----------------------------------------------------------------------------
RTP6="40010 [$A6]:5010 40012 [$B6]:6010"
if ctl_start "$R6"; then
	ok "IPv6: forward_ctl opens with relay_ip $R6"
	send "$NS_A" "[$A6]:5010" "[$R6]:40010" 2
	ctl add "$RTP6"
	check "IPv6: add RTP pair" test "$REPLY_LINE" = ok
	expect_flow "IPv6: RTP a -> b from the relay's callee-facing port" \
		"$NS_A" "[$A6]:5010" "[$R6]:40010" 12 "$NS_B" "[$B6]:6010" "[$R6]:40012"
	expect_flow "IPv6: RTP b -> a from the relay's caller-facing port" \
		"$NS_B" "[$B6]:6010" "[$R6]:40012" 6 "$NS_A" "[$A6]:5010" "[$R6]:40010"
	expect_counters "IPv6: counters are payload bytes (48 header bytes off)" "$RTP6" 12 6
	check "IPv6: quit clean" ctl_quit clean
	check "IPv6: no entries left" test "$(our_entries)" -eq 0
else
	not_ok "IPv6: forward_ctl opens with relay_ip $R6 (log: $(tail -n 3 "$TMP/ctl.log"))"
fi

# --- no IP forwarding: refuse, say why, leave nothing -----------------------------
in_ns "$NS_R" sysctl -qw net.ipv4.ip_forward=0
out=$(in_ns "$NS_R" "$HELPERS/forward_ctl" --backend conntrack --relay-ip "$R4" \
	--nft-table "$TABLE" </dev/null 2>&1); rc=$?
check "with ip_forward off, the backend refuses and names the sysctl" \
	refused_naming "net.ipv4.ip_forward"
check "and creates no table" table_absent
in_ns "$NS_R" sysctl -qw net.ipv4.ip_forward=1

tap_done
