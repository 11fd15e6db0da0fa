#!/usr/bin/env python3
"""A small client for rtpengine's ng control protocol, for the benchmarks.

The ng protocol is one UDP datagram per request: a random cookie, a space,
then a bencoded dictionary ({"command": "offer", ...}); the answer is the
same cookie, a space and a bencoded dictionary with "result": "ok" (or
"error" and "error-reason"). A call is set up as a SIP proxy would: an
offer carrying the caller's SDP (rtpengine answers with the SDP the callee
gets, i.e. the port the callee must send to), then an answer carrying the
callee's SDP (rtpengine answers with the port the caller must send to).

Command line (run it where the ng listener is, e.g. in the relay's netns):
  rtpengine_ng.py [--ng HOST:PORT] ping
  rtpengine_ng.py [--ng HOST:PORT] stream CALLER_IP:PORT CALLEE_IP:PORT [--call-id ID]
      -> "ok CALL_ID CALLER_FACING_PORT CALLEE_FACING_PORT"
  rtpengine_ng.py [--ng HOST:PORT] delete CALL_ID
  rtpengine_ng.py [--ng HOST:PORT] serve
      reads relay_lab's line protocol on stdin, one answer line each on
      stdout, so a benchmark drives rtpengine exactly like our relay_lab:
        stream A B -> "ok ID CALLER_FACING CALLEE_FACING"   close ID -> "ok"
        quit [clean|keep] -> "ok bye" (clean deletes every call it made)
      It prints "ready rtpengine" once rtpengine answers a ping.
As a module: NgClient(("127.0.0.1", 22223)).stream(call_id, caller, callee).
"""
import argparse
import os
import socket
import sys


def bencode(value):
    """Encodes str, bytes, int, list and dict (keys sorted, as required)."""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, (list, tuple)):
        return b"l" + b"".join(bencode(v) for v in value) + b"e"
    if isinstance(value, dict):
        items = sorted((k.encode() if isinstance(k, str) else k, v) for k, v in value.items())
        return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"
    raise TypeError("cannot bencode %r" % type(value))


def bdecode(data, pos=0):
    """Returns (value, next position); strings come back as str when they
    are UTF-8, else bytes."""
    c = data[pos:pos + 1]
    if c == b"i":
        end = data.index(b"e", pos)
        return int(data[pos + 1:end]), end + 1
    if c == b"l":
        out, pos = [], pos + 1
        while data[pos:pos + 1] != b"e":
            item, pos = bdecode(data, pos)
            out.append(item)
        return out, pos + 1
    if c == b"d":
        out, pos = {}, pos + 1
        while data[pos:pos + 1] != b"e":
            key, pos = bdecode(data, pos)
            out[key], pos = bdecode(data, pos)
        return out, pos + 1
    if c.isdigit():
        colon = data.index(b":", pos)
        n = int(data[pos:colon])
        raw = data[colon + 1:colon + 1 + n]
        if len(raw) != n:
            raise ValueError("truncated string")
        try:
            return raw.decode(), colon + 1 + n
        except UnicodeDecodeError:
            return raw, colon + 1 + n
    raise ValueError("bad bencode at %d" % pos)


def split_endpoint(text):
    """"IP:PORT" or "[IPv6]:PORT" -> (ip, port)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
    else:
        host, _, port = text.rpartition(":")
    return host, int(port)


def make_sdp(ip, port, session_id):
    fam = "IP6" if ":" in ip else "IP4"
    return ("v=0\r\no=- %d 1 IN %s %s\r\ns=bench\r\nc=IN %s %s\r\nt=0 0\r\n"
            "m=audio %d RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
            % (session_id, fam, ip, fam, ip, port))


def sdp_media_port(sdp):
    for line in sdp.splitlines():
        if line.startswith("m=audio "):
            return int(line.split()[1])
    raise ValueError("no m=audio line in rtpengine's SDP")


class NgError(Exception):
    pass


class NgClient:
    def __init__(self, addr, timeout=1.0, retries=3):
        self.addr = addr
        self.retries = retries
        self.sock = socket.socket(socket.AF_INET6 if ":" in addr[0] else socket.AF_INET,
                                  socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)

    def request(self, msg):
        cookie = os.urandom(6).hex().encode()
        packet = cookie + b" " + bencode(msg)
        for _ in range(self.retries):
            self.sock.sendto(packet, self.addr)
            try:
                while True:
                    data = self.sock.recv(65536)
                    if data.startswith(cookie + b" "):
                        reply, _ = bdecode(data, len(cookie) + 1)
                        break
            except socket.timeout:
                continue
            if reply.get("result") not in ("ok", "pong"):
                raise NgError("%s: %s" % (msg.get("command"),
                                          reply.get("error-reason", reply)))
            return reply
        raise NgError("%s: no answer from %s:%d" % ((msg.get("command"),) + tuple(self.addr)))

    def ping(self):
        return self.request({"command": "ping"})

    def stream(self, call_id, caller, callee):
        """Offer from caller (IP, port), answer from callee: returns
        (caller_facing_port, callee_facing_port)."""
        offer = self.request({"command": "offer", "call-id": call_id, "from-tag": "caller",
                              "sdp": make_sdp(caller[0], caller[1], 1)})
        answer = self.request({"command": "answer", "call-id": call_id, "from-tag": "caller",
                               "to-tag": "callee", "sdp": make_sdp(callee[0], callee[1], 2)})
        return sdp_media_port(answer["sdp"]), sdp_media_port(offer["sdp"])

    def delete(self, call_id):
        return self.request({"command": "delete", "call-id": call_id})


def serve(client):
    client.ping()
    print("ready rtpengine", flush=True)
    calls, next_id = {}, 0
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == "stream" and len(words) == 3:
                call_id = "bench-%d-%d" % (os.getpid(), next_id)
                cp, ep = client.stream(call_id, split_endpoint(words[1]),
                                       split_endpoint(words[2]))
                calls[next_id] = call_id
                print("ok %d %d %d" % (next_id, cp, ep), flush=True)
                next_id += 1
            elif words[0] == "close" and len(words) == 2 and int(words[1]) in calls:
                client.delete(calls.pop(int(words[1])))
                print("ok", flush=True)
            elif words[0] == "quit":
                if words[1:2] != ["keep"]:
                    for call_id in calls.values():
                        client.delete(call_id)
                print("ok bye", flush=True)
                return 0
            else:
                print("error bad command", flush=True)
        except (NgError, ValueError, KeyError) as e:
            print("error %s" % e, flush=True)
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ng", default="127.0.0.1:22223", help="rtpengine's ng listener")
    ap.add_argument("command", choices=["ping", "stream", "delete", "serve"])
    ap.add_argument("args", nargs="*")
    ap.add_argument("--call-id", default="bench-%d" % os.getpid())
    opts = ap.parse_args()
    client = NgClient(split_endpoint(opts.ng))
    try:
        if opts.command == "ping":
            client.ping()
            print("ok pong")
        elif opts.command == "stream" and len(opts.args) == 2:
            cp, ep = client.stream(opts.call_id, split_endpoint(opts.args[0]),
                                   split_endpoint(opts.args[1]))
            print("ok %s %d %d" % (opts.call_id, cp, ep))
        elif opts.command == "delete" and len(opts.args) == 1:
            client.delete(opts.args[0])
            print("ok")
        elif opts.command == "serve":
            return serve(client)
        else:
            ap.error("wrong arguments for %s" % opts.command)
    except NgError as e:
        print("error %s" % e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
