#!/usr/bin/env python3
"""A backend whose new connections take about a second to complete, for
tests/proxy_http.sh.

    slowaccept.py PORTFILE GOFILE

Listens on 127.0.0.1 with a backlog of one and fills it with a connection
of its own, so the kernel drops a client's SYN; the client retries it
about one second later. Once GOFILE exists it starts accepting (the retry
then succeeds). Each request is answered "body=N" (the bytes of body it
read, Content-Length framing) and the connection closed. Each request
line and body is printed to stdout.
"""
import os
import socket
import sys
import threading
import time


def serve(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        more = conn.recv(4096)
        if not more:
            return
        data += more
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        more = conn.recv(4096)
        if not more:
            break
        body += more
    print(head.split(b"\r\n")[0].decode(), "body", body.decode("ascii", "replace"), flush=True)
    answer = b"body=%d\n" % len(body)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                 % (len(answer), answer))
    conn.close()


def main():
    portfile, gofile = sys.argv[1], sys.argv[2]
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(0)
    port = srv.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # noqa: F841 (kept open)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % port)
    os.rename(portfile + ".tmp", portfile)
    while not os.path.exists(gofile):
        time.sleep(0.02)
    time.sleep(0.3)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
