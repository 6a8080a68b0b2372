#!/usr/bin/env python3
"""TLS clients for tests/proxy_tls_io.sh, each printing one line to check.

    tlsio.py PORT close HOST TARGET
        one request with Connection: close; reads the answer to the end;
        prints "status=S body=N end=close_notify|eof|timeout"
    tlsio.py PORT idle HOST WAIT
        one keep-alive request, then reads nothing more but the end, for
        up to WAIT seconds; prints "status=S end=... after=SECONDS"
    tlsio.py PORT unwrap HOST
        one keep-alive request, then our close_notify (SSL unwrap), which
        waits for the router's; prints "status=S unwrap=ok|ERROR"
    tlsio.py PORT pipeline HOST N
        N GET /echo?n=I requests in one write; prints "answers=N order=ok|bad"
    tlsio.py PORT ws HOST BYTES
        GET /ws with Upgrade: websocket, then BYTES bytes both ways through
        the tunnel; prints "status=S echoed=N same=yes|no end=..."
    tlsio.py PORT stall BYTES WAIT
        a raw TCP client that sends the first BYTES bytes of a ClientHello
        (0: nothing) and waits up to WAIT s for the router to close;
        prints "closed after=SECONDS" or "open"
    tlsio.py PORT slow HOST SIZE SECONDS
        GET /big?bytes=SIZE, reading 4 KB every 50 ms for SECONDS with a
        small receive buffer; prints "read=N"

"end" says how the router ended the connection: close_notify (a clean TLS
close), eof (TCP closed without it: a cut stream) or timeout (still open).
"""
import socket
import ssl
import sys
import time


def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE
    return c


def connect(port, host, rcvbuf=0):
    raw = socket.socket()
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(20)
    raw.connect(("127.0.0.1", port))
    # suppress_ragged_eofs=False: a TCP close without close_notify raises
    # SSLEOFError instead of looking like a clean end.
    return ctx().wrap_socket(raw, server_hostname=host, suppress_ragged_eofs=False)


def read_head(s, buf):
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            raise SystemExit("closed before a whole head")
        buf += d
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = None
    for l in lines[1:]:
        k, _, v = l.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v.strip())
    return status, length, rest


def read_answer(s, buf=b""):
    status, length, rest = read_head(s, buf)
    while length is not None and len(rest) < length:
        d = s.recv(65536)
        if not d:
            raise SystemExit("closed inside a body")
        rest += d
    return status, rest[:length], rest[length:]


def read_end(s, wait):
    """How the connection ends, reading (and counting) whatever comes."""
    s.settimeout(wait)
    n = 0
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return "close_notify", n
            n += len(d)
    except ssl.SSLEOFError:
        return "eof", n
    except (ConnectionResetError, BrokenPipeError):
        return "eof", n
    except socket.timeout:
        return "timeout", n


def main():
    port, what = int(sys.argv[1]), sys.argv[2]
    args = sys.argv[3:]
    if what == "close":
        host, target = args
        s = connect(port, host)
        s.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                  % (target.encode(), host.encode()))
        status, length, rest = read_head(s, b"")
        end, n = read_end(s, 10)
        print("status=%d body=%d end=%s" % (status, len(rest) + n, end))
    elif what == "idle":
        host, wait = args[0], float(args[1])
        s = connect(port, host)
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: %s\r\n\r\n" % host.encode())
        status, body, _ = read_answer(s)
        t = time.time()
        end, _ = read_end(s, wait)
        print("status=%d end=%s after=%.1f" % (status, end, time.time() - t))
    elif what == "unwrap":
        s = connect(port, args[0])
        s.sendall(b"GET /echo HTTP/1.1\r\nHost: %s\r\n\r\n" % args[0].encode())
        status, body, _ = read_answer(s)
        s.settimeout(10)
        try:
            s.unwrap()
            res = "ok"
        except (OSError, ssl.SSLError) as e:
            res = type(e).__name__
        print("status=%d unwrap=%s" % (status, res))
    elif what == "pipeline":
        host, n = args[0], int(args[1])
        s = connect(port, host)
        s.sendall(b"".join(b"GET /echo?n=%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (i, host.encode())
                           for i in range(n)))
        rest, ok = b"", True
        for i in range(n):
            status, body, rest = read_answer(s, rest)
            if status != 200 or b"target=/echo?n=%d\n" % i not in body:
                ok = False
        print("answers=%d order=%s" % (n, "ok" if ok else "bad"))
    elif what == "ws":
        host, size = args[0], int(args[1])
        s = connect(port, host)
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                  % host.encode())
        status, _, rest = read_head(s, b"")
        data = bytes((i * 7) % 251 for i in range(size))
        s.sendall(data)
        got = rest
        s.settimeout(20)
        while len(got) < size:
            d = s.recv(65536)
            if not d:
                break
            got += d
        print("status=%d echoed=%d same=%s" % (status, len(got), "yes" if got == data else "no"))
    elif what == "stall":
        nbytes, wait = int(args[0]), float(args[1])
        # The first bytes of a real ClientHello, taken from a memory BIO.
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx().wrap_bio(inc, out, server_hostname="stall.test")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = out.read()
        raw = socket.create_connection(("127.0.0.1", port))
        if nbytes:
            raw.sendall(hello[:nbytes])
        raw.settimeout(wait)
        t = time.time()
        try:
            while raw.recv(65536):
                pass
            print("closed after=%.2f" % (time.time() - t))
        except ConnectionResetError:
            print("closed after=%.2f" % (time.time() - t))
        except socket.timeout:
            print("open")
    elif what == "slow":
        host, size, secs = args[0], int(args[1]), float(args[2])
        s = connect(port, host, rcvbuf=4096)
        s.sendall(b"GET /big?bytes=%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (size, host.encode()))
        n, end = 0, time.time() + secs
        while time.time() < end:
            d = s.recv(4096)
            if not d:
                break
            n += len(d)
            time.sleep(0.05)
        print("read=%d" % n, flush=True)
    else:
        sys.exit("unknown mode " + what)


if __name__ == "__main__":
    main()
