#!/usr/bin/env python3
"""HTTP/2 clients for tests/proxy_h2_*.sh, down to the frame: requests no
normal client sends (the downgrade cases), the published floods, many
streams on one connection, flow control with slow readers, drains and
RFC 8441 WebSockets. Each subcommand prints lines for the test to check.

    h2raw.py [--tls] [--host APP] ADDR:PORT SUBCOMMAND [ARGS...]

--tls speaks TLS with ALPN h2 only (no certificate check); without it the
connection starts with the preface (prior knowledge, h2c). --host is the
:authority (and SNI). Frames are written and read here with hyperframe
and hpack (Debian's python3-h2 brings them); headers are sent as HPACK
literals that are never indexed, so any byte goes out as given. Outcomes
of one request are printed as
    status=S [body=N] | rst=ERROR_CODE | goaway=ERROR_CODE | closed | timeout
and a refused request (status 400 or 431, a stream reset, a GOAWAY, a
close) has the word "refused" in front: "refused rst=PROTOCOL_ERROR".

Subcommands (h2raw.py --help-cases lists the downgrade cases):
    case NAME...        downgrade or control requests (tests/h2cases.py), each
                        on a connection of its own; with several names
                        each line is "NAME: OUTCOME"
    flood KIND COUNT    rapid-reset, continuation, continuation-big, ping,
                        settings, empty-data, priority: up to COUNT frames
                        or streams, stopping when the peer closes; prints
                        "closed=yes|no sent=K seconds=S goaway=CODE"
    noread BYTES        downloads /big?bytes=BYTES on 4 streams with open
                        windows and a small socket buffer, never reads;
                        prints "holding lport=PORT", holds until stdin ends
    streams N HOST=ID,...   N concurrent /slow?ms=500 streams spread over
                        the hosts; checks each answer names the right id
    overlimit N         N /slow streams at once, past the peer's limit;
                        "max=M ok=K refused=R other=O goaway=CODE|none"
    upload BYTES [--no-length] [--path P] [--probe SECONDS]
                        POST /upload, checked against the app's digest; with
                        --probe, the bytes the windows let out in SECONDS,
                        then the stream is cancelled
    download BYTES      GET /big?bytes=BYTES, every numbered line checked
    slowread BYTES K    one stream of /big read through a tiny window while
                        K other streams run; prints their latency; holds
                        the slow one until stdin ends
    drain N PATH        N streams in flight, "inflight N", then waits for
                        them and the GOAWAYs (the test sends the SIGTERM)
    idle WAIT [PATH]    one request (of PATH, default /echo), then waits for
                        GOAWAY and the close; after= is the seconds from the
                        answer to the close, at_ms= its wall clock in ms
    ws PATH             extended CONNECT (:protocol websocket); stdin lines
                        go out as DATA, what comes back is printed
    keepalive STOPFILE  a request every 50 ms (every 10th on a new
                        connection) until STOPFILE exists; "ok=N fail=M"
"""
import argparse
import hashlib
import os
import select
import socket
import ssl
import sys
import time

from hpack import Decoder
from h2cases import case_table
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, PriorityFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ERRORS = ["NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
          "SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
          "COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY",
          "HTTP_1_1_REQUIRED"]
ENABLE_CONNECT_PROTOCOL = 8


def errname(code):
    return ERRORS[code] if code < len(ERRORS) else "0x%x" % code


def hint(n, prefix, flags=0):
    """An HPACK integer with an N-bit prefix (RFC 7541 5.1)."""
    top = (1 << prefix) - 1
    if n < top:
        return bytes([flags | n])
    out = [flags | top]
    n -= top
    while n >= 128:
        out.append((n & 127) | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def hblock(headers):
    """Literal fields, never indexed, new name, no Huffman: byte for byte."""
    out = b""
    for name, value in headers:
        name = name if isinstance(name, bytes) else name.encode("latin-1")
        value = value if isinstance(value, bytes) else value.encode("latin-1")
        out += b"\x10" + hint(len(name), 7) + name + hint(len(value), 7) + value
    return out


class Stream:
    def __init__(self, sid, window):
        self.sid = sid
        self.status = None
        self.headers = []
        self.trailers = None
        self.body = bytearray()
        self.nbody = 0
        self.keep = True
        self.ended = False
        self.reset = None
        self.send_window = window
        self.hold = False       # do not reopen this stream's receive window
        self.unacked = 0
        self.t0 = time.monotonic()
        self.t1 = None

    def done(self):
        return self.ended or self.reset is not None


class Conn:
    """One HTTP/2 client connection, flow control done by hand."""

    def __init__(self, a, settings=None, rcvbuf=0, authority=None):
        self.a = a
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        raw.settimeout(a.timeout)
        host, port = a.addr.rsplit(":", 1)
        raw.connect((host, int(port)))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.lport = raw.getsockname()[1]
        if a.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.set_alpn_protocols(["h2"])
            raw = ctx.wrap_socket(raw, server_hostname=a.host)
            if raw.selected_alpn_protocol() != "h2":
                raise SystemExit("alpn=%s" % raw.selected_alpn_protocol())
        self.s = raw
        self.scheme = b"https" if a.tls else b"http"
        self.authority = (authority or a.host).encode()
        self.dec = Decoder(max_header_list_size=1 << 20)
        self.buf = bytearray()
        self.peer = {SettingsFrame.INITIAL_WINDOW_SIZE: 65535, SettingsFrame.MAX_FRAME_SIZE: 16384}
        self.got_settings = False
        self.send_window = 65535
        self.streams = {}
        self.next_sid = 1
        self.goaways = []
        self.closed = None
        self.block = None
        self.ping_acks = 0
        self.settings_acks = 0
        self.conn_unacked = 0
        self.settings = {SettingsFrame.ENABLE_PUSH: 0, SettingsFrame.INITIAL_WINDOW_SIZE: 1 << 20}
        self.settings.update(settings or {})
        sf = SettingsFrame(0)
        sf.settings = self.settings
        # A larger connection window too, as browsers do.
        self.write(PREFACE + sf.serialize() + WindowUpdateFrame(0, (16 << 20)).serialize())

    # ---- output
    def write(self, data):
        try:
            self.s.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError) as e:
            if isinstance(e, socket.timeout):
                raise
            self.closed = self.closed or "reset"
            return False

    def send(self, *frames):
        return self.write(b"".join(f.serialize() for f in frames))

    def new_stream(self):
        sid = self.next_sid
        self.next_sid += 2
        st = Stream(sid, self.peer[SettingsFrame.INITIAL_WINDOW_SIZE])
        self.streams[sid] = st
        return st

    def headers(self, sid, headers, end_stream, raw=None):
        block = raw if raw is not None else hblock(headers)
        step = 16384
        frames = []
        first = HeadersFrame(sid, block[:step])
        frames.append(first)
        rest = block[step:]
        while rest:
            frames.append(ContinuationFrame(sid, rest[:step]))
            rest = rest[step:]
        frames[-1].flags.add("END_HEADERS")
        if end_stream:
            first.flags.add("END_STREAM")
        return self.send(*frames)

    def request(self, path, method=b"GET", extra=(), body=None, length=True, authority=None):
        st = self.new_stream()
        h = [(b":method", method), (b":scheme", self.scheme),
             (b":authority", authority or self.authority), (b":path", path)]
        if body is not None and length:
            h.append((b"content-length", str(len(body)).encode()))
        h += list(extra)
        self.headers(st.sid, h, end_stream=body is None)
        if body is not None:
            self.send_body(st, body, True)
        return st

    def send_body(self, st, body, end):
        view = memoryview(body)
        while len(view) and not self.closed and not st.done():
            n = min(self.send_window, st.send_window, self.peer[SettingsFrame.MAX_FRAME_SIZE], len(view))
            if n <= 0:
                self.pump(0.5)
                continue
            f = DataFrame(st.sid, bytes(view[:n]))
            if end and n == len(view):
                f.flags.add("END_STREAM")
            self.send(f)
            self.send_window -= n
            st.send_window -= n
            view = view[n:]
            self.pump(0)
        if end and not len(body):
            self.send(DataFrame(st.sid, b"", flags=["END_STREAM"]))

    # ---- input
    def pump(self, timeout):
        """Reads what there is (waiting up to TIMEOUT s); False once closed."""
        if self.closed:
            return False
        pending = self.a.tls and self.s.pending()
        if not pending:
            r, _, _ = select.select([self.s], [], [], timeout)
            if not r:
                return True
        try:
            data = self.s.recv(1 << 18)
        except ssl.SSLWantReadError:
            return True
        except (ConnectionResetError, ssl.SSLError, OSError):
            self.closed = "reset"
            return False
        if not data:
            self.closed = "eof"
            return False
        self.buf += data
        self.parse()
        self.flush_windows()
        return not self.closed

    def parse(self):
        while len(self.buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                return
            f.parse_body(memoryview(bytes(self.buf[9:9 + length])))
            del self.buf[:9 + length]
            self.on_frame(f)

    def on_frame(self, f):
        st = self.streams.get(f.stream_id)
        if isinstance(f, SettingsFrame):
            if "ACK" in f.flags:
                self.settings_acks += 1
                return
            self.got_settings = True
            for k, v in f.settings.items():
                if k == SettingsFrame.INITIAL_WINDOW_SIZE:
                    delta = v - self.peer[k]
                    for s in self.streams.values():
                        s.send_window += delta
                self.peer[k] = v
            self.send(SettingsFrame(0, flags=["ACK"]))
        elif isinstance(f, PingFrame):
            if "ACK" in f.flags:
                self.ping_acks += 1
            else:
                self.send(PingFrame(0, f.opaque_data, flags=["ACK"]))
        elif isinstance(f, GoAwayFrame):
            self.goaways.append((f.last_stream_id, errname(f.error_code), time.monotonic()))
        elif isinstance(f, RstStreamFrame):
            if st:
                st.reset = errname(f.error_code)
                st.t1 = time.monotonic()
        elif isinstance(f, WindowUpdateFrame):
            if f.stream_id == 0:
                self.send_window += f.window_increment
            elif st:
                st.send_window += f.window_increment
        elif isinstance(f, HeadersFrame):
            self.block = [f.stream_id, bytes(f.data), "END_STREAM" in f.flags]
            if "END_HEADERS" in f.flags:
                self.on_headers()
        elif isinstance(f, ContinuationFrame):
            if self.block:
                self.block[1] += bytes(f.data)
                if "END_HEADERS" in f.flags:
                    self.on_headers()
        elif isinstance(f, DataFrame):
            n = f.flow_controlled_length
            self.conn_unacked += n
            if st:
                st.nbody += len(f.data)
                if st.keep:
                    st.body += f.data
                st.unacked += n
                if "END_STREAM" in f.flags:
                    st.ended = True
                    st.t1 = time.monotonic()

    def on_headers(self):
        sid, block, end = self.block
        self.block = None
        headers = self.dec.decode(block, raw=True)
        st = self.streams.get(sid)
        if not st:
            return
        status = dict(headers).get(b":status")
        if st.status is None and status is not None:
            code = int(status)
            if code >= 200 or code == 101:
                st.status = code
                st.headers = headers
        elif st.status is not None:
            st.trailers = headers
        if end:
            st.ended = True
            st.t1 = time.monotonic()

    def flush_windows(self):
        frames = []
        if self.conn_unacked >= 16384:
            frames.append(WindowUpdateFrame(0, self.conn_unacked))
            self.conn_unacked = 0
        for st in self.streams.values():
            if st.unacked >= 16384 and not st.hold and not st.done():
                frames.append(WindowUpdateFrame(st.sid, st.unacked))
                st.unacked = 0
        if frames:
            self.send(*frames)

    def wait(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while not pred() and time.monotonic() < deadline:
            if not self.pump(min(0.2, max(0, deadline - time.monotonic()))):
                break
        return pred()

    def wait_settings(self):
        if not self.wait(lambda: self.got_settings, self.a.timeout):
            raise SystemExit("no SETTINGS from the server")

    def outcome(self, st):
        """One line saying how the stream ended, "refused" in front if so."""
        if st.status is not None and st.done():
            word = "refused " if st.status in (400, 431) else ""
            return "%sstatus=%d body=%d" % (word, st.status, st.nbody)
        if st.reset:
            return "refused rst=%s" % st.reset
        if self.goaways:
            return "refused goaway=%s" % self.goaways[-1][1]
        if self.closed:
            return "refused closed"
        return "timeout"


def run_case(a, name):
    c = Conn(a)
    auth = c.authority
    table = case_table(auth)
    if name not in table:
        raise SystemExit("unknown case %s (--help-cases lists them)" % name)
    kind, extra, pieces, cl = table[name]
    pseudo = {b":method": b"GET", b":scheme": c.scheme, b":authority": auth,
              b":path": b"/echo?h2case=" + name.encode()}
    if name.startswith("ok-"):
        pseudo[b":path"] = b"/echo?h2ok=" + name.encode()
    regular = []
    if kind == "pseudo":
        for k, v in extra.items():
            pseudo[k] = v
    elif kind == "order":
        pass
    else:
        pseudo[b":method"] = kind
        regular = list(extra)
    if isinstance(cl, bytes):
        regular.insert(0, (b"content-length", cl))
    h = [(k, v) for k, v in pseudo.items() if v is not None]
    if cl == "first":
        # A repeated pseudo-header right behind the others.
        h += regular
        regular = []
    if kind == "order":
        h = h[:3] + [(b"x-early", b"1")] + h[3:]
    h += regular
    st = c.new_stream()
    c.wait_settings()
    # The head, its DATA and trailers in one write, so that the router
    # sees them together, before it could have sent the head on.
    frames = [HeadersFrame(st.sid, hblock(h), flags=["END_HEADERS"] + (["END_STREAM"] if pieces is None else []))]
    if len(frames[0].data) > 16384:
        c.headers(st.sid, h, end_stream=pieces is None)
        frames = []
    for i, p in enumerate(pieces or []):
        last = i == len(pieces) - 1 and name != "trailer-pseudo"
        frames.append(DataFrame(st.sid, p, flags=["END_STREAM"] if last else []))
    if name == "trailer-pseudo":
        frames.append(HeadersFrame(st.sid, hblock([(b":path", b"/echo?h2case=trailer-smuggled")]),
                                   flags=["END_HEADERS", "END_STREAM"]))
    c.send(*frames)
    c.wait(lambda: st.done() or c.closed or c.goaways, a.timeout)
    out = c.outcome(st)
    if a.show_body and st.body:
        out += "\n" + st.body.decode("latin-1")
    return out


# ---- floods ----------------------------------------------------------------

def flood(a, kind, count):
    small = kind in ("ping", "settings")
    # The ping and settings floods never read, so the acknowledgements pile
    # up on the router's side: a small receive buffer makes that quick.
    c = Conn(a, rcvbuf=8192 if small else 0)
    c.wait_settings()
    # A write blocked this long means the peer stopped reading.
    c.s.settimeout(3)
    t0 = time.monotonic()
    blocked = "no"
    sent = 0
    batch = 1000
    base = [(b":method", b"GET"), (b":scheme", c.scheme), (b":authority", c.authority)]
    st = None
    if kind in ("empty-data",):
        st = c.new_stream()
        c.headers(st.sid, [(b":method", b"POST")] + base[1:] + [(b":path", b"/upload?h2flood=empty-data")], False)
    if kind.startswith("continuation"):
        st = c.new_stream()
        f = HeadersFrame(st.sid, hblock(base + [(b":path", b"/echo?h2flood=continuation")]))
        c.send(f)
    piece = hblock([(b"x-c", b"c" * 1000)]) if kind == "continuation-big" else b""
    # A batch of frames serialized once and written again and again (but
    # for the streams of rapid-reset, each new), so the flood is as fast
    # as the socket takes it.
    if kind == "rapid-reset":
        block = hblock(base + [(b":path", b"/echo?h2flood=rapid-reset")])
        hhead = len(block).to_bytes(3, "big") + b"\x01\x05"
        rst = b"\x00\x00\x04\x03\x00"
    elif kind.startswith("continuation"):
        one = ContinuationFrame(st.sid, piece).serialize()
    elif kind == "ping":
        one = PingFrame(0, b"flooding").serialize()
    elif kind == "settings":
        sf = SettingsFrame(0)
        sf.settings = {SettingsFrame.INITIAL_WINDOW_SIZE: 1 << 20}
        one = sf.serialize()
    elif kind == "empty-data":
        one = DataFrame(st.sid, b"").serialize()
    elif kind == "priority":
        one = b"".join(PriorityFrame(2 * i + 101, depends_on=0, stream_weight=15).serialize()
                       for i in range(batch))
    else:
        raise SystemExit("unknown flood %s" % kind)
    try:
        while sent < count and not c.closed and not c.goaways:
            n = min(batch, count - sent)
            if kind == "rapid-reset":
                out = bytearray()
                for _ in range(n):
                    sid = c.next_sid.to_bytes(4, "big")
                    c.next_sid += 2
                    out += hhead + sid + block + rst + sid + b"\x00\x00\x00\x08"
                data = bytes(out)
            elif kind == "priority":
                data = one if n == batch else one[:13 * n]
            else:
                data = one * n
            sent += n
            if not c.write(data):
                break
            if not small:
                c.pump(0)
    except socket.timeout:
        # The peer stopped reading us (backpressure): it may still close.
        blocked = "yes"
    # What the peer said: read everything until it closes (bounded).
    c.wait(lambda: c.closed, a.settle)
    gone = "yes" if (c.closed or c.goaways) else "no"
    print("closed=%s sent=%d seconds=%.2f goaway=%s end=%s blocked=%s" % (
        gone, sent, time.monotonic() - t0, c.goaways[-1][1] if c.goaways else "none",
        c.closed or "open", blocked))


def noread(a, size):
    c = Conn(a, settings={SettingsFrame.INITIAL_WINDOW_SIZE: (1 << 31) - 1}, rcvbuf=4096)
    c.send(WindowUpdateFrame(0, (1 << 31) - 1 - 65535 - (16 << 20)))
    for _ in range(4):
        c.request(b"/big?bytes=%d&h2flood=noread" % size)
    print("holding lport=%d" % c.lport, flush=True)
    sys.stdin.read()


# ---- streams, bodies, flow control -------------------------------------------

def streams(a, n, spec):
    pairs = [p.split("=", 1) for p in spec.split(",")]
    c = Conn(a)
    c.wait_settings()
    t0 = time.monotonic()
    want = {}
    for i in range(n):
        host, ident = pairs[i % len(pairs)]
        st = c.request(b"/slow?ms=500&i=%d" % i, authority=host.encode())
        want[st.sid] = ident
    c.wait(lambda: all(s.done() for s in c.streams.values()), a.timeout)
    ok = wrong = 0
    for sid, ident in want.items():
        st = c.streams[sid]
        if st.status == 200 and st.body.decode("latin-1").strip().endswith(" " + ident):
            ok += 1
        else:
            wrong += 1
            if wrong <= 3:
                print("stream %d: %s %r" % (sid, c.outcome(st), bytes(st.body[:80])))
    print("streams=%d ok=%d wrong=%d seconds=%.2f" % (n, ok, wrong, time.monotonic() - t0))


def overlimit(a, n):
    """N streams at once, whatever the peer's SETTINGS_MAX_CONCURRENT_STREAMS."""
    c = Conn(a)
    c.wait_settings()
    sts = [c.request(b"/slow?ms=1500&h2overlimit=%d" % i) for i in range(n)]
    c.wait(lambda: all(s.done() for s in sts) or c.closed, a.timeout)
    print("max=%s ok=%d refused=%d other=%d goaway=%s" % (
        c.peer.get(SettingsFrame.MAX_CONCURRENT_STREAMS, "unlimited"),
        sum(1 for s in sts if s.status == 200), sum(1 for s in sts if s.reset == "REFUSED_STREAM"),
        sum(1 for s in sts if s.status != 200 and s.reset != "REFUSED_STREAM"),
        c.goaways[-1][1] if c.goaways else "none"))


def upload(a, size, length, path, probe):
    body = bytes(size) if probe else os.urandom(size)
    c = Conn(a)
    c.wait_settings()
    st = c.new_stream()
    h = [(b":method", b"POST"), (b":scheme", c.scheme), (b":authority", c.authority), (b":path", path.encode())]
    if length:
        h.append((b"content-length", str(size).encode()))
    c.headers(st.sid, h, end_stream=False)
    if probe:
        # Send as the windows allow for PROBE seconds, then say how far.
        t0 = time.monotonic()
        view = memoryview(body)
        while time.monotonic() - t0 < probe and len(view) > 0:
            n = min(c.send_window, st.send_window, 16384, len(view))
            if n <= 0:
                c.pump(0.05)
                continue
            c.send(DataFrame(st.sid, bytes(view[:n])))
            c.send_window -= n
            st.send_window -= n
            view = view[n:]
        print("accepted=%d after=%.1f" % (size - len(view), probe), flush=True)
        c.send(RstStreamFrame(st.sid, 8))
        return
    else:
        c.send_body(st, body, True)
    c.wait(st.done, a.timeout)
    print("%s sha256=%s answer=%s" % (c.outcome(st), hashlib.sha256(body).hexdigest(),
                                     st.body.decode("latin-1").strip()))


def check_big(data, off=0):
    for i in range(0, len(data) - 15, 16):
        if data[i:i + 16] != b"%015x\n" % (off + i):
            return False
    return True


def download(a, size):
    c = Conn(a)
    c.wait_settings()
    st = c.request(b"/big?bytes=%d" % size)
    c.wait(st.done, a.timeout)
    print("%s valid=%s" % (c.outcome(st), "yes" if st.nbody == size and check_big(st.body) else "no"))


def slowread(a, size, others):
    c = Conn(a, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 65535})
    c.wait_settings()
    slow = c.request(b"/big?bytes=%d&h2slow=1" % size)
    slow.hold = True
    slow.keep = False
    c.wait(lambda: slow.nbody >= 60000 or slow.done(), a.timeout)
    worst = 0
    ok = 0
    for i in range(others):
        st = c.request(b"/echo?h2other=%d" % i)
        c.wait(st.done, a.timeout)
        if st.status == 200:
            ok += 1
        worst = max(worst, (st.t1 or time.monotonic()) - st.t0)
        # The slow stream is read, a little: 1 KB per other request.
        c.send(WindowUpdateFrame(slow.sid, 1024))
    print("others=%d ok=%d max_ms=%d slow_read=%d" % (others, ok, worst * 1000, slow.nbody), flush=True)
    sys.stdin.read()
    print("slow_done=%s" % ("yes" if slow.done() else "no"))


# ---- drain, idle, tunnels, a steady client -----------------------------------

def drain(a, n, path):
    c = Conn(a)
    c.wait_settings()
    sts = [c.request(path.encode()) for _ in range(n)]
    c.wait(lambda: False, 0.3)
    print("inflight %d" % n, flush=True)
    c.wait(lambda: all(s.done() for s in sts) and len(c.goaways) >= 2, a.timeout)
    after = c.request(b"/echo?h2drain=after-goaway") if not c.closed else None
    c.wait(lambda: c.closed or (after and after.done()), 3)
    print("completed=%d/%d statuses=%s goaways=%s after=%s end=%s" % (
        sum(1 for s in sts if s.status == 200 and s.ended), n,
        ",".join(sorted(set(str(s.status) for s in sts))),
        ",".join("%d:%s" % (g[0], g[1]) for g in c.goaways),
        c.outcome(after) if after else "none", c.closed or "open"))


def idle(a, wait, path="/echo?h2idle=1"):
    c = Conn(a)
    c.wait_settings()
    st = c.request(path.encode())
    c.wait(st.done, a.timeout)
    print("%s ready" % c.outcome(st), flush=True)
    t0 = time.monotonic()
    c.wait(lambda: c.closed, wait)
    print("goaways=%s end=%s after=%.2f at_ms=%d" % (",".join("%d:%s" % (g[0], g[1]) for g in c.goaways),
                                                     c.closed or "open", time.monotonic() - t0,
                                                     time.time() * 1000))


def ws(a, path):
    c = Conn(a)
    c.wait_settings()
    proto = c.peer.get(ENABLE_CONNECT_PROTOCOL, 0)
    st = c.new_stream()
    c.headers(st.sid, [(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", c.scheme),
                       (b":authority", c.authority), (b":path", path.encode()),
                       (b"sec-websocket-version", b"13")], end_stream=False)
    c.wait(lambda: st.status is not None or st.done(), a.timeout)
    print("status=%s connect-protocol=%d" % (st.status or c.outcome(st), proto), flush=True)
    if st.status != 200:
        return
    fd = sys.stdin.fileno()
    shown = 0
    eof = False
    while not c.closed and not st.done():
        r, _, _ = select.select([fd, c.s], [], [], 0 if a.tls and c.s.pending() else 0.2)
        if fd in r:
            line = os.read(fd, 65536)
            if not line:
                eof = True
                c.send(DataFrame(st.sid, b"", flags=["END_STREAM"]))
                c.wait(lambda: st.done() or c.closed, 5)
                break
            c.send_body(st, line, False)
        c.pump(0)
        if len(st.body) > shown:
            sys.stdout.write(st.body[shown:].decode("latin-1"))
            sys.stdout.flush()
            shown = len(st.body)
    if len(st.body) > shown:
        sys.stdout.write(st.body[shown:].decode("latin-1"))
    print("end=%s" % ("stdin-eof" if eof else c.outcome(st)))


def keepalive(a, stopfile):
    ok = fail = i = 0
    worst = 0.0
    c = None
    while not os.path.exists(stopfile):
        i += 1
        t0 = time.monotonic()
        try:
            fresh = i % 10 == 0
            if c is None or c.closed or c.goaways or fresh:
                conn = Conn(a)
                if not fresh:
                    c = conn
            else:
                conn = c
            st = conn.request(b"/echo?h2keepalive=%d" % i)
            conn.wait(st.done, 5)
            if st.status == 200:
                ok += 1
            else:
                fail += 1
                print("request %d: %s" % (i, conn.outcome(st)), flush=True)
        except (OSError, SystemExit) as e:
            fail += 1
            c = None
            print("request %d: %s" % (i, e), flush=True)
        worst = max(worst, time.monotonic() - t0)
        time.sleep(0.05)
    print("ok=%d fail=%d max_ms=%d" % (ok, fail, worst * 1000))


def main():
    p = argparse.ArgumentParser(add_help=True)
    p.add_argument("--tls", action="store_true")
    p.add_argument("--host", default="a.test")
    p.add_argument("--timeout", type=float, default=20)
    p.add_argument("--settle", type=float, default=3, help="flood: seconds to read after sending")
    p.add_argument("--show-body", action="store_true")
    p.add_argument("--help-cases", action="store_true")
    p.add_argument("addr", nargs="?")
    p.add_argument("cmd", nargs="?")
    p.add_argument("args", nargs=argparse.REMAINDER)
    a = p.parse_args()
    if a.help_cases:
        print("\n".join(case_table(b"a.test")))
        return
    if not a.addr or not a.cmd:
        p.error("ADDR:PORT and a subcommand are needed")
    x = a.args
    if a.cmd == "case":
        if len(x) == 1:
            print(run_case(a, x[0]))
        for name in (x if len(x) > 1 else []):
            print("%s: %s" % (name, run_case(a, name)), flush=True)
    elif a.cmd == "flood":
        flood(a, x[0], int(x[1]))
    elif a.cmd == "noread":
        noread(a, int(x[0]))
    elif a.cmd == "overlimit":
        overlimit(a, int(x[0]))
    elif a.cmd == "streams":
        streams(a, int(x[0]), x[1])
    elif a.cmd == "upload":
        q = argparse.ArgumentParser()
        q.add_argument("size", type=int)
        q.add_argument("--no-length", action="store_true")
        q.add_argument("--path", default="/upload")
        q.add_argument("--probe", type=float, default=0)
        u = q.parse_args(x)
        upload(a, u.size, not u.no_length, u.path, u.probe)
    elif a.cmd == "download":
        download(a, int(x[0]))
    elif a.cmd == "slowread":
        slowread(a, int(x[0]), int(x[1]))
    elif a.cmd == "drain":
        drain(a, int(x[0]), x[1])
    elif a.cmd == "idle":
        idle(a, float(x[0]), *x[1:2])
    elif a.cmd == "ws":
        ws(a, x[0])
    elif a.cmd == "keepalive":
        keepalive(a, x[0])
    else:
        p.error("unknown subcommand %s" % a.cmd)


if __name__ == "__main__":
    main()
