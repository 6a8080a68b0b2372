#!/usr/bin/env python3
"""A small DNS server on loopback UDP for tests/proxy_dns.sh.

    dnsserver.py PORTFILE

Binds 127.0.0.1 on a free port, writes the port to PORTFILE and answers
by the first label of the name asked:
  silent-*  never answers (the client times out)
  late-*    answers like ok-*, but only once PORTFILE.late exists (the
            questions asked before are answered then)
  nx-*      NXDOMAIN
  anything else: A 127.0.0.1, and no AAAA record
Each question is appended to PORTFILE.log as "QTYPE NAME".
"""
import os
import socket
import struct
import sys
import threading
import time

QTYPE_A = 1


def parse_question(msg):
    """(name, qtype, end of the question) of the first question."""
    labels, i = [], 12
    while msg[i] != 0:
        n = msg[i]
        labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
        i += 1 + n
    qtype = struct.unpack("!H", msg[i + 1:i + 3])[0]
    return ".".join(labels).lower(), qtype, i + 5


def answer(msg, name, qtype, qend):
    qid = msg[:2]
    question = msg[12:qend]
    if name.startswith("nx-"):
        return qid + struct.pack("!HHHHH", 0x8183, 1, 0, 0, 0) + question
    if qtype != QTYPE_A:
        return qid + struct.pack("!HHHHH", 0x8180, 1, 0, 0, 0) + question
    record = struct.pack("!HHHIH", 0xC00C, QTYPE_A, 1, 5, 4) + socket.inet_aton("127.0.0.1")
    return qid + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question + record


def release_late(sock, flag, held, lock):
    """Sends the held late-* answers once FLAG exists."""
    while not os.path.exists(flag):
        time.sleep(0.02)
    with lock:
        for reply, peer in held:
            sock.sendto(reply, peer)
        held.clear()


def main():
    portfile = sys.argv[1]
    flag = portfile + ".late"
    held, lock = [], threading.Lock()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % sock.getsockname()[1])
    os.rename(portfile + ".tmp", portfile)
    log = open(portfile + ".log", "a", buffering=1)
    threading.Thread(target=release_late, args=(sock, flag, held, lock), daemon=True).start()
    while True:
        msg, peer = sock.recvfrom(512)
        try:
            name, qtype, qend = parse_question(msg)
        except (IndexError, struct.error):
            continue
        log.write("%d %s\n" % (qtype, name))
        if name.startswith("silent-"):
            continue
        reply = answer(msg, name, qtype, qend)
        with lock:
            if name.startswith("late-") and not os.path.exists(flag):
                held.append((reply, peer))
                continue
        sock.sendto(reply, peer)


if __name__ == "__main__":
    main()
