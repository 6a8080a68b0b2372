#!/usr/bin/env python3
"""Many idle keep-alive clients, for tests/proxy_idlemem.sh.

    idleclients.py PORT HOST N OUTFILE

Opens N connections to 127.0.0.1:PORT, sends one GET with Host HOST on
each, reads each answer's head and body (Content-Length), then writes
"ready OK" to OUTFILE (OK: how many got a 200) and holds every connection
open, idle. Once the file OUTFILE.again exists it sends a second request
on every connection, the same way, and writes "again OK" to
OUTFILE.done. Then it holds them until it is killed.
"""
import os
import signal
import socket
import sys
import time


def ask(s, host):
    s.sendall(b"GET /?idle HTTP/1.1\r\nHost: " + host + b"\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        more = s.recv(4096)
        if not more:
            return False
        data += more
    head, body = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        more = s.recv(4096)
        if not more:
            return False
        body += more
    return head.split(b" ")[1] == b"200"


def put(path, line):
    with open(path + ".tmp", "w") as f:
        f.write(line + "\n")
    # Renamed into place: the test never reads half a file.
    os.rename(path + ".tmp", path)


def main():
    port, host, n, out = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3]), sys.argv[4]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    conns, ok = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(("127.0.0.1", port))
        conns.append(s)
        ok += ask(s, host)
    put(out, "ready %d" % ok)
    while not os.path.exists(out + ".again"):
        time.sleep(0.1)
    ok = 0
    for s in conns:
        try:
            ok += ask(s, host)
        except OSError:
            pass
    put(out + ".done", "again %d" % ok)
    while True:
        time.sleep(3600)


main()
