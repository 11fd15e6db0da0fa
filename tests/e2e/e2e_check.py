#!/usr/bin/env python3
"""e2e_check.py: reads what the E2E test collected and prints one line the
test compares with what it expects.

  e2e_check.py sdp LOG sent|received REGEX [NTH]
      The SDP of the NTH (1-based; -1 = last) SIP message in a sipp message
      log (-trace_msg) sent or received whose first line matches REGEX:
      "TYPE=IP:PORT:DIRECTION ..." per m= line (stream c= over session c=,
      direction from the stream, else the session, else sendrecv), or
      "none" when there is no such message or it has no SDP.
  e2e_check.py count LOG sent|received REGEX
      How many SIP messages a sipp message log holds, sent or received,
      whose first line matches REGEX (retransmissions included).
  e2e_check.py sessions FILE
      The management `sessions` reply (lines or array format) as
      "sessions=N" then, per stream, " TYPE status=S codecs=A/B
      packets=A/B bytes=A/B local=PORT/PORT".
  e2e_check.py flows FILE
      A `bpftool -j map dump` of relay_flows as "flows=N packets=P1,P2,..."
      (one count per entry, sorted).
  e2e_check.py counters FILE
      The streams of the one session of a `sessions` reply without their
      status: " TYPE codecs=A/B packets=A/B bytes=A/B local=PORT/PORT" per
      stream (what the accounting record of the call must repeat).
  e2e_check.py record FILE CALL_ID
      The accounting records (jsonl) of CALL_ID as "records=N", then, for
      the first one, " dialog_id=D timed_out=T all_streams_ice=I" (JSON
      values; "-" when absent) and its streams as `counters` prints them.
  e2e_check.py dialog FILE CALL_ID
      The dialog_id the proxy's mediaproxy module sends for CALL_ID, from
      the proxy's dialog list (FILE: Kamailio's dlg.list or OpenSIPS's
      dlg_list JSON-RPC reply): "h_entry:h_id" (Kamailio) or the 64-bit
      decimal db_id (OpenSIPS); "none" when the proxy has no live dialog
      of that Call-ID."""
import json
import re
import sys

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


def sipp_messages(path):
    """(direction, text) for every message in a sipp -trace_msg log."""
    with open(path, errors="replace") as f:
        data = f.read()
    out = []
    for block in re.split(r"^-{20,} [^\n]*\n", data, flags=re.M):
        m = re.match(r"\S+ message (sent|received)[^\n]*\n\n", block)
        if m:
            out.append((m.group(1), block[m.end():]))
    return out


def sdp_streams(body):
    session_c, session_dir, streams = None, None, []
    for line in body.splitlines():
        line = line.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            streams.append({"type": parts[0], "port": parts[1], "c": None, "dir": None})
        elif line.startswith("c="):
            addr = line.split()[-1]
            if streams:
                streams[-1]["c"] = addr
            else:
                session_c = addr
        elif line[2:] in DIRECTIONS and line.startswith("a="):
            if streams:
                streams[-1]["dir"] = streams[-1]["dir"] or line[2:]
            else:
                session_dir = session_dir or line[2:]
    return " ".join("%s=%s:%s:%s" % (s["type"], s["c"] or session_c, s["port"],
                                       s["dir"] or session_dir or "sendrecv")
                    for s in streams)


def cmd_sdp(path, direction, regex, nth="1"):
    found = [t for d, t in sipp_messages(path)
             if d == direction and re.search(regex, t.split("\n", 1)[0])]
    n = int(nth)
    try:
        text = found[n - 1 if n > 0 else n]
    except IndexError:
        return "none"
    head, _, body = text.replace("\r\n", "\n").partition("\n\n")
    return sdp_streams(body) or "none"


def cmd_count(path, direction, regex):
    return str(sum(1 for d, t in sipp_messages(path)
                   if d == direction and re.search(regex, t.split("\n", 1)[0])))


def load_sessions(path):
    with open(path) as f:
        data = f.read().strip()
    if not data:
        return []
    if data.startswith("["):
        return json.loads(data)
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def port_of(endpoint):
    return str(endpoint).rsplit(":", 1)[-1]


def cmd_sessions(path):
    sessions = load_sessions(path)
    out = ["sessions=%d" % len(sessions)]
    for s in sessions:
        for st in s.get("streams", []):
            out.append("%s status=%s codecs=%s/%s packets=%s/%s bytes=%s/%s local=%s/%s" % (
                st["media_type"], st["status"], st["caller_codec"], st["callee_codec"],
                st["caller_packets"], st["callee_packets"], st["caller_bytes"],
                st["callee_bytes"], port_of(st["caller_local"]), port_of(st["callee_local"])))
    return " ".join(out)


def stream_counters(streams):
    return "".join(" %s codecs=%s/%s packets=%s/%s bytes=%s/%s local=%s/%s" % (
        st["media_type"], st["caller_codec"], st["callee_codec"], st["caller_packets"],
        st["callee_packets"], st["caller_bytes"], st["callee_bytes"],
        port_of(st["caller_local"]), port_of(st["callee_local"])) for st in streams)


def cmd_counters(path):
    sessions = load_sessions(path)
    if len(sessions) != 1:
        return "sessions=%d" % len(sessions)
    return stream_counters(sessions[0].get("streams", [])).lstrip()


def json_word(obj, key):
    return json.dumps(obj[key]).strip('"') if key in obj else "-"


def cmd_record(path, call_id):
    with open(path) as f:
        records = [r for r in (json.loads(line) for line in f if line.strip())
                   if r.get("call_id") == call_id]
    out = "records=%d" % len(records)
    if records:
        r = records[0]
        out += " dialog_id=%s timed_out=%s all_streams_ice=%s" % (
            json_word(r, "dialog_id"), json_word(r, "timed_out"),
            json_word(r, "all_streams_ice"))
        out += stream_counters(r.get("streams", []))
    return out


DELETED = 5  # dialog state "deleted", in both proxies


def cmd_dialog(path, call_id):
    with open(path) as f:
        result = json.load(f)["result"]
    if isinstance(result, list):   # Kamailio dlg.list
        ids = ["%d:%d" % (d["h_entry"], d["h_id"]) for d in result
               if d.get("call-id") == call_id and d.get("state") != DELETED]
    else:                          # OpenSIPS dlg_list
        ids = [str(d["db_id"]) for d in result.get("Dialogs", [])
               if d.get("callid") == call_id and d.get("state") != DELETED]
    if len(ids) > 1:
        return "several:" + ",".join(ids)
    return ids[0] if ids else "none"


def cmd_flows(path):
    with open(path) as f:
        entries = json.load(f)
    packets = sorted(e["formatted"]["value"]["packets"] for e in entries)
    return "flows=%d packets=%s" % (len(entries), ",".join(map(str, packets)))


def main(argv):
    cmds = {"sdp": cmd_sdp, "sessions": cmd_sessions, "flows": cmd_flows,
            "counters": cmd_counters, "count": cmd_count, "record": cmd_record, "dialog": cmd_dialog}
    if len(argv) < 2 or argv[1] not in cmds:
        sys.exit(__doc__)
    print(cmds[argv[1]](*argv[2:]))


if __name__ == "__main__":
    main(sys.argv)
