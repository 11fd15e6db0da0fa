# bench_lib.sh: the benchmarks' testbed and forwarder controls (sourced
# after tests/integration/lib.sh, which gives at_exit, $TMP, wait_for,
# stop_pid, $MP_BUILD and $MP_ROOT). Used by tests/bench/forwarding.sh and
# the realistic-load benchmark.
#
# The testbed: three network namespaces, IPv4 only, private to this run
# (names carry the pid), MAC addresses and neighbour entries fixed so no
# ARP happens while measuring:
#
#   a (sender)   eth0 10.202.1.2  --- veth-a 10.202.1.1 = BENCH_R4 (relay_ip) \
#                                                                              r
#   b (receiver) eth0 10.202.2.2  --- veth-b 10.202.2.1                       /
#
#   BENCH_NS_A BENCH_NS_R BENCH_NS_B       namespace names (/run/netns/...)
#   BENCH_A4 BENCH_B4 BENCH_R4 BENCH_RB4   addresses (a, b, r's a side, r's b side)
#   BENCH_MAC_A BENCH_MAC_RA BENCH_MAC_RB BENCH_MAC_B
#   BENCH_CPU_TX BENCH_CPU_RX              the cores the sender and receiver
#                                          are pinned to (0 and 1 on 2 cores)
#   BENCH_NAPI_PIDS                        "R_A R_B B" pids of the NAPI kthreads
#                                          of r's veth-a, r's veth-b and b's eth0
#
# Every veth end: tx checksum offload off (a sender must hand XDP complete
# UDP checksums, TESTING.md) and GRO on, which gives each end a NAPI
# context; a veth only accepts XDP_REDIRECTed frames when its peer has one
# (GRO or an XDP program; we use GRO, so the receivers need no extra XDP
# pass program). Threaded NAPI on r's veth-a and veth-b: the relay's receive
# work (the XDP program, or the stack forwarding/delivering) then runs in
# its own kthreads, which the scheduler places on either core, instead of in
# softirq context on the sender's core, where it would be charged to the
# sender's process. b's eth0 is threaded too, so the receive work at b is
# one kthread whose CPU the benchmark can report apart.
#
# Functions (each returns non-zero on failure):
#   bench_bed_up                 builds the bed, registers its removal at exit
#   bench_bed_down               removes it (idempotent)
#   bench_in NS CMD...           runs CMD in NS's netns, keeping our mount ns
#   bench_fwd_start KIND         starts a forwarder in r: bare_redirect, xdp,
#                                conntrack, userspace (relay_lab) or rtpengine
#                                (rtpengine daemon + rtpengine_ng.py serve);
#                                BENCH_FWD_PID is the controlling process,
#                                BENCH_FWD_WHY says why a start failed
#   bench_fwd_stream A_IP:PORT B_IP:PORT
#                                sets up one stream; sets BENCH_TO_A (where a
#                                sends), BENCH_TO_B (where b says hello to
#                                latch, "-" if nothing to latch) and
#                                BENCH_STREAM_ID (for "close ID")
#   bench_fwd_cmd LINE           one raw line to relay_lab / rtpengine_ng.py
#                                serve; the answer in BENCH_FWD_REPLY
#   bench_fwd_stop               stops the forwarder (and rtpengine)
#   bench_fwd_pids               pids of the forwarder's own processes
#                                (relay_lab, rtpengine), for CPU breakdowns
#   bench_rtpengine_install      installs rtpengine-daemon if missing
#                                (apt-get --no-install-recommends); sets
#                                BENCH_RTPE_WHY on failure
#   bench_rtpengine_start [NG_PORT [PORT_MIN [PORT_MAX]]]
#                                rtpengine in r, userspace only (--table=-1),
#                                media on BENCH_R4, ng on 127.0.0.1:NG_PORT;
#                                BENCH_RTPE_PID, BENCH_RTPE_NG (host:port)
#   bench_rtpengine_stop
#   bench_cpu_snapshot PID...    sets BENCH_SNAP (an opaque string) to the
#                                machine's and each PID's CPU counters now
#   bench_cpu_busy_ns A B        machine CPU busy ns between two snapshots
#                                (see bench_cpu_snapshot for what it counts)
#   bench_cpu_busy_ticks_ns A B  the same from the tick-sampled fields
#   bench_cpu_pid_ns A B I       CPU ns of the I-th pid (0-based) between them
#   bench_netdev PID IFACE       "RX_PACKETS RX_DROPPED TX_PACKETS TX_DROPPED" of
#                                IFACE in PID's netns (/proc/PID/net/dev)
#   bench_udp_rcvbuf_errors PID  UDP RcvbufErrors in PID's netns
# shellcheck shell=bash

BENCH_TAG=mpb$$
BENCH_NS_A=${BENCH_TAG}a BENCH_NS_R=${BENCH_TAG}r BENCH_NS_B=${BENCH_TAG}b
BENCH_A4=10.202.1.2 BENCH_R4=10.202.1.1 BENCH_RB4=10.202.2.1 BENCH_B4=10.202.2.2
BENCH_MAC_A=02:b0:00:01:00:02 BENCH_MAC_RA=02:b0:00:01:00:01
BENCH_MAC_RB=02:b0:00:02:00:01 BENCH_MAC_B=02:b0:00:02:00:02
BENCH_NAPI_PIDS=""
BENCH_PY=${PYTHON:-python3}
BENCH_RELAY_PORTS=${BENCH_RELAY_PORTS:-40000:41000}
BENCH_RTPE_PORTS=${BENCH_RTPE_PORTS:-30000:30998}
BENCH_NG_PORT=${BENCH_NG_PORT:-22223}
BENCH_HZ=$(getconf CLK_TCK)
BENCH_NCPU=$(nproc)
if [ "$BENCH_NCPU" -ge 2 ]; then
	BENCH_CPU_TX=${BENCH_CPU_TX:-0} BENCH_CPU_RX=${BENCH_CPU_RX:-1}
else
	BENCH_CPU_TX=${BENCH_CPU_TX:-0} BENCH_CPU_RX=${BENCH_CPU_RX:-0}
fi
BENCH_FWD_PID="" BENCH_FWD_KIND="" BENCH_RTPE_PID=""

bench_in() { local ns=$1; shift; nsenter --net="/run/netns/$ns" -- "$@"; }

# ip netns exec mounts a sysfs of that namespace: the way to reach
# /sys/class/net/<if>/threaded of a device inside it.
_bench_sysfs_write() {   # NS PATH VALUE
	ip netns exec "$1" sh -c "echo $3 > $2"
}

_bench_napi_threads() {   # IF: pids of the napi/IF-<id> kthreads (of any netns)
	local d comm
	for d in /proc/[0-9]*; do
		{ read -r comm <"$d/comm"; } 2>/dev/null || continue
		[[ $comm == "napi/$1-"* ]] && echo "${d#/proc/}"
	done
}

# NS IF: turns threaded NAPI on and prints the pid of the kthread that
# appeared for it (other namespaces may have interfaces of the same name).
_bench_threaded() {
	local before after p
	before=" $(_bench_napi_threads "$2" | tr '\n' ' ') "
	_bench_sysfs_write "$1" "/sys/class/net/$2/threaded" 1 || return 1
	after=$(_bench_napi_threads "$2")
	for p in $after; do
		[[ $before == *" $p "* ]] || { echo "$p"; return 0; }
	done
	echo 0   # no kthread found: the breakdown reports nothing for it
}

_bench_veth() {   # NS-HOST R-IF HOST-MAC R-MAC
	ip link add "$2" address "$4" netns "$BENCH_NS_R" type veth \
		peer name eth0 address "$3" netns "$1" || return 1
}

_bench_if_common() {   # NS IF
	bench_in "$1" ip link set "$2" up &&
		bench_in "$1" ethtool -K "$2" tx off gro on >/dev/null 2>&1
}

bench_bed_down() {
	local ns
	for ns in "$BENCH_NS_A" "$BENCH_NS_B" "$BENCH_NS_R"; do
		ip netns del "$ns" 2>/dev/null || true
	done
}

bench_bed_up() {
	local ns ra rb bb
	at_exit bench_bed_down
	for ns in "$BENCH_NS_A" "$BENCH_NS_R" "$BENCH_NS_B"; do
		ip netns add "$ns" || return 1
		bench_in "$ns" ip link set lo up || return 1
		# IPv4 only: no router solicitations or DAD while measuring.
		bench_in "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1 || return 1
	done
	_bench_veth "$BENCH_NS_A" veth-a "$BENCH_MAC_A" "$BENCH_MAC_RA" &&
		_bench_veth "$BENCH_NS_B" veth-b "$BENCH_MAC_B" "$BENCH_MAC_RB" || return 1
	_bench_if_common "$BENCH_NS_A" eth0 && _bench_if_common "$BENCH_NS_B" eth0 &&
		_bench_if_common "$BENCH_NS_R" veth-a && _bench_if_common "$BENCH_NS_R" veth-b ||
		return 1
	bench_in "$BENCH_NS_A" ip addr add "$BENCH_A4/24" dev eth0 &&
		bench_in "$BENCH_NS_A" ip route add default via "$BENCH_R4" &&
		bench_in "$BENCH_NS_A" ip neigh replace "$BENCH_R4" lladdr "$BENCH_MAC_RA" \
			dev eth0 nud permanent &&
		bench_in "$BENCH_NS_B" ip addr add "$BENCH_B4/24" dev eth0 &&
		bench_in "$BENCH_NS_B" ip route add default via "$BENCH_RB4" &&
		bench_in "$BENCH_NS_B" ip neigh replace "$BENCH_RB4" lladdr "$BENCH_MAC_RB" \
			dev eth0 nud permanent &&
		bench_in "$BENCH_NS_R" ip addr add "$BENCH_R4/24" dev veth-a &&
		bench_in "$BENCH_NS_R" ip addr add "$BENCH_RB4/24" dev veth-b &&
		bench_in "$BENCH_NS_R" ip neigh replace "$BENCH_A4" lladdr "$BENCH_MAC_A" \
			dev veth-a nud permanent &&
		bench_in "$BENCH_NS_R" ip neigh replace "$BENCH_B4" lladdr "$BENCH_MAC_B" \
			dev veth-b nud permanent || return 1
	# ip_forward=1 resets the per-interface settings: those come after.
	# bpf_fib_lookup needs forwarding on the ingress interface.
	bench_in "$BENCH_NS_R" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.forwarding=1 \
		net.ipv4.conf.veth-a.forwarding=1 net.ipv4.conf.veth-b.forwarding=1 \
		net.netfilter.nf_conntrack_acct=1 2>/dev/null ||
		bench_in "$BENCH_NS_R" sysctl -qw net.ipv4.ip_forward=1 \
			net.ipv4.conf.all.forwarding=1 net.ipv4.conf.veth-a.forwarding=1 \
			net.ipv4.conf.veth-b.forwarding=1 || return 1
	ra=$(_bench_threaded "$BENCH_NS_R" veth-a) && rb=$(_bench_threaded "$BENCH_NS_R" veth-b) &&
		bb=$(_bench_threaded "$BENCH_NS_B" eth0) || return 1
	BENCH_NAPI_PIDS="$ra $rb $bb"
	bench_in "$BENCH_NS_A" ping -c1 -W2 "$BENCH_B4" >/dev/null 2>&1
}

# --- rtpengine ----------------------------------------------------------------

bench_rtpengine_install() {
	BENCH_RTPE_WHY=""
	command -v rtpengine >/dev/null 2>&1 && return 0
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y --no-install-recommends rtpengine-daemon >"$TMP/apt.log" 2>&1; then
		apt-get update >>"$TMP/apt.log" 2>&1
		apt-get install -y --no-install-recommends rtpengine-daemon >>"$TMP/apt.log" 2>&1
	fi
	command -v rtpengine >/dev/null 2>&1 && return 0
	BENCH_RTPE_WHY="apt-get install rtpengine-daemon failed: $(tail -1 "$TMP/apt.log")"
	return 1
}

_bench_ng_ping() {
	bench_in "$BENCH_NS_R" "$BENCH_PY" "$MP_ROOT/tests/bench/rtpengine_ng.py" \
		--ng "$BENCH_RTPE_NG" ping >/dev/null 2>&1
}

bench_rtpengine_start() {
	local ng=${1:-$BENCH_NG_PORT} pmin=${2:-${BENCH_RTPE_PORTS%:*}} pmax=${3:-${BENCH_RTPE_PORTS#*:}}
	BENCH_RTPE_WHY=""
	BENCH_RTPE_NG=127.0.0.1:$ng
	command -v rtpengine >/dev/null 2>&1 || { BENCH_RTPE_WHY="rtpengine is not installed"; return 1; }
	# Userspace only (no kernel table); warnings only, so logging costs
	# nothing per packet; threads as many as cores (its default).
	nsenter --net="/run/netns/$BENCH_NS_R" -- rtpengine --foreground --log-stderr \
		--table=-1 --no-fallback --config-file=none --interface="$BENCH_R4" \
		--listen-ng="$BENCH_RTPE_NG" --port-min="$pmin" --port-max="$pmax" \
		--log-level=4 >"$TMP/rtpengine.log" 2>&1 &
	BENCH_RTPE_PID=$!
	[ -n "${_bench_rtpe_registered:-}" ] || at_exit bench_rtpengine_stop
	_bench_rtpe_registered=1
	if ! wait_for 10 _bench_ng_ping; then
		BENCH_RTPE_WHY="rtpengine did not answer an ng ping: $(tail -1 "$TMP/rtpengine.log")"
		bench_rtpengine_stop
		return 1
	fi
}

bench_rtpengine_stop() {
	[ -n "$BENCH_RTPE_PID" ] || return 0
	stop_pid "$BENCH_RTPE_PID"
	BENCH_RTPE_PID=""
}

# --- forwarders ---------------------------------------------------------------

# The controlling process reads lines from one fifo and answers on another.
_bench_fwd_open() {   # CMD... (run in r, stdin/stdout on the fifos)
	rm -f "$TMP/fwd.in" "$TMP/fwd.out"
	mkfifo "$TMP/fwd.in" "$TMP/fwd.out" || return 1
	nsenter --net="/run/netns/$BENCH_NS_R" -- "$@" <"$TMP/fwd.in" >"$TMP/fwd.out" \
		2>"$TMP/fwd.err" &
	BENCH_FWD_PID=$!
	exec {BENCH_FWD_IN}>"$TMP/fwd.in" {BENCH_FWD_OUT}<"$TMP/fwd.out"
	if ! read -r -t 15 BENCH_FWD_REPLY <&"$BENCH_FWD_OUT" ||
		[[ $BENCH_FWD_REPLY != ready* ]]; then
		BENCH_FWD_WHY="$1 did not start: ${BENCH_FWD_REPLY:-no answer} $(tail -2 "$TMP/fwd.err" | tr '\n' ' ')"
		return 1
	fi
}

bench_fwd_cmd() {
	BENCH_FWD_REPLY=""
	echo "$1" >&"$BENCH_FWD_IN" && read -r -t 15 BENCH_FWD_REPLY <&"$BENCH_FWD_OUT"
}

bench_fwd_start() {
	BENCH_FWD_KIND=$1 BENCH_FWD_WHY=""
	[ -n "${_bench_fwd_registered:-}" ] || at_exit bench_fwd_stop
	_bench_fwd_registered=1
	case $1 in
	bare_redirect)
		_bench_fwd_open "$MP_BUILD/bench/bare_redirect" --in veth-a --out veth-b \
			--dmac "$BENCH_MAC_B" ;;
	xdp|conntrack|userspace)
		_bench_fwd_open "$MP_BUILD/tests/helpers/relay_lab" --backend "$1" \
			--relay-ip "$BENCH_R4" --ports "$BENCH_RELAY_PORTS" --routable 10.0.0.0/8 \
			--pin-dir "/sys/fs/bpf/mediaproxy-bench-$$" --nft-table "mpbench$$" ;;
	rtpengine)
		bench_rtpengine_start || { BENCH_FWD_WHY=$BENCH_RTPE_WHY; return 1; }
		_bench_fwd_open "$BENCH_PY" "$MP_ROOT/tests/bench/rtpengine_ng.py" \
			--ng "$BENCH_RTPE_NG" serve ;;
	*) BENCH_FWD_WHY="unknown forwarder $1"; return 1 ;;
	esac
}

bench_fwd_stream() {
	local a=$1 b=$2 id cp ep
	if [ "$BENCH_FWD_KIND" = bare_redirect ]; then
		# No relay address: a sends to b itself, routed through r.
		BENCH_TO_A=$b BENCH_TO_B=-
		return 0
	fi
	bench_fwd_cmd "stream $a $b" || return 1
	read -r _ id cp ep <<<"$BENCH_FWD_REPLY"
	[[ $BENCH_FWD_REPLY == ok* && $cp =~ ^[0-9]+$ && $ep =~ ^[0-9]+$ ]] || {
		BENCH_FWD_WHY="stream: $BENCH_FWD_REPLY"
		return 1
	}
	BENCH_STREAM_ID=$id BENCH_TO_A=$BENCH_R4:$cp BENCH_TO_B=$BENCH_R4:$ep
}

bench_fwd_pids() {
	local pids=""
	case $BENCH_FWD_KIND in
	xdp|conntrack|userspace) pids=$BENCH_FWD_PID ;;
	rtpengine) pids=$BENCH_RTPE_PID ;;
	esac
	echo "$pids"
}

bench_fwd_stop() {
	if [ -n "$BENCH_FWD_PID" ]; then
		# bare_redirect ends at EOF, relay_lab and the ng client at quit.
		[ "$BENCH_FWD_KIND" = bare_redirect ] || bench_fwd_cmd "quit clean" || true
		exec {BENCH_FWD_IN}>&- {BENCH_FWD_OUT}<&-
		wait_for 5 process_gone "$BENCH_FWD_PID" || true
		stop_pid "$BENCH_FWD_PID"
		BENCH_FWD_PID=""
	fi
	[ "$BENCH_FWD_KIND" != rtpengine ] || bench_rtpengine_stop
	rm -rf "/sys/fs/bpf/mediaproxy-bench-$$" "$TMP/fwd.in" "$TMP/fwd.out"
	return 0
}

# --- measuring ----------------------------------------------------------------

# CPU time (a snapshot costs a few milliseconds):
#  - machine busy time = sum over CPUs of (time since boot - idle - iowait),
#    i.e. user+nice+system+irq+softirq+steal. Idle and iowait are the nohz
#    counters behind /proc/stat's idle/iowait columns, read in ns from
#    /proc/timer_list (idle_sleeptime, iowait_sleeptime; "now at" is the
#    clock) instead of /proc/stat's 10 ms units, which matter over a 2 s
#    window at low rates. A CPU's counter excludes an idle period still in
#    progress, so each CPU's figures are read by a cat pinned to that CPU:
#    it is running, not idle, when it reads them. The tick-sampled sum of
#    /proc/stat's busy columns is kept as a cross-check only: the tick
#    misses short bursts of work on a CPU that is mostly idle (nohz), and
#    a paced forwarder works in exactly such bursts.
#  - a process: the sum over its threads of /proc/PID/task/TID/schedstat's
#    first field, the run time in ns: the exact quantity behind
#    utime+stime of /proc/PID/stat (which rounds to 10 ms).
bench_cpu_snapshot() {
	local k line cpu now v idle busy=0 text user nice sys irq softirq steal p f sum
	for ((k = 0; k < BENCH_NCPU; k++)); do
		text=$(taskset -c "$k" cat /proc/timer_list) || return 1
		idle=0 cpu=-1 now=0
		while read -r line; do
			case $line in
			"now at "*) v=${line#now at }; now=${v%% *} ;;
			"cpu: "*) cpu=${line#cpu: } ;;
			.idle_sleeptime*|.iowait_sleeptime*)
				[ "$cpu" != "$k" ] || { v=${line#*:}; v=${v# }; idle=$((idle + ${v%% *})); } ;;
			esac
		done <<<"$text"
		busy=$((busy + now - idle))
	done
	read -r line </proc/stat
	read -r _ user nice sys _ _ irq softirq steal _ <<<"$line"
	BENCH_SNAP="$busy $(((user + nice + sys + irq + softirq + steal) * (1000000000 / BENCH_HZ)))"
	for p in "$@"; do
		sum=0
		for f in /proc/"$p"/task/*/schedstat; do
			[ "$p" != 0 ] && read -r v _ 2>/dev/null <"$f" && sum=$((sum + v))
		done
		BENCH_SNAP+=" $sum"
	done
}

bench_cpu_busy_ns() {   # SNAP_A SNAP_B
	local -a a b
	read -r -a a <<<"$1"
	read -r -a b <<<"$2"
	echo $((b[0] - a[0]))
}

# The same from the tick-sampled busy columns of /proc/stat.
bench_cpu_busy_ticks_ns() {   # SNAP_A SNAP_B
	local -a a b
	read -r -a a <<<"$1"
	read -r -a b <<<"$2"
	echo $((b[1] - a[1]))
}

bench_cpu_pid_ns() {   # SNAP_A SNAP_B INDEX
	local -a a b
	read -r -a a <<<"$1"
	read -r -a b <<<"$2"
	echo $((b[$3 + 2] - a[$3 + 2]))
}

bench_netdev() {   # PID IFACE
	local line name
	local -a f
	while read -r line; do
		# "eth0:" may touch its first counter when that has 8+ digits
		read -r name line <<<"${line/:/ }"
		if [ "$name" = "$2" ]; then
			read -r -a f <<<"$line"
			echo "${f[1]} ${f[3]} ${f[9]} ${f[11]}"
			return 0
		fi
	done 2>/dev/null <"/proc/$1/net/dev"
	echo "0 0 0 0"
}

bench_udp_rcvbuf_errors() {   # PID
	local -a names vals
	local i
	while read -r -a vals; do
		if [ "${vals[0]}" = "Udp:" ]; then
			if [ -z "${names[*]}" ]; then
				names=("${vals[@]}")
			else
				for i in "${!names[@]}"; do
					[ "${names[i]}" = RcvbufErrors ] && { echo "${vals[i]}"; return 0; }
				done
			fi
		fi
	done 2>/dev/null <"/proc/$1/net/snmp"
	echo 0
}
