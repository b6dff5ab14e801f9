"""A syslog or journal socket of a test's own: binds a unix datagram
socket at PATH and appends what arrives to OUT, one line per datagram
(spec/e2e/test_logs.sh).  --journal parses systemd's native protocol
(KEY=value lines, or KEY, a 64-bit little-endian length and the value)
and writes each datagram as a JSON object of its fields.  Stops by itself
after --seconds, or on SIGTERM."""
import argparse
import json
import os
import signal
import socket
import struct
import sys
import time


def journal_fields(d):
    fields, at = {}, 0
    while at < len(d):
        nl = d.index(b"\n", at)
        line = d[at:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            at = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", d[nl + 1:nl + 9])
            v = d[nl + 9:nl + 9 + n]
            if d[nl + 9 + n:nl + 10 + n] != b"\n":
                raise ValueError("field %r: no newline after its value" % k)
            at = nl + 10 + n
        fields[k.decode()] = v.decode("utf-8", "backslashreplace")
    return fields


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("out")
    ap.add_argument("--journal", action="store_true")
    ap.add_argument("--seconds", type=float, default=120)
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        os.unlink(a.path)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(a.path)
    os.chmod(a.path, 0o666)
    end = time.monotonic() + a.seconds
    with open(a.out, "a", buffering=1) as out:
        while time.monotonic() < end:
            s.settimeout(max(0.1, end - time.monotonic()))
            try:
                d = s.recv(1 << 17)
            except socket.timeout:
                continue
            if a.journal:
                out.write(json.dumps(journal_fields(d)) + "\n")
            else:
                out.write(d.decode("utf-8", "backslashreplace").replace("\n", "\\n") + "\n")


main()
