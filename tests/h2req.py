#!/usr/bin/env python3
"""One HTTP/2 request with prior knowledge, its fields sent exactly as
given (python3-h2 with its own checks off), to see what the router does
with heads no normal client sends.

    h2req.py PORT NAME:VALUE... [--data BYTES] [--data-len N]

Pseudo-headers are given like the others (":method:GET"; the first colon
of a pseudo-header's name is part of it). --data sends BYTES as DATA
(END_STREAM on the last frame); --data-len declares nothing itself, use
a content-length field for that. Prints "status=N" when the router
answered, or "reset=CODE" when it reset the stream, or "goaway=CODE"
when it ended the connection; exits 0 in all three cases."""
import socket
import sys

import h2.config
import h2.connection
import h2.events


def split_field(arg):
    if arg.startswith(":"):
        name, _, value = arg[1:].partition(":")
        return ":" + name, value
    name, _, value = arg.partition(":")
    return name, value


def main():
    port = int(sys.argv[1])
    fields, data = [], None
    args = sys.argv[2:]
    while args:
        a = args.pop(0)
        if a == "--data":
            data = args.pop(0).encode()
        else:
            fields.append(split_field(a))
    cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                    validate_outbound_headers=False,
                                    normalize_outbound_headers=False,
                                    validate_inbound_headers=False)
    conn = h2.connection.H2Connection(config=cfg)
    conn.initiate_connection()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(conn.data_to_send())
    enc = [(n.encode(), v.encode()) for n, v in fields]
    conn.send_headers(1, enc, end_stream=data is None)
    if data is not None:
        conn.send_data(1, data, end_stream=True)
    s.sendall(conn.data_to_send())
    while True:
        try:
            buf = s.recv(65536)
        except socket.timeout:
            print("timeout")
            return
        if not buf:
            print("closed")
            return
        for ev in conn.receive_data(buf):
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == 1:
                st = dict(ev.headers).get(b":status", b"?").decode()
                print("status=" + st)
                return
            if isinstance(ev, h2.events.StreamReset) and ev.stream_id == 1:
                print("reset=%d" % ev.error_code)
                return
            if isinstance(ev, h2.events.ConnectionTerminated):
                print("goaway=%d" % ev.error_code)
                return
        out = conn.data_to_send()
        if out:
            s.sendall(out)


if __name__ == "__main__":
    main()
