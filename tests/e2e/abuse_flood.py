#!/usr/bin/python3
"""Abuse traffic for the end-to-end abuse test (tests/e2e/abuse_e2e.sh).
Standard library only: frames are built by hand so that tens of thousands
of them cost well under a second of Python, and sent paced.

  spoof IFACE SRCMAC DSTMAC SECONDS RATE SPEC [SPEC...]
      The internet side: Ethernet frames with random spoofed IPv4 sources
      (16.0.0.0-95.255.255.255) and random source ports, written straight
      onto IFACE towards passgate's outside port (DSTMAC), every kind
      interleaved at random, RATE frames a second for at most SECONDS.
      SPEC is KIND:ADDR[,ADDR...]:PORT:COUNT, PORT 0 for a random port:
        syn    TCP SYN
        ack    TCP ACK without SYN (no session can start with it)
        udp    UDP datagram
        frag1  first fragment (MF, offset 0) of a 1208-byte UDP datagram,
               random IP ID, from one of 64 fixed source endpoints that
               each send one whole datagram first (so that every first
               fragment meets a live session and is one more fragment flow)
        fragn  a later fragment (offset > 0) of a UDP datagram whose first
               fragment never comes, random IP ID; PORT is ignored
        pin    one first fragment (fixed source, port and IP ID, after one
               whole datagram from that endpoint) sent COUNT times, spread
               evenly over the flood: it keeps refreshing one fragment flow
      Prints one JSON line: start and end (unix seconds), frames sent per
      kind, send errors.
  With AT=<unix seconds> in the environment, both modes prepare first and
  start at that time.

  hammer SERVER SECONDS RATE SOCKETS
      The inside: a subscriber opening new flows at RATE a second for
      SECONDS: UDP from SOCKETS source ports in turn, each datagram to the
      next destination port (a new flow every time), and every tenth a TCP
      SYN (non-blocking connect) to a new port. Prints one JSON line.
"""
import json
import os
import random
import socket
import struct
import sys
import time

KINDS = ("syn", "ack", "udp", "frag1", "fragn", "pin")
FRAG_SOURCES = 64


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip_header(src, dst, proto, payload_len, ident, frag_field):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident, frag_field, 64, proto, 0, src, dst)
    return h[:10] + struct.pack("!H", checksum(h)) + h[12:]


def l4_checksum(src, dst, proto, segment):
    c = checksum(src + dst + struct.pack("!BBH", 0, proto, len(segment)) + segment)
    return c if c or proto != 17 else 0xFFFF


def tcp_segment(src, dst, sport, dport, flags):
    seq = random.getrandbits(32)
    ack = random.getrandbits(32) if flags & 0x10 else 0
    h = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    c = l4_checksum(src, dst, 6, h)
    return h[:16] + struct.pack("!H", c) + h[18:]


def udp_datagram(src, dst, sport, dport, payload):
    h = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    c = l4_checksum(src, dst, 17, h + payload)
    return h[:6] + struct.pack("!H", c) + payload


def random_source():
    return struct.pack("!I", random.randrange(0x10000000, 0x60000000))


def build(kind, dst_text, port, src=None, sport=None):
    src = src or random_source()
    dst = socket.inet_aton(dst_text)
    sport = sport or random.randrange(1024, 65536)
    dport = port or random.randrange(1, 65536)
    ident = random.getrandbits(16)
    if kind in ("syn", "ack"):
        seg = tcp_segment(src, dst, sport, dport, 0x02 if kind == "syn" else 0x10)
        return ip_header(src, dst, 6, len(seg), ident, 0) + seg
    if kind == "udp":
        seg = udp_datagram(src, dst, sport, dport, b"abuse-flood-udp!")
        return ip_header(src, dst, 17, len(seg), ident, 0) + seg
    if kind == "frag1":
        full = udp_datagram(src, dst, sport, dport, b"F" * 1200)
        part = full[:72]  # UDP header and 64 bytes: MF set, offset 0
        return ip_header(src, dst, 17, len(part), ident, 0x2000) + part
    if kind == "fragn":
        part = random.randbytes(64)
        offset = random.randrange(1, 150)  # in 8-byte units
        mf = 0x2000 if random.random() < 0.5 else 0
        return ip_header(src, dst, 17, len(part), ident, mf | offset) + part
    raise SystemExit(f"unknown kind {kind}")


def wait_for_start():
    """With AT=<unix seconds> in the environment, start then (after the
    frames are built), so that the test's timeline does not depend on how
    long building takes on a loaded machine."""
    at = float(os.environ.get("AT", "0"))
    if at > time.time():
        time.sleep(at - time.time())


def mac(text):
    return bytes(int(x, 16) for x in text.split(":"))


def spoof(iface, srcmac, dstmac, seconds, rate, specs):
    eth = mac(dstmac) + mac(srcmac) + b"\x08\x00"
    frames, priming = [], []
    for spec in specs:
        kind, addrs, port, count = spec.split(":")
        if kind not in KINDS:
            raise SystemExit(f"unknown kind {kind}")
        if kind == "pin":
            continue
        addrs = addrs.split(",")
        # First fragments come from a few fixed endpoints that each send one
        # whole datagram first: they then hit a live session, and every new
        # IP ID is one more fragment flow to track.
        ends = [(random_source(), random.randrange(1024, 65536), random.choice(addrs)) for _ in range(FRAG_SOURCES)]
        if kind == "frag1":
            priming += [("prime", eth + build("udp", d, int(port), src, sport)) for src, sport, d in ends]
        for _ in range(int(count)):
            if kind == "frag1":
                src, sport, d = random.choice(ends)
                frames.append((kind, eth + build(kind, d, int(port), src, sport)))
            else:
                frames.append((kind, eth + build(kind, random.choice(addrs), int(port))))
    random.shuffle(frames)
    for spec in specs:  # one first fragment, the same every time, spread evenly
        kind, addrs, port, count = spec.split(":")
        if kind == "pin":
            src, sport, d = random_source(), random.randrange(1024, 65536), addrs.split(",")[0]
            priming.append(("prime", eth + build("udp", d, int(port), src, sport)))
            pin = eth + build("frag1", d, int(port), src, sport)
            step = max(1, len(frames) // int(count))
            for k in range(int(count)):
                frames.insert(k * (step + 1), ("pin", pin))
    frames = priming + frames
    wait_for_start()
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sent = {}
    errors = 0
    start = time.time()
    deadline = start + seconds
    for i, (kind, frame) in enumerate(frames):
        if i % 32 == 0:
            now = time.time()
            if now > deadline:
                break
            wait = start + i / rate - now
            if wait > 0:
                time.sleep(wait)
        try:
            s.send(frame)
            sent[kind] = sent.get(kind, 0) + 1
        except OSError:  # ENOBUFS: the veth backlog is full; count it, go on
            errors += 1
            time.sleep(0.001)
    end = time.time()
    print(json.dumps({"start": start, "end": end, "sent": sent, "total": sum(sent.values()), "send_errors": errors}))
    return 0


def hammer(server, seconds, rate, sockets):
    udp = []
    for _ in range(sockets):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("0.0.0.0", 0))
        u.setblocking(False)
        udp.append(u)
    wait_for_start()
    tcp = []
    counts = {"udp": 0, "tcp": 0, "errors": 0}
    start = time.time()
    end = start + seconds
    i = 0
    while True:
        if i % 32 == 0:
            now = time.time()
            if now >= end:
                break
            wait = start + i / rate - now
            if wait > 0:
                time.sleep(wait)
        try:
            if i % 10 == 9:
                t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                t.setblocking(False)
                t.connect_ex((server, 20000 + (i // 10) % 40000))
                tcp.append(t)
                if len(tcp) > 256:
                    tcp.pop(0).close()
                counts["tcp"] += 1
            else:
                udp[i % sockets].sendto(b"hammer", (server, 10000 + i % 50000))
                counts["udp"] += 1
        except OSError:
            counts["errors"] += 1
        i += 1
    for t in tcp:
        t.close()
    print(json.dumps({"start": start, "end": time.time(), **counts}))
    return 0


def main(argv):
    if len(argv) >= 7 and argv[1] == "spoof":
        return spoof(argv[2], argv[3], argv[4], float(argv[5]), float(argv[6]), argv[7:])
    if len(argv) == 6 and argv[1] == "hammer":
        return hammer(argv[2], float(argv[3]), float(argv[4]), int(argv[5]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
