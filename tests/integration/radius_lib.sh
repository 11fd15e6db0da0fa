# A private FreeRADIUS for the RADIUS accounting tests (sourced after
# lib.sh; not run): `freeradius -X -d $RAD_DIR` on loopback with a
# self-contained radiusd.conf (SERVICES.md), an accounting detail file, and
# its own dictionary with the §5.2 numbers written here (not the shipped
# radius/dictionary, so a wrong number there shows up as Attr-N), so the
# detail file names every attribute. Free UDP ports, stopped by PID, removed
# with $TMP. Also the radcli client config the dispatcher reads, a UDP sink
# standing in for a dead RADIUS server, and parsers for the detail file.
# shellcheck shell=bash

RAD_DIR=$TMP/radius
RAD_SECRET=mp-test-secret
RAD_PID=""
RAD_AUTH_PORT=""
RAD_ACCT_PORT=""
RAD_DETAIL=$RAD_DIR/radacct/detail
RAD_LOG=$RAD_DIR/fg.log
RAD_PY=${PYTHON:-python3}
_rad_cleanup_set=""

# rad_available: freeradius and python3 are installed (else the caller SKIPs).
rad_available() { command -v freeradius >/dev/null 2>&1 && command -v "$RAD_PY" >/dev/null 2>&1; }

# rad_free_udp_ports N: N distinct UDP ports on 127.0.0.1 that are free now.
rad_free_udp_ports() {
	"$RAD_PY" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

_rad_write_server_conf() {
	local r=$RAD_DIR
	mkdir -p "$r/log" "$r/run" "$r/radacct"
	cat >"$r/radiusd.conf" <<EOF
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
raddbdir = $r
confdir = $r
modconfdir = $r/mods-config
logdir = $r/log
radacctdir = $r/radacct
run_dir = $r/run
db_dir = $r
libdir = /usr/lib/freeradius
name = freeradius
pidfile = $r/run/freeradius.pid
correct_escapes = true
max_request_time = 30
cleanup_delay = 0
max_requests = 1024
hostname_lookups = no
log {
	destination = files
	file = $r/log/radius.log
	stripped_names = no
	auth = no
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = yes
}
thread pool {
	start_servers = 1
	max_servers = 4
	min_spare_servers = 1
	max_spare_servers = 2
	max_requests_per_server = 0
}
client localhost {
	ipaddr = 127.0.0.1
	secret = $RAD_SECRET
}
modules {
	always ok {
		rcode = ok
	}
	detail {
		filename = $RAD_DETAIL
		escape_filenames = no
		permissions = 0600
		header = "%t"
		locking = yes
	}
}
server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = $RAD_AUTH_PORT
	}
	listen {
		type = acct
		ipaddr = 127.0.0.1
		port = $RAD_ACCT_PORT
	}
	authorize {
		ok
	}
	authenticate {
	}
	preacct {
		ok
	}
	accounting {
		detail
		ok
	}
}
EOF
	# FreeRADIUS reads <confdir>/dictionary on top of its own. Sip-To-Tag
	# and Sip-From-Tag replace rfc5090's Digest-Realm/Digest-Nonce numbers
	# (harmless here: nothing else uses them).
	cat >"$r/dictionary" <<'EOF'
ATTRIBUTE	Sip-To-Tag		104	string
ATTRIBUTE	Sip-From-Tag		105	string
ATTRIBUTE	Media-Codecs		233	string
ATTRIBUTE	Media-Info		234	string
ATTRIBUTE	Sip-User-Agents		235	string
ATTRIBUTE	Sip-Applications	236	string
EOF
}

_rad_ready_count() { grep -c 'Ready to process requests' "$RAD_LOG" 2>/dev/null || true; }
_rad_ready_since() {
	[ "$(_rad_ready_count)" -gt "$1" ] && return 0
	kill -0 "$RAD_PID" 2>/dev/null || return 2
	return 1
}

# rad_start: starts (or restarts, on the same ports) the server and waits
# until it is ready. Returns non-zero, with the log's tail on stderr, if it
# does not come up.
rad_start() {
	local before
	[ -n "$RAD_ACCT_PORT" ] || read -r RAD_AUTH_PORT RAD_ACCT_PORT < <(rad_free_udp_ports 2)
	_rad_write_server_conf
	if [ -z "$_rad_cleanup_set" ]; then
		at_exit rad_stop
		_rad_cleanup_set=1
	fi
	before=$(_rad_ready_count)
	echo "--- freeradius start $(date +%T.%N) ---" >>"$RAD_LOG"
	freeradius -X -d "$RAD_DIR" >>"$RAD_LOG" 2>&1 &
	RAD_PID=$!
	if ! wait_for 10 _rad_ready_since "${before:-0}"; then
		tail -20 "$RAD_LOG" >&2
		return 1
	fi
}

# rad_stop: stops the server we started (by its PID).
rad_stop() {
	[ -n "$RAD_PID" ] || return 0
	stop_pid "$RAD_PID"
	RAD_PID=""
}

# rad_client_conf FILE ACCTSERVERS [TIMEOUT] [RETRIES]: a radcli config
# (radiusclient-ng format) sending to ACCTSERVERS ("host:port[,host:port]"),
# its servers file beside it, radcli's shipped dictionary.
rad_client_conf() {
	local file=$1 servers=$2 timeout=${3:-1} retries=${4:-1}
	printf '127.0.0.1\t%s\n' "$RAD_SECRET" >"$file.servers"
	cat >"$file" <<EOF
authserver 127.0.0.1:${RAD_AUTH_PORT:-1812}
acctserver $servers
servers $file.servers
dictionary /etc/radcli/dictionary
radius_timeout $timeout
radius_retries $retries
bindaddr *
EOF
}

# rad_sink_start PORT FILE: a UDP socket on 127.0.0.1:PORT that never
# answers and writes how many datagrams it got to FILE (a dead server that
# shows it was tried). Returns once it listens. Sets RAD_SINK_PID; stopped
# at exit.
rad_sink_start() {
	rm -f "$2"
	"$RAD_PY" - "$1" "$2" <<'EOF' &
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
n = 0
with open(sys.argv[2] + ".tmp", "w") as f:   # bound: tell the shell
    f.write("0\n")
os.replace(sys.argv[2] + ".tmp", sys.argv[2])
while True:
    s.recv(65535)
    n += 1
    with open(sys.argv[2] + ".tmp", "w") as f:
        f.write("%d\n" % n)
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
EOF
	RAD_SINK_PID=$!
	at_exit "stop_pid $RAD_SINK_PID"
	wait_for 5 test -f "$2"
}

# rad_records: the detail file as JSON, one record per line:
# {"Name": [values...], ...}; strings unquoted and unescaped.
rad_records() {
	[ -f "$RAD_DETAIL" ] || return 0
	"$RAD_PY" - "$RAD_DETAIL" <<'EOF'
import json, re, sys
line_re = re.compile(r'^\t([A-Za-z0-9][A-Za-z0-9._-]*) = (.*)$')
def unquote(v):
    if len(v) < 2 or v[0] != '"' or v[-1] != '"':
        return v
    b = v[1:-1].encode("utf-8", "surrogateescape")
    out, i = bytearray(), 0
    while i < len(b):
        if b[i] == 0x5C and i + 1 < len(b):
            octal = b[i + 1:i + 4]
            if len(octal) == 3 and all(0x30 <= x <= 0x37 for x in octal):
                out.append(int(octal, 8))
                i += 4
                continue
            out.append({0x6E: 10, 0x72: 13, 0x74: 9}.get(b[i + 1], b[i + 1]))
            i += 2
            continue
        out.append(b[i])
        i += 1
    return out.decode("utf-8", "surrogateescape")
recs, cur = [], None
with open(sys.argv[1], encoding="utf-8", errors="surrogateescape") as f:
    for line in f:
        line = line.rstrip("\n")
        m = line_re.match(line)
        if m:
            cur.setdefault(m.group(1), []).append(unquote(m.group(2)))
        elif line.strip():
            cur = {}
            recs.append(cur)
for r in recs:
    print(json.dumps(r))
EOF
}

# rad_count CALL-ID: how many detail records carry Acct-Session-Id CALL-ID.
rad_count() {
	rad_records | "$RAD_PY" -c '
import json, sys
print(sum(1 for l in sys.stdin if json.loads(l).get("Acct-Session-Id") == [sys.argv[1]]))' "$1"
}

# rad_has N CALL-ID...: each call has exactly N detail records (for wait_for).
rad_has() {
	local n=$1 cid
	shift
	for cid in "$@"; do [ "$(rad_count "$cid")" = "$n" ] || return 1; done
}

# rad_record CALL-ID: the call's last detail record as one JSON line.
rad_record() {
	rad_records | "$RAD_PY" -c '
import json, sys
last = ""
for l in sys.stdin:
    if json.loads(l).get("Acct-Session-Id") == [sys.argv[1]]:
        last = l.strip()
print(last)' "$1"
}

# rad_check_record ACCOUNTING-RECORD-JSON DETAIL-RECORD-JSON: exits 0 when
# the detail record holds exactly the attributes PROTOCOL.md §5.2 derives
# from the accounting record (an independent derivation, in Python), each
# once, and nothing else but FreeRADIUS' own Timestamp; else prints what
# differs. With a third argument "any-nas", NAS-IP-Address is only checked
# to be present (radcli fills it in when the record has no stream).
rad_check_record() {
	"$RAD_PY" - "$@" <<'EOF'
import ipaddress, json, sys
rec, got = json.loads(sys.argv[1]), json.loads(sys.argv[2])
any_nas = len(sys.argv) > 3 and sys.argv[3] == "any-nas"
U32 = 2**32 - 1
def cut(s):
    # at most 253 bytes; a UTF-8 sequence the cut would split goes whole
    b = s.encode("utf-8", "surrogateescape")
    if len(b) <= 253:
        return s
    n = 253
    while n > 250 and (b[n] & 0xC0) == 0x80:
        n -= 1
    if (b[n] & 0xC0) == 0x80:
        n = 253
    return b[:n].decode("utf-8", "surrogateescape")
st = rec["streams"]
want = {
    "Acct-Status-Type": "3",
    "User-Name": rec.get("username") or "mediaproxy@default",
    "Acct-Session-Id": rec["call_id"],
    "Acct-Session-Time": str(min(rec["duration"], U32)),
    "Acct-Input-Octets": str(min(sum(s["caller_bytes"] for s in st), U32)),
    "Acct-Output-Octets": str(min(sum(s["callee_bytes"] for s in st), U32)),
    "Sip-From-Tag": rec["from_tag"],
    "Sip-To-Tag": rec.get("to_tag") or None,
    "Sip-User-Agents": cut(rec["caller_ua"] + "+" + rec["callee_ua"]),
    "Sip-Applications": cut(", ".join(sorted({s["media_type"] for s in st
                                              if s["start_time"] != s["end_time"]}))) or None,
    "Media-Codecs": cut(", ".join(s["caller_codec"] for s in st)) or None,
    "Media-Info": ("ICE session" if rec.get("all_streams_ice") else
                   "timeout" if rec.get("timed_out") else None),
}
pdd = [s["post_dial_delay"] for s in st if s.get("post_dial_delay") is not None]
want["Acct-Delay-Time"] = str(int(pdd[0])) if pdd else "0"
if st and not any_nas:
    host = st[0]["caller_local"].rsplit(":", 1)[0].strip("[]")
    ip = ipaddress.ip_address(host)
    want["NAS-IPv6-Address" if ip.version == 6 else "NAS-IP-Address"] = str(ip)
want = {k: v for k, v in want.items() if v is not None}
status = {"Interim-Update": "3", "Alive": "3", "Update": "3"}
errors = []
for k, v in got.items():
    if k == "Timestamp" or (any_nas and k == "NAS-IP-Address"):
        if len(v) != 1:
            errors.append("%s %d times" % (k, len(v)))
        continue
    if k not in want:
        errors.append("unexpected %s = %r" % (k, v))
        continue
    if len(v) != 1:
        errors.append("%s sent %d times: %r" % (k, len(v), v))
    val = status.get(v[0], v[0]) if k == "Acct-Status-Type" else v[0]
    if val != want[k]:
        errors.append("%s = %r, want %r" % (k, val, want[k]))
for k in want:
    if k not in got:
        errors.append("missing %s (want %r)" % (k, want[k]))
if any_nas and "NAS-IP-Address" not in got:
    errors.append("missing NAS-IP-Address")
if errors:
    print("; ".join(errors))
    sys.exit(1)
EOF
}
