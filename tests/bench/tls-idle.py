#!/usr/bin/env python3
"""tls-idle: the HTTPS counterpart of proxy-idle.c, for tests/bench/tls-bench.

    tls-idle.py ADDR:PORT HOST N

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


async def main():
    if len(sys.argv) != 4:
        print("usage: tls-idle.py ADDR:PORT HOST N", file=sys.stderr)
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
    sem = asyncio.Semaphore(BATCH)
    tasks = [asyncio.ensure_future(one(addr, port, host, ctx, sem)) for _ in range(n)]
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
