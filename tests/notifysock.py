#!/usr/bin/env python3
"""systemd's side of sd_notify, for tests: a unix datagram socket.

usage: notifysock.py ADDR OUT [HOST:PORT VHOST]

Binds ADDR (a path, or @name for an abstract name), writes "bound" to OUT,
then one line per datagram received:

    msg MONO_USEC KEY=VALUE|KEY=VALUE...

MONO_USEC is CLOCK_MONOTONIC when it arrived, to compare with the
MONOTONIC_USEC a RELOADING=1 carries. With HOST:PORT and VHOST, the first
datagram holding READY=1 is checked at once, before the next is read: a
GET / with Host VHOST to HOST:PORT, written as "probe STATUS" (or
"probe refused ..." when nothing listens), so the test can tell a READY=1
sent before the listeners opened or before a table was loaded.
"""
import socket
import sys
import time


def probe(addr, vhost):
    host, port = addr.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(("GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % vhost).encode())
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            line = data.split(b"\r\n", 1)[0].decode(errors="replace")
            parts = line.split(" ")
            return parts[1] if len(parts) > 1 else "no-status:" + line
    except OSError as e:
        return "refused %s" % e


def main():
    addr, out = sys.argv[1], sys.argv[2]
    target = sys.argv[3] if len(sys.argv) > 4 else None
    vhost = sys.argv[4] if len(sys.argv) > 4 else None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + addr[1:] if addr.startswith("@") else addr)
    probed = False
    with open(out, "a", buffering=1) as f:
        f.write("bound\n")
        while True:
            data = s.recv(65536)
            now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            text = data.decode(errors="replace")
            f.write("msg %d %s\n" % (now, "|".join(text.split("\n"))))
            if target and not probed and "READY=1" in text.split("\n"):
                probed = True
                f.write("probe %s\n" % probe(target, vhost))


if __name__ == "__main__":
    main()
