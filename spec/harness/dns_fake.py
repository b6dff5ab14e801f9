#!/usr/bin/env python3
"""A DNS server for the faults unbound cannot be made to send on demand
(spec/harness/svc_dns.sh): it reads every query on UDP and never answers,
except for names under formerr.test, which get rcode FORMERR.  TCP
connections are accepted and left silent.  Bound on loopback only."""
import selectors
import socket
import sys

port = int(sys.argv[1])
sel = selectors.DefaultSelector()
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", port))
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("127.0.0.1", port))
tcp.listen(64)
sel.register(udp, selectors.EVENT_READ)
sel.register(tcp, selectors.EVENT_READ)
held = []


def qname(msg):
    labels, i = [], 12
    while i < len(msg) and msg[i] != 0:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace").lower())
        i += 1 + n
    return ".".join(labels)


while True:
    for key, _ in sel.select():
        if key.fileobj is tcp:
            conn, _ = tcp.accept()
            held.append(conn)
            del held[:-256]
            continue
        msg, peer = udp.recvfrom(4096)
        if len(msg) < 12:
            continue
        if qname(msg).endswith("formerr.test"):
            # same id and question, QR set, rcode 1
            flags = bytes([msg[2] | 0x80, (msg[3] & 0x70) | 0x01])
            udp.sendto(msg[:2] + flags + msg[4:], peer)
