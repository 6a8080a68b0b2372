#!/usr/bin/env python3
"""An app instance that is dying, for tests/proxy_retry.sh.

    dyingapp.py PORTFILE reset|close

Listens on 127.0.0.1 and writes its port to PORTFILE. Every connection it
accepts is ended without a single response byte once the request head has
arrived: `reset` aborts it (RST, as the kernel does for the sockets of a
SIGKILLed process that still had data queued), `close` closes it (FIN).
Each request it read is printed to stdout as "req MODE REQUEST-LINE", so a
test can prove which requests reached it and how many times.
"""
import os
import socket
import struct
import sys
import threading


def serve(conn, mode):
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            more = conn.recv(4096)
            if not more:
                return
            data += more
        line = data.split(b"\r\n", 1)[0].decode("ascii", "replace")
        print("req", mode, line, flush=True)
        if mode == "reset":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            # FIN, then wait for the peer's: closing with unread bytes
            # would turn it into a reset.
            conn.shutdown(socket.SHUT_WR)
            conn.settimeout(10)
            while conn.recv(4096):
                pass
    except OSError:
        pass
    finally:
        conn.close()


def main():
    portfile, mode = sys.argv[1], sys.argv[2]
    if mode not in ("reset", "close"):
        sys.exit("dyingapp.py: mode is reset or close, not %r" % mode)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % srv.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, mode), daemon=True).start()


if __name__ == "__main__":
    main()
