#!/usr/bin/env python3
"""Holds client connections open, from a chosen loopback source address,
for tests/proxy_perip.sh.

    holdconns.py SRC PORT N MODE OUTFILE

Opens N connections from SRC (bound before connecting, so 127.0.0.2 and
127.0.0.3 are other clients than 127.0.0.1) to 127.0.0.1:PORT. MODE:
  get   send "GET / HTTP/1.1" with Host a.test on each (keep-alive) and
        read its answer's head
  idle  send nothing
Then writes one line per connection to OUTFILE ("200", "429", "open" for
an idle one, "closed" when the peer closed first), and a last line
"ready", and holds every connection open until it is killed.
"""
import os
import signal
import socket
import sys
import time


def read_head(s):
    data = b""
    while b"\r\n\r\n" not in data:
        more = s.recv(4096)
        if not more:
            return "closed"
        data += more
    return data.split(b"\r\n", 1)[0].split(b" ")[1].decode()


def main():
    src, port, n, mode, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    conns, lines = [], []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind((src, 0))
        s.settimeout(20)
        s.connect(("127.0.0.1", port))
        conns.append(s)
        if mode == "get":
            s.sendall(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
            lines.append(read_head(s))
        else:
            lines.append("open")
    with open(out + ".tmp", "w") as f:
        f.write("\n".join(lines + ["ready"]) + "\n")
    # Renamed into place: the test never reads half a file.
    os.rename(out + ".tmp", out)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        time.sleep(3600)


main()
