#!/usr/bin/env python3
"""Write a pcap of N TCP SYNs, each opening a different conversation.

The worst case for per-conversation memory: every packet is a new
conversation. Ethernet / IPv4 / TCP (MSS option), clients 10.x.y.z with
ports 1024-65535, server 192.0.2.1:80, one SYN per microsecond.

Usage: bench/gen_syns.py N OUT.pcap
"""
import struct
import sys


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: gen_syns.py N OUT.pcap")
    n = int(sys.argv[1])
    eth = bytes.fromhex("020000000002" "020000000001" "0800")
    server = bytes([192, 0, 2, 1])
    with open(sys.argv[2], "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        out = []
        for i in range(n):
            port = 1024 + i % 64512
            host = 1 + i // 64512
            src = bytes([10, (host >> 16) & 255, (host >> 8) & 255, host & 255])
            tcp = struct.pack("!HHIIBBHHH", port, 80, (i * 2654435761) & 0xFFFFFFFF, 0,
                              6 << 4, 0x02, 64240, 0, 0) + b"\x02\x04\x05\xb4"
            pseudo = src + server + struct.pack("!BBH", 0, 6, len(tcp))
            c = csum(pseudo + tcp)
            tcp = tcp[:16] + struct.pack("!H", c) + tcp[18:]
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), i & 0xFFFF, 0x4000, 64, 6, 0,
                             src, server)
            ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
            frame = eth + ip + tcp
            ts = 1_700_000_000_000_000 + i
            out.append(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame), len(frame)))
            out.append(frame)
            if len(out) >= 20000:
                f.write(b"".join(out))
                out = []
        f.write(b"".join(out))


if __name__ == "__main__":
    main()
