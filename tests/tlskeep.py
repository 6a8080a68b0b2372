#!/usr/bin/env python3
"""One HTTPS keep-alive connection across a certificate change.

usage: tlskeep.py PORT HOST GO-FILE TIMEOUT-S

Opens a TLS connection to 127.0.0.1:PORT with SNI HOST, sends a GET /echo
and prints "1 STATUS FINGERPRINT" (SHA-256 of the server's certificate).
Then waits (at most TIMEOUT-S) for GO-FILE to exist, sends a second GET on
the same connection and prints "2 STATUS FINGERPRINT". Exits 0 when both
requests were answered, 1 otherwise (with the reason on stdout).
"""
import hashlib
import os
import socket
import ssl
import sys
import time


def request(tls, host):
    tls.sendall(b"GET /echo HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n")
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = tls.recv(65536)
        if not chunk:
            raise RuntimeError("closed before the response head")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = tls.recv(65536)
        if not chunk:
            raise RuntimeError("closed inside the body")
        body += chunk
    return head.split(b" ")[1].decode()


def main():
    port, host, go, timeout = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    tls = ctx.wrap_socket(raw, server_hostname=host)
    fp = hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
    try:
        print("1", request(tls, host), fp, flush=True)
        deadline = time.monotonic() + timeout
        while not os.path.exists(go):
            if time.monotonic() > deadline:
                print("no go file", flush=True)
                return 1
            time.sleep(0.05)
        fp2 = hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()
        print("2", request(tls, host), fp2, flush=True)
    except (OSError, RuntimeError) as e:
        print("error", e, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
