#!/usr/bin/env python3
"""A stand-in for systemd's notify socket: binds a unix datagram socket at
argv[1] and writes every message it receives to argv[2], one line each:
'<monotonic seconds> <message with newlines as |>'.  Runs until killed."""
import os
import socket
import sys
import time

path, out = sys.argv[1], sys.argv[2]
try:
    os.unlink(path)
except FileNotFoundError:
    pass
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
os.chmod(path, 0o666)
with open(out, "a", buffering=1) as f:
    while True:
        msg = s.recv(4096).decode(errors="replace")
        f.write("%.6f %s\n" % (time.monotonic(), msg.replace("\n", "|")))
