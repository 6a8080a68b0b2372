#!/usr/bin/env python3
"""An h2c (HTTP/2, prior knowledge) server for the tests, on python3-h2.

Usage: h2server.py [--max-streams N] [--window N]

--max-streams is its SETTINGS_MAX_CONCURRENT_STREAMS (default 100),
--window its SETTINGS_INITIAL_WINDOW_SIZE (default 65535).

Listens on 127.0.0.1, an ephemeral port, and prints "port N" on stdout once
it accepts. Logs one line per event on stderr ("conn 1 open", "conn 1
goaway", "conn 1 closed", "conn 1 stream 3 reset"). What it answers, by path:

  /unary      the request body echoed once the request ended, as a gRPC
              server would: content-type application/grpc, x-conn (the
              connection's number, from 1), then trailers grpc-status 0 and
              grpc-message ok
  /echo       the request body echoed as it arrives (within the client's
              windows), then trailers x-echo-bytes
  /hold       nothing until the server holds as many /hold streams, over
              all connections, as the request's x-hold-until says; then
              200 with x-conn to each
  /slow       200 and 1000 bytes at once, then nothing more
  /bad        200 with a Connection header, which HTTP/2 forbids
  /bighead    200 with 100 KB of header fields
  /headers    200 and the request's fields as the body, "name: value"
              lines (pseudo-headers first)
  /goaway     the /hold streams of its connection answered, then GOAWAY
              with the stream before it as the last: it is refused
  /refuse     the whole request read, then RST_STREAM REFUSED_STREAM if
              its x-refuse-port is this server's port; else as /unary
Every response carries x-conn. A request with a field HTTP/2 forbids
(connection, transfer-encoding...) is refused by h2 itself.
"""
import argparse
import asyncio
import sys

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.events import (ConnectionTerminated, DataReceived, RequestReceived,
                       StreamEnded, StreamReset, WindowUpdated)
from h2.settings import SettingCodes, Settings

HELD = []          # (protocol, stream id) of /hold streams
PORT = [0]         # the port this server listens on
CONNS = [0]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


class Stream:
    def __init__(self, path, headers, fields=()):
        self.path = path
        self.headers = headers
        self.fields = list(fields)   # in order, repeated ones too
        self.body = bytearray()
        self.out = bytearray()     # to send, within the windows
        self.trailers = None       # sent once out is empty
        self.end = False           # end the stream once out is empty
        self.echoed = 0


class H2Server(asyncio.Protocol):
    def __init__(self, args):
        self.args = args
        CONNS[0] += 1
        self.n = CONNS[0]
        # Unvalidated, so that /bad can send what HTTP/2 forbids.
        self.conn = H2Connection(H2Configuration(client_side=False, header_encoding='utf-8',
                                                 validate_outbound_headers=False,
                                                 normalize_outbound_headers=False))
        self.streams = {}
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        log(f"conn {self.n} open")
        settings = {SettingCodes.MAX_CONCURRENT_STREAMS: self.args.max_streams}
        if self.args.window:
            settings[SettingCodes.INITIAL_WINDOW_SIZE] = self.args.window
        # As initial values, so that the first SETTINGS carries them and
        # they hold from the start (local_settings.update() would leave
        # them pending, enforced once acknowledged but never sent).
        self.conn.local_settings = Settings(client=False, initial_values=settings)
        self.conn.initiate_connection()
        self.flush()

    def connection_lost(self, exc):
        log(f"conn {self.n} closed")
        HELD[:] = [h for h in HELD if h[0] is not self]

    def flush(self):
        data = self.conn.data_to_send()
        if data and not self.transport.is_closing():
            self.transport.write(data)

    def head(self, sid, extra=()):
        hdrs = [(':status', '200'), ('x-conn', str(self.n))] + list(extra)
        self.conn.send_headers(sid, hdrs)

    def pump(self, sid):
        s = self.streams.get(sid)
        if s is None:
            return
        while s.out:
            window = min(self.conn.local_flow_control_window(sid),
                         self.conn.max_outbound_frame_size)
            if window <= 0:
                return
            chunk = bytes(s.out[:window])
            del s.out[:window]
            self.conn.send_data(sid, chunk)
        if s.trailers is not None:
            self.conn.send_headers(sid, s.trailers, end_stream=True)
            s.trailers = None
            del self.streams[sid]
        elif s.end:
            self.conn.end_stream(sid)
            del self.streams[sid]

    def data_received(self, data):
        try:
            events = self.conn.receive_data(data)
        except Exception as e:  # a protocol error: say so and close
            log(f"conn {self.n} error {type(e).__name__}: {e}")
            self.flush()
            self.transport.close()
            return
        for ev in events:
            if isinstance(ev, RequestReceived):
                h = dict(ev.headers)
                s = Stream(h.get(':path', ''), h, ev.headers)
                self.streams[ev.stream_id] = s
                log(f"conn {self.n} stream {ev.stream_id} {h.get(':method')} {s.path}")
                self.request(ev.stream_id, s)
            elif isinstance(ev, DataReceived):
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                s = self.streams.get(ev.stream_id)
                if s is None:
                    continue
                if s.path == '/echo':
                    s.out += ev.data
                    s.echoed += len(ev.data)
                    self.pump(ev.stream_id)
                else:
                    s.body += ev.data
            elif isinstance(ev, StreamEnded):
                s = self.streams.get(ev.stream_id)
                if s is None:
                    continue
                if s.path == '/refuse':
                    if s.headers.get('x-refuse-port') == str(PORT[0]):
                        log(f"conn {self.n} stream {ev.stream_id} refused after {len(s.body)} bytes")
                        self.conn.reset_stream(ev.stream_id, error_code=7)
                        self.streams.pop(ev.stream_id, None)
                        continue
                    s.path = '/unary'
                if s.path == '/unary':
                    self.head(ev.stream_id, [('content-type', 'application/grpc'),
                                             ('x-body-len', str(len(s.body)))])
                    s.out += s.body
                    s.trailers = [('grpc-status', '0'), ('grpc-message', 'ok')]
                    self.pump(ev.stream_id)
                elif s.path == '/echo':
                    log(f"conn {self.n} stream {ev.stream_id} ended, {s.echoed} bytes")
                    s.trailers = [('x-echo-bytes', str(s.echoed))]
                    self.pump(ev.stream_id)
            elif isinstance(ev, WindowUpdated):
                for sid in list(self.streams) if ev.stream_id == 0 else [ev.stream_id]:
                    self.pump(sid)
            elif isinstance(ev, StreamReset):
                log(f"conn {self.n} stream {ev.stream_id} reset {ev.error_code}")
                self.streams.pop(ev.stream_id, None)
            elif isinstance(ev, ConnectionTerminated):
                log(f"conn {self.n} goaway {ev.error_code}")
        self.flush()

    def request(self, sid, s):
        if s.path == '/echo':
            self.head(sid)
        elif s.path == '/slow':
            self.head(sid)
            self.conn.send_data(sid, b's' * 1000)
        elif s.path == '/hold':
            HELD.append((self, sid))
            if len(HELD) >= int(s.headers.get('x-hold-until', '1')):
                for proto, hsid in HELD:
                    proto.head(hsid)
                    proto.conn.end_stream(hsid)
                    proto.streams.pop(hsid, None)
                    proto.flush()
                HELD.clear()
        elif s.path == '/bad':
            self.conn.send_headers(sid, [(':status', '200'), ('connection', 'close')],
                                   end_stream=True)
            self.streams.pop(sid, None)
        elif s.path == '/bighead':
            pad = [(f'x-pad-{i}', 'p' * 1000) for i in range(100)]
            self.conn.send_headers(sid, [(':status', '200')] + pad, end_stream=True)
            self.streams.pop(sid, None)
        elif s.path.startswith('/headers'):
            text = ''.join(f'{n}: {v}\n' for n, v in s.fields)
            self.head(sid)
            self.conn.send_data(sid, text.encode(), end_stream=True)
            self.streams.pop(sid, None)
        elif s.path == '/goaway':
            # The streams held on this connection are answered, then
            # GOAWAY names the one before this as the last processed:
            # this one is refused.
            for proto, hsid in [h for h in HELD if h[0] is self]:
                self.head(hsid)
                self.conn.end_stream(hsid)
                self.streams.pop(hsid, None)
                HELD.remove((proto, hsid))
            self.conn.close_connection(error_code=0, last_stream_id=sid - 2)
            self.streams.pop(sid, None)
            log(f"conn {self.n} sent goaway, last stream {sid - 2}")
        elif s.path not in ('/unary', '/refuse'):
            self.conn.send_headers(sid, [(':status', '404'), ('x-conn', str(self.n))],
                                   end_stream=True)
            self.streams.pop(sid, None)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--max-streams', type=int, default=100)
    ap.add_argument('--window', type=int, default=0)
    args = ap.parse_args()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: H2Server(args), '127.0.0.1', 0)
    PORT[0] = server.sockets[0].getsockname()[1]
    print(f"port {PORT[0]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == '__main__':
    asyncio.run(main())
