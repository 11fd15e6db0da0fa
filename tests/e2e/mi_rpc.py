#!/usr/bin/env python3
"""mi_rpc.py: one JSON-RPC 2.0 request to a SIP proxy's datagram management
socket (Kamailio jsonrpcs dgram_socket, OpenSIPS mi_datagram), the reply
printed on stdout.

  mi_rpc.py SOCKET METHOD [PARAMS_JSON]

PARAMS_JSON (a JSON array or object) becomes "params". The request goes
from a socket of our own in SOCKET's directory (the proxy answers to the
sender's address), removed afterwards. Exit 1 with the reason on stderr
when no reply comes within 3 s."""
import json
import os
import socket
import sys


def main(argv):
    if len(argv) not in (3, 4):
        sys.exit(__doc__)
    server, method = argv[1], argv[2]
    req = {"jsonrpc": "2.0", "method": method, "id": 1}
    if len(argv) == 4:
        req["params"] = json.loads(argv[3])
    me = os.path.join(os.path.dirname(os.path.abspath(server)), "mi-rpc.%d.sock" % os.getpid())
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(me)
    s.settimeout(3)
    try:
        s.sendto(json.dumps(req).encode(), server)
        reply = s.recv(65536)
    except OSError as e:
        sys.exit("%s: %s" % (method, e))
    finally:
        s.close()
        os.unlink(me)
    print(reply.decode(errors="replace"))


if __name__ == "__main__":
    main(sys.argv)
