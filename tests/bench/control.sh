#!/usr/bin/env bash
# make bench, issue 7 sections 3-5: the XDP program under BPF_PROG_TEST_RUN,
# the control plane under load, and memory at 0 calls and at the ceiling
# of one relay IP. About 2.5 minutes (--quick: about 1).
#
#   tests/bench/control.sh --out FILE.json [--quick] [--keep DIR] [--perf DIR]
#
# 3. build/bench/xdp_prog_ns: ns/packet on the miss, IPv4 match and IPv6
#    match paths (median of batches; every iteration proven to match).
# 4. Real daemons, all in one private network namespace R (so the port
#    ceiling is ours alone): media-dispatcher, relay A (relay_ip 10.203.1.1
#    on veth vr, forwarding = xdp, port_range 2048:65534) and, for the
#    two-relay runs, relay B (10.203.1.3, forwarding = userspace), both over
#    mutual TLS to the dispatcher. R's ip_local_port_range is 1024-2047 so
#    no ephemeral port takes one of the relay's. build/bench/ctl_load talks
#    to the module socket over 8 connections, one request in flight on
#    each, like a proxy's SIP workers. No media is sent: forwarding backends
#    only act once a side latches, so xdp vs userspace does not change the
#    control path; xdp is used for relay A because section 5 needs its maps.
#    Configuration is the default except: runtime dirs (session table, D6)
#    on tmpfs (/dev/shm), as /run/mediaproxy is on a host; stream_timeout
#    3600 s, so calls without media do not time out during the run;
#    keepalive_interval 2 s, so a relay the dispatcher marked timed out
#    (D2) is back within 2 s, and every measured run starts 2.2 s after the
#    previous one ends; log_level INFO.
#    Measured, with 1 relay and with 2:
#      cycles      offer + answer + remove on each connection, for 5 s:
#                  setups/s (offer+answer pairs answered per second: the
#                  call rate a proxy can sustain, as each call also ends),
#                  cycles/s (all three requests answered) and latency
#                  p50/p99/p999 of the answered requests; failures counted
#      bursts      offer + answer of a window of W calls that stay up
#                  (0.1-0.2 s): burst setups/s, median of rounds
#    Then relay A alone is filled to its ceiling: in parallel up to a little
#    below the expected count (offers failing while relay A is marked timed
#    out are retried: filling is not measured), then one at a time until
#    relay A itself refuses an offer (D1; checked in the dispatcher's log);
#    a further offer must be refused by relay A too. At the ceiling: setup
#    windows (W calls removed, then set up again) and cycles with
#    ceiling - 8 calls held (each connection has one call's ports to cycle
#    with). Failed requests are counted, never retried, while measuring;
#    setups/s at the ceiling over setups/s at 0 calls is the ratio.
#    The ceiling is port_range / 4 ports per one-stream call = 15871 calls
#    when the daemons may have 67,582 open files; raising RLIMIT_NOFILE
#    above the hard limit needs CAP_SYS_RESOURCE, and without it the
#    ceiling is the open files (4 sockets per call), reported as such.
# 5. VmRSS of the dispatcher and relay A, and bytes_memlock of relay A's
#    pinned BPF maps, at 0 calls and at the ceiling; bytes per call.
# --keep DIR copies the raw results (each ctl_load run's JSON, the daemons'
# logs) to DIR. --perf DIR records `perf record -g` of both daemons during
# the cycle runs and the fill into DIR (it slows them down).
set -u
# shellcheck source=tests/integration/lib.sh
. "$(dirname "$0")/../integration/lib.sh"

USAGE="usage: $0 --out FILE.json [--quick] [--perf DIR] [--keep DIR]"
OUT="" QUICK=0 PERF_DIR="" KEEP=""
while [ $# -gt 0 ]; do
	case "$1" in
	--out) OUT=$2; shift 2 ;;
	--quick) QUICK=1; shift ;;
	--perf) PERF_DIR=$2; shift 2 ;;
	--keep) KEEP=$2; shift 2 ;;
	*) echo "$USAGE" >&2; exit 2 ;;
	esac
done
[ -n "$OUT" ] || { echo "$USAGE" >&2; exit 2; }

PY=${PYTHON:-python3}
MPCTL=$MP_ROOT/tests/tools/mpctl.py
LOAD=$MP_BUILD/bench/ctl_load
PROGNS=$MP_BUILD/bench/xdp_prog_ns
CONNS=8
if [ "$QUICK" = 1 ]; then
	CYCLE_S=1 WINDOW=300 ROUNDS=1
else
	CYCLE_S=5 WINDOW=1000 ROUNDS=3
fi
PORT_LO=2048 PORT_HI=65534
EXPECTED=$(((PORT_HI - PORT_LO) / 2 / 2))   # port pairs / 2 pairs per one-stream call
NOFILE=$(((PORT_HI - PORT_LO) + 4096))        # what relay A needs, with room
# Raising the hard RLIMIT_NOFILE needs CAP_SYS_RESOURCE; without it (some
# containers) the daemons get the hard limit we have, and relay A's
# ceiling is its open files, not its ports: measured and reported as such.
HARD=$(ulimit -Hn)
[ "$HARD" = unlimited ] && HARD=$NOFILE
if prlimit --nofile="$NOFILE:$NOFILE" true 2>/dev/null; then
	LIMIT=$NOFILE
else
	LIMIT=$((HARD < NOFILE ? HARD : NOFILE))
fi
FD_CALLS=$(((LIMIT - 256) / 4))               # 4 sockets per one-stream call
R=$TMP/results
mkdir -p "$R"
note() { echo "# $*"; }

for bin in "$BIN/media-dispatcher" "$BIN/media-relay" "$LOAD" "$PROGNS"; do
	[ -x "$bin" ] || { echo "control.sh: $bin is not built (make all)" >&2; exit 1; }
done
if pgrep -f tests/run.sh >/dev/null; then
	note "tests/run.sh is running: these numbers are disturbed"
fi

# ---- 3. BPF_PROG_TEST_RUN ---------------------------------------------------------
note "BPF_PROG_TEST_RUN of bpf/relay.bpf.c"
PROG_ARGS=()
[ "$QUICK" = 1 ] && PROG_ARGS=(--quick)
"$PROGNS" "${PROG_ARGS[@]}" >"$R/prog.txt" 2>"$R/prog.err"
grep '^#' "$R/prog.txt"
tail -1 "$R/prog.txt" | grep '^{' >"$R/prog.json" || note "xdp_prog_ns failed: $(tail -3 "$R/prog.err")"

# ---- 4/5. set-up ---------------------------------------------------------------------
NS_R=mpc$$r NS_P=mpc$$p
RA=10.203.1.1 RB=10.203.1.3
in_r() { nsenter --net="/run/netns/$NS_R" -- "$@"; }
netns_down() { ip netns del "$NS_R" 2>/dev/null; ip netns del "$NS_P" 2>/dev/null; true; }

# Runtime dirs on tmpfs, like /run/mediaproxy on a host (D6 writes there).
RUN=$(mktemp -d /dev/shm/mp-bench.XXXXXX 2>/dev/null || mktemp -d /tmp/mp-bench.XXXXXX)
at_exit "rm -rf $RUN"
PIN=/sys/fs/bpf/mediaproxy-bench-$$
TLS=$RUN/tls
SOCK=$RUN/d/dispatcher.sock

setup_ns() {
	at_exit netns_down
	ip netns add "$NS_R" && ip netns add "$NS_P" &&
		ip link add vr netns "$NS_R" type veth peer name vp netns "$NS_P" &&
		in_r ip link set lo up &&
		in_r ip addr add "$RA/24" dev vr &&
		in_r ip addr add "$RB/24" dev vr &&
		in_r ip link set vr up &&
		nsenter --net="/run/netns/$NS_P" -- ip addr add 10.203.1.2/24 dev vp &&
		nsenter --net="/run/netns/$NS_P" -- ip link set vp up &&
		in_r sysctl -qw net.ipv4.ip_local_port_range="1024 2047"
}

setup_pins() {
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf || return 1
	at_exit "rm -rf $PIN"
	mkdir -p "$PIN"
}

write_confs() {
	cat >"$RUN/d.ini" <<-EOF
	[Dispatcher]
	socket_path = dispatcher.sock
	listen = 127.0.0.1:25060
	listen_management = 127.0.0.1:25061
	management_use_tls = yes
	log_level = INFO
	[TLS]
	certs_path = $TLS
	EOF
	cat >"$RUN/a.ini" <<-EOF
	[Relay]
	dispatchers = 127.0.0.1:25060
	relay_ip = $RA
	port_range = $PORT_LO:$PORT_HI
	forwarding = xdp
	interfaces = vr
	bpf_pin_dir = $PIN/a
	stream_timeout = 3600
	reconnect_delay = 1
	keepalive_interval = 2
	log_level = INFO
	[TLS]
	certs_path = $TLS
	EOF
	cat >"$RUN/b.ini" <<-EOF
	[Relay]
	dispatchers = 127.0.0.1:25060
	relay_ip = $RB
	port_range = $PORT_LO:$PORT_HI
	forwarding = userspace
	stream_timeout = 3600
	reconnect_delay = 1
	keepalive_interval = 2
	log_level = INFO
	[TLS]
	certs_path = $TLS
	EOF
}

declare -A PID
# start NAME BINARY CONF: in R, with room for every port's socket.
start() {
	local name=$1 bin=$2 conf=$3
	mkdir -p "$RUN/$name"
	# nsenter and prlimit exec, so $! is the daemon itself (not a subshell)
	nsenter --net="/run/netns/$NS_R" -- prlimit --nofile="$LIMIT:$LIMIT" -- "$BIN/$bin" \
		--no-fork --config-file "$conf" --runtime-dir "$RUN/$name" \
		--pid "$RUN/$name/$name.pid" >>"$TMP/$name.log" 2>&1 &
	PID[$name]=$!
	at_exit "stop $name"
}

# stop NAME: TERM, KILL after 20 s (a relay at the ceiling ends 15,000
# sessions on the way out).
stop() {
	local pid=${PID[$1]:-}
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	wait_for 20 process_gone "$pid" || kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	PID[$1]=""
}

log_has() { grep -qsE -- "$2" "$1"; }
rss_of() { awk '/^VmRSS:/ { print $2 * 1024 }' "/proc/$1/status" 2>/dev/null; }
# Sum of bytes_memlock of the maps pinned under DIR (bpftool sees pins
# because in_r keeps our mount namespace).
bpf_bytes() {
	local f sum=0 b
	for f in "$1"/*; do
		[ -e "$f" ] || continue
		b=$(bpftool map show pinned "$f" -j 2>/dev/null |
			"$PY" -c 'import json,sys; print(json.load(sys.stdin).get("bytes_memlock", 0))' 2>/dev/null)
		[ -n "$b" ] && sum=$((sum + b))
	done
	echo "$sum"
}
bpf_maps_list() {
	local f
	for f in "$1"/*; do
		[ -e "$f" ] || continue
		bpftool map show pinned "$f" -j 2>/dev/null | grep -v '"error"'
	done
}

# memory TAG: RSS of both daemons and relay A's maps into $R/mem_TAG.json
memory() {
	{
		printf '{"dispatcher_rss": %s, "relay_rss": %s, "bpf_bytes": %s, "maps": [' \
			"$(rss_of "${PID[d]}")" "$(rss_of "${PID[a]}")" "$(bpf_bytes "$PIN/a")"
		bpf_maps_list "$PIN/a" | paste -sd, -
		printf ']}\n'
	} >"$R/mem_$1.json"
}

# load NAME ARGS...: ctl_load with its JSON in $R/NAME.json. Returns 0
# when the run completed (error replies are counted, not fatal).
load() {
	local name=$1 rc
	shift
	"$LOAD" --socket "$SOCK" --conns "$CONNS" "$@" >"$R/$name.json" 2>"$R/$name.err"
	rc=$?
	case $rc in
	0) return 0 ;;
	3) note "$name: $(jq_field "$R/$name.json" errors) requests failed, first: $(jq_field "$R/$name.json" first_error)"
	   return 0 ;;
	*) note "ctl_load $name could not run (exit $rc): $(head -c 300 "$R/$name.err")"
	   return 1 ;;
	esac
}
jq_field() {
	"$PY" -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2]))' "$1" "$2" 2>/dev/null
}

# A relay that the dispatcher marked timed out (no reply within
# relay_request_timeout, D2) is active again after its next ping, within
# keepalive_interval (2 s in this bench, 10 by default): each measured run
# starts after every relay is back, so one run's trouble does not spill
# into the next.
count_of() { grep -cE -- "$2" "$1" 2>/dev/null; }
# relay_back IP: every "marking it timed out" of IP has its "active again".
relay_back() {
	[ "$(count_of "$TMP/d.log" "relay $1: ping received, active again")" -ge \
		"$(count_of "$TMP/d.log" "relay $1: no reply to .* marking it timed out")" ]
}
settle() {
	local ip
	sleep 0.3
	for ip in "$RA" ${PID[b]:+"$RB"}; do
		wait_for 6 relay_back "$ip" || note "relay $ip, marked timed out, did not come back"
	done
}

# perf_on NAME / perf_off: with --perf, `perf record -g` of the dispatcher
# and relay A in between, into DIR/NAME-{d,a}.data.
PERFS=()
perf_on() {
	local k
	[ -n "$PERF_DIR" ] || return 0
	mkdir -p "$PERF_DIR"
	for k in d a; do
		perf record -g -o "$PERF_DIR/$1-$k.data" -p "${PID[$k]}" >/dev/null 2>&1 &
		PERFS+=($!)
		at_exit "kill -INT $! 2>/dev/null"
	done
	sleep 0.5
}
perf_off() {
	local k
	for k in "${PERFS[@]}"; do kill -INT "$k" 2>/dev/null; wait "$k" 2>/dev/null; done
	PERFS=()
}

# cycles NAME ARGS...: a cycle run (profiled with --perf).
cycles() {
	local name=$1
	shift
	settle
	perf_on "$name"
	load "$name" cycle --seconds "$CYCLE_S" "$@"
	perf_off
}

# windows TAG [START]: ROUNDS of "set up WINDOW calls, remove them".
windows() {
	local tag=$1 r
	for ((r = 1; r <= ROUNDS; r++)); do
		settle
		load "${tag}_setup$r" setup --prefix "${tag}$r" --calls "$WINDOW" || return 1
		settle
		load "${tag}_remove$r" remove --prefix "${tag}$r" --calls "$WINDOW" || return 1
	done
}

# D1 for call PREFIX-I: relay A answered it "error" (not: no reply in
# time, relay marked timed out, ...).
refused_by_a() { log_has "$TMP/d.log" "call_id $1: relay $RA refused the call"; }

# fill: relay A up to its ceiling. In parallel (retrying offers that fail
# while the dispatcher has relay A marked timed out) up to a little below
# the expected count, then one call at a time until relay A itself refuses
# one (D1). Sets CEILING (calls up), or returns 1.
fill() {
	local bulk=$((EXPECTED < FD_CALLS ? EXPECTED : FD_CALLS)) next k try
	bulk=$((bulk - 4 * CONNS))
	[ "$LIMIT" -ge "$NOFILE" ] ||
		note "RLIMIT_NOFILE cannot be raised above $LIMIT here (no CAP_SYS_RESOURCE): relay A runs out of open files near $FD_CALLS calls, before its $EXPECTED calls of ports"
	note "filling relay A: $bulk calls in parallel, then one at a time until refused"
	settle
	perf_on fill
	load fill_bulk setup --prefix fill --calls "$bulk" --retry 300 --retry-ms 100
	k=$?
	perf_off
	[ $k -eq 0 ] || return 1
	next=$bulk
	# Offers and answers that fail for a moment (relay A marked timed out)
	# are retried for 2.4 s, so the loop ends at relay A's own refusal,
	# which is retried too and then checked in the dispatcher's log.
	for ((try = 1; try <= 10; try++)); do
		settle
		load "fill_edge$try" setup --prefix fill --start "$next" --calls "$EXPECTED" \
			--conns 1 --until-error --retry 8 --retry-ms 300 || return 1
		k=$(jq_field "$R/fill_edge$try.json" refused_call)
		if [ -z "$k" ] || [ "$k" -lt 0 ]; then
			note "no offer was refused"
			return 1
		fi
		if refused_by_a "fill-$k"; then
			CEILING=$k
			return 0
		fi
		next=$k   # refused for another reason (relay A marked timed out): again
	done
	note "relay A never refused an offer itself"
	return 1
}

# probe: the next offer must be refused by relay A too (D1). Writes
# $R/probe.json with "refused": true/false; a probe that got ports is
# removed again.
probe() {
	local i reply
	for ((i = 0; i < 5; i++)); do
		settle
		"$LOAD" --socket "$SOCK" probe --prefix probe --start "$i" >"$R/probe_raw.json" 2>/dev/null
		reply=$(jq_field "$R/probe_raw.json" reply)
		if refused_by_a "probe-$i"; then
			echo '{"refused": true}' >"$R/probe.json"
			return 0
		fi
		if [ "$reply" != error ]; then
			note "an offer past the ceiling got '$reply'"
			"$LOAD" --socket "$SOCK" --conns 1 remove --prefix probe --start "$i" --calls 1 >/dev/null
			echo '{"refused": false}' >"$R/probe.json"
			return 0
		fi
	done
	note "the probe offers failed, but not as refused by relay A"
}

measure_control() {
	"$MP_ROOT/tls/make-certs.sh" "$TLS" >/dev/null 2>&1 || { note "make-certs.sh failed"; return 1; }
	setup_ns || { note "network namespace set-up failed"; return 1; }
	setup_pins || { note "no bpffs at /sys/fs/bpf"; return 1; }
	write_confs
	start d media-dispatcher "$RUN/d.ini"
	wait_for 10 log_has "$TMP/d.log" 'started: module socket' ||
		{ note "dispatcher did not start: $(tail -3 "$TMP/d.log")"; return 1; }
	start a media-relay "$RUN/a.ini"
	wait_for 20 log_has "$TMP/d.log" "relay $RA resynchronised" ||
		{ note "relay A did not connect: $(tail -3 "$TMP/a.log")"; return 1; }
	note "relay A: $(grep -m1 -oE 'forwarding through [a-z]+.*' "$TMP/a.log" | head -c 120)"
	note "open files: this shell $(ulimit -n) (hard $(ulimit -Hn)), daemons $LIMIT"

	# 0 calls
	sleep 0.5
	memory idle
	note "1 relay, 0 calls: cycles for ${CYCLE_S}s, $ROUNDS setup windows of $WINDOW"
	cycles idle_cycle --prefix i1c
	windows idle || return 1

	# two relays
	start b media-relay "$RUN/b.ini"
	if wait_for 20 log_has "$TMP/d.log" "relay $RB resynchronised"; then
		note "2 relays, 0 calls"
		cycles two_cycle --prefix i2c
		windows two
	else
		note "relay B did not connect: $(tail -3 "$TMP/b.log")"
	fi
	stop b
	wait_for 10 log_has "$TMP/d.log" "relay $RB: connection lost" ||
		note "the dispatcher did not notice relay B leaving"

	# relay A at its ceiling
	fill || return 1
	echo "$CEILING" >"$R/ceiling"
	probe
	mgmt_summary >"$R/summary_ceiling.txt" 2>/dev/null
	memory ceiling
	note "at the ceiling ($CEILING calls): $ROUNDS setup windows of $WINDOW, cycles with $((CEILING - CONNS)) held"
	settle
	load ceil_remove0 remove --prefix fill --start $((CEILING - WINDOW)) --calls "$WINDOW"
	windows ceil
	settle
	load ceil_refill setup --prefix top --calls $((WINDOW - CONNS)) --retry 300
	cycles ceil_cycle --prefix c1c
	return 0
}

mgmt_summary() {
	in_r "$PY" "$MPCTL" mgmt --port 25061 --cert "$TLS/client.crt" --key "$TLS/client.key" \
		--ca "$TLS/ca.pem" summary
}

measure_control
control_rc=$?
[ $control_rc -eq 0 ] || note "control-plane measurement incomplete (see above)"
for n in d a b; do
	[ -s "$TMP/$n.log" ] && cp "$TMP/$n.log" "$R/$n.log"
done
if [ -n "$KEEP" ]; then
	mkdir -p "$KEEP" && cp -r "$R"/. "$KEEP"/
fi
# Warnings and errors the daemons logged (a refused offer at the ceiling
# is expected: "refused the call", "no suitable relay").
for n in d a b; do
	c=$(grep -cE '(WARNING|ERROR|warning|error)' "$R/$n.log" 2>/dev/null)
	[ "${c:-0}" -gt 0 ] && note "$n.log: $c warning/error lines, e.g. $(grep -E '(WARNING|ERROR|warning|error)' "$R/$n.log" | grep -v 'refused the call\|no suitable relay' | head -2 | cut -c1-160)"
done

# ---- the fragment and the table ------------------------------------------------------------
"$PY" - "$R" "$OUT" "$EXPECTED" "$CONNS" "$WINDOW" "$CYCLE_S" "$LIMIT" "$NOFILE" <<'EOF'
import json, os, statistics, sys

rdir, out = sys.argv[1], sys.argv[2]
expected, conns, window, cycle_s, limit, nofile_needed = map(int, sys.argv[3:9])

def j(name):
    try:
        with open(os.path.join(rdir, name + ".json")) as f:
            text = f.read().strip()
    except OSError:
        return None
    for t in (text, text.splitlines()[-1] if text else ""):
        try:
            return json.loads(t)
        except ValueError:
            pass
    return None

def get(d, k):
    return None if d is None or d.get("failed") else d.get(k)

def rounds(prefix):
    return [d for d in (j("%s%d" % (prefix, r)) for r in range(1, 10)) if d and not d.get("failed")]

def med(prefix, key):
    vals = [d[key] for d in rounds(prefix) if d.get(key) is not None]
    return round(statistics.median(vals), 3) if vals else None

def errs(*names):
    ds = [d for n in names for d in ([j(n)] if j(n) else rounds(n))]
    return sum(d.get("errors", 0) for d in ds) if ds else None

def summary_sessions(ip):
    try:
        for line in open(os.path.join(rdir, "summary_ceiling.txt")):
            o = json.loads(line)
            if o.get("ip") == ip:
                return o.get("session_count")
    except (OSError, ValueError):
        pass
    return None

def rnd(x, n=3):
    return None if x is None else round(x, n)

prog = j("prog") or {}
idle_c, two_c, ceil_c = j("idle_cycle"), j("two_cycle"), j("ceil_cycle")
fill_edge, probe = j("fill_edge"), j("probe")
mem_i, mem_c = j("mem_idle"), j("mem_ceiling")
try:
    ceiling = int(open(os.path.join(rdir, "ceiling")).read())
except (OSError, ValueError):
    ceiling = None

setups = rnd(get(idle_c, "setups_per_s"), 1)
setups_ceil = rnd(get(ceil_c, "setups_per_s"), 1)
burst, burst_ceil = med("idle_setup", "setups_per_s"), med("ceil_setup", "setups_per_s")
fill_bulk = j("fill_bulk")
ratio = rnd(setups_ceil / setups, 3) if setups and setups_ceil is not None else None
control = {
    "setups_per_s": setups,
    "cycles_per_s": rnd(get(idle_c, "cycles_per_s"), 1),
    "p50_ms": rnd(get(idle_c, "p50_ms")),
    "p99_ms": rnd(get(idle_c, "p99_ms")),
    "p999_ms": rnd(get(idle_c, "p999_ms")),
    "burst_setups_per_s": burst,
    "burst_p99_ms": med("idle_setup", "p99_ms"),
    "removes_per_s": med("idle_remove", "removes_per_s"),
    "errors": errs("idle_cycle", "idle_setup", "idle_remove"),
    "two_relays": {
        "setups_per_s": rnd(get(two_c, "setups_per_s"), 1),
        "burst_setups_per_s": med("two_setup", "setups_per_s"),
        "cycles_per_s": rnd(get(two_c, "cycles_per_s"), 1),
        "p50_ms": rnd(get(two_c, "p50_ms")),
        "p99_ms": rnd(get(two_c, "p99_ms")),
        "p999_ms": rnd(get(two_c, "p999_ms")),
        "errors": errs("two_cycle", "two_setup", "two_remove"),
    },
    "calls_at_ceiling": ceiling,
    "calls_port_ceiling": expected,
    "relay_nofile_limit": limit,
    "ceiling_by_open_files": limit < nofile_needed,
    "ceiling_offer_refused": (probe or {}).get("refused"),
    "relay_sessions_at_ceiling": summary_sessions("10.203.1.1"),
    "fill_setups_per_s": rnd(get(fill_bulk, "setups_per_s"), 1),
    "fill_retries": get(fill_bulk, "retries"),
    "setups_per_s_at_ceiling": setups_ceil,
    "burst_setups_per_s_at_ceiling": burst_ceil,
    "burst_p99_ms_at_ceiling": med("ceil_setup", "p99_ms"),
    "cycles_per_s_at_ceiling": rnd(get(ceil_c, "cycles_per_s"), 1),
    "p50_ms_at_ceiling": rnd(get(ceil_c, "p50_ms")),
    "p99_ms_at_ceiling": rnd(get(ceil_c, "p99_ms")),
    "p999_ms_at_ceiling": rnd(get(ceil_c, "p999_ms")),
    "removes_per_s_at_ceiling": med("ceil_remove", "removes_per_s"),
    "errors_at_ceiling": errs("ceil_cycle", "ceil_setup", "ceil_remove"),
    "ratio_ceiling_over_idle": ratio,
    "burst_ratio_ceiling_over_idle": rnd(burst_ceil / burst, 3)
        if burst and burst_ceil is not None else None,
    "connections": conns,
    "setup_window_calls": window,
    "cycle_seconds": cycle_s,
}

def m(d, k):
    return None if d is None else d.get(k)

calls = ceiling
def per_call(k):
    a, b = m(mem_i, k), m(mem_c, k)
    return round((b - a) / calls) if a is not None and b is not None and calls else None

memory = {
    "relay_rss_bytes_idle": m(mem_i, "relay_rss"),
    "relay_rss_bytes_at_ceiling": m(mem_c, "relay_rss"),
    "dispatcher_rss_bytes_idle": m(mem_i, "dispatcher_rss"),
    "dispatcher_rss_bytes_at_ceiling": m(mem_c, "dispatcher_rss"),
    "bpf_map_bytes_idle": m(mem_i, "bpf_bytes"),
    "bpf_map_bytes_at_ceiling": m(mem_c, "bpf_bytes"),
    "relay_bytes_per_call": per_call("relay_rss"),
    "dispatcher_bytes_per_call": per_call("dispatcher_rss"),
    "bpf_maps": [{"name": x.get("name"), "type": x.get("type"), "max_entries": x.get("max_entries"),
                  "bytes_memlock": x.get("bytes_memlock")} for x in (m(mem_c, "maps") or m(mem_i, "maps") or [])],
}
frag = {
    "prog_test_run_ns": {k: prog.get(k) for k in ("match", "miss", "ipv6", "miss_ipv6")},
    "control": control,
    "memory": memory,
}
with open(out, "w") as f:
    json.dump(frag, f, indent=1)
    f.write("\n")

def fmt(v, unit=""):
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "NO"
    if isinstance(v, float):
        v = ("%.3f" % v) if abs(v) < 10 else ("%.1f" % v) if abs(v) < 1000 else ("%.0f" % v)
    return "%s%s" % (v, unit)

def mib(v):
    return None if v is None else "%.1f MiB" % (v / 1048576)

def target(v, ok):
    return "" if v is None else ("  ok" if ok(v) else "  MISSED")

p = frag["prog_test_run_ns"]
rows = [
    ("BPF_PROG_TEST_RUN ns/packet", "", ""),
    ("  IPv4 match (<= 100)", fmt(p["match"]), target(p["match"], lambda v: v <= 100)),
    ("  IPv6 match (<= 100)", fmt(p["ipv6"]), target(p["ipv6"], lambda v: v <= 100)),
    ("  miss (IPv4 / IPv6)", "%s / %s" % (fmt(p["miss"]), fmt(p["miss_ipv6"])), ""),
    ("control plane, %d connections" % conns, "", ""),
    ("  1 relay: setups/s (>= 5000)", fmt(control["setups_per_s"]), target(control["setups_per_s"], lambda v: v >= 5000)),
    ("  1 relay: cycles/s, errors", "%s, %s" % (fmt(control["cycles_per_s"]), fmt(control["errors"])), ""),
    ("  1 relay: p50 / p99 / p999 ms (p99 <= 2)", "%s / %s / %s" % (fmt(control["p50_ms"]), fmt(control["p99_ms"]), fmt(control["p999_ms"])),
     target(control["p99_ms"], lambda v: v <= 2)),
    ("  1 relay: burst setups/s (W calls held)", fmt(control["burst_setups_per_s"]), ""),
    ("  2 relays: setups/s, burst setups/s", "%s, %s" % (fmt(control["two_relays"]["setups_per_s"]), fmt(control["two_relays"]["burst_setups_per_s"])), ""),
    ("  2 relays: cycles/s, p99 ms", "%s, %s" % (fmt(control["two_relays"]["cycles_per_s"]), fmt(control["two_relays"]["p99_ms"])), ""),
    ("  calls at ceiling (%s)" % ("open files: %d" % limit if limit < nofile_needed else "ports: %d" % expected),
     fmt(control["calls_at_ceiling"]),
     "" if control["ceiling_offer_refused"] is None else "  next offer refused" if control["ceiling_offer_refused"] else "  next offer NOT refused"),
    ("  at ceiling: setups/s, errors", "%s, %s" % (fmt(control["setups_per_s_at_ceiling"]), fmt(control["errors_at_ceiling"])), ""),
    ("  at ceiling: burst setups/s", fmt(control["burst_setups_per_s_at_ceiling"]), ""),
    ("  filling: setups/s, retried offers", "%s, %s" % (fmt(control["fill_setups_per_s"]), fmt(control["fill_retries"])), ""),
    ("  at ceiling: cycles/s, p99 ms", "%s, %s" % (fmt(control["cycles_per_s_at_ceiling"]), fmt(control["p99_ms_at_ceiling"])), ""),
    ("  setups/s ceiling / idle (>= 0.9)", fmt(ratio), target(ratio, lambda v: v >= 0.9)),
    ("memory (0 calls -> ceiling)", "", ""),
    ("  relay RSS", "%s -> %s" % (fmt(mib(memory["relay_rss_bytes_idle"])), fmt(mib(memory["relay_rss_bytes_at_ceiling"]))), ""),
    ("  dispatcher RSS", "%s -> %s" % (fmt(mib(memory["dispatcher_rss_bytes_idle"])), fmt(mib(memory["dispatcher_rss_bytes_at_ceiling"]))), ""),
    ("  BPF maps (bytes_memlock)", "%s -> %s" % (fmt(mib(memory["bpf_map_bytes_idle"])), fmt(mib(memory["bpf_map_bytes_at_ceiling"]))), ""),
    ("  bytes per call: relay / dispatcher", "%s / %s" % (fmt(memory["relay_bytes_per_call"]), fmt(memory["dispatcher_bytes_per_call"])), ""),
]
print()
for name, val, t in rows:
    print("%-44s %-28s%s" % (name, val, t))
ok_any = any(v is not None for v in (p["match"], control["setups_per_s"], memory["relay_rss_bytes_idle"]))
sys.exit(0 if ok_any else 1)
EOF
