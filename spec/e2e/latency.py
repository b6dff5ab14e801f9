#!/usr/bin/env python3
"""Times policy requests on one persistent connection, so the figure is the
server's answer time, not a client process's start.

usage: latency.py unix:PATH COUNT INTERVAL_S
Prints "worst_ms=N answered=N" after COUNT requests, INTERVAL_S apart;
each answer is awaited at most 5 s.
"""
import socket
import sys
import time

REQUEST = (b"request=smtpd_access_policy\nprotocol_state=RCPT\nsender=x@test\n"
           b"recipient=r@example.net\nclient_address=127.0.0.1\n\n")


def main():
    path, count, interval = sys.argv[1][5:], int(sys.argv[2]), float(sys.argv[3])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    worst, answered = 0.0, 0
    for _ in range(count):
        t0 = time.monotonic()
        s.sendall(REQUEST)
        buf = b""
        try:
            while not buf.endswith(b"\n\n"):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        except socket.timeout:
            pass
        if buf.startswith(b"action="):
            answered += 1
        worst = max(worst, (time.monotonic() - t0) * 1000)
        time.sleep(interval)
    print("worst_ms=%d answered=%d" % (worst, answered))


main()
