#!/usr/bin/env python3
"""Sends raw bytes to a policy socket and reports what came back.

usage: rawclient.py ADDRESS [--wait SECONDS] [--half-close] < bytes
ADDRESS is unix:PATH or tcp:HOST:PORT.  Prints the bytes received as a
Python repr on the first line, then CLOSED if the server closed the
connection or OPEN if it was still open when the wait ended.
"""
import socket
import sys
import time


def connect(addr):
    if addr.startswith("unix:"):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(addr[5:])
    else:
        host, port = addr[4:].rsplit(":", 1)
        s = socket.create_connection((host.strip("[]"), int(port)))
    return s


def main():
    addr = sys.argv[1]
    wait = 2.0
    half_close = "--half-close" in sys.argv
    if "--wait" in sys.argv:
        wait = float(sys.argv[sys.argv.index("--wait") + 1])
    data = sys.stdin.buffer.read()
    s = connect(addr)
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    if half_close:
        s.shutdown(socket.SHUT_WR)
    s.settimeout(0.1)
    got = b""
    closed = False
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            chunk = s.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            closed = True
            break
        if not chunk:
            closed = True
            break
        got += chunk
    print(repr(got))
    print("CLOSED" if closed else "OPEN")


if __name__ == "__main__":
    main()
