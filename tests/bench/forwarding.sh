#!/usr/bin/env bash
# Forwarding benchmark (issue 7, part 1): the same a -> r -> b UDP traffic
# through five forwarders in r, one after another in one run, on the
# testbed of bench_lib.sh:
#   bare_redirect  tests/bench/bare_redirect.bpf.c: XDP_REDIRECT veth-a ->
#                  veth-b rewriting only the MACs (a sends to b's address):
#                  the fastest the testbed can forward, our ceiling
#   xdp, conntrack, userspace
#                  our relay's backends through relay_lab (the relay's own
#                  stream and forward code, no dispatcher), one stream
#                  latched on both sides before the traffic
#   rtpengine      Debian's rtpengine 10.5, userspace only (--table=-1), one
#                  call set up by offer + answer over its ng protocol
#                  (rtpengine_ng.py) and latched on both sides
# for two UDP payload sizes: 172 bytes (G.711 20 ms + RTP header) and 60.
# The sender (flood: sendmmsg, RTP header + seq/time stamp) runs in a
# pinned to core BENCH_CPU_TX, the receiver (sink: recvmmsg) in b pinned to
# core BENCH_CPU_RX. With two cores nothing is left for the relay alone: its
# NAPI kthreads share the receiver's core (why: see the pinning below;
# --float lets them float), its processes float over both cores.
#
# Each run: warm-up, then a window of --measure seconds between two
# snapshots (SIGUSR1 to flood and sink for their counters, /proc for CPU).
# Two runs per forwarder and size:
#  - paced, --fixed-rate pps (default 20,000, below every forwarder's
#    capacity, 8 packets per sendmmsg): every forwarder carries the same
#    load and drops nothing, so CPU per packet compares like with like, but
#    at this low rate waking the NAPI kthreads dominates, and each percent
#    of background CPU adds 500 ns per packet to a machine-wide figure, so
#    fixed_rate reports the relay's own threads (cpu_ns_per_packet_threads);
#  - unlimited (64 packets per sendmmsg, as fast as the sender goes): pps =
#    packets the sink received in the window / window time, loss = sent -
#    received over the whole run (sender finished, queues drained), and
#    cpu_ns_per_packet, the primary figure. rtpengine is not flooded: its
#    flood protection stops reading a call's socket under an unlimited
#    single flow (see ladder below), so its figures are those of the best
#    rate of a paced ladder.
# CPU per packet = (machine CPU busy time in the window - the sender's and
# receiver's process CPU time in the window) / packets that arrived on b's
# interface in the window; bench_cpu_snapshot (bench_lib.sh) says how each
# is read. It includes the relay's NAPI kthreads (XDP program or stack
# forwarding), the relay's process, and b's receive NAPI kthread (the same
# for every forwarder; detail.*.cpu_breakdown_ns_per_packet has each part).
# Each (forwarder, size) runs --reps times, interleaved; the median is kept.
#
#   tests/bench/forwarding.sh --out FILE.json [--quick] [--reps N]
#       [--measure S] [--warmup S] [--fixed-rate PPS] [--sizes "172 60"]
#       [--forwarders "bare_redirect xdp conntrack userspace rtpengine"]
#       [--float] [--profile DIR]
# --profile: after measuring, one more unlimited xdp run under perf record
# -a -g (and bpftool prog profile, which Debian's bpftool lacks), into DIR.
# Run as root from the repo root (MP_BUILD/MP_ROOT as tests/run.sh exports).
# Budget: about 4 minutes with the defaults (3 reps, 2.5 s windows).
set -u

OUT="" REPS=3 MEASURE=2.5 WARMUP=0.7 PROFILE="" PIN_NAPI=1
FIXED_RATE=20000 PACED_BATCH=8
LADDER_START=20000 LADDER_STEPS=7 LADDER_WARMUP=0.3 LADDER_WINDOW=1
SIZES="172 60"
FWDS="bare_redirect xdp conntrack userspace rtpengine"
usage() {
	echo "usage: $0 --out FILE.json [--quick] [--reps N] [--measure S] [--warmup S]" \
		"[--fixed-rate PPS] [--sizes LIST] [--forwarders LIST] [--float] [--profile DIR]" >&2
	exit 2
}
while [ $# -gt 0 ]; do
	case $1 in
	--out) OUT=$2; shift 2 ;;
	--quick) REPS=1 MEASURE=0.5 WARMUP=0.3 LADDER_STEPS=3 LADDER_WINDOW=0.5 LADDER_WARMUP=0.2
		shift ;;
	--fixed-rate) FIXED_RATE=$2; shift 2 ;;
	--reps) REPS=$2; shift 2 ;;
	--measure) MEASURE=$2; shift 2 ;;
	--warmup) WARMUP=$2; shift 2 ;;
	--sizes) SIZES=$2; shift 2 ;;
	--forwarders) FWDS=$2; shift 2 ;;
	--profile) PROFILE=$2; shift 2 ;;
	--float) PIN_NAPI=0; shift ;;
	*) usage ;;
	esac
done
[ -n "$OUT" ] || usage
case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac

. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/bench_lib.sh"

FLOOD=$MP_BUILD/bench/flood SINK=$MP_BUILD/bench/sink
for bin in "$FLOOD" "$SINK" "$MP_BUILD/bench/bare_redirect" "$MP_BUILD/tests/helpers/relay_lab"; do
	[ -x "$bin" ] || { echo "forwarding: $bin is not built (make all)" >&2; exit 1; }
done
A_PORT=7000 B_PORT=8000
RESULTS=$TMP/results UNAVAILABLE=$TMP/unavailable LADDER=$TMP/ladder
: >"$RESULTS"
: >"$UNAVAILABLE"
: >"$LADDER"
T_START=$SECONDS

# rtpengine is installed by the benchmark itself when missing.
case " $FWDS " in
*" rtpengine "*)
	if ! bench_rtpengine_install; then
		echo "rtpengine $BENCH_RTPE_WHY" >>"$UNAVAILABLE"
		FWDS=${FWDS/rtpengine/}
	fi ;;
esac

mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
bench_bed_up || { echo "forwarding: testbed setup failed" >&2; exit 1; }
FPID="" SPID=""
# Interrupted mid-run: the sender and receiver go first (cleanups run last
# registered, first run), then the forwarder and the bed.
stop_run() {
	[ -z "$FPID" ] || stop_pid "$FPID"
	[ -z "$SPID" ] || stop_pid "$SPID"
}
at_exit stop_run
# The NAPI kthreads (r's two, b's) run on the receiver's core, as a NIC
# queue's softirq stays on the CPU its interrupt goes to: one flow, one
# queue, one CPU. Left floating (--float), the scheduler moves them between
# the cores and wakes them for ever smaller batches, and the same run comes
# out up to twice as costly per packet from one repetition to the next
# (measured: xdp 172 B, 2.3 to 3.7 us/packet floating, 1.39 to 1.43 pinned).
# The relay's processes (relay_lab, rtpengine) float: they may take what the
# sender leaves of its core.
if [ "$PIN_NAPI" = 1 ]; then
	for p in $BENCH_NAPI_PIDS; do
		[ "$p" = 0 ] || taskset -p -c "$BENCH_CPU_RX" "$p" >/dev/null
	done
fi

# How busy the machine is without our traffic, and whether a test run
# shares it: numbers from a busy machine are not comparable.
bench_cpu_snapshot
idle_a=$BENCH_SNAP
sleep 1
bench_cpu_snapshot
BACKGROUND_NS=$(bench_cpu_busy_ns "$idle_a" "$BENCH_SNAP")
CONCURRENT=$(pgrep -f 'tests/run.sh' | grep -vc "^$$\$")
LOADAVG=$(cut -d' ' -f1 /proc/loadavg)

# flood/sink output line -> value of KEY in the line starting with WHAT (n-th).
field() {   # FILE WHAT N KEY
	awk -v what="$2" -v n="$3" -v key="$4" '$1 == what && ++seen == n {
		for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == key) print kv[2] } }' "$1"
}

snapshot() {   # sets SNAP and NET: CPU and packet counters now
	kill -USR1 "$FPID" "$SPID" 2>/dev/null
	bench_cpu_snapshot "$FPID" "$SPID" "${FWD_PID:-0}" $BENCH_NAPI_PIDS
	SNAP=$BENCH_SNAP
	# b's eth0 rx, a's eth0 tx drops (the relay's receive ring was full),
	# UDP receive buffer overflows at b and at the relay's own sockets
	NET="$(bench_netdev "$SPID" eth0 | cut -d' ' -f1) $(bench_netdev "$FPID" eth0 | cut -d' ' -f4)"
	NET+=" $(bench_udp_rcvbuf_errors "$SPID")"
	NET+=" $([ -z "${FWD_PID:-}" ] && echo 0 || bench_udp_rcvbuf_errors "$FWD_PID")"
}

# measure FWD SIZE REP MODE RATE WARMUP WINDOW BATCH: one run of flood ->
# forwarder -> sink; appends one line of raw numbers to $RESULTS and sets
# LAST_LOSS_PCT. RATE 0 is unlimited.
measure() {
	local fwd=$1 size=$2 rep=$3 mode=$4 rate=$5 warmup=$6 window=$7 batch=$8
	local hello=() s1 s2 n1 n2 run i sent recv
	[ "$BENCH_TO_B" = - ] || hello=(--hello "$BENCH_TO_B")
	run=$(awk -v w="$warmup" -v m="$window" 'BEGIN { print w + m + 0.3 }')
	nsenter --net="/run/netns/$BENCH_NS_B" -- taskset -c "$BENCH_CPU_RX" "$SINK" \
		--bind "$BENCH_B4:$B_PORT" "${hello[@]}" --rtp --idle-ms 300 \
		--duration "$(awk -v r="$run" 'BEGIN { print r + 3 }')" \
		>"$TMP/sink.out" 2>"$TMP/sink.err" &
	SPID=$!
	if ! wait_for 5 grep -qs '^ready' "$TMP/sink.out"; then
		echo "forwarding: sink did not start: $(cat "$TMP/sink.err")" >&2
		stop_pid "$SPID"
		SPID=""
		return 1
	fi
	sleep 0.1   # the hellos reach the forwarder and latch b's side
	nsenter --net="/run/netns/$BENCH_NS_A" -- taskset -c "$BENCH_CPU_TX" "$FLOOD" \
		--bind "$BENCH_A4:$A_PORT" --to "$BENCH_TO_A" --size "$size" --rtp \
		--rate "$rate" --batch "$batch" --duration "$run" \
		>"$TMP/flood.out" 2>"$TMP/flood.err" &
	FPID=$!
	sleep "$warmup"
	snapshot
	s1=$SNAP n1=$NET
	sleep "$window"
	snapshot
	s2=$SNAP n2=$NET
	wait "$FPID"
	wait "$SPID"
	FPID="" SPID=""   # reaped: their pids may belong to others now
	sent=$(field "$TMP/flood.out" "done" 1 sent) recv=$(field "$TMP/sink.out" "done" 1 packets)
	LAST_LOSS_PCT=$(awk -v s="${sent:-0}" -v r="${recv:-0}" \
		'BEGIN { print (s > 0 ? 100 * (s - r) / s : 100) }')
	{
		printf '%s %s %s %s %s' "$fwd" "$size" "$rep" "$mode" "$rate"
		printf ' %s' "${sent:-x}" "${recv:-x}" \
			"$(field "$TMP/flood.out" snap 1 sent)" "$(field "$TMP/flood.out" snap 2 sent)" \
			"$(field "$TMP/sink.out" snap 1 t_ns)" "$(field "$TMP/sink.out" snap 1 packets)" \
			"$(field "$TMP/sink.out" snap 2 t_ns)" "$(field "$TMP/sink.out" snap 2 packets)" \
			"$(bench_cpu_busy_ns "$s1" "$s2")" "$(bench_cpu_busy_ticks_ns "$s1" "$s2")"
		for i in 0 1 2 3 4 5; do
			printf ' %s' "$(bench_cpu_pid_ns "$s1" "$s2" "$i")"
		done
		printf ' %s' "$n1" "$n2"
		printf ' %s %s' "$(field "$TMP/sink.out" "done" 1 lat_p50_us)" \
			"$(field "$TMP/sink.out" "done" 1 lat_p99_us)"
		printf '\n'
	} >>"$RESULTS"
}

# rtpengine gets a fresh call for every run: its flood protection may have
# stopped reading the previous call's sockets (see ladder).
new_call() {
	[ "$BENCH_FWD_KIND" = rtpengine ] || return 0
	bench_fwd_cmd "close $BENCH_STREAM_ID" || return 1
	bench_fwd_stream "$BENCH_A4:$A_PORT" "$BENCH_B4:$B_PORT"
}

# ladder SIZE: rtpengine's highest single-flow rate. Its per-socket flood
# protection (10.5: more than 50 packets queued at one wakeup is a strike,
# after 5 strikes it never reads that socket again) stops a call dead under
# a rate-unlimited flood, so instead we pace the sender at rising rates
# (doubling from LADDER_START, then bisecting between the last rate that
# lost < 1% and the first that lost more) and keep the best.
ladder() {
	local size=$1 rate=$LADDER_START good=0 bad=0 step
	for ((step = 0; step < LADDER_STEPS; step++)); do
		new_call || return 1
		LAST_LOSS_PCT=100
		measure rtpengine "$size" 1 ladder "$rate" "$LADDER_WARMUP" "$LADDER_WINDOW" \
			"$PACED_BATCH" || return 1
		echo "$size $rate $LAST_LOSS_PCT" >>"$LADDER"
		if awk -v l="$LAST_LOSS_PCT" 'BEGIN { exit !(l < 1) }'; then
			good=$rate
		else
			bad=$rate
		fi
		if [ "$bad" = 0 ]; then
			rate=$((rate * 2))
		else
			[ $((bad - good)) -gt $((good / 10)) ] || break
			rate=$(((good + bad) / 2))
		fi
	done
}

for rep in $(seq 1 "$REPS"); do
	for fwd in $FWDS; do
		if ! bench_fwd_start "$fwd" ||
			! bench_fwd_stream "$BENCH_A4:$A_PORT" "$BENCH_B4:$B_PORT"; then
			echo "forwarding: $fwd: $BENCH_FWD_WHY" >&2
			grep -q "^$fwd " "$UNAVAILABLE" || echo "$fwd $BENCH_FWD_WHY" >>"$UNAVAILABLE"
			bench_fwd_stop
			continue
		fi
		FWD_PID=$(bench_fwd_pids)
		for size in $SIZES; do
			new_call && measure "$fwd" "$size" "$rep" fixed "$FIXED_RATE" "$WARMUP" \
				"$MEASURE" "$PACED_BATCH" ||
				echo "forwarding: $fwd: paced run at $size bytes failed" >&2
			if [ "$fwd" = rtpengine ]; then
				[ "$rep" != 1 ] || ladder "$size" ||
					echo "forwarding: rtpengine: ladder at $size bytes failed" >&2
			else
				measure "$fwd" "$size" "$rep" max 0 "$WARMUP" "$MEASURE" 64 ||
					echo "forwarding: $fwd: unlimited run at $size bytes failed" >&2
			fi
		done
		bench_fwd_stop
	done
done

# --profile: one more unlimited xdp run at the first size, profiled; the
# profilers disturb it, so its numbers are not kept.
if [ -n "$PROFILE" ] && [[ " $FWDS " == *" xdp "* ]]; then
	mkdir -p "$PROFILE"
	if bench_fwd_start xdp && bench_fwd_stream "$BENCH_A4:$A_PORT" "$BENCH_B4:$B_PORT"; then
		FWD_PID=$(bench_fwd_pids)
		(
			sleep "$WARMUP"
			prog=$(bpftool prog show -j 2>/dev/null | "$BENCH_PY" -c 'import json, sys
print(max(p["id"] for p in json.load(sys.stdin) if p.get("name") == "relay_xdp"))')
			perf record -a -g -o "$PROFILE/xdp.perf.data" -- sleep 2 \
				>"$PROFILE/perf-record.log" 2>&1
			bpftool prog profile id "$prog" duration 2 cycles instructions \
				>"$PROFILE/bpftool-profile.txt" 2>&1
		) &
		prof=$!
		measure xdp-profiled "${SIZES%% *}" 0 max 0 "$WARMUP" 5 64
		wait "$prof"
		perf report -i "$PROFILE/xdp.perf.data" --no-children --sort comm,sym --stdio \
			-g none >"$PROFILE/perf-report.txt" 2>/dev/null
	fi
	bench_fwd_stop
fi

ELAPSED=$((SECONDS - T_START))
"$BENCH_PY" - "$RESULTS" "$LADDER" "$UNAVAILABLE" "$OUT" "$MEASURE" "$WARMUP" "$REPS" \
	"$SIZES" "$BACKGROUND_NS" "$CONCURRENT" "$LOADAVG" "$ELAPSED" "$BENCH_NCPU" \
	"$BENCH_CPU_TX" "$BENCH_CPU_RX" "$FIXED_RATE" "$PACED_BATCH" "$PIN_NAPI" <<'EOF'
import json, statistics, sys

(results, ladder_log, unavailable, out, measure, warmup, reps, sizes, background_ns,
 concurrent, loadavg, elapsed, ncpu, cpu_tx, cpu_rx, fixed_rate, paced_batch,
 pin_napi) = sys.argv[1:]
FWDS = ["bare_redirect", "xdp", "conntrack", "userspace", "rtpengine"]
LADDER_OK_PCT = 1.0
sizes = sizes.split()
why = {}
for line in open(unavailable):
    name, _, reason = line.strip().partition(" ")
    if name in FWDS:
        why.setdefault(name, reason)

COLS = ("sent recv fsent1 fsent2 st1 sp1 st2 sp2 busy busy_ticks c_flood c_sink c_fwd "
        "c_napi_ra c_napi_rb c_napi_b rxb1 txdrop1 rcverr1 rcverr_r1 rxb2 txdrop2 rcverr2 "
        "rcverr_r2 lat50 lat99").split()


def parse_run(w):
    """One line of raw numbers from measure() -> the figures of one run."""
    try:
        v = dict(zip(COLS, (float(x) for x in w[5:])))
    except ValueError:
        return None
    if len(v) != len(COLS):
        return None
    win_s = (v["st2"] - v["st1"]) / 1e9
    fwd = v["rxb2"] - v["rxb1"]
    if win_s <= 0 or fwd <= 0:
        return None
    own = v["c_flood"] + v["c_sink"]
    threads = v["c_fwd"] + v["c_napi_ra"] + v["c_napi_rb"] + v["c_napi_b"]
    per = lambda x: x / fwd
    return {
        "offered_rate": float(w[4]),
        "pps": (v["sp2"] - v["sp1"]) / win_s,
        "sender_pps": (v["fsent2"] - v["fsent1"]) / win_s,
        "forwarded_pps": fwd / win_s,
        "loss": v["sent"] - v["recv"],
        "loss_pct": 100.0 * (v["sent"] - v["recv"]) / v["sent"] if v["sent"] else None,
        "cpu_ns_per_packet": per(v["busy"] - own),
        "cpu_ns_per_packet_threads": per(threads),
        "cpu_ns_per_packet_r_threads": per(threads - v["c_napi_b"]),
        "cpu_ns_per_packet_tick_fields": per(v["busy_ticks"] - own),
        "drops": {"relay_rx_ring": v["txdrop2"] - v["txdrop1"],
                  "relay_socket": v["rcverr_r2"] - v["rcverr_r1"],
                  "receiver_socket": v["rcverr2"] - v["rcverr1"]},
        "latency_p50_us": v["lat50"], "latency_p99_us": v["lat99"],
        "cpu_breakdown_ns_per_packet": {
            "sender_process": per(v["c_flood"]),
            "receiver_process": per(v["c_sink"]),
            "relay_process": per(v["c_fwd"]),
            "r_veth_a_napi": per(v["c_napi_ra"]),
            "r_veth_b_napi": per(v["c_napi_rb"]),
            "b_eth0_rx_napi": per(v["c_napi_b"]),
            "rest_of_machine": per(v["busy"] - own - threads),
        },
        "window_s": win_s,
    }


runs = {}
for line in open(results):
    w = line.split()
    if len(w) < 5 or w[0] not in FWDS:
        continue   # the profiled run
    r = parse_run(w)
    if r:
        runs.setdefault((w[0], w[1], w[3]), []).append(r)
ladder = {}
for line in open(ladder_log):
    size, rate, loss = line.split()
    ladder.setdefault(size, []).append({"offered_pps": int(rate), "loss_pct": round(float(loss), 3)})


def med(vals):
    vals = [x for x in vals if x is not None]
    return statistics.median(vals) if vals else None


def rnd(x, nd=1):
    return round(x, nd) if isinstance(x, float) else x


def combine(rs):
    """Median of every figure over the repetitions, rounded; the pps and CPU
    figures of each repetition too, to show the spread."""
    if not rs:
        return None
    out = {}
    for k, v in rs[0].items():
        if isinstance(v, dict):
            out[k] = {kk: rnd(med([r[k][kk] for r in rs])) for kk in v}
        else:
            out[k] = rnd(med([r[k] for r in rs]), 3 if k == "loss_pct" else 1)
    out["runs"] = len(rs)
    for k in ("pps", "cpu_ns_per_packet", "cpu_ns_per_packet_threads"):
        out[k + "_each"] = [rnd(r[k], 1) for r in rs]
    return out


def best_ladder_step(rs):
    ok = [r for r in rs if r["loss_pct"] is not None and r["loss_pct"] < LADDER_OK_PCT]
    return combine([max(ok, key=lambda r: r["offered_rate"])]) if ok else None


def ratio(a, b):
    return round(a / b, 3) if a is not None and b else None


def cpu_ratios(cpu):
    return {
        "userspace_cpu_over_xdp_cpu": ratio(cpu["userspace"], cpu["xdp"]),
        "rtpengine_cpu_over_xdp_cpu": ratio(cpu["rtpengine"], cpu["xdp"]),
        "conntrack_cpu_over_xdp_cpu": ratio(cpu["conntrack"], cpu["xdp"]),
        "xdp_cpu_over_bare_redirect_cpu": ratio(cpu["xdp"], cpu["bare_redirect"]),
    }


def block(size):
    det = {}
    for f in FWDS:
        d = {"max": combine(runs.get((f, size, "max"), [])),
             "fixed_rate": combine(runs.get((f, size, "fixed"), []))}
        if f == "rtpengine":
            d["max"] = best_ladder_step(runs.get((f, size, "ladder"), []))
            d["ladder"] = ladder.get(size, [])
        det[f] = d
    g = lambda f, mode, k: det[f][mode][k] if det[f][mode] else None
    pps = {f: rnd(g(f, "max", "pps"), 0) for f in FWDS}
    cpu = {f: g(f, "max", "cpu_ns_per_packet") for f in FWDS}
    thr = {f: g(f, "max", "cpu_ns_per_packet_threads") for f in FWDS}
    rthr = {f: g(f, "max", "cpu_ns_per_packet_r_threads") for f in FWDS}
    fix_cpu = {f: g(f, "fixed_rate", "cpu_ns_per_packet") for f in FWDS}
    fix_thr = {f: g(f, "fixed_rate", "cpu_ns_per_packet_threads") for f in FWDS}
    fix_rthr = {f: g(f, "fixed_rate", "cpu_ns_per_packet_r_threads") for f in FWDS}
    ratios = {
        "xdp_over_userspace": ratio(pps["xdp"], pps["userspace"]),
        "xdp_over_conntrack": ratio(pps["xdp"], pps["conntrack"]),
        "xdp_over_rtpengine": ratio(pps["xdp"], pps["rtpengine"]),
        "xdp_over_bare_redirect": ratio(pps["xdp"], pps["bare_redirect"]),
    }
    ratios.update(cpu_ratios(cpu))
    return {"pps": pps, "cpu_ns_per_packet": cpu,
            "loss": {f: rnd(g(f, "max", "loss"), 0) for f in FWDS},
            "loss_pct": {f: g(f, "max", "loss_pct") for f in FWDS},
            "ratios": ratios,
            "cpu_ns_per_packet_threads": thr, "ratios_threads": cpu_ratios(thr),
            "cpu_ns_per_packet_r_threads": rthr, "ratios_r_threads": cpu_ratios(rthr),
            "fixed_rate": {"pps": int(fixed_rate), "cpu_ns_per_packet": fix_cpu,
                           "cpu_ns_per_packet_threads": fix_thr,
                           "cpu_ns_per_packet_r_threads": fix_rthr,
                           "loss_pct": {f: g(f, "fixed_rate", "loss_pct") for f in FWDS},
                           "ratios_threads": cpu_ratios(fix_thr),
                           "ratios_r_threads": cpu_ratios(fix_rthr)},
            "detail": det}


by_size = {s: block(s) for s in sizes}
top = by_size.get("172") or by_size[sizes[0]]
for f in FWDS:
    if top["pps"][f] is None and f not in why:
        why[f] = ("rtpengine lost >= 1% at every rate of the ladder" if f == "rtpengine"
                  else "no run produced numbers")
met = lambda v, want: None if v is None else v >= want
rt = top["ratios"]
frag = {"forwarding": {k: top[k] for k in (
    "pps", "cpu_ns_per_packet", "loss", "loss_pct", "ratios", "cpu_ns_per_packet_threads",
    "ratios_threads", "cpu_ns_per_packet_r_threads", "ratios_r_threads", "fixed_rate")}}
frag["forwarding"].update({
    "by_size": by_size,
    "targets_met": {
        "xdp_over_userspace>=5": met(rt["xdp_over_userspace"], 5),
        "xdp_over_conntrack>=1.3": met(rt["xdp_over_conntrack"], 1.3),
        "xdp_over_rtpengine>=4": met(rt["xdp_over_rtpengine"], 4),
        "xdp_over_bare_redirect>=0.85": met(rt["xdp_over_bare_redirect"], 0.85),
        "userspace_cpu_over_xdp_cpu>=10": met(rt["userspace_cpu_over_xdp_cpu"], 10),
        "rtpengine_cpu_over_xdp_cpu>=10": met(rt["rtpengine_cpu_over_xdp_cpu"], 10),
    },
    "unavailable": why,
    "pps_method": (
        "packets the receiver got per second in the measurement window while the sender "
        "floods without a rate limit (sendmmsg, 64 per call); loss = sent - received over the "
        "whole run; detail.*.max.drops says where (relay_rx_ring: the relay's veth receive "
        "ring was full). rtpengine instead: the highest paced rate of a doubling-then-"
        "bisecting ladder (a new call each step) at which it lost < 1%, because its flood "
        "protection (more than 50 packets queued on a socket at one wakeup is a strike; after "
        "5 it stops reading that socket) kills a single call under an unlimited flood."),
    "cpu_method": (
        "relay-side CPU per forwarded packet (cpu_ns_per_packet, the brief's method) = "
        "(machine CPU busy time in the measurement window - CPU time of the sender and "
        "receiver processes) / packets that arrived on b's interface in the window, measured "
        "during the unlimited flood (rtpengine: during its best ladder step). Machine busy = "
        "sum over CPUs of (time - idle - iowait) = user+nice+system+irq+softirq+steal, from "
        "the nohz counters behind /proc/stat's idle and iowait columns, read unrounded in ns "
        "from /proc/timer_list by a reader pinned to each CPU (so no idle period is in "
        "progress on it); the tick-sampled sum of /proc/stat's busy columns is kept as "
        "detail.*.cpu_ns_per_packet_tick_fields (the tick misses short bursts on mostly idle "
        "CPUs). Process CPU = sum of /proc/PID/task/*/schedstat run time (the quantity behind "
        "utime+stime of /proc/PID/stat, in ns instead of 10 ms units). The relay's work runs "
        "in threaded-NAPI kthreads and its own process, never in the sender's or receiver's "
        "context, so it is not subtracted with them. It includes b's receive NAPI kthread "
        "(the same for every forwarder) and any background load (machine."
        "background_cpu_pct; detail.*.cpu_breakdown_ns_per_packet.rest_of_machine is what is "
        "not in a known thread). cpu_ns_per_packet_threads counts only the relay's threads "
        "(its process, r's two NAPI kthreads, b's receive NAPI kthread): immune to "
        "background load; cpu_ns_per_packet_r_threads leaves out b's receive NAPI kthread "
        "too (b's own stack work), leaving what runs in the relay's namespace. fixed_rate repeats both with every forwarder carrying the same "
        "paced load (below every forwarder's capacity: no drops, no wasted work); at that "
        "low rate one percent of background CPU adds 2e7/pps ns per packet to the machine "
        "figure, so there the threads figure is the one to compare."),
    "duration_s": float(measure),
    "warmup_s": float(warmup),
    "reps": int(reps),
    "traffic": {"sender": "flood: sendmmsg, 64 per call unlimited, %s per call paced; RTP "
                          "header + seq/timestamp stamp" % paced_batch,
                "receiver": "sink: recvmmsg, 64 per call",
                "sender_cpu": int(cpu_tx), "receiver_cpu": int(cpu_rx),
                "relay": ("NAPI kthreads (r's veth-a, veth-b; b's eth0) pinned to the receiver's "
                          "core; relay processes float" if pin_napi == "1" else
                          "NAPI kthreads and processes float over all CPUs (--float)"),
                "payload_bytes": [int(s) for s in sizes]},
    "machine": {"cpus": int(ncpu),
                "background_cpu_pct": round(int(background_ns) / 1e9 / int(ncpu) * 100, 1),
                "concurrent_test_runs": int(concurrent), "loadavg_1m": float(loadavg)},
    "elapsed_s": int(elapsed),
})
with open(out, "w") as f:
    json.dump(frag, f, indent=1)
    f.write("\n")

fmt = lambda x, spec: "-" if x is None else spec % x
print("Forwarding a -> r -> b: median of %s runs, %s s windows; sender core %s, receiver core %s,"
      " NAPI kthreads %s" % (reps, measure, cpu_tx, cpu_rx,
                             "on core %s" % cpu_rx if pin_napi == "1" else "floating"))
print("pps, loss %%, CPU: unlimited flood (rtpengine: best paced rate with < 1%% loss). CPU ns/pkt"
      " = machine minus sender and receiver;\nthreads = the relay's threads incl. b's receive "
      "NAPI; r only = without b's; @%dk = threads, all paced at %d pps"
      % (int(fixed_rate) // 1000, int(fixed_rate)))
print("%-14s %4s %9s %10s %7s %10s %8s %8s %8s" % (
    "forwarder", "size", "pps", "sender pps", "loss %", "CPU ns/pkt", "threads", "r only",
    "@%dk" % (int(fixed_rate) // 1000)))
for s in sizes:
    b = by_size[s]
    for f in FWDS:
        mx = b["detail"][f]["max"]
        note = "" if mx or b["fixed_rate"]["cpu_ns_per_packet_threads"][f] else \
            "   (%s)" % why.get(f, "not measured")
        print("%-14s %4s %9s %10s %7s %10s %8s %8s %8s%s" % (
            f, s, fmt(b["pps"][f], "%.0f"), fmt(mx and mx["sender_pps"], "%.0f"),
            fmt(b["loss_pct"][f], "%.2f"), fmt(b["cpu_ns_per_packet"][f], "%.0f"),
            fmt(b["cpu_ns_per_packet_threads"][f], "%.0f"),
            fmt(b["cpu_ns_per_packet_r_threads"][f], "%.0f"),
            fmt(b["fixed_rate"]["cpu_ns_per_packet_threads"][f], "%.0f"), note))
for s in sizes:
    b = by_size[s]
    print("ratios at %s bytes (CPU ratios: machine / threads / r only / threads @%dk):"
          % (s, int(fixed_rate) // 1000))
    for k, v in b["ratios"].items():
        extra = ""
        if k in b["ratios_threads"]:
            extra = " / %s / %s / %s" % (fmt(b["ratios_threads"][k], "%.2f"),
                                         fmt(b["ratios_r_threads"][k], "%.2f"),
                                         fmt(b["fixed_rate"]["ratios_threads"][k], "%.2f"))
        print("  %-32s %s%s" % (k, fmt(v, "%.2f"), extra))
m = frag["forwarding"]["machine"]
print("machine: background CPU %.1f%% before the run, %d concurrent test run(s), load %.2f; %d s"
      % (m["background_cpu_pct"], m["concurrent_test_runs"], m["loadavg_1m"], int(elapsed)))
sys.exit(0 if any(by_size[s]["pps"][f] is not None or
                  by_size[s]["fixed_rate"]["cpu_ns_per_packet_threads"][f] is not None
                  for s in sizes for f in FWDS) else 1)
EOF
