#!/usr/bin/env python3
"""Many idle keep-alive clients, for tests/proxy_idlemem.sh,
tests/proxy_h2_idlemem.sh and tests/proxy_h2_tls_idlemem.sh.

    idleclients.py [--h2 [--tls]] PORT HOST N OUTFILE

--h2 speaks HTTP/2 with prior knowledge (h2c): the preface, SETTINGS (the
server's acknowledged) and a GET on stream 1, the second one on stream 3,
each read to its END_STREAM; headers go as HPACK literals never indexed.
With --tls as well, the same over TLS with "h2" chosen by ALPN (the
server's certificate is not checked).

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
import ssl
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


def hpack_literal(name, value):
    """A header field as an HPACK literal, never indexed, no Huffman
    (names and values here are shorter than 127 bytes)."""
    return b"\x10" + bytes([len(name)]) + name + bytes([len(value)]) + value


def frame(ftype, flags, sid, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


def recv_exactly(s, n):
    data = b""
    while len(data) < n:
        more = s.recv(n - len(data))
        if not more:
            raise OSError("closed")
        data += more
    return data


def ask_h2(s, host, sid, scheme=b"http"):
    """A GET on stream `sid`; True when its answer is a 200 ended by
    END_STREAM. The server's SETTINGS are acknowledged on the way."""
    if sid == 1:
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0))
    block = (hpack_literal(b":method", b"GET") + hpack_literal(b":scheme", scheme) +
             hpack_literal(b":authority", host) + hpack_literal(b":path", b"/?idle"))
    s.sendall(frame(1, 0x5, sid, block))   # END_STREAM | END_HEADERS
    status = False
    while True:
        head = recv_exactly(s, 9)
        length = int.from_bytes(head[:3], "big")
        ftype, flags, fsid = head[3], head[4], int.from_bytes(head[5:9], "big") & 0x7fffffff
        payload = recv_exactly(s, length)
        if ftype == 4 and not flags & 0x1:
            s.sendall(frame(4, 0x1, 0))
        elif ftype == 7:
            return False
        elif ftype == 1 and fsid == sid:
            # After any table size update (0x20-0x3e: a small size),
            # :status 200 is index 8 of the static table: 0x88.
            while payload and 0x20 <= payload[0] < 0x3f:
                payload = payload[1:]
            status = payload[:1] == b"\x88"
        if fsid == sid and ftype in (0, 1) and flags & 0x1:
            return status


def put(path, line):
    with open(path + ".tmp", "w") as f:
        f.write(line + "\n")
    # Renamed into place: the test never reads half a file.
    os.rename(path + ".tmp", path)


def main():
    h2 = sys.argv[1] == "--h2"
    if h2:
        del sys.argv[1]
    ctx = None
    if h2 and sys.argv[1] == "--tls":
        del sys.argv[1]
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2"])
    scheme = b"https" if ctx else b"http"
    port, host, n, out = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3]), sys.argv[4]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    conns, ok = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(20)
        s.connect(("127.0.0.1", port))
        if ctx:
            s = ctx.wrap_socket(s, server_hostname=host.decode())
            if s.selected_alpn_protocol() != "h2":
                raise SystemExit("ALPN chose %r, not h2" % s.selected_alpn_protocol())
        conns.append(s)
        ok += ask_h2(s, host, 1, scheme) if h2 else ask(s, host)
    put(out, "ready %d" % ok)
    while not os.path.exists(out + ".again"):
        time.sleep(0.1)
    ok = 0
    for s in conns:
        try:
            ok += ask_h2(s, host, 3, scheme) if h2 else ask(s, host)
        except OSError:
            pass
    put(out + ".done", "again %d" % ok)
    while True:
        time.sleep(3600)


main()
