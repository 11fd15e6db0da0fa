#!/usr/bin/env python3
"""mpctl: speaks like the SIP proxy's mediaproxy module and like a
management client, for the integration tests.

  mpctl.py --socket PATH update --call-id C --from-tag F [--to-tag T]
           --type request|reply --cseq N [--media SPEC] [--dialog-id D]
           [--media-relay IP] [--user-agent UA]
  mpctl.py --socket PATH remove --call-id C --from-tag F [--to-tag T]
  mpctl.py --socket PATH raw FILE        (sends FILE's bytes, prints replies)
  mpctl.py mgmt --host H --port P [--cert C --key K --ca CA] COMMAND

Module requests print the one reply line; mgmt prints the reply lines up to
the terminating empty line (lines format) or the single line (array).
Headers go out in Kamailio's order with Kamailio's empty-value lines."""
import argparse
import socket
import ssl
import sys


def module_request(path, text, timeout):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(text.encode())
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = s.recv(8192)
        if not chunk:
            break
        data += chunk
    s.close()
    return data.decode(errors="replace").rstrip("\r\n")


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
    raw = socket.create_connection((a.host, a.port), timeout=a.timeout)
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.load_verify_locations(a.ca)
        ctx.load_cert_chain(a.cert, a.key)
        raw = ctx.wrap_socket(raw)
    raw.sendall((a.command + "\r\n").encode())
    f = raw.makefile("rb")
    out = []
    while True:
        line = f.readline()
        if not line:
            break
        line = line.decode(errors="replace").rstrip("\r\n")
        if line == "":
            break
        out.append(line)
        if line.startswith("[") or line in ("error",) or a.command == "version":
            break
    raw.close()
    print("\n".join(out))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--socket")
    p.add_argument("--timeout", type=float, default=5.0)
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
    m = sub.add_parser("mgmt")
    m.add_argument("--host", default="127.0.0.1")
    m.add_argument("--port", type=int, default=25061)
    m.add_argument("--cert")
    m.add_argument("--key")
    m.add_argument("--ca")
    m.add_argument("command")
    a = p.parse_args()
    if a.cmd == "update":
        print(module_request(a.socket, build_update(a), a.timeout))
    elif a.cmd == "remove":
        print(module_request(a.socket, build_remove(a), a.timeout))
    elif a.cmd == "raw":
        with open(a.file, "rb") as fh:
            print(module_request(a.socket, fh.read().decode(), a.timeout))
    else:
        mgmt(a)


if __name__ == "__main__":
    sys.exit(main())
