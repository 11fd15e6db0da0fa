# Shared set-up for the control-plane tests (test_control_*.sh; sourced
# after lib.sh, not run): certificates, config files, real daemons in the
# foreground with their logs in $TMP, and the clients that talk to them
# (tests/tools/mpctl.py for the module and management protocols,
# udp_peer for the phones). Everything is on loopback; the TCP ports are
# free ones the kernel picked, so parallel runs do not collide.
# shellcheck shell=bash

PY=${PYTHON:-python3}
MPCTL=$MP_ROOT/tests/tools/mpctl.py
UDP_PEER=$MP_BUILD/tests/helpers/udp_peer
TLS=$TMP/tls

for _bin in "$BIN/media-dispatcher" "$BIN/media-relay" "$UDP_PEER"; do
	if [ ! -x "$_bin" ]; then
		echo "Bail out! $_bin is not built (make all)"
		exit 1
	fi
done

# free_ports N [udp]: N distinct ports on 127.0.0.1 that are free now.
free_ports() {
	"$PY" - "$1" "${2:-tcp}" <<'EOF'
import socket, sys
kind = socket.SOCK_DGRAM if sys.argv[2] == "udp" else socket.SOCK_STREAM
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# Relay media ports: a random block below the ephemeral range per run, 120
# ports (30 streams) per relay index 0..7, so two runs rarely share one (and
# a port that cannot be bound is skipped by the relay anyway).
PORT_BASE=$((20000 + (RANDOM % 5000) * 2))

# The CA, the daemons' certificates, a management client certificate that
# fails the management passport, and a second, unrelated CA.
make_test_certs() {
	"$MP_ROOT/tls/make-certs.sh" "$TLS" >/dev/null 2>&1 &&
		"$MP_ROOT/tls/make-certs.sh" "$TLS" --cert intruder --cn intruder >/dev/null 2>&1 &&
		"$MP_ROOT/tls/make-certs.sh" "$TLS" --cert relay-trusted --cn relay-trusted \
			>/dev/null 2>&1 &&
		"$MP_ROOT/tls/make-certs.sh" "$TMP/tls-other" >/dev/null 2>&1
}

# certs_dir DIR RELAY-CERT-PREFIX [CA-DIR]: a certs_path for a relay whose
# relay.crt/key are PREFIX.crt/key, trusting CA-DIR's CA (default ours).
certs_dir() {
	local dir=$1 prefix=$2 ca=${3:-$TLS}
	mkdir -p "$dir" &&
		cp "$ca/ca.pem" "$ca/crl.pem" "$dir/" &&
		cp "$prefix.crt" "$dir/relay.crt" && cp "$prefix.key" "$dir/relay.key"
}

# write_dispatcher_conf FILE RELAY-PORT MGMT-PORT [extra [Dispatcher] lines]
write_dispatcher_conf() {
	local file=$1 port=$2 mport=$3
	shift 3
	{
		echo "[Dispatcher]"
		echo "socket_path = dispatcher.sock"
		echo "listen = 127.0.0.1:$port"
		echo "listen_management = 127.0.0.1:$mport"
		echo "log_level = DEBUG"
		# summary/sessions to a hung relay must not hold a test for 5 s
		echo "relay_timeout = 2"
		printf '%s\n' "$@"
		echo "[TLS]"
		echo "certs_path = $TLS"
	} >"$file"
}

# write_relay_conf FILE RELAY-IP DISPATCHER-PORT INDEX [CERTS-DIR] [extra [Relay] lines]
write_relay_conf() {
	local file=$1 ip=$2 dport=$3 index=$4 certs=${5:-$TLS} lo
	shift 5 2>/dev/null || shift $#
	lo=$((PORT_BASE + index * 120))
	{
		echo "[Relay]"
		echo "dispatchers = 127.0.0.1:$dport"
		echo "relay_ip = $ip"
		echo "port_range = $lo:$((lo + 120))"
		echo "forwarding = userspace"
		echo "routable_private_ranges = 127.0.0.0/8"
		echo "reconnect_delay = 1"
		echo "keepalive_interval = 1"
		echo "log_level = DEBUG"
		printf '%s\n' "$@"
		echo "[TLS]"
		echo "certs_path = $certs"
	} >"$file"
}

# start_daemon NAME BINARY CONF RUNDIR LOG: in the foreground, in the
# background of this shell; sets PID[NAME]. Stopped at exit.
declare -A PID
start_daemon() {
	local name=$1 bin=$2 conf=$3 run=$4 log=$5
	mkdir -p "$run"
	"$BIN/$bin" --no-fork --config-file "$conf" --runtime-dir "$run" \
		--pid "$run/$name.pid" >>"$log" 2>&1 &
	PID[$name]=$!
	at_exit "stop_daemon $name"
}

# stop_daemon NAME: TERM (after CONT, in case a test stopped it), KILL
# after 5 s; returns the exit status.
stop_daemon() {
	local pid=${PID[$1]:-} rc=0
	[ -n "$pid" ] || return 0
	kill -CONT "$pid" 2>/dev/null
	kill -TERM "$pid" 2>/dev/null
	wait_for 5 process_gone "$pid" || kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || rc=$?
	PID[$1]=""
	return "$rc"
}

# reap NAME: the exit status of a daemon that ended by itself.
reap() {
	local pid=${PID[$1]:-} rc=0
	[ -n "$pid" ] || return 0
	wait "$pid" 2>/dev/null || rc=$?
	PID[$1]=""
	return "$rc"
}

# log_has FILE ERE: the log holds a line matching ERE (quietly false while
# the file does not exist yet).
log_has() { grep -qsE -- "$2" "$1"; }

# mod SOCKET ARGS...: mpctl's module side.
mod() { local sock=$1; shift; "$PY" "$MPCTL" --socket "$sock" "$@"; }

# mgmt PORT ARGS...: management over TLS with the good client certificate.
mgmt() {
	local port=$1; shift
	"$PY" "$MPCTL" mgmt --port "$port" --cert "$TLS/client.crt" --key "$TLS/client.key" \
		--ca "$TLS/ca.pem" "$@"
}

# offer SOCKET CALL-ID FROM-TAG MEDIA [mpctl update options]: the INVITE.
offer() {
	local sock=$1 cid=$2 ftag=$3 media=$4; shift 4
	mod "$sock" update --type request --call-id "$cid" --from-tag "$ftag" --cseq 1 \
		--user-agent "caller UA" --media "$media" "$@"
}

# answer SOCKET CALL-ID FROM-TAG TO-TAG MEDIA [options]: the 200 OK.
answer() {
	local sock=$1 cid=$2 ftag=$3 ttag=$4 media=$5; shift 5
	mod "$sock" update --type reply --call-id "$cid" --from-tag "$ftag" --to-tag "$ttag" \
		--cseq 1 --user-agent "callee UA" --media "$media" "$@"
}

# jq-like queries on management replies (one JSON object per line), in
# python because that is already a test dependency:
#   json_q lines-valid                        every line parses as an object
#   json_q summary-valid                      every line has §3.4's fields
#   json_q status IP                          the status of relay IP, or absent
#   json_q count                              number of objects
#   json_q session CALL-ID FIELD...           fields of that session; a field
#                                             of its first stream as streams.0.F
JSON_Q_PROGRAM=$(cat <<'EOF'
import json, sys
args = sys.argv[1:]
objs = []
for line in sys.stdin.read().splitlines():
    if not line.strip():
        continue
    try:
        o = json.loads(line)
    except ValueError:
        print("not JSON: " + line)
        sys.exit(1)
    if not isinstance(o, dict):
        print("not an object: " + line)
        sys.exit(1)
    objs.append(o)
cmd = args[0]
if cmd == "lines-valid":
    sys.exit(0)
if cmd == "count":
    print(len(objs))
elif cmd == "summary-valid":
    want = {"ip": str, "version": str, "status": str, "uptime": int,
            "session_count": int, "stream_count": int, "bps_relayed": float}
    for o in objs:
        for k, t in want.items():
            if not isinstance(o.get(k), t) or isinstance(o.get(k), bool):
                print("field %s missing or not %s in %s" % (k, t.__name__, o))
                sys.exit(1)
        if o["status"] not in ("active", "halting"):
            print("bad status in %s" % o)
            sys.exit(1)
    sys.exit(0 if objs else 1)
elif cmd == "status":
    st = [o.get("status") for o in objs if o.get("ip") == args[1]]
    print(st[0] if st else "absent")
elif cmd == "session":
    s = [o for o in objs if o.get("call_id") == args[1]]
    if not s:
        print("absent")
        sys.exit(0)
    out = []
    for f in args[2:]:
        v = s[0]
        for part in f.split("."):
            v = v[int(part)] if isinstance(v, list) else v.get(part)
        out.append(str(v))
    print(" ".join(out))
EOF
)
json_q() { "$PY" -c "$JSON_Q_PROGRAM" "$@"; }

# relay_status MGMT-PORT IP: the relay's status in `summary`, or absent.
relay_status() { mgmt "$1" summary 2>/dev/null | json_q status "$2"; }

# sanitizer_clean: every daemon log in $TMP is free of ASan/UBSan/LSan
# reports; names the logs that are not.
sanitizer_clean() {
	local bad
	bad=$(grep -lE 'Sanitizer|runtime error:' "$TMP"/*.log 2>/dev/null)
	[ -z "$bad" ] || { echo "# sanitizer reports in: $bad"; return 1; }
}
