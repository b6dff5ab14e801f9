#!/usr/bin/env python3
"""The driver of bench/redis_script_cost.sh: against the redis-server on
127.0.0.1:PORT (empty, private), loads SCRIPT, makes OPEN transactions
(reserve calls, never settled, as in make bench's load), then makes N more
calls of MODE (r: reserve, a new transaction each; a: limit.add), pipelined
64 at a time over 1,000 subjects (with BATCH > 1, as outpostd sends them:
BATCH operations per call of the script's batch operation, 64 operations
pipelined), and prints what redis-server spent on
those N: CPU (/proc/PID/schedstat) or, with --callgrind, only switching
callgrind's instrumentation on and off around them (the shell reads the
count).  Usage: redis_script_cost.py PORT PID SCRIPT N OPEN MODE BATCH [--callgrind]
Prints per operation (a reserve or an add), not per call."""
import socket
import subprocess
import sys

port, pid, script_path, n, n_open, mode, batch = (int(sys.argv[1]), int(sys.argv[2]),
                                                  sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
                                                  sys.argv[6], int(sys.argv[7]))
callgrind = '--callgrind' in sys.argv[8:]
sock = socket.create_connection(('127.0.0.1', port))
rd = sock.makefile('rb')


def enc(*args):
    out = [b'*%d\r\n' % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b'$%d\r\n%s\r\n' % (len(a), a))
    return b''.join(out)


def reply():
    line = rd.readline()
    kind, body = line[:1], line[1:-2]
    if kind == b'-':
        raise SystemExit('redis: %s' % body.decode())
    if kind in b'+:':
        return body
    if kind == b'$':
        k = int(body)
        return None if k < 0 else rd.read(k + 2)[:-2]
    if kind == b'*':
        return [reply() for _ in range(max(int(body), 0))]
    raise SystemExit('redis: unexpected %r' % line)


def call(*args):
    sock.sendall(enc(*args))
    return reply()


sha = call('SCRIPT', 'LOAD', open(script_path).read()).decode()
P = 'outpost:'


def count(i):
    # the arguments counters_redis.c's start_count sends for postout's
    # limit (24 h in 15-minute buckets), the server's clock
    u = 'user%d@example.org' % (i % 1000)
    inst = 'inst%d' % i
    return enc('EVALSHA', sha, 5, P + 'w:postout_rcpt:' + u, P + 'o:postout_rcpt:' + u,
               P + 't:postout_rcpt', P + 'r:' + inst, P + 'rd', 'count', 0, P, mode, 900, 96,
               10000000, 10000000, -1, 1, u, inst, 'postout_rcpt\t' + u, 1800, 5400)


def batched(ops):
    # the script's batch operation, as counters_redis_batch.c builds it
    args = ['EVALSHA', sha, 0, 'batch', 0, P]
    for i in ops:
        u = 'user%d@example.org' % (i % 1000)
        args += [mode, 'postout_rcpt', u, 900, 96, 10000000, 10000000, -1, 1]
        if mode == 'r':
            args += ['inst%d' % i, 1800, 5400]
    return enc(*args)


def run(first, k):
    for b in range(first, first + k, 64):
        ops = range(b, min(b + 64, first + k))
        if batch > 1:
            calls = [batched(ops[j:j + batch]) for j in range(0, len(ops), batch)]
        else:
            calls = [count(i) for i in ops]
        sock.sendall(b''.join(calls))
        for _ in calls:
            reply()


def schedstat():
    with open('/proc/%d/schedstat' % pid) as f:
        return int(f.read().split()[0])


run(10 ** 8, n_open)
if callgrind:
    subprocess.run(['callgrind_control', '-i', 'on', str(pid)], check=True, capture_output=True)
cpu0 = schedstat()
run(0, n)
cpu1 = schedstat()
if callgrind:
    subprocess.run(['callgrind_control', '-i', 'off', str(pid)], check=True, capture_output=True)
print('cpu_us_per_op=%.2f keys=%s' % ((cpu1 - cpu0) / 1000 / n, call('DBSIZE').decode()))
