#!/usr/bin/env python3
"""Keep-alive clients across a router's SIGTERM, for tests/zkrouterd_drain.sh.

    drainclient.py PORT HOST ROUTER-PID ROUTER-LOG

Against a zkrouterd on 127.0.0.1:PORT started with a drain delay, whose app
HOST answers "ok ..." with 200, and whose log is ROUTER-LOG:

  A  a plain keep-alive client: one GET every 20 ms on its connection,
     reusing it until an answer says "Connection: close" (then it opens a
     new one), never checking whether the router closed it meanwhile.
     It runs from before the SIGTERM until a new connection is refused
     (the listeners are closed: a real client goes to another router).
     Every request it sent must get its whole 200 answer, and every
     answer to a request sent once the drain began must say
     "Connection: close".
  B  a keep-alive connection left idle from before the SIGTERM: once the
     listeners close, the router closes it with a FIN (not a reset),
     without a byte.
  C  a keep-alive connection that sends part of a head during the drain
     delay and the rest after the listeners closed and everything else
     ended: it is answered, with "Connection: close".

This script sends the SIGTERM itself (the test started the router). It
prints what it saw and exits 0 when every check held, 1 otherwise.
"""
import os
import signal
import socket
import sys
import threading
import time

PORT, HOST, PID, LOG = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what, flush=True)


def request(target, extra=""):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (target, HOST, extra)).encode()


def read_response(f):
    """(status, headers with lower-case names, body) of one answer; raises
    ValueError on a connection closed before its end."""
    line = f.readline()
    if not line:
        raise ValueError("connection closed before any answer byte")
    parts = line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError("not an HTTP answer: %r" % line)
    status = int(parts[1])
    headers = {}
    while True:
        line = f.readline()
        if not line:
            raise ValueError("connection closed inside the answer head")
        if line in (b"\r\n", b"\n"):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = f.read(length)
    if len(body) != length:
        raise ValueError("answer body cut short")
    return status, headers, body


def says_close(headers):
    return "close" in headers.get("connection", "").lower()


def wait_log(text, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open(LOG, "rb") as f:
            if text.encode() in f.read():
                return True
        time.sleep(0.01)
    return False


def connect():
    s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
    return s, s.makefile("rb")


class ClientA(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.draining = threading.Event()
        self.ok = self.ok_draining = self.closed_draining = self.connections = 0
        self.errors = []
        self.kept_open = []

    def run(self):
        sock = f = None
        n = 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            n += 1
            if sock is None:
                try:
                    sock, f = connect()
                except ConnectionRefusedError:
                    return
                self.connections += 1
            draining = self.draining.is_set()
            try:
                sock.sendall(request("/?a=%d" % n))
                status, headers, body = read_response(f)
            except (OSError, ValueError) as e:
                self.errors.append("request %d: %s" % (n, e))
                sock.close()
                sock = None
                continue
            if status != 200 or not body.startswith(b"ok "):
                self.errors.append("request %d: %d %r" % (n, status, body))
            else:
                self.ok += 1
            if draining:
                self.ok_draining += 1
                if says_close(headers):
                    self.closed_draining += 1
                else:
                    self.kept_open.append(n)
            if says_close(headers):
                sock.close()
                sock = None
            time.sleep(0.02)
        self.errors.append("still running after 30 s")


def main():
    a = ClientA()
    a.start()
    deadline = time.monotonic() + 10
    while a.ok < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    check(a.ok >= 3 and not a.errors, "client A before the SIGTERM: %d ok, %s" % (a.ok, a.errors))

    conns = {}
    for name in ("B", "C"):
        s, f = connect()
        s.sendall(request("/?%s=1" % name.lower()))
        status, headers, body = read_response(f)
        check(status == 200 and not says_close(headers),
              "client %s before the SIGTERM: %d %r" % (name, status, headers))
        conns[name] = (s, f)

    os.kill(PID, signal.SIGTERM)
    check(wait_log("signal 15: draining", 10), "the router never logged the drain")
    a.draining.set()

    s, f = conns["C"]
    s.sendall(request("/?c=2")[:-2])  # all but the blank line that ends it

    check(wait_log("listeners closed", 20), "the router never closed its listeners")

    s, f = conns["B"]
    s.settimeout(10)
    try:
        got = s.recv(100)
        check(got == b"", "idle client B got %r instead of a close" % got)
    except socket.timeout:
        check(False, "idle client B was not closed within 10 s of the listeners closing")
    except OSError as e:
        check(False, "idle client B: %s instead of a clean close" % e)

    a.join(20)
    check(not a.is_alive(), "client A never saw the listeners closed")
    check(not a.errors, "client A: %s" % "; ".join(a.errors[:5]))
    check(a.ok_draining >= 1, "client A sent no request during the drain delay")
    check(not a.kept_open, "client A: answers during the drain without Connection: close: %s"
          % a.kept_open[:10])
    print("client A: %d ok over %d connections; %d during the drain, %d of them with "
          "Connection: close" % (a.ok, a.connections, a.ok_draining, a.closed_draining), flush=True)

    # Everything else has ended: a router that waited only for requests in
    # flight would be gone by now (it checks every 100 ms).
    time.sleep(0.5)
    s, f = conns["C"]
    try:
        s.sendall(b"\r\n")
        status, headers, body = read_response(f)
        check(status == 200 and says_close(headers) and body.startswith(b"ok "),
              "client C after the listeners closed: %d %r %r" % (status, headers, body))
        s.settimeout(10)
        check(s.recv(100) == b"", "client C's connection stayed open after Connection: close")
    except (OSError, ValueError) as e:
        check(False, "client C, its head partly sent when the listeners closed: %s" % e)

    print("failures: %d" % len(failures), flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
