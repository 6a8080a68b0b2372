#!/usr/bin/env python3
"""A client that opens with a PROXY protocol header, for
tests/proxy_proxyproto.sh.

    ppclient.py PORT HEADER [--pieces N] [--tls CAFILE] [--request TEXT]
                [--close-after-header] [--timeout S]

HEADER is one of
    v1:SRC:SPORT:DST:DPORT   "PROXY TCP4|TCP6 ..." (the family from SRC)
    v1unknown                "PROXY UNKNOWN\\r\\n"
    v2:SRC:SPORT:DST:DPORT   binary v2, PROXY over TCP, with one NOOP TLV
    v2local                  binary v2, LOCAL
    hex:BYTES                any bytes (hex), say a malformed header
    none                     nothing before the request
(IPv6 addresses are written with '-' for ':' so the fields split.)

Connects to 127.0.0.1:PORT, sends the header (in N pieces 50 ms apart with
--pieces), then, unless --close-after-header, an HTTP request (default
GET /echo, Host: app.test, Connection: close), over TLS with --tls (the
handshake after the header, certificate checked against app.test). Prints
what came back until the server closed, then a last line "bytes=N closed"
or "bytes=N reset", or "bytes=N timeout" after --timeout seconds (10),
followed by " ms=M": the time from the connect to that end.
"""
import argparse
import ipaddress
import socket
import ssl
import struct
import sys
import time

V2SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def header(spec):
    if spec == "none":
        return b""
    if spec == "v1unknown":
        return b"PROXY UNKNOWN\r\n"
    if spec == "v2local":
        return V2SIG + b"\x20\x00\x00\x00"
    if spec.startswith("hex:"):
        return bytes.fromhex(spec[4:])
    kind, src, sport, dst, dport = spec.split(":")
    src, dst = src.replace("-", ":"), dst.replace("-", ":")
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if kind == "v1":
        fam = "TCP4" if s.version == 4 else "TCP6"
        return ("PROXY %s %s %s %s %s\r\n" % (fam, src, dst, sport, dport)).encode()
    fam = 0x11 if s.version == 4 else 0x21
    body = s.packed + d.packed + struct.pack("!HH", int(sport), int(dport))
    body += b"\x04\x00\x03pad"   # a NOOP TLV, which the router skips
    return V2SIG + bytes([0x21, fam]) + struct.pack("!H", len(body)) + body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("header")
    ap.add_argument("--pieces", type=int, default=1)
    ap.add_argument("--tls")
    ap.add_argument("--request",
                    default="GET /echo HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n")
    ap.add_argument("--close-after-header", action="store_true")
    ap.add_argument("--timeout", type=float, default=10)
    a = ap.parse_args()

    hdr = header(a.header)
    sock = socket.create_connection(("127.0.0.1", a.port), timeout=a.timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    start = time.monotonic()
    step = max(1, -(-len(hdr) // a.pieces)) if hdr else 1
    for i in range(0, len(hdr), step):
        sock.sendall(hdr[i:i + step])
        if i + step < len(hdr):
            time.sleep(0.05)
    if a.close_after_header:
        sock.close()
        print("bytes=0 closed ms=0")
        return 0
    got = b""
    end = "closed"
    try:
        if a.tls:
            ctx = ssl.create_default_context(cafile=a.tls)
            sock = ctx.wrap_socket(sock, server_hostname="app.test")
        sock.sendall(a.request.encode().replace(b"\\r\\n", b"\r\n"))
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except socket.timeout:
        end = "timeout"
    except (ConnectionResetError, BrokenPipeError, ssl.SSLError, ssl.SSLEOFError) as e:
        end = "reset"
        sys.stderr.write("%s\n" % e)
    sys.stdout.write(got.decode("latin-1"))
    ms = int((time.monotonic() - start) * 1000)
    print("\nbytes=%d %s ms=%d" % (len(got), end, ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
