#!/usr/bin/env python3
"""One HTTP/2 request with prior knowledge, its fields sent exactly as
given (python3-h2 with its own checks off), to see what the router does
with heads no normal client sends.

    h2req.py PORT NAME:VALUE... [--data BYTES]
    h2req.py PORT --flood ping|settings|priority|reset N NAME:VALUE...
    h2req.py PORT --open N NAME:VALUE...
    h2req.py PORT --slowread PATH N NAME:VALUE...
    h2req.py PORT --tunnel TEXT NAME:VALUE...
    h2req.py PORT --stall NAME:VALUE... [--data BYTES]

Pseudo-headers are given like the others (":method:GET"; the first colon
of a pseudo-header's name is part of it). --data sends BYTES as DATA
(END_STREAM on the last frame). Prints "status=N" when the router
answered, or "reset=CODE" when it reset the stream, or "goaway=CODE"
when it ended the connection; exits 0 in all three cases.

--flood sends N frames of a kind, as fast as the socket takes them, then
the request: "reset" opens a stream with the head and resets it, N
times. Prints "goaway=CODE after=K" (K: frames sent before the GOAWAY
was read) or the request's answer.

--tunnel (an extended CONNECT, RFC 8441): once the answer came, sends
TEXT as DATA, N times (--rounds N, default 1), and prints what came back
as "echo=..." after the status, each round's on a line of its own.

--open sends N requests at once (before the router's SETTINGS are read)
and prints "refused=K answered=M": how many were reset with
REFUSED_STREAM, how many answered.

--slowread opens a stream for PATH (same fields otherwise) whose window
it never opens (the connection's it does), then sends the request N
times, one after the other, on other streams; prints "others=K
stalled=B": the answers the others got, the bytes the stalled one got.

--stall leaves the stream open after the head (and BYTES): a body that
stops coming; the router's answer is printed as above."""
import socket
import sys

import h2.config
import h2.connection
import h2.events
import h2.settings


def split_field(arg):
    if arg.startswith(":"):
        name, _, value = arg[1:].partition(":")
        return ":" + name, value
    name, _, value = arg.partition(":")
    return name, value


def main():
    port = int(sys.argv[1])
    fields, data, flood, count, tunnel, rounds = [], None, None, 0, None, 1
    stall = False
    opened = 0
    slowpath = None
    args = sys.argv[2:]
    while args:
        a = args.pop(0)
        if a == "--data":
            data = args.pop(0).encode()
        elif a == "--tunnel":
            tunnel = args.pop(0).encode()
        elif a == "--slowread":
            slowpath, slown = args.pop(0), int(args.pop(0))
        elif a == "--open":
            opened = int(args.pop(0))
        elif a == "--stall":
            stall = True
        elif a == "--rounds":
            rounds = int(args.pop(0))
        elif a == "--flood":
            flood, count = args.pop(0), int(args.pop(0))
        else:
            fields.append(split_field(a))
    cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                    validate_outbound_headers=False,
                                    normalize_outbound_headers=False,
                                    validate_inbound_headers=False)
    conn = h2.connection.H2Connection(config=cfg)
    conn.initiate_connection()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(conn.data_to_send())
    enc = [(n.encode(), v.encode()) for n, v in fields]
    if opened:
        open_many(conn, s, enc, opened)
        return
    if slowpath:
        slow_read(conn, s, enc, slowpath.encode(), slown)
        return
    if flood:
        sid = do_flood(conn, s, flood, count, enc)
        if sid is None:
            return
    else:
        sid = 1
    conn.send_headers(sid, enc, end_stream=data is None and tunnel is None and not stall)
    if data is not None:
        conn.send_data(sid, data, end_stream=not stall)
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
            if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                st = dict(ev.headers).get(b":status", b"?").decode()
                print("status=" + st)
                if tunnel is None or st != "200":
                    return
                run_tunnel(conn, s, sid, tunnel, rounds)
                return
            if isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                print("reset=%d" % ev.error_code)
                return
            if isinstance(ev, h2.events.ConnectionTerminated):
                print("goaway=%d" % ev.error_code)
                return
        out = conn.data_to_send()
        if out:
            s.sendall(out)


def slow_read(conn, s, enc, path, n):
    """One stream never read (its window shut), others served meanwhile."""
    big = [(k, path if k == b":path" else v) for k, v in enc]
    conn.send_headers(1, big, end_stream=True)
    s.sendall(conn.data_to_send())
    stalled = others = 0
    sid = 3
    conn.send_headers(sid, enc, end_stream=True)
    s.sendall(conn.data_to_send())
    while others < n:
        buf = s.recv(65536)
        if not buf:
            break
        for ev in conn.receive_data(buf):
            if isinstance(ev, h2.events.DataReceived):
                if ev.stream_id == 1:
                    stalled += len(ev.data)
                    conn.increment_flow_control_window(ev.flow_controlled_length)
                else:
                    conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                others += 1
                if others < n:
                    sid += 2
                    conn.send_headers(sid, enc, end_stream=True)
            elif isinstance(ev, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                print("ended: %r" % ev)
                return
        out = conn.data_to_send()
        if out:
            s.sendall(out)
    print("others=%d stalled=%d" % (others, stalled))


def open_many(conn, s, enc, n):
    """N streams at once; counts the refused and the answered."""
    for i in range(n):
        conn.send_headers(1 + 2 * i, enc, end_stream=True)
    s.sendall(conn.data_to_send())
    refused = answered = 0
    while refused + answered < n:
        buf = s.recv(65536)
        if not buf:
            break
        for ev in conn.receive_data(buf):
            if isinstance(ev, h2.events.StreamReset) and ev.error_code == 7:
                refused += 1
            elif isinstance(ev, h2.events.ResponseReceived):
                answered += 1
            elif isinstance(ev, h2.events.DataReceived):
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                print("goaway=%d refused=%d answered=%d" % (ev.error_code, refused, answered))
                return
        out = conn.data_to_send()
        if out:
            s.sendall(out)
    print("refused=%d answered=%d" % (refused, answered))


def run_tunnel(conn, s, sid, text, rounds):
    """Rounds of TEXT sent as DATA and read back whole."""
    for _ in range(rounds):
        conn.send_data(sid, text)
        s.sendall(conn.data_to_send())
        got = b""
        while len(got) < len(text):
            buf = s.recv(65536)
            if not buf:
                print("echo=" + got.decode(errors="replace") + " closed")
                return
            for ev in conn.receive_data(buf):
                if isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    got += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, (h2.events.StreamReset, h2.events.StreamEnded,
                                     h2.events.ConnectionTerminated)):
                    print("echo=" + got.decode(errors="replace") + " ended")
                    return
            out = conn.data_to_send()
            if out:
                s.sendall(out)
        print("echo=" + got.decode(errors="replace"))
    conn.end_stream(sid)
    s.sendall(conn.data_to_send())


def goaway_seen(conn, s):
    """Reads what is there without waiting; the GOAWAY's code or None."""
    s.setblocking(False)
    try:
        while True:
            try:
                buf = s.recv(65536)
            except (BlockingIOError, ssl_want()):
                return None
            if not buf:
                return -1
            for ev in conn.receive_data(buf):
                if isinstance(ev, h2.events.ConnectionTerminated):
                    return ev.error_code
    except ConnectionError:
        return -1
    finally:
        s.setblocking(True)
        s.settimeout(10)


def ssl_want():
    return BlockingIOError


def do_flood(conn, s, kind, count, enc):
    """Sends the flood; the stream id for the request after it, or None
    when the router ended the connection (printed)."""
    sid = 1
    for i in range(count):
        if kind == "ping":
            conn.ping(b"%08d" % (i % 100000000))
        elif kind == "settings":
            conn.update_settings({h2.settings.SettingCodes.MAX_FRAME_SIZE: 16384 + (i % 2)})
        elif kind == "priority":
            conn.prioritize(sid + 2 * (i % 1000), weight=16)
        elif kind == "reset":
            conn.send_headers(sid, enc, end_stream=False)
            conn.reset_stream(sid)
            sid += 2
        try:
            s.sendall(conn.data_to_send())
        except ConnectionError:
            print("goaway=-1 after=%d" % i)
            return None
        if i % 50 == 49:
            code = goaway_seen(conn, s)
            if code is not None:
                print("goaway=%d after=%d" % (code, i + 1))
                return None
    return sid


if __name__ == "__main__":
    main()
