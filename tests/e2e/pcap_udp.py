#!/usr/bin/env python3
"""pcap_udp.py: the E2E test's media files, classic pcap only.

  pcap_udp.py count FILE        prints "PACKETS BYTES" for the IPv4 UDP
                                datagrams in FILE, BYTES being UDP payload
                                bytes, what the relay counts (PROTOCOL.md D4)
  pcap_udp.py head IN OUT N     writes the first N packets of IN to OUT
"""
import struct
import sys


def read_pcap(path):
    """(endian, global header, [(record header, frame)])"""
    with open(path, "rb") as f:
        data = f.read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        sys.exit("%s: not a classic pcap file" % path)
    records, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "I", data[off + 8:off + 12])[0]
        records.append((data[off:off + 16], data[off + 16:off + 16 + incl]))
        off += 16 + incl
    return endian, data[:24], records


def count(path):
    endian, header, records = read_pcap(path)
    linktype = struct.unpack(endian + "I", header[20:24])[0]
    l2 = {1: 14, 113: 16}.get(linktype)
    if l2 is None:
        sys.exit("%s: link type %d not handled" % (path, linktype))
    packets = payload = 0
    for _, frame in records:
        ip = frame[l2:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        udp = ip[(ip[0] & 15) * 4:]
        packets += 1
        payload += struct.unpack("!H", udp[4:6])[0] - 8
    print(packets, payload)


def head(src, dst, n):
    _, header, records = read_pcap(src)
    with open(dst, "wb") as f:
        f.write(header)
        for rec, frame in records[:int(n)]:
            f.write(rec + frame)


def main(argv):
    if len(argv) == 3 and argv[1] == "count":
        count(argv[2])
    elif len(argv) == 5 and argv[1] == "head":
        head(argv[2], argv[3], argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
