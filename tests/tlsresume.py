#!/usr/bin/env python3
"""A TLS client that keeps its sessions, driven line by line on stdin, so
that a test can take a ticket from one router and present it to another,
minutes and rotations later. One answer line per command on stdout.

  tlsresume.py CAFILE

  new NAME PORT tls1.2|tls1.3 HOST   a full handshake to 127.0.0.1:PORT with
                                     SNI HOST, one request, the answer read
                                     to the end (TLS 1.3 tickets come after
                                     the handshake); the session is kept as
                                     NAME. Answers "ok reused=0|1 ticket=0|1
                                     status=CODE version=V"
  resume NAME PORT [SAVE]            the same with session NAME offered;
                                     answers "ok reused=0|1 ...". NAME keeps
                                     its session (its ticket) unless SAVE
                                     names where to keep the new one.
Any failure answers "error WHY".
"""
import socket
import ssl
import sys

VERSIONS = {"tls1.2": ssl.TLSVersion.TLSv1_2, "tls1.3": ssl.TLSVersion.TLSv1_3}


def context(cafile, version):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ctx.maximum_version = VERSIONS[version]
    return ctx


def exchange(ctx, port, host, session):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=host, session=session) as s:
            version = s.version()
            s.sendall(b"GET /echo HTTP/1.1\r\nHost: " + host.encode() +
                      b"\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                try:
                    piece = s.recv(65536)
                except ssl.SSLZeroReturnError:
                    break
                except (ssl.SSLEOFError, ConnectionResetError):
                    break   # an abrupt close after the answer: not ours to judge here
                if not piece:
                    break
                data += piece
            status = data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else "none"
            return s.session, s.session_reused, version, status


def main():
    cafile = sys.argv[1]
    contexts = {}
    sessions = {}   # NAME -> (context, session, host)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == "new":
                name, port, version, host = words[1], int(words[2]), words[3], words[4]
                ctx = contexts.setdefault(version, context(cafile, version))
                sess, reused, ver, status = exchange(ctx, port, host, None)
                sessions[name] = (ctx, sess, host)
            elif words[0] == "resume":
                name, port = words[1], int(words[2])
                ctx, old, host = sessions[name]
                sess, reused, ver, status = exchange(ctx, port, host, old)
                if len(words) > 3:
                    sessions[words[3]] = (ctx, sess, host)
            else:
                raise ValueError("unknown command " + words[0])
            print("ok reused=%d ticket=%d status=%s version=%s" %
                  (int(reused), int(sess is not None and sess.has_ticket), status, ver), flush=True)
        except Exception as e:   # the test reads the reason
            print("error %s: %s" % (type(e).__name__, e), flush=True)


if __name__ == "__main__":
    main()
