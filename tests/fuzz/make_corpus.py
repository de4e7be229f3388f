#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_translate into tests/fuzz/corpus/.

Each file is one control byte followed by an IPv4 packet (see the top of
fuzz_translate.cpp): bit 0 = direction (0 outbound, 1 inbound), bit 1 = steer
towards a session an earlier input created, bits 2..7 = clock step (x 50 ms).
Valid packets carry correct checksums (RFC 1071, computed here); a few
malformed ones are included on purpose. Standard library only.

    python3 tests/fuzz/make_corpus.py            # (re)writes tests/fuzz/corpus/
    python3 tests/fuzz/make_corpus.py OUT_DIR
"""

import os
import struct
import sys

OUTBOUND, INBOUND, STEER = 0, 1, 2

INSIDE = "100.64.1.2"
INSIDE2 = "100.64.7.9"
SERVER = "203.0.113.53"
ROUTER = "192.0.2.254"
PUBLIC = "198.51.100.1"
OUTSIDER = "10.9.9.9"  # not in the subscriber prefix


def addr(text):
    return bytes(int(x) for x in text.split("."))


def csum(data, initial=0):
    """RFC 1071 checksum field value for data (big-endian words)."""
    if len(data) % 2:
        data += b"\0"
    s = initial
    for (w,) in struct.iter_unpack("!H", data):
        s += w
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip(proto, payload, src=INSIDE, dst=SERVER, ident=0x1234, ttl=64, mf=False, offset=0, options=b"",
       total=None, fix=True, ihl=None):
    assert len(options) % 4 == 0
    hlen = 20 + len(options)
    ihl_words = hlen // 4 if ihl is None else ihl
    total = hlen + len(payload) if total is None else total
    flags = (0x2000 if mf else 0) | (offset // 8)
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl_words, 0, total, ident, flags, ttl, proto, 0, addr(src), addr(dst))
    hdr += options
    if fix:
        hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def pseudo(src, dst, proto, length):
    s = 0
    for (w,) in struct.iter_unpack("!H", addr(src) + addr(dst)):
        s += w
    return s + proto + length


def udp(sport, dport, payload=b"\xab" * 16, src=INSIDE, dst=SERVER, zero_csum=False):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    if not zero_csum:
        c = csum(seg, pseudo(src, dst, 17, len(seg))) or 0xFFFF
        seg = seg[:6] + struct.pack("!H", c) + seg[8:]
    return seg


def tcp(sport, dport, flags, payload=b"", src=INSIDE, dst=SERVER, seq=1000, ack=0, options=b""):
    assert len(options) % 4 == 0
    off = (20 + len(options)) // 4
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, 65535, 0, 0) + options + payload
    c = csum(seg, pseudo(src, dst, 6, len(seg)))
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def icmp(type_, code, rest, payload):
    msg = struct.pack("!BBH", type_, code, 0) + rest + payload
    return msg[:2] + struct.pack("!H", csum(msg)) + msg[4:]


def echo(type_, ident, seq, payload=b"\x5a" * 32):
    return icmp(type_, 0, struct.pack("!HH", ident, seq), payload)


def error(type_, code, quoted):
    return icmp(type_, code, b"\0\0\0\0", quoted)


SYN, ACK, FIN, RST, PSH = 0x02, 0x10, 0x01, 0x04, 0x08


def udp_pkt(sport, dport, src=INSIDE, dst=SERVER, payload=b"\xab" * 16, **kw):
    return ip(17, udp(sport, dport, payload, src, dst, kw.pop("zero_csum", False)), src=src, dst=dst, **kw)


def tcp_pkt(sport, dport, flags, src=INSIDE, dst=SERVER, payload=b"", options=b"", **kw):
    return ip(6, tcp(sport, dport, flags, payload, src, dst, options=options), src=src, dst=dst, **kw)


def fragments(packet, chunk):
    """Splits an IPv4 packet (no options) into fragments of `chunk` payload bytes."""
    hlen = (packet[0] & 15) * 4
    header, data = packet[:hlen], packet[hlen:]
    proto = packet[9]
    ident = struct.unpack("!H", packet[4:6])[0]
    src = ".".join(str(b) for b in packet[12:16])
    dst = ".".join(str(b) for b in packet[16:20])
    out = []
    for off in range(0, len(data), chunk):
        part = data[off:off + chunk]
        out.append(ip(proto, part, src=src, dst=dst, ident=ident, mf=off + chunk < len(data), offset=off))
    assert header[9] == proto
    return out


def control(direction, steer=False, step=1):
    return bytes([direction | (STEER if steer else 0) | (step << 2)])


def seeds():
    s = {}

    def add(name, direction, packet, steer=False, step=1):
        s[name] = control(direction, steer, step) + packet

    # UDP and TCP from a subscriber, and replies steered back at them.
    add("udp_out", OUTBOUND, udp_pkt(40000, 53))
    add("udp_out_no_checksum", OUTBOUND, udp_pkt(40001, 53, zero_csum=True))
    add("udp_out_empty", OUTBOUND, udp_pkt(40002, 123, payload=b""))
    add("udp_in_reply", INBOUND, udp_pkt(53, 40000, src=SERVER, dst=PUBLIC), steer=True)
    add("udp_in_unsolicited", INBOUND, udp_pkt(5000, 1024, src=SERVER, dst=PUBLIC))
    add("udp_out_again", OUTBOUND, udp_pkt(40000, 53), steer=True)
    add("udp_out_hairpin", OUTBOUND, udp_pkt(41000, 2000, src=INSIDE2, dst=PUBLIC, ident=0x1235), steer=True)
    add("udp_out_not_subscriber", OUTBOUND, udp_pkt(40000, 53, src=OUTSIDER))
    add("tcp_syn_out", OUTBOUND, tcp_pkt(51000, 443, SYN, options=b"\x02\x04\x05\xb4"))
    add("tcp_synack_in", INBOUND, tcp_pkt(443, 51000, SYN | ACK, src=SERVER, dst=PUBLIC), steer=True)
    add("tcp_ack_out", OUTBOUND, tcp_pkt(51000, 443, ACK, payload=b"GET / HTTP/1.0\r\n\r\n"), steer=True)
    add("tcp_ack_in", INBOUND, tcp_pkt(443, 51000, ACK | PSH, src=SERVER, dst=PUBLIC, payload=b"x" * 40),
        steer=True)
    add("tcp_fin_out", OUTBOUND, tcp_pkt(51000, 443, FIN | ACK), steer=True)
    add("tcp_fin_in", INBOUND, tcp_pkt(443, 51000, FIN | ACK, src=SERVER, dst=PUBLIC), steer=True)
    add("tcp_rst_out", OUTBOUND, tcp_pkt(51000, 443, RST), steer=True)
    add("tcp_rst_in", INBOUND, tcp_pkt(443, 51000, RST | ACK, src=SERVER, dst=PUBLIC), steer=True)
    add("tcp_ack_no_session", OUTBOUND, tcp_pkt(52000, 80, ACK))
    add("tcp_syn_in_unsolicited", INBOUND, tcp_pkt(4444, 1024, SYN, src=SERVER, dst=PUBLIC))
    add("tcp_syn_hairpin", OUTBOUND, tcp_pkt(52001, 80, SYN, src=INSIDE2, dst=PUBLIC, ident=0x0101), steer=True)

    # ICMP queries.
    add("icmp_echo_request_out", OUTBOUND, ip(1, echo(8, 0x4242, 1), src=INSIDE, dst=SERVER))
    add("icmp_echo_reply_in", INBOUND, ip(1, echo(0, 0x4242, 1), src=SERVER, dst=PUBLIC), steer=True)
    add("icmp_echo_reply_in_unsteered", INBOUND, ip(1, echo(0, 0x4242, 1), src=SERVER, dst=PUBLIC))
    add("icmp_timestamp_out", OUTBOUND, ip(1, icmp(13, 0, struct.pack("!HH", 7, 1), b"\0" * 12)))
    add("icmp_router_advert", OUTBOUND, ip(1, icmp(9, 0, b"\0" * 4, b"\0" * 8)))

    # ICMP errors about sessions (RFC 5508), inbound and outbound.
    quoted_udp = udp_pkt(1024, 53, src=PUBLIC, dst=SERVER, payload=b"q" * 12)
    add("icmp_unreach_udp_in", INBOUND, ip(1, error(3, 3, quoted_udp), src=SERVER, dst=PUBLIC), steer=True)
    quoted_tcp = tcp_pkt(1024, 443, SYN, src=PUBLIC, dst=SERVER)
    add("icmp_ttl_tcp_in_8_bytes", INBOUND, ip(1, error(11, 0, quoted_tcp[:28]), src=ROUTER, dst=PUBLIC),
        steer=True)
    add("icmp_unreach_tcp_in_whole", INBOUND, ip(1, error(3, 1, quoted_tcp), src=ROUTER, dst=PUBLIC), steer=True)
    quoted_echo = ip(1, echo(8, 1024, 3, b"p" * 8), src=PUBLIC, dst=SERVER)
    add("icmp_ttl_echo_in", INBOUND, ip(1, error(11, 0, quoted_echo), src=ROUTER, dst=PUBLIC), steer=True)
    quoted_in = udp_pkt(53, 40000, src=SERVER, dst=INSIDE)
    add("icmp_unreach_udp_out", OUTBOUND, ip(1, error(3, 3, quoted_in), src=INSIDE, dst=SERVER), steer=True)
    add("icmp_frag_needed_in", INBOUND, ip(1, icmp(3, 4, struct.pack("!HH", 0, 1400), quoted_udp[:28]),
                                             src=ROUTER, dst=PUBLIC), steer=True)

    # Passthrough protocols.
    add("esp_out", OUTBOUND, ip(50, struct.pack("!II", 0xC0FFEE01, 1) + bytes(range(32))))
    add("esp_in", INBOUND, ip(50, struct.pack("!II", 0xC0FFEE02, 7) + bytes(32), src=SERVER, dst=PUBLIC))
    add("gre_v0_plain", OUTBOUND, ip(47, struct.pack("!BBH", 0, 0, 0x0800) + bytes(20)))
    add("gre_v0_key", OUTBOUND, ip(47, struct.pack("!BBHI", 0x20, 0, 0x0800, 0xABCD) + bytes(20)))
    add("gre_v0_csum_key_seq", OUTBOUND, ip(47, struct.pack("!BBHHHII", 0xB0, 0, 0x0800, 0, 0, 5, 9) + bytes(20)))
    add("gre_v1_pptp", OUTBOUND, ip(47, struct.pack("!BBHHHII", 0x30, 0x81, 0x880B, 16, 0x1234, 1, 0) + bytes(16)))
    add("gre_v1_pptp_in", INBOUND,
        ip(47, struct.pack("!BBHHHI", 0x30, 0x01, 0x880B, 16, 0x1234, 2) + bytes(16), src=SERVER, dst=PUBLIC))

    # Fragments: in order, and a later fragment before its first.
    whole = udp_pkt(40100, 9999, payload=bytes(range(256)) * 2, ident=0x2222)
    frags = fragments(whole, 200)
    for i, f in enumerate(frags):
        add(f"frag_udp_out_{i}", OUTBOUND, f, step=0)
    tcp_whole = tcp_pkt(40200, 80, SYN, payload=b"t" * 300, ident=0x3333)
    tfrags = fragments(tcp_whole, 160)
    add("frag_tcp_out_later_first", OUTBOUND, tfrags[1], step=0)
    add("frag_tcp_out_first", OUTBOUND, tfrags[0], step=0)
    reply = udp_pkt(9999, 40100, src=SERVER, dst=PUBLIC, payload=b"r" * 400, ident=0x4444)
    for i, f in enumerate(fragments(reply, 200)):
        add(f"frag_udp_in_{i}", INBOUND, f, steer=(i == 0), step=0)

    # IPv4 options and Ethernet padding.
    add("udp_options_router_alert", OUTBOUND, ip(17, udp(40300, 53), options=b"\x94\x04\x00\x00"))
    add("tcp_options_max_ihl", OUTBOUND, ip(6, tcp(40301, 80, SYN), options=b"\x01" * 40))
    add("udp_ethernet_padding", OUTBOUND, udp_pkt(40302, 53, payload=b"") + b"\0" * 18)

    # Malformed on purpose.
    good = udp_pkt(40400, 53)
    add("bad_empty", OUTBOUND, b"")
    add("bad_ipv6", OUTBOUND, b"\x60" + good[1:])
    add("bad_truncated_header", OUTBOUND, good[:12])
    add("bad_ihl_4", OUTBOUND, b"\x44" + good[1:])
    add("bad_ihl_beyond", OUTBOUND, ip(17, b"", ihl=15))
    add("bad_total_length", OUTBOUND, ip(17, udp(1, 2), total=200))
    add("bad_ip_checksum", OUTBOUND, good[:8] + b"\x3f" + good[9:])
    add("bad_udp_checksum", OUTBOUND, good[:-1] + b"\x00")
    add("bad_tcp_offset", OUTBOUND, ip(6, tcp(1, 2, SYN)[:12] + b"\xf0" + tcp(1, 2, SYN)[13:]))
    add("bad_icmp_checksum", OUTBOUND, ip(1, echo(8, 1, 1)[:-1] + b"\x00"))
    add("bad_tiny_fragment", OUTBOUND, ip(6, b"\0" * 8, mf=True))
    add("bad_gre_v2", OUTBOUND, ip(47, struct.pack("!BBHI", 0x20, 2, 0x0800, 1)))
    add("bad_gre_v1_no_key", OUTBOUND, ip(47, struct.pack("!BBH", 0, 1, 0x880B) + bytes(8)))
    first_error = ip(1, error(3, 3, udp_pkt(1, 2, src=SERVER, dst=INSIDE)), src=INSIDE, dst=SERVER)
    add("bad_error_in_error", INBOUND, ip(1, error(11, 0, first_error), src=ROUTER, dst=PUBLIC))
    add("bad_error_short_quote", INBOUND, ip(1, error(3, 3, quoted_udp[:24]), src=SERVER, dst=PUBLIC))
    return s


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "corpus")
    os.makedirs(out, exist_ok=True)
    corpus = seeds()
    for stale in os.listdir(out):
        if stale not in corpus:
            os.remove(os.path.join(out, stale))
    for name, data in sorted(corpus.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    print(f"wrote {len(corpus)} seeds to {out}")


if __name__ == "__main__":
    main()
