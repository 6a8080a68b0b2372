#!/usr/bin/env python3
"""A gRPC-style call over HTTP/2 with prior knowledge (python3-h2), for
what curl does not show: the response's trailers.

    h2grpc.py PORT AUTHORITY PATH [--data N] [--streams K] [--header NAME=VALUE]...

Sends K streams at once (default 1) on one connection: POST PATH with
content-type application/grpc and te: trailers, and N bytes of body (a
fixed pattern, within the router's windows; N=0: no DATA, the HEADERS
end the stream). For each stream, in the order they were opened, prints

    status=CODE
    header NAME=VALUE          (each response field but :status)
    body=BYTES sha256=HEX      (of the response body)
    trailer NAME=VALUE         (each trailer field)
    end                        (or reset=CODE)

and first "sent sha256=HEX" for the request body. Exits 1 on a timeout
or a closed connection."""
import hashlib
import socket
import sys

import h2.config
import h2.connection
import h2.events


def pattern(n):
    unit = bytes(range(251))
    return (unit * (n // 251 + 1))[:n]


def main():
    port, authority, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    n, k = 0, 1
    extra = []
    args = sys.argv[4:]
    while args:
        if args[0] == "--data":
            n = int(args[1])
        elif args[0] == "--streams":
            k = int(args[1])
        elif args[0] == "--header":
            name, _, value = args[1].partition("=")
            extra.append((name, value))
        else:
            sys.exit("unknown argument " + args[0])
        args = args[2:]
    body = pattern(n)
    print("sent sha256=" + hashlib.sha256(body).hexdigest())
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                header_encoding="utf-8"))
    conn.initiate_connection()
    # A window that does not slow a large answer down.
    conn.increment_flow_control_window(1 << 24)
    sock.sendall(conn.data_to_send())
    streams = {}
    order = []
    for _ in range(k):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"),
                                (":authority", authority), (":path", path),
                                ("content-type", "application/grpc"), ("te", "trailers")] + extra,
                          end_stream=(n == 0))
        streams[sid] = {"out": body, "status": None, "headers": [], "body": hashlib.sha256(),
                        "len": 0, "trailers": [], "end": None}
        order.append(sid)
    sock.sendall(conn.data_to_send())

    def pump():
        for sid in order:
            s = streams[sid]
            while s["out"]:
                w = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size)
                if w <= 0:
                    break
                chunk, s["out"] = s["out"][:w], s["out"][w:]
                conn.send_data(sid, chunk, end_stream=not s["out"])
        data = conn.data_to_send()
        if data:
            sock.sendall(data)

    pump()
    while any(streams[s]["end"] is None for s in order):
        try:
            data = sock.recv(65536)
        except socket.timeout:
            print("timeout")
            sys.exit(1)
        if not data:
            print("closed")
            sys.exit(1)
        for ev in conn.receive_data(data):
            s = streams.get(getattr(ev, "stream_id", 0))
            if isinstance(ev, h2.events.ResponseReceived):
                for name, value in ev.headers:
                    if name == ":status":
                        s["status"] = value
                    else:
                        s["headers"].append((name, value))
            elif isinstance(ev, h2.events.DataReceived):
                s["body"].update(ev.data)
                s["len"] += len(ev.data)
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.TrailersReceived):
                s["trailers"] += ev.headers
            elif isinstance(ev, h2.events.StreamEnded):
                s["end"] = "end"
            elif isinstance(ev, h2.events.StreamReset):
                s["end"] = "reset=%d" % ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                print("goaway=%d" % ev.error_code)
                sys.exit(1)
        pump()
    for sid in order:
        s = streams[sid]
        print("status=%s" % s["status"])
        for name, value in s["headers"]:
            print("header %s=%s" % (name, value))
        print("body=%d sha256=%s" % (s["len"], s["body"].hexdigest()))
        for name, value in s["trailers"]:
            print("trailer %s=%s" % (name, value))
        print(s["end"])
    sock.close()


if __name__ == "__main__":
    main()
