#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_ops (tests/fuzz/fuzz_ops.cpp): one scenario
per protocol or feature, each a sequence of operations on one engine.

The encoding is the one at the top of fuzz_ops.cpp: an opcode byte, then a
fixed number of argument bytes. Ring picks count back from the most recent
entry (0 = the flow, packet or Call ID the engine emitted last). Standard
library only.

    python3 tests/fuzz/make_ops_corpus.py                  # named seeds into tests/fuzz/corpus-ops/
    python3 tests/fuzz/make_ops_corpus.py OUT_DIR
    python3 tests/fuzz/make_ops_corpus.py --merge FUZZ_OPS [MORE_DIRS...]
        the seeds, plus the inputs of MORE_DIRS (e.g. a longer campaign's
        corpus) that add edge coverage to them (libFuzzer's -merge=1), into
        tests/fuzz/corpus-ops/: seeds by name, the others by their SHA-1.
        FUZZ_OPS is build-fuzz/tests/fuzz/fuzz_ops.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

OPS = ["udp_out", "tcp_out", "icmp_out", "reply_in", "random_in", "icmp_err_in", "icmp_err_out", "fragments",
       "esp_out", "esp_in", "gre0", "gre1", "pptp_connect", "pptp_out", "pptp_in", "ike", "time", "expire_some",
       "reconfigure", "drain", "hairpin", "out_again"]
ARGS = {"udp_out": 3, "tcp_out": 3, "icmp_out": 2, "reply_in": 3, "random_in": 3, "icmp_err_in": 3,
        "icmp_err_out": 3, "fragments": 5, "esp_out": 2, "esp_in": 2, "gre0": 2, "gre1": 2, "pptp_connect": 2,
        "pptp_out": 4, "pptp_in": 4, "ike": 2, "time": 1, "expire_some": 1, "reconfigure": 1, "drain": 0,
        "hairpin": 3, "out_again": 2}
assert len(OPS) == 22 and set(OPS) == set(ARGS)

# Indices into the sets of fuzz_ops.cpp.
SUB_A = [0, 1, 2, 3]         # 100.64.0.x, pool a (3: statics C and D)
NO_POOL = 4                  # 100.127.0.7, in no pool: only static A reaches it
SUB_B = [5, 6, 7]            # 100.64.1.x, pool b then c (6: static E, 7: static B)
IN_PORT = {40000: 0, 40001: 1, 22: 2, 443: 3, 500: 4, 4500: 5, 80: 6, 5060: 7}
REM_PORT = {53: 0, 80: 1, 443: 2, 1723: 3, 500: 4, 4500: 5, 1701: 6, 5060: 7}
PUB = {"198.51.100.1": 0, "198.51.100.2": 1, "198.51.100.3": 2, "198.51.100.4": 3, "198.51.100.5": 4,
       "198.51.100.9": 5, "198.51.100.77": 6}
PUB_PORT = {1024: 0, 1025: 1, 1031: 2, 1032: 3, 1055: 4, 4496: 5, 4500: 6, 4503: 7, 4527: 8, 500: 9, 1701: 10,
            8080: 11, 5060: 12, 2222: 13, 443: 14, 1088: 15}
REM_SRC_PORT = {53: 0, 80: 1, 443: 2, 1723: 3, 500: 4, 4500: 5, 1701: 6, 33333: 7}
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
# PPTP messages: client side (pptp_out) and server side (pptp_in) indices.
SCCRQ, ECHO_RQ, OCRQ, ICRP, ICCN, CCRQ, CDN_C, SLI_C = range(8)
SCCRP, STOP_RP, ECHO_RP, OCRP, ICRQ, CDN_S, WEN, SLI_S = range(8)
# Error kinds for icmp_err_in/out: port unreachable, host unreachable, fragmentation needed, TTL exceeded.
PORT_UNREACH, HOST_UNREACH, FRAG_NEEDED, TTL_EXCEEDED = range(4)
QUOTE_28 = 4


class Seq:
    def __init__(self):
        self.data = bytearray()

    def op(self, name, *args):
        assert len(args) == ARGS[name], (name, args)
        self.data.append(OPS.index(name))
        self.data.extend(a & 0xFF for a in args)
        return self

    # Argument packing, named as in fuzz_ops.cpp.
    @staticmethod
    def who(sub, remote=0, extra=0):
        return sub | remote << 3 | extra

    def udp(self, sub, sport, dport, remote=0, length=8, zero_csum=False):
        return self.op("udp_out", self.who(sub, remote, 0x20 if zero_csum else 0),
                       IN_PORT[sport] | REM_PORT[dport] << 3, length)

    def tcp(self, sub, sport, dport, flags, remote=0, data=False):
        return self.op("tcp_out", self.who(sub, remote), IN_PORT[sport] | REM_PORT[dport] << 3,
                       flags | (0x40 if data else 0))

    def ping(self, sub, remote=0, ident=0, timestamp=False, reply=False):
        return self.op("icmp_out", self.who(sub, remote), ident | (4 if timestamp else 0) | (8 if reply else 0))

    def reply(self, pick=0, flags=ACK, other_addr=False, other_port=False, length=8):
        return self.op("reply_in", pick, (1 if other_addr else 0) | (2 if other_port else 0) | length << 2, flags)

    def inbound(self, public, port, tcp=False, remote=0, rport=33333, flags=SYN):
        return self.op("random_in", PUB[public] | PUB_PORT[port] << 3 | (0x80 if tcp else 0),
                       remote | REM_SRC_PORT[rport] << 2, flags)

    def time(self, ms):
        for unit, code in ((10000, 3), (1000, 2), (100, 1), (1, 0)):
            if ms >= unit and ms % unit == 0 and ms // unit <= 64:
                return self.op("time", code << 6 | (ms // unit - 1))
        raise ValueError(ms)

    def bytes(self):
        return bytes(self.data)


def seeds():
    s = {}

    # UDP: three subscribers of pool a, replies, endpoint-independent
    # filtering from another remote, refresh, expiry and the port hold.
    q = Seq()
    for sub in (0, 1, 2):
        q.udp(sub, 40000, 53)
    q.reply(0).reply(1, other_addr=True).reply(2, other_port=True)
    q.op("out_again", 0, 8).udp(0, 40000, 443, remote=1).udp(0, 40001, 53, zero_csum=True)
    q.time(100).time(60000).reply(0).time(300000).time(100000).udp(0, 40000, 53).reply(0)
    s["udp"] = q.bytes()

    # UDP in pool b (address-dependent filtering) and a reply from an unknown remote.
    q = Seq().udp(5, 40000, 53, remote=2).reply(0).reply(0, other_addr=True).udp(6, 40001, 80, remote=3)
    q.reply(0, other_port=True).udp(5, 40000, 80, remote=2).reply(0, other_port=True)
    s["udp_filtering_b"] = q.bytes()

    # TCP: SYN out, SYN-ACK in, data, FIN both ways, a new SYN on the tuple,
    # RST, then the transitory and established timeouts.
    q = Seq().tcp(1, 40000, 443, SYN).reply(0, SYN | ACK).op("out_again", 0, ACK | 0x40).reply(0, ACK | PSH)
    q.op("out_again", 0, FIN | ACK).reply(0, FIN | ACK).op("out_again", 0, ACK).time(10000)
    q.op("out_again", 0, SYN).reply(0, SYN | ACK).reply(0, RST).time(250000)
    q.tcp(2, 40001, 80, SYN).reply(0, SYN | ACK).reply(0, FIN | ACK).time(640000).time(640000)
    q.tcp(2, 40001, 80, ACK).tcp(3, 40000, 80, SYN | FIN)
    s["tcp"] = q.bytes()

    # ICMP queries: echo and timestamp out, replies, an echo reply out with no
    # session, identifiers that collide between subscribers.
    q = Seq().ping(0).reply(0).ping(1).reply(0).ping(0, ident=1, timestamp=True).reply(0)
    q.ping(2, reply=True).ping(5, remote=1, ident=2).reply(0).time(61000).reply(1)
    s["icmp_query"] = q.bytes()

    # ICMP errors both ways (RFC 5508), whole and 28-byte quotes, and an
    # error about a session sent by another inside host (spoofing).
    q = Seq().udp(0, 40000, 53).reply(0).tcp(1, 40000, 443, SYN).reply(0, SYN | ACK).ping(2).reply(0)
    q.op("icmp_err_in", 0, PORT_UNREACH, 4).op("icmp_err_in", 1, TTL_EXCEEDED | QUOTE_28, 1)
    q.op("icmp_err_in", 2, FRAG_NEEDED, 2).op("icmp_err_out", 0, PORT_UNREACH, 0)
    q.op("icmp_err_out", 1, HOST_UNREACH | QUOTE_28, 0).op("icmp_err_out", 2, PORT_UNREACH, 0x80 | 3)
    s["icmp_errors"] = q.bytes()

    # Fragments: outbound in order, out of order (held then released),
    # inbound to a live mapping, one missing (the hold times out), too large
    # to hold, and more datagrams than fragment flows.
    q = Seq()
    q.op("fragments", 0 << 2 | 0, 100, 10 | 0 << 5, 0, 0)                 # UDP out, in order
    q.op("fragments", 1 << 2 | 2 | 1 << 5, 120, 8 | 1 << 5, 1, 0).op("drain")  # TCP out, rotated
    q.op("fragments", 1 | 0 << 2 | 2 << 5, 90, 5, 8, 0).op("drain")         # inbound, reversed
    q.op("fragments", 2 << 2 | 3 << 5, 200, 15, 1, 0b1).time(3000)          # first one missing
    q.op("fragments", 0, 250, 63, 9, 0).op("drain")                           # large fragments
    for k in range(5):
        q.op("fragments", k << 2 | (k & 3) << 5, 40, 3, 16, 0)
    q.op("drain").time(2000)
    s["fragments"] = q.bytes()

    # ESP: two clients behind one public address to one server. The second
    # client's new SPI is held while the first learns; the server's answer
    # binds the first, the held packet is released and the second learns.
    q = Seq()
    for sub in (0, 1, 2, 3):
        q.op("esp_out", sub, 0)
    q.op("esp_in", PUB["198.51.100.1"], 0).op("drain").op("esp_in", PUB["198.51.100.2"], 1).op("drain")
    q.op("esp_out", 0, 1).op("esp_in", PUB["198.51.100.1"], 2).op("esp_out", 1, 2).op("time", 1 << 6 | 20)
    q.op("esp_in", PUB["198.51.100.1"], 3).op("drain").time(61000).op("esp_in", PUB["198.51.100.1"], 0)
    s["esp"] = q.bytes()

    # ESP while subscribers come and go: a held packet whose subscriber had no
    # other state, learn windows that time out, SAs that expire (issue 11 point 2).
    q = Seq().op("esp_out", 5, 0).op("esp_out", 6, 1).op("esp_out", 7, 2).op("expire_some", 7 << 2)
    q.op("esp_out", 6, 1).op("time", 1 << 6 | 4).op("esp_in", PUB["198.51.100.3"], 4).op("drain")
    q.time(61000).op("esp_out", 7, 3).time(1000).time(61000).op("drain")
    s["esp_held_subscriber"] = q.bytes()

    # GRE version 0: a tunnel out and back, a second subscriber on the same
    # public address to the same server (refused), key and sequence flags,
    # expiry.
    q = Seq().op("gre0", 0, 0).op("gre0", 0 | 0, 0b011).op("gre0", PUB["198.51.100.1"], 1)
    q.op("gre0", PUB["198.51.100.2"], 0b111).op("gre0", 1, 0).op("gre0", 2, 0).op("gre0", 3, 0).op("gre0", 4, 0)
    q.op("gre0", 0 | 1 << 3, 0b110).time(61000).op("gre0", PUB["198.51.100.1"], 1)
    s["gre0"] = q.bytes()

    # PPTP: control connection, Outgoing-Call-Request, the server's reply
    # quoting the translated Call ID, GRE both ways, Set-Link-Info,
    # WAN-Error-Notify, Call-Clear-Request; a second client with the same
    # Call ID to the same server.
    q = Seq().op("pptp_connect", 0 | 1 << 3, 0).op("pptp_out", 0 | 1 << 3, 0, SCCRQ, 0)
    q.op("pptp_in", 0, SCCRP, 0x80, 0).op("pptp_out", 0 | 1 << 3, 0, OCRQ, 0).op("pptp_in", 0, OCRP, 0, 0)
    q.op("gre1", 0 | 1 << 3, 0x70).op("gre1", 0x80, 0).op("pptp_in", 0, SLI_S, 0, 0).op("pptp_in", 0, WEN, 0, 0)
    q.op("pptp_connect", 1 | 1 << 3, 1).op("pptp_out", 1 | 1 << 3, 1, OCRQ, 0).op("pptp_in", 0, OCRP, 0, 0)
    q.op("gre1", 0x80, 0).op("gre1", 0x80, 1).op("gre1", 0x80 | 0, 0x80 | 5)
    q.op("pptp_out", 0 | 1 << 3, 0, CCRQ, 0).op("pptp_out", 1 | 1 << 3, 1, CDN_C, 0).op("gre1", 0x80, 1)
    s["pptp"] = q.bytes()

    # PPTP control messages split across two TCP segments (the engine drops
    # what does not start on a message boundary; the client's TCP resends
    # it), two messages in one segment, a segment overlapping the last one
    # sent, one after a gap, a garbage prefix, incoming calls (ICRQ / ICRP /
    # ICCN), calls that outlive their control connection, and more calls
    # than fit. pptp_out's first argument: sub | server << 3 | stream mode << 5
    # (0 new data, 1 resend what was not forwarded, 2 overlap, 3 gap).
    NEW, RESEND, OVERLAP, GAP = 0, 1 << 5, 2 << 5, 3 << 5
    q = Seq().op("pptp_connect", 2 | 0 << 3, 2).op("pptp_out", 2, 2, OCRQ, 64).op("pptp_out", 2 | RESEND, 2, 0, 0)
    q.op("pptp_out", 2, 2, OCRQ | 1 << 3 | 0x20, 200).op("pptp_out", 2 | RESEND, 2, 0, 0)
    q.op("pptp_in", 0, OCRP | 0x20, 0, 100).op("pptp_in", 0, ICRQ, 0x80 | 9, 0)
    q.op("pptp_out", 2, 2, ICRP | 3 << 3, 0).op("pptp_out", 2, 2, ICCN, 0)
    q.op("pptp_out", 2 | OVERLAP, 2, OCRQ | 2 << 3, 0).op("pptp_out", 2 | GAP, 2, OCRQ | 2 << 3, 0)
    q.op("pptp_out", 2, 2, OCRQ | 0x40, 0).op("pptp_out", 2, 2, SLI_C | 2 << 3, 150).op("pptp_out", 2 | RESEND, 2, 0, 90)
    for sub in (0, 1, 3, 5):
        q.op("pptp_connect", sub, 3).op("pptp_out", sub, 3, OCRQ | (sub & 3) << 3, 0)
        q.op("pptp_out", sub, 3, OCRQ | ((sub + 1) & 3) << 3 | 0x20, 0)
    q.op("gre1", 2, 7).time(61000).op("gre1", 0x80, 0).tcp(2, 40000, 1723, RST).time(250000)
    s["pptp_split"] = q.bytes()

    # IKE on 500, NAT-T on 4500 (keepalives, non-ESP marker) and L2TP on
    # 1701: port preservation for the first subscriber on a public address,
    # a block port for the next, pool b where 4500 lies inside a block, the
    # static mapping on 198.51.100.2:4500, replies.
    q = Seq()
    for sub in (0, 1, 2, 3, 5, 6):
        q.op("ike", sub, 0).op("ike", sub, 1)
    q.op("ike", 0, 4).op("ike", 1, 5).op("ike", 0, 8 | 1).op("ike", 4, 2).op("ike", 7, 2).op("ike", 0, 4 | 2)
    q.op("ike", 0, 3).udp(3, 4500, 4500).inbound("198.51.100.2", 4500, rport=4500).time(130000)
    q.op("ike", 0, 4).time(300000)
    s["ike_nat_t_l2tp"] = q.bytes()

    # Port forwards: inbound to each static mapping from several remotes (a
    # spoofed flood at one forward counts against its inside host; issue 11
    # point 1), replies from the inside host, and its own outbound flows.
    q = Seq()
    for remote in range(4):
        for rport in (53, 80, 443, 33333):
            q.inbound("198.51.100.1", 8080, tcp=True, remote=remote, rport=rport)
    q.op("out_again", 0, SYN | ACK).inbound("198.51.100.3", 5060, remote=1, rport=53)
    q.inbound("198.51.100.9", 2222, tcp=True, remote=2).inbound("198.51.100.2", 4500, remote=3, rport=4500)
    q.tcp(4, 80, 80, SYN, remote=1).tcp(4, 40000, 80, SYN).udp(7, 5060, 5060, remote=1).reply(0)
    q.inbound("198.51.100.1", 1024, remote=1).inbound("198.51.100.77", 1024).time(250000)
    s["static_forward"] = q.bytes()

    # Hairpinning: subscriber 0's public mapping reached from subscribers 1
    # and 5 (pool b), UDP and TCP.
    q = Seq().udp(0, 40000, 53).op("hairpin", 1, 0, 0).op("hairpin", 5 | 1 << 3, 0, 0).reply(0)
    q.tcp(0, 40001, 80, SYN).op("hairpin", 2 | 1 << 3, 0, SYN).reply(0, SYN | ACK).op("hairpin", 6, 1, ACK)
    s["hairpin"] = q.bytes()

    # Limits: one subscriber opens more flows than its session limit and its
    # two blocks hold; every inside host becomes a subscriber (six slots for
    # eight); pool a runs out of blocks.
    q = Seq()
    for dport in (53, 80, 443, 500, 4500, 1701, 5060):
        for sport in (40000, 40001):
            q.udp(0, sport, dport, remote=dport & 3)
    for sub in range(8):
        for sport in (40000, 40001, 22, 443):
            q.udp(sub, sport, 53, remote=sub & 3)
    q.time(130000).time(640000)
    # Pool b has 8 ports per protocol (two blocks of 4) and 10 sessions: the
    # ninth TCP mapping of one host finds no port.
    for sport in IN_PORT:
        q.tcp(5, sport, 80, SYN, remote=1)
    q.op("pptp_connect", 5 | 1 << 3, 0).op("pptp_connect", 5 | 1 << 3, 1)
    s["limits"] = q.bytes()

    # Reloads with state: P0 -> P1 (an address of pool a retired, static A
    # removed, pool b tighter), P1 -> P3 (the retired address given to pool c
    # while it still drains: issue 11 point 3), back to P0 (refused while
    # pool c holds it), P2 (pool b removed, pool c added).
    q = Seq()
    for sub in SUB_A:
        q.udp(sub, 40000, 53)
    q.inbound("198.51.100.1", 8080, tcp=True).op("reconfigure", 1)
    for sub in SUB_A:
        q.udp(sub, 40001, 80)
    q.inbound("198.51.100.1", 8080, tcp=True, remote=1).op("reconfigure", 3)
    for sub in SUB_B:
        q.udp(sub, 40000, 53).udp(sub, 40001, 53)
    q.op("reconfigure", 0).op("reconfigure", 2).udp(5, 40000, 80).udp(6, 443, 443).op("reconfigure", 0)
    q.time(300000).time(300000).op("reconfigure", 1)
    s["reconfigure"] = q.bytes()

    # The same traffic with P2 first: pool b drains while pool c serves its
    # prefix, PPTP off, static E added then removed.
    q = Seq().udp(5, 40000, 53).tcp(6, 443, 443, SYN).op("esp_out", 7, 0).op("reconfigure", 2)
    q.udp(5, 40001, 53).udp(6, 40000, 53).inbound("198.51.100.4", 443, tcp=True).reply(0)
    q.op("pptp_connect", 6, 0).op("pptp_out", 6, 0, OCRQ, 0).op("gre1", 6, 1).op("reconfigure", 0)
    q.time(640000).op("reconfigure", 0)
    s["reconfigure_pools"] = q.bytes()

    # Expiry in small budgets while traffic refreshes some sessions.
    q = Seq()
    for sub in range(6):
        q.udp(sub, 40000, 53).ping(sub)
    for k in range(8):
        q.op("expire_some", (k * 7) << 2 | (k & 3)).op("out_again", k, 0)
    q.time(640000).op("expire_some", 0).op("expire_some", 1).op("expire_some", 2)
    s["expiry_budget"] = q.bytes()
    return s


def write(corpus, out):
    os.makedirs(out, exist_ok=True)
    for stale in os.listdir(out):
        os.remove(os.path.join(out, stale))
    for name, data in sorted(corpus.items()):
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


def merge(binary, extra_dirs, out):
    corpus = seeds()
    with tempfile.TemporaryDirectory() as tmp:
        merged = os.path.join(tmp, "merged")
        # Every seed stays (libFuzzer keeps what the first directory holds);
        # other inputs join only for edge coverage the seeds and the inputs
        # taken before them lack (no hit-count buckets: a few hundred inputs
        # instead of thousands; a run regains the counts within seconds).
        write(corpus, merged)
        subprocess.run([binary, "-merge=1", "-use_counters=0", "-max_len=2048", merged, *extra_dirs],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        by_content = {data: name for name, data in corpus.items()}
        result = {}
        for name in os.listdir(merged):
            with open(os.path.join(merged, name), "rb") as f:
                data = f.read()
            result[by_content.get(data, hashlib.sha1(data).hexdigest())] = data
    write(result, out)
    print(f"{len(corpus)} seeds and {len(result) - len(corpus)} inputs that add coverage in {out}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    default_out = os.path.join(here, "corpus-ops")
    if len(sys.argv) > 2 and sys.argv[1] == "--merge":
        merge(sys.argv[2], sys.argv[3:], default_out)
        return
    out = sys.argv[1] if len(sys.argv) > 1 else default_out
    corpus = seeds()
    write(corpus, out)
    print(f"wrote {len(corpus)} seeds to {out}")


if __name__ == "__main__":
    main()
