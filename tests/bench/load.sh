#!/usr/bin/env bash
# `make bench`, part 2 (issue 7): realistic call load. N concurrent calls,
# each 50 RTP packets/s each way (172-byte payload, G.711 20 ms) through the
# relay a -> r -> b and b -> r -> a, for each forwarder in turn: our relay's
# xdp, conntrack and userspace backends (relay_lab, the relay's own stream
# API) and rtpengine (one ng offer+answer per call), on bench_lib.sh's
# testbed. For each N: loss, added latency and jitter percentiles, relay
# CPU; then the call count where each forwarder starts to lose packets
# (more than 0.1 %), with one extra step halfway into the gap where loss
# first appears.
#
#   sudo tests/bench/load.sh --out FILE.json [--quick] [--calls 500,2000,8000]
#                            [--only xdp,conntrack,userspace,rtpengine]
#
# The generator is build/bench/rtp_load (tests/bench/rtp_load.c explains its
# design): one process per side ("phone" a and b), both sending and
# receiving; it sends through AF_PACKET and reads an RX ring, and an
# nftables netdev ingress rule in a and b drops the frames after the ring
# has seen them (no sockets, no ICMP). The relay gets CPU 0, the phones
# CPU 1 (see "CPU layout" below). Relay CPU = /proc/stat busy - both
# generators - the phones' NAPI threads, during the measured window, in %
# of one core; "thr." is the relay's own threads (its NAPI threads and
# relay_lab or rtpengine) alone; the JSON also has the breakdown.
# A call is 4 sockets in the forwarder: RLIMIT_NOFILE may cap the steps.
# Budget: about 3 minutes (--quick: about 25 s).
set -u
OUT='' QUICK=0 ONLY='' CALLS_ARG=''
while [ $# -gt 0 ]; do
	case $1 in
	--out) OUT=$2; shift ;;
	--quick) QUICK=1 ;;
	--only) ONLY=$2; shift ;;
	--calls) CALLS_ARG=$2; shift ;;
	*) echo "usage: $0 --out FILE.json [--quick] [--calls N,N,..] [--only FWD,..]" >&2; exit 2 ;;
	esac
	shift
done
[ -n "$OUT" ] || { echo "usage: $0 --out FILE.json [--quick]" >&2; exit 2; }

# The relay's ports (and rtpengine's): 4 per call, 34,000 = 8,500 calls;
# r's ephemeral ports move out of the way below.
export BENCH_RELAY_PORTS=10000:44000 BENCH_RTPE_PORTS=10000:44000
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/bench_lib.sh"

GEN=$MP_BUILD/bench/rtp_load
for f in "$GEN" "$MP_BUILD/tests/helpers/relay_lab"; do
	[ -x "$f" ] || { echo "load: $f is missing (make all)"; exit 1; }
done

if [ "$QUICK" = 1 ]; then
	STEPS=(100 500) WARMUP_MS=700 DURATION_MS=1000
else
	STEPS=(500 1000 2000 3000 4000 8000) WARMUP_MS=1500 DURATION_MS=4000
fi
[ -n "$CALLS_ARG" ] && IFS=, read -r -a STEPS <<<"$CALLS_ARG"
FORWARDERS=(xdp conntrack userspace rtpengine)
[ -n "$ONLY" ] && IFS=, read -r -a FORWARDERS <<<"$ONLY"
GRACE_MS=300
LOSS_LIMIT=0.1    # % above which a forwarder "loses packets"
PHONE_LATE_LIMIT=5 # % of packets sent > 1 ms late above which the phones are saturated
RELAY_BUSY_PCT=90  # relay threads' CPU % from which a loss is the relay's anyway
PORT_BASE=16000   # the phones' RTP ports: PORT_BASE + 2 * call
NOTES=()
note() { NOTES+=("$*"); echo "note: $*"; }

# A call is a stream of 4 sockets (RTP + RTCP on each side) in relay_lab,
# and in rtpengine too, so RLIMIT_NOFILE caps the call count. Raising the
# hard limit needs CAP_SYS_RESOURCE, which a container may not grant.
ulimit -Hn 65536 2>/dev/null && ulimit -n 65536 2>/dev/null
NOFILE=$(ulimit -Hn)
[ "$NOFILE" = unlimited ] && NOFILE=1048576
FD_CALLS=$(( (NOFILE - 300) / 4 / 100 * 100 ))
[ "$FD_CALLS" -gt 8000 ] && FD_CALLS=8000
clamped=()
for n in "${STEPS[@]}"; do
	[ "$n" -gt "$FD_CALLS" ] && n=$FD_CALLS
	case " ${clamped[*]} " in *" $n "*) ;; *) clamped+=("$n") ;; esac
done
if [ "${clamped[*]}" != "${STEPS[*]}" ]; then
	note "RLIMIT_NOFILE hard limit is $NOFILE and cannot be raised here (no CAP_SYS_RESOURCE): a forwarder process holds at most $FD_CALLS calls of 4 sockets, so the steps ${STEPS[*]} became ${clamped[*]}"
	STEPS=("${clamped[@]}")
fi
MAX_CALLS=0
for n in "${STEPS[@]}"; do [ "$n" -gt "$MAX_CALLS" ] && MAX_CALLS=$n; done

# Other work on the machine disturbs every figure: say so in the notes.
idle_ticks() { local -a f; read -r -a f </proc/stat; echo $((f[4] + f[5])); }
i0=$(idle_ticks) t0=$EPOCHREALTIME
sleep 1
busy=$(awk -v i="$(( $(idle_ticks) - i0 ))" -v t0="$t0" -v t1="$EPOCHREALTIME" \
	-v n="$(nproc)" -v hz="$(getconf CLK_TCK)" \
	'BEGIN { b = 100 * ((t1 - t0) * n - i / hz) / (t1 - t0); printf "%d", b < 0 ? 0 : b }')
[ "$busy" -gt 15 ] &&
	note "the machine was ${busy}% busy (of $(($(nproc) * 100))) before the run: other work disturbs these figures"
pgrep -f tests/run.sh >/dev/null && note "tests/run.sh was running during this benchmark"

# --- the test bed -------------------------------------------------------------
bench_bed_up || { echo "load: testbed setup failed"; exit 1; }
bench_in "$BENCH_NS_R" sysctl -qw net.ipv4.ip_local_port_range="50000 60999"
read -r NAPI_R_A NAPI_R_B NAPI_RX_B <<<"$BENCH_NAPI_PIDS"
# a receives too here: its eth0 gets a NAPI thread like b's (bench_lib.sh
# threads r's veths and b's eth0), found as the one new "napi/" kthread.
napi_threads() { ps -e -o pid=,comm= | awk '$2 ~ /^napi\// { print $1 }' | sort; }
before=$(napi_threads)
ip netns exec "$BENCH_NS_A" sh -c 'echo 1 > /sys/class/net/eth0/threaded'
NAPI_RX_A=$(comm -13 <(echo "$before") <(napi_threads) | awk 'END { if (NR == 1) print $1 }')
WATCH=()
for w in "rx_a=${NAPI_RX_A:-0}" "rx_b=${NAPI_RX_B:-0}" "napi_r_a=${NAPI_R_A:-0}" \
	"napi_r_b=${NAPI_R_B:-0}"; do
	[ "${w#*=}" != 0 ] && WATCH+=(--watch "$w")
done
if [ "${NAPI_RX_A:-0}" = 0 ] || [ "${NAPI_RX_B:-0}" = 0 ]; then
	note "a receiver's NAPI thread was not found: its CPU counts as relay CPU"
fi
# CPU layout: the relay host gets CPU 0 to itself (r's NAPI threads, where
# the XDP program and the kernel's forwarding run, and relay_lab or every
# rtpengine thread), the phones get CPU 1 (both generators and their
# receive NAPI threads). Every forwarder thus has one core, as a relay
# whose phones are elsewhere: loss starts when that core runs out, not when
# a generator happens to preempt it. The relay's NAPI threads run
# SCHED_FIFO, as softirq would on a real NIC: with normal priority another
# busy process on the core delays them for a scheduler slice of
# milliseconds and the veth's 256-frame ring overflows while the core is
# half idle (measured: 0.1-0.5 % loss at 2,000 calls with xdp at 40 % CPU,
# none with FIFO). The phones' NAPI threads keep normal priority: as FIFO
# they woke for every single frame a saturated relay let out and starved
# the generators (measured: late sends 2 % -> 100 % with conntrack at
# 3,000 calls); what they drop is counted apart (phone_drop_pct).
if [ "$(nproc)" -ge 2 ]; then
	CPU_RELAY=0 CPU_PHONES=1
else
	CPU_RELAY='' CPU_PHONES=0
	note "one CPU: the relay and the phones share it"
fi
for p in $NAPI_R_A $NAPI_R_B; do
	[ "$p" != 0 ] || continue
	[ -n "$CPU_RELAY" ] && taskset -p -c "$CPU_RELAY" "$p" >/dev/null
	chrt -f -p 50 "$p"
done
for p in ${NAPI_RX_A:-0} ${NAPI_RX_B:-0}; do
	[ "$p" != 0 ] || continue
	taskset -p -c "$CPU_PHONES" "$p" >/dev/null
done

# The phones have no sockets: drop what the ring has seen before the IP
# stack would answer with ICMP port unreachable.
for ns in "$BENCH_NS_A" "$BENCH_NS_B"; do
	bench_in "$ns" nft -f - <<-EOF || { echo "load: nftables drop rule failed"; exit 1; }
	table netdev mpload {
		chain rx {
			type filter hook ingress device "eth0" priority 0;
			udp dport $PORT_BASE-$((PORT_BASE + 2 * MAX_CALLS)) drop
		}
	}
	EOF
done

# --- calls and one measurement ----------------------------------------------------
# Sets up calls until there are $1, appending "phone_port relay_port" to
# the a and b maps (a sends to the caller-facing port, b to the callee's).
CREATED=0
streams_upto() {
	local port
	while [ "$CREATED" -lt "$1" ]; do
		port=$((PORT_BASE + 2 * CREATED))
		bench_fwd_stream "$BENCH_A4:$port" "$BENCH_B4:$port" || {
			echo "load: call $CREATED: $BENCH_FWD_WHY"
			return 1
		}
		echo "$port ${BENCH_TO_A##*:}" >>"$TMP/a.map"
		echo "$port ${BENCH_TO_B##*:}" >>"$TMP/b.map"
		CREATED=$((CREATED + 1))
	done
}

GEN_PIDS=()
stop_generators() { local p; for p in "${GEN_PIDS[@]}"; do stop_pid "$p"; done; GEN_PIDS=(); }
at_exit stop_generators

# measure FWD N -> $TMP/res-FWD-N.json (rtp_load report's JSON object)
measure() {
	local fwd=$1 n=$2 start rc=0 p relay_watch=()
	head -n "$n" "$TMP/a.map" >"$TMP/a.cur"
	head -n "$n" "$TMP/b.map" >"$TMP/b.cur"
	rm -f "$TMP/a.out" "$TMP/b.out"
	for p in $(bench_fwd_pids); do relay_watch+=(--watch "relay=$p" --netdev-of "$p"); done
	# Both sides start their slots at the same agreed instant.
	start=$(( $("$GEN" now) + 300000000 ))
	local common=(--ifname eth0 --relay-ip "$BENCH_R4" --start-at "$start"
		--warmup-ms "$WARMUP_MS" --duration-ms "$DURATION_MS" --grace-ms "$GRACE_MS")
	if [ -n "$CPU_RELAY" ]; then
		for p in $(bench_fwd_pids); do taskset -a -p -c "$CPU_RELAY" "$p" >/dev/null; done
	fi
	bench_in "$BENCH_NS_A" taskset -c "$CPU_PHONES" "$GEN" run "${common[@]}" --src-ip "$BENCH_A4" \
		--dst-mac "$BENCH_MAC_RA" --map "$TMP/a.cur" --out "$TMP/a.out" --ssrc-seed 1 \
		"${WATCH[@]}" "${relay_watch[@]}" 2>>"$TMP/gen.log" &
	GEN_PIDS+=($!)
	bench_in "$BENCH_NS_B" taskset -c "$CPU_PHONES" "$GEN" run "${common[@]}" --src-ip "$BENCH_B4" \
		--dst-mac "$BENCH_MAC_RB" --map "$TMP/b.cur" --out "$TMP/b.out" --ssrc-seed 2 \
		2>>"$TMP/gen.log" &
	GEN_PIDS+=($!)
	for p in "${GEN_PIDS[@]}"; do wait "$p" || rc=1; done
	GEN_PIDS=()
	[ "$rc" = 0 ] || { echo "load: generator failed: $(tail -2 "$TMP/gen.log")"; return 1; }
	"$GEN" report "$TMP/a.out" "$TMP/b.out" |
		jq -c --argjson lim "$PHONE_LATE_LIMIT" '. + {phones_saturated: (.late_sends_pct > $lim)}' \
		>"$TMP/res-$fwd-$n.json"
}

COLS='  %-6s %8s %8s %8s %8s %8s %8s %7s %7s %7s\n'
# shellcheck disable=SC2059 # COLS is the one row format
header() {
	printf "$COLS" calls 'loss %' 'relay' 'p50 us' 'p99 us' 'p999 us' 'jit99 us' 'relay' \
		'(thr.)' 'late'
	printf "$COLS" '' '' 'loss %' '' '' '' '' 'CPU %' 'CPU %' 'sends %'
}
# shellcheck disable=SC2059
row() {   # FWD N
	jq -r --arg n "$2" '[$n, .loss_pct, .relay_loss_pct, .latency_us.p50, .latency_us.p99,
		.latency_us.p999, .jitter_us.p99, .relay_cpu_pct, .relay_threads_cpu_pct,
		.late_sends_pct] |
		map(tostring) | @tsv' "$TMP/res-$1-$2.json" |
		{ IFS=$'\t' read -r -a f; printf "$COLS" "${f[@]}"; }
}
lost() {   # FWD N: did the relay lose more than the limit?
	jq -e --argjson lim "$LOSS_LIMIT" '.relay_loss_pct != null and .relay_loss_pct > $lim' \
		"$TMP/res-$1-$2.json" >/dev/null
}
# FWD N: could the phones not keep the pace while the relay had CPU to
# spare? Then they sent in catch-up bursts, and a loss is not the relay's
# at this call rate. (With the relay's core busy, its loss is its own.)
saturated() {
	jq -e --argjson busy "$RELAY_BUSY_PCT" '.phones_saturated and
		(.relay_threads_cpu_pct == null or .relay_threads_cpu_pct < $busy)' \
		"$TMP/res-$1-$2.json" >/dev/null
}

# --- the runs -------------------------------------------------------------------
declare -A FIRST_LOSS=() BRACKET=() MEASURED=() SATURATED=()
t_start=$SECONDS
echo "loss %: end to end; relay loss %: without the phones' own receive drops;"
echo "relay CPU %: /proc/stat busy - phones (thr.: the relay's own threads), % of one core;"
echo "late sends %: sent > 1 ms after the slot (over $PHONE_LATE_LIMIT: the phones are saturated)"
for fwd in "${FORWARDERS[@]}"; do
	echo
	echo "== $fwd: ${STEPS[*]} calls; ${DURATION_MS} ms measured after ${WARMUP_MS} ms warm-up =="
	t_fwd=$SECONDS
	if [ "$fwd" = rtpengine ] && ! command -v rtpengine >/dev/null; then
		bench_rtpengine_install || { note "rtpengine: $BENCH_RTPE_WHY"; continue; }
	fi
	rm -f "$TMP/a.map" "$TMP/b.map"
	CREATED=0
	if ! bench_fwd_start "$fwd"; then
		note "$fwd: could not start: $BENCH_FWD_WHY"
		bench_fwd_stop
		continue
	fi
	header
	prev_ok=0
	for n in "${STEPS[@]}"; do
		t0=$SECONDS
		if ! streams_upto "$n"; then
			note "$fwd: could not set up $n calls ($BENCH_FWD_WHY); larger steps skipped"
			break
		fi
		[ $((SECONDS - t0)) -gt 5 ] && note "$fwd: setting up calls up to $n took $((SECONDS - t0)) s"
		measure "$fwd" "$n" || { note "$fwd: $n calls: the generator failed"; continue; }
		MEASURED[$fwd,$n]=1
		row "$fwd" "$n"
		if saturated "$fwd" "$n"; then
			# Catch-up bursts: whatever was lost is not the relay's at
			# this rate, and no loss is no proof either way.
			[ -n "${SATURATED[$fwd]:-}" ] || SATURATED[$fwd]=$n
			continue
		fi
		if ! lost "$fwd" "$n"; then
			[ -n "${FIRST_LOSS[$fwd]:-}" ] || prev_ok=$n
			continue
		fi
		[ -z "${FIRST_LOSS[$fwd]:-}" ] || continue
		FIRST_LOSS[$fwd]=$n BRACKET[$fwd]="$prev_ok $n"
		# One more step halfway into the gap (its calls exist already).
		mid=$(( (prev_ok + n) / 2 / 100 * 100 ))
		if [ "$mid" -gt "$prev_ok" ] && [ "$mid" -lt "$n" ] && measure "$fwd" "$mid"; then
			MEASURED[$fwd,$mid]=1
			row "$fwd" "$mid"
			if saturated "$fwd" "$mid"; then
				:
			elif lost "$fwd" "$mid"; then
				FIRST_LOSS[$fwd]=$mid BRACKET[$fwd]="$prev_ok $mid"
			else
				BRACKET[$fwd]="$mid $n"
			fi
		fi
	done
	bench_fwd_stop
	echo "  ($fwd: $((SECONDS - t_fwd)) s)"
done
echo
echo "load: $((SECONDS - t_start)) s in all"

# --- the JSON fragment ------------------------------------------------------------
measured_any() { printf '%s\n' "${!MEASURED[@]}" | grep -q "^$1,"; }
for fwd in xdp conntrack userspace rtpengine; do
	if [ -n "${SATURATED[$fwd]:-}" ]; then
		NOTES+=("$fwd: the phones could not keep the pace (late sends > ${PHONE_LATE_LIMIT}%) with the relay's threads under ${RELAY_BUSY_PCT}% first at ${SATURATED[$fwd]} calls; such steps do not count for first_loss_calls")
	fi
	if measured_any "$fwd" && [ -z "${FIRST_LOSS[$fwd]:-}" ] && [ -n "${SATURATED[$fwd]:-}" ]; then
		NOTES+=("$fwd: no relay loss above ${LOSS_LIMIT}% in the steps the phones could drive, so first_loss_calls is null")
	elif measured_any "$fwd" && [ -z "${FIRST_LOSS[$fwd]:-}" ]; then
		NOTES+=("$fwd: no loss above ${LOSS_LIMIT}% up to $MAX_CALLS calls, so first_loss_calls is null")
	elif ! measured_any "$fwd"; then
		NOTES+=("$fwd: not measured")
	fi
done
NOTES+=("relay_cpu_pct is % of one core (this machine has $(nproc)): /proc/stat busy minus both generators and the receivers' NAPI threads over the measured window")
NOTES+=("latency: the kernel's RX-ring stamp at the receiving phone minus the CLOCK_MONOTONIC send time in the payload; jitter: RFC 3550's estimator per stream with the payload send time as the sender clock, percentiles across streams")
NOTES+=("loss_pct is end to end; relay_loss_pct leaves out phone_drop_pct, the frames the receiving phones' own queues refused (the relay's veths' tx drops) or their RX rings overflowed with; first_loss_calls is the first call count with relay_loss_pct above ${LOSS_LIMIT}")
NOTES+=("late_sends_pct: packets the generator sent over 1 ms after their slot (the phones' CPU falling behind, not the relay)")
NOTES+=("CPU layout: the relay (its NAPI threads and relay_lab or rtpengine) pinned to CPU ${CPU_RELAY:-none}, both phones and their NAPI threads to CPU $CPU_PHONES; the relay's NAPI threads SCHED_FIFO like softirq; projected_calls_per_core = calls / relay_threads_cpu_pct * 100 at the largest step the phones drove without relay loss (the relay's own threads: immune to other load, but without the interrupt and wake-up work outside them)")
{
	printf '{"load": {"calls": [%s], ' "$(IFS=,; echo "${STEPS[*]}")"
	printf '"payload_bytes": 172, "pps_per_direction": 50, "window_ms": %d, ' "$DURATION_MS"
	printf '"warmup_ms": %d, "loss_limit_pct": %s, ' "$WARMUP_MS" "$LOSS_LIMIT"
	for fwd in xdp conntrack userspace rtpengine; do
		if ! measured_any "$fwd"; then
			printf '"%s": null, ' "$fwd"
			continue
		fi
		printf '"%s": {' "$fwd"
		sep=
		for n in $(printf '%s\n' "${!MEASURED[@]}" | sed -n "s/^$fwd,//p" | sort -n); do
			printf '%s"%s": %s' "$sep" "$n" "$(cat "$TMP/res-$fwd-$n.json")"
			sep=', '
		done
		printf '}, '
	done
	printf '"first_loss_calls": {'
	sep=
	for fwd in xdp conntrack userspace rtpengine; do
		printf '%s"%s": %s' "$sep" "$fwd" "${FIRST_LOSS[$fwd]:-null}"
		sep=', '
	done
	printf '}, "first_loss_bracket": {'
	sep=
	for fwd in "${!BRACKET[@]}"; do
		read -r lo hi <<<"${BRACKET[$fwd]}"
		printf '%s"%s": {"last_clean": %s, "first_lossy": %s}' "$sep" "$fwd" "$lo" "$hi"
		sep=', '
	done
	printf '}, "phones_saturated_calls": {'
	sep=
	for fwd in xdp conntrack userspace rtpengine; do
		printf '%s"%s": %s' "$sep" "$fwd" "${SATURATED[$fwd]:-null}"
		sep=', '
	done
	printf '}, "projected_calls_per_core": {'
	sep=
	for fwd in xdp conntrack userspace rtpengine; do
		best=null
		for n in $(printf '%s\n' "${!MEASURED[@]}" | sed -n "s/^$fwd,//p" | sort -n); do
			lost "$fwd" "$n" && ! saturated "$fwd" "$n" && break
			saturated "$fwd" "$n" && continue
			v=$(jq '.relay_threads_cpu_pct as $c | if $c != null and $c >= 2
				then (.calls * 100 / $c | floor) else null end' "$TMP/res-$fwd-$n.json")
			[ "$v" != null ] && best=$v
		done
		printf '%s"%s": %s' "$sep" "$fwd" "$best"
		sep=', '
	done
	printf '}, "notes": %s}}\n' "$(printf '%s\n' "${NOTES[@]}" | jq -R . | jq -s 'join("; ")')"
} >"$TMP/load.json"
jq . "$TMP/load.json" >"$OUT" || { echo "load: bad JSON"; cat "$TMP/load.json"; exit 1; }
[ "${#MEASURED[@]}" -gt 0 ]
