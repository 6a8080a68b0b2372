#!/usr/bin/env python3
"""tls-idle: the HTTPS counterpart of proxy-idle.c, for tests/bench/tls-bench
and (with --h2) tests/bench/h2-bench.

    tls-idle.py [--h2] ADDR:PORT HOST N

--h2 asks for HTTP/2 by ALPN and sends the one request as HTTP/2 frames
(preface, SETTINGS, HEADERS; the server's SETTINGS acknowledged), then the
connection idles the same way.

Opens N TLS connections to a proxy (SNI HOST, no certificate check: the
benchmark's certificate is self-signed), sends one keep-alive request on
each and reads its whole answer, then holds them all open and idle so the
benchmark can read the proxy's resident memory. Prints "ready N" once
every connection got its answer (or "failed ..." and exits 1), then waits
until stdin ends (or SIGTERM) and prints how many connections the proxy
closed meanwhile. Raise `ulimit -n` first.
"""
import asyncio
import signal
import ssl
import sys

# Handshakes in flight at once: few, so that the buffers of concurrent
# handshakes (which the proxy's allocator may keep after they are freed) do
# not inflate the memory per idle connection; with N in the thousands the
# steady state dominates.
BATCH = 16
DEADLINE = 150       # seconds for all N to be answered


async def one(addr, port, host, ctx, sem):
    async with sem:
        reader, writer = await asyncio.open_connection(addr, port, ssl=ctx, server_hostname=host)
        writer.write(b"GET /?idle HTTP/1.1\r\nHost: " + host.encode() + b"\r\n\r\n")
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length:
            await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.split(b"\r\n")[0].decode(errors="replace"))
        return reader, writer


def hpack_literal(name, value):
    """A header field as an HPACK literal, never indexed, no Huffman
    (names and values here are shorter than 127 bytes)."""
    return b"\x10" + bytes([len(name)]) + name + bytes([len(value)]) + value


def frame(ftype, flags, sid, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + sid.to_bytes(4, "big") + payload


async def one_h2(addr, port, host, ctx, sem):
    async with sem:
        reader, writer = await asyncio.open_connection(addr, port, ssl=ctx, server_hostname=host)
        if writer.get_extra_info("ssl_object").selected_alpn_protocol() != "h2":
            raise RuntimeError("no h2 by ALPN")
        block = b"".join(hpack_literal(n, v) for n, v in (
            (b":method", b"GET"), (b":scheme", b"https"), (b":authority", host.encode()),
            (b":path", b"/?idle")))
        # Preface, empty SETTINGS, HEADERS with END_STREAM and END_HEADERS.
        writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0) + frame(1, 5, 1, block))
        await writer.drain()
        while True:
            head = await reader.readexactly(9)
            ftype, flags = head[3], head[4]
            sid = int.from_bytes(head[5:9], "big") & 0x7fffffff
            await reader.readexactly(int.from_bytes(head[:3], "big"))
            if ftype == 4 and not flags & 1:
                writer.write(frame(4, 1, 0))
            elif ftype == 7:
                raise RuntimeError("GOAWAY")
            elif ftype == 3 and sid == 1:
                raise RuntimeError("RST_STREAM")
            elif sid == 1 and ftype in (0, 1) and flags & 1:
                return reader, writer


async def main():
    h2 = len(sys.argv) > 1 and sys.argv[1] == "--h2"
    if h2:
        del sys.argv[1]
    if len(sys.argv) != 4:
        print("usage: tls-idle.py [--h2] ADDR:PORT HOST N", file=sys.stderr)
        return 2
    addr, _, port = sys.argv[1].rpartition(":")
    host = sys.argv[2]
    try:
        n = int(sys.argv[3])
        port = int(port)
    except ValueError:
        print("tls-idle: bad port or N", file=sys.stderr)
        return 2
    if not addr or not 1 <= n <= 200000:
        print("tls-idle: bad address or N out of range", file=sys.stderr)
        return 2
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if h2:
        ctx.set_alpn_protocols(["h2"])
    sem = asyncio.Semaphore(BATCH)
    tasks = [asyncio.ensure_future((one_h2 if h2 else one)(addr, port, host, ctx, sem)) for _ in range(n)]
    done, pending = await asyncio.wait(tasks, timeout=DEADLINE)
    for t in pending:
        t.cancel()
    conns = [t.result() for t in done if not t.cancelled() and t.exception() is None]
    if len(conns) < n:
        errs = sorted({repr(t.exception()) for t in done if t.exception() is not None})[:3]
        print(f"failed: {len(conns)} of {n} answered, {len(pending)} still pending; {' '.join(errs)}", flush=True)
        return 1
    print(f"ready {n}", flush=True)

    # Hold, idle, until stdin ends or SIGTERM.
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    stdin_done = loop.run_in_executor(None, sys.stdin.buffer.read)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([stdin_done, stopped], return_when=asyncio.FIRST_COMPLETED)
    closed = sum(1 for reader, _ in conns if reader.at_eof())
    print(f"closed-by-proxy {closed}", flush=True)
    for _, writer in conns:
        writer.transport.abort()
    stopped.cancel()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
