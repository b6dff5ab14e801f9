#!/usr/bin/env python3
"""Plays an MTA through one message whose end-of-message check is slow,
and reports every packet the milter sends after EOM, with its time.

usage: progress_client.py HOST PORT BODY [TIMEOUT]
Negotiates as Postfix does (version 6, every action, every step), sends
CONNECT, HELO, MAIL, RCPT, DATA, one header, EOH, BODY and EOM, then prints
one line per packet received after EOM: "<seconds since EOM> <command>",
until a packet that is not SMFIR_PROGRESS ('p'), the connection closes
("closed") or TIMEOUT seconds (default 30) pass ("timeout").  Replies to
steps before EOM are read and must be continue ('c'), else it exits 2.
"""
import socket
import struct
import sys
import time


def packet(cmd, data=b""):
    return struct.pack(">I", len(data) + 1) + cmd + data


def read_packet(s):
    head = b""
    while len(head) < 4:
        chunk = s.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    (n,) = struct.unpack(">I", head)
    body = b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        if not chunk:
            return None
        body += chunk
    return body[:1], body[1:]


def main():
    host, port, body = sys.argv[1], int(sys.argv[2]), sys.argv[3].encode()
    timeout = float(sys.argv[4]) if len(sys.argv) > 4 else 30.0
    s = socket.create_connection((host, port))
    s.sendall(packet(b"O", struct.pack(">III", 6, 0x1FF, 0x1FFFFF)))
    cmd, data = read_packet(s)
    if cmd != b"O":
        print("negotiation answered %r" % cmd)
        sys.exit(2)
    (_, _, protocol) = struct.unpack(">III", data[:12])
    steps = [
        (b"C", b"client.example.org\0" + b"4" + struct.pack(">H", 40000) + b"192.0.2.7\0", 0x1000),
        (b"H", b"client.example.org\0", 0x2000),
        (b"M", b"<alice@example.org>\0", 0x4000),
        (b"R", b"<bob@example.net>\0", 0x8000),
        (b"T", b"", 0x10000),
        (b"L", b"Subject\0slow\0", 0x80),
        (b"N", b"", 0x40000),
        (b"B", body, 0x80000),
    ]
    for cmd, data, no_reply in steps:
        s.sendall(packet(cmd, data))
        if protocol & no_reply:
            continue
        got = read_packet(s)
        if got is None or got[0] != b"c":
            print("step %r answered %r" % (cmd, got))
            sys.exit(2)
    s.sendall(packet(b"E"))
    t0 = time.monotonic()
    s.settimeout(timeout)
    while True:
        try:
            got = read_packet(s)
        except socket.timeout:
            print("timeout")
            return
        if got is None:
            print("closed")
            return
        print("%.2f %s" % (time.monotonic() - t0, got[0].decode()))
        sys.stdout.flush()
        if got[0] not in (b"p", b"h", b"i", b"m", b"q"):
            return


if __name__ == "__main__":
    main()
