#!/usr/bin/env python3
"""A TLS client that asks for a large answer, reads none of it, then sends
close_notify (a clean TLS half-close), for tests/zkrouterd_tls.sh.

    tlsclose.py PORT SIZE PAUSE TIMEOUT

Connects to 127.0.0.1:PORT with a small receive buffer, sends
GET /big?bytes=SIZE (Host: app.test), waits PAUSE seconds (the router's
output backs up), sends close_notify, then reads the raw bytes that keep
coming until the router closes, or TIMEOUT seconds pass without a byte.
Prints "bytes=N closed" or "bytes=N stalled".
"""
import socket
import ssl
import sys
import time


def main():
    port, size = int(sys.argv[1]), int(sys.argv[2])
    pause, timeout = float(sys.argv[3]), float(sys.argv[4])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect(("127.0.0.1", port))
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="app.test")

    def send_pending():
        data = outgoing.read()
        if data:
            raw.sendall(data)

    while True:
        try:
            tls.do_handshake()
            send_pending()
            break
        except ssl.SSLWantReadError:
            send_pending()
            data = raw.recv(65536)
            if not data:
                sys.exit("closed during the handshake")
            incoming.write(data)
    tls.write(b"GET /big?bytes=%d HTTP/1.1\r\nHost: app.test\r\n\r\n" % size)
    send_pending()
    time.sleep(pause)
    try:
        tls.unwrap()
    except ssl.SSLWantReadError:
        pass
    send_pending()
    raw.settimeout(timeout)
    total, how = 0, "closed"
    while True:
        try:
            data = raw.recv(65536)
        except socket.timeout:
            how = "stalled"
            break
        except ConnectionResetError:
            how = "reset"
            break
        if not data:
            break
        total += len(data)
    print("bytes=%d %s" % (total, how), flush=True)


if __name__ == "__main__":
    main()
