# The netns test bed (sourced after lib.sh): four hosts joined through the
# relay host r, all private to this test run.
#
#   a (caller) 10.201.1.2  fd00:201:1::2 --- veth-a 10.201.1.1  fd00:201:1::1 \
#   b (callee) 10.201.2.2  fd00:201:2::2 --- veth-b 10.201.2.1  fd00:201:2::1  r
#   x (third)  10.201.3.2  fd00:201:3::2 --- veth-x 10.201.3.1  fd00:201:3::1 /
#
# The relay's address (relay_ip) is r's a-side address, 10.201.1.1 /
# fd00:201:1::1; b and x reach it through r's routing. Every host's own
# interface is eth0. Namespace names carry the test's pid so parallel or
# leftover runs never collide; netns_setup registers their removal.
# shellcheck shell=bash

NS_TAG=mp$$
NS_A=${NS_TAG}a NS_R=${NS_TAG}r NS_B=${NS_TAG}b NS_X=${NS_TAG}x
A4=10.201.1.2 B4=10.201.2.2 X4=10.201.3.2 R4=10.201.1.1
A6=fd00:201:1::2 B6=fd00:201:2::2 X6=fd00:201:3::2 R6=fd00:201:1::1

# in_ns NS CMD...: runs CMD in NS's network namespace but keeps our mount
# namespace, so bpffs pins under /sys/fs/bpf stay visible (ip netns exec
# would mount a fresh /sys).
in_ns() { local ns=$1; shift; nsenter --net="/run/netns/$ns" -- "$@"; }

netns_cleanup() {
	local ns
	for ns in "$NS_A" "$NS_B" "$NS_X" "$NS_R"; do
		ip netns del "$ns" 2>/dev/null || true
	done
}

_netns_host() {   # _netns_host NS LETTER SUBNET
	local ns=$1 letter=$2 n=$3
	ip link add "veth-$letter" netns "$NS_R" type veth peer name eth0 netns "$ns"
	in_ns "$ns" ip link set lo up
	in_ns "$ns" ip addr add "10.201.$n.2/24" dev eth0
	in_ns "$ns" ip addr add "fd00:201:$n::2/64" dev eth0 nodad
	in_ns "$ns" ip link set eth0 up
	in_ns "$ns" ip route add default via "10.201.$n.1"
	in_ns "$ns" ip -6 route add default via "fd00:201:$n::1"
	# Senders: no checksum offload, or XDP sees partial UDP checksums.
	in_ns "$ns" ethtool -K eth0 tx off >/dev/null 2>&1
	# Receivers of XDP-redirected frames: a veth drops them unless the
	# peer has GRO on (or an XDP program) — TESTING.md.
	in_ns "$ns" ethtool -K eth0 gro on >/dev/null 2>&1
	in_ns "$NS_R" ip addr add "10.201.$n.1/24" dev "veth-$letter"
	in_ns "$NS_R" ip addr add "fd00:201:$n::1/64" dev "veth-$letter" nodad
	in_ns "$NS_R" ip link set "veth-$letter" up
	in_ns "$NS_R" ethtool -K "veth-$letter" tx off >/dev/null 2>&1
	in_ns "$NS_R" ethtool -K "veth-$letter" gro on >/dev/null 2>&1
}

# netns_setup: builds the bed; returns non-zero if anything failed.
netns_setup() {
	at_exit netns_cleanup
	local ns
	for ns in "$NS_A" "$NS_R" "$NS_B" "$NS_X"; do
		ip netns add "$ns" || return 1
	done
	in_ns "$NS_R" ip link set lo up
	_netns_host "$NS_A" a 1 && _netns_host "$NS_B" b 2 && _netns_host "$NS_X" x 3 || return 1
	# ip_forward=1 resets the per-interface settings, so set those after.
	in_ns "$NS_R" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
		net.ipv4.conf.all.forwarding=1 net.netfilter.nf_conntrack_acct=1 || return 1
	for ns in a b x; do
		in_ns "$NS_R" sysctl -qw "net.ipv4.conf.veth-$ns.forwarding=1" \
			"net.ipv6.conf.veth-$ns.forwarding=1" || return 1
	done
	netns_resolve_neighbours
}

# Fills r's ARP/ND tables (bpf_fib_lookup answers NO_NEIGH until then) and
# the hosts' entries for r.
netns_resolve_neighbours() {
	local ns n=1
	for ns in "$NS_A" "$NS_B" "$NS_X"; do
		in_ns "$ns" ping -c1 -W2 "10.201.$n.1" >/dev/null 2>&1 || return 1
		in_ns "$ns" ping -6 -c1 -W2 "fd00:201:$n::1" >/dev/null 2>&1 || return 1
		n=$((n + 1))
	done
}

# Sets NS_PIN_DIR to a unique bpffs directory for this run's pins, removed
# at exit. Call it directly, not in $(...): the cleanup is registered in
# this shell.
netns_pin_dir() {
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || return 1
	NS_PIN_DIR=/sys/fs/bpf/mediaproxy-test-$$
	at_exit "rm -rf $NS_PIN_DIR"
}
