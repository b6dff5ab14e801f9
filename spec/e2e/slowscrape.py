#!/usr/bin/env python3
"""Slow scrapers for the metrics endpoint (spec/e2e/test_metrics.sh).

usage: slowscrape.py HOST PORT MODE SECONDS
MODE trickle: sends "GET /metrics ..." one byte a second, never finishing
in SECONDS; read: sends the request at once, then reads one byte a second
with a small receive buffer.  Prints how long the server kept the
connection open ("closed after N.N s") or "open" if it still was after
SECONDS.  Bounded: it stops after SECONDS whatever happens.
"""
import socket
import sys
import time

host, port, mode, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
s.connect((host, port))
start = time.monotonic()
req = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"
if mode == "read":
    s.sendall(req)
sent = 0
closed = None
s.settimeout(1.0)
while time.monotonic() - start < secs:
    try:
        if mode == "trickle" and sent < len(req) - 1:
            s.send(req[sent:sent + 1])
            sent += 1
        b = s.recv(1)
        if b == b"":
            closed = time.monotonic() - start
            break
        time.sleep(1.0)
    except socket.timeout:
        continue
    except (ConnectionResetError, BrokenPipeError):
        closed = time.monotonic() - start
        break
print("closed after %.1f s" % closed if closed is not None else "open")
