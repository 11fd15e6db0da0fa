#!/usr/bin/env python3
"""mpctl: speaks like the SIP proxy's mediaproxy module and like a
management client, for the integration tests.

  mpctl.py --socket PATH update --call-id C --from-tag F [--to-tag T]
           --type request|reply --cseq N [--media SPEC] [--dialog-id D]
           [--media-relay IP] [--user-agent UA]
  mpctl.py --socket PATH remove --call-id C --from-tag F [--to-tag T]
  mpctl.py --socket PATH raw FILE [--replies N | --split]
           (sends FILE's bytes, prints replies)
  mpctl.py mgmt --host H --port P [--cert C --key K] [--ca CA] [--tls] COMMAND

Module requests print the one reply line; mgmt prints the reply lines up to
the terminating empty line (lines format) or the single line (array).
Headers go out in Kamailio's order with Kamailio's empty-value lines.

raw sends the whole file at once and prints one reply line, or N with
--replies N (requests pipelined on one connection). With --split it sends
the file one request at a time (each ends at an empty line), waiting for
each reply as the module does, all on one connection. --elapsed writes each
module reply's round-trip time to stderr as "elapsed=SECONDS". mgmt uses
TLS when given --cert or --tls (--tls alone: no client certificate); it
exits 1, printing nothing on stdout, when the server refuses or drops it."""
import argparse
import socket
import ssl
import sys
import time


class ModuleConnection:
    """One connection to the proxy socket, as a SIP worker keeps it."""

    def __init__(self, path, timeout, elapsed=False):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(timeout)
        self.s.connect(path)
        self.buf = b""
        self.elapsed = elapsed

    def send(self, text):
        self.s.sendall(text.encode() if isinstance(text, str) else text)

    def reply(self):
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(8192)
            if not chunk:
                line, self.buf = self.buf, b""
                return line.decode(errors="replace")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def request(self, text):
        start = time.monotonic()
        self.send(text)
        line = self.reply()
        if self.elapsed:
            print("elapsed=%.3f" % (time.monotonic() - start), file=sys.stderr)
        return line

    def close(self):
        self.s.close()


def module_request(path, text, timeout, elapsed=False):
    conn = ModuleConnection(path, timeout, elapsed)
    line = conn.request(text)
    conn.close()
    return line


def raw(a):
    with open(a.file, "rb") as fh:
        data = fh.read()
    conn = ModuleConnection(a.socket, a.timeout, a.elapsed)
    if a.split:
        parts = data.split(b"\r\n\r\n")
        requests = [p + b"\r\n\r\n" for p in parts[:-1]]
        if parts[-1].strip():
            requests.append(parts[-1])
        for req in requests:
            print(conn.request(req))
    else:
        print(conn.request(data))
        for _ in range(a.replies - 1):
            print(conn.reply())
    conn.close()


def build_update(a):
    lines = ["update", "type: " + a.type, "dialog_id: " + (a.dialog_id or ""),
             "call_id: " + a.call_id, "cseq: " + str(a.cseq),
             "from_uri: " + a.from_uri, "to_uri: " + a.to_uri,
             "from_tag: " + a.from_tag, "to_tag: " + (a.to_tag or ""),
             "user_agent: " + a.user_agent, "signaling_ip: " + a.signaling_ip,
             "media_relay: " + (a.media_relay or "")]
    if a.media:
        lines.append("media: " + a.media)
    return "\r\n".join(lines) + "\r\n\r\n"


def build_remove(a):
    lines = ["remove", "call_id: " + a.call_id, "from_tag: " + a.from_tag,
             "to_tag: " + (a.to_tag or "")]
    return "\r\n".join(lines) + "\r\n\r\n"


def mgmt(a):
    try:
        out = mgmt_exchange(a)
    except (OSError, ssl.SSLError) as e:
        print("mpctl: management %s:%d: %s" % (a.host, a.port, e), file=sys.stderr)
        return 1
    if out is None and a.command not in ("quit", "exit"):
        print("mpctl: management %s:%d: connection closed without a reply"
              % (a.host, a.port), file=sys.stderr)
        return 1
    print("\n".join(out or []))
    return 0


def mgmt_exchange(a):
    """The reply lines, or None when the server closed without a reply
    (an empty reply is the empty list)."""
    raw = socket.create_connection((a.host, a.port), timeout=a.timeout)
    if a.cert or a.tls:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        if a.ca:
            ctx.load_verify_locations(a.ca)
        else:
            ctx.verify_mode = ssl.CERT_NONE
        if a.cert:
            ctx.load_cert_chain(a.cert, a.key)
        raw = ctx.wrap_socket(raw)
    raw.sendall((a.command + "\r\n").encode())
    f = raw.makefile("rb")
    out = []
    while True:
        line = f.readline()
        if not line:
            if not out:
                out = None
            break
        line = line.decode(errors="replace").rstrip("\r\n")
        if line == "":
            break
        out.append(line)
        if line.startswith("[") or line in ("error",) or a.command == "version":
            break
    raw.close()
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--socket")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--elapsed", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)
    u = sub.add_parser("update")
    r = sub.add_parser("remove")
    for q in (u, r):
        q.add_argument("--call-id", required=True)
        q.add_argument("--from-tag", required=True)
        q.add_argument("--to-tag")
    u.add_argument("--type", choices=["request", "reply"], required=True)
    u.add_argument("--cseq", type=int, default=1)
    u.add_argument("--media")
    u.add_argument("--dialog-id")
    u.add_argument("--media-relay")
    u.add_argument("--user-agent", default="mpctl")
    u.add_argument("--signaling-ip", default="127.0.0.1")
    u.add_argument("--from-uri", default="alice@example.com")
    u.add_argument("--to-uri", default="bob@example.com")
    w = sub.add_parser("raw")
    w.add_argument("file")
    w.add_argument("--replies", type=int, default=1)
    w.add_argument("--split", action="store_true")
    m = sub.add_parser("mgmt")
    m.add_argument("--host", default="127.0.0.1")
    m.add_argument("--port", type=int, default=25061)
    m.add_argument("--cert")
    m.add_argument("--key")
    m.add_argument("--ca")
    m.add_argument("--tls", action="store_true")
    m.add_argument("command")
    a = p.parse_args()
    if a.cmd == "update":
        print(module_request(a.socket, build_update(a), a.timeout, a.elapsed))
    elif a.cmd == "remove":
        print(module_request(a.socket, build_remove(a), a.timeout, a.elapsed))
    elif a.cmd == "raw":
        raw(a)
    else:
        return mgmt(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
