"""TRex stateless (STL) profile for benchmarking passgate on real NICs: the
same scenarios as bench/run_perf.sh (established flows at a chosen session
count, new sessions per second, the VPN mix), addressed like passgate-gen so
the same passgate configuration fits (bench/README.md, "Hardware").

TRex is not installed on the development machine; this profile follows the
STL API of TRex v2.x (trex_stl_lib) and has to be tried on a TRex host.

Port 0 faces passgate's inside port, port 1 its outside port. Stateless
TRex cannot answer translated packets (it does not know which public address
and port passgate chose), so this profile loads the inside-to-outside
direction only and TRex's port 1 counts what arrives; for both directions use
passgate-gen on the NICs (it runs on any DPDK PMD) or TRex's advanced
stateful mode (ASTF) with a UDP request/response program.

    trex-console> start -f passgate_nat.py -m 5mpps --port 0 -t mode=established,sessions=1048576
    trex-console> start -f passgate_nat.py -m 2mpps --port 0 -t mode=cps
    trex-console> start -f passgate_nat.py -m 1mpps --port 0 -t mode=vpn,subscribers=4096

For RFC 2544 throughput, drive it with TRex's ndr_bench (trex/examples or
`ndr` in the console, which binary-searches the multiplier for a loss
ratio) after one warm-up run at a low rate that opens every session, as
FD.io CSIT does for stateful NAT: for established flows each tuple must
have been seen once before the measured trial.
"""
import argparse

from trex_stl_lib.api import (  # type: ignore  # provided by the TRex package
    IP, STLPktBuilder, STLProfile, STLStream, STLTXCont, STLVM, UDP, Ether, GRE, Raw)

SUBSCRIBER_BASE = "100.64.0.1"  # RFC 6598 shared space, routed by passgate via 10.0.0.2
SERVER_BASE = "198.19.0.0"      # RFC 2544 appendix C benchmarking range
PAYLOAD = b"PGN1" + bytes(12)   # passgate-gen's stamp magic, so captures look alike


def _ipv4_add(base, n):
    a = [int(x) for x in base.split(".")]
    v = (a[0] << 24 | a[1] << 16 | a[2] << 8 | a[3]) + n
    return ".".join(str(v >> s & 0xff) for s in (24, 16, 8, 0))


def _pad(pkt, frame_size):
    # frame_size counts the 4-byte FCS, as RFC 2544 section 9 does.
    missing = frame_size - 4 - len(pkt)
    return pkt / Raw(b"\0" * missing) if missing > 0 else pkt


class PassgateNat:
    def get_streams(self, direction=0, tunables=(), **kwargs):
        p = argparse.ArgumentParser(prog="passgate_nat.py", description="passgate scenarios for TRex STL")
        p.add_argument("--mode", choices=["established", "cps", "vpn"], default="established")
        p.add_argument("--sessions", type=int, default=1024, help="established: distinct flows")
        p.add_argument("--subscribers", type=int, default=0,
                       help="subscribers (default: sessions / 16, at most 65536)")
        p.add_argument("--frame-size", type=int, default=64)
        args = p.parse_args(list(tunables))
        if args.mode == "established":
            return self._established(args)
        if args.mode == "cps":
            return self._cps(args)
        return self._vpn(args)

    def _established(self, args):
        subs = args.subscribers or max(1, min(65536, args.sessions // 16))
        per_sub = max(1, args.sessions // subs)
        # A tuple generator walks (subscriber, source port) pairs: subs x
        # per_sub distinct flows, repeated, each one an established session
        # once warmed up; same flow numbering idea as passgate-gen.
        vm = STLVM()
        vm.tuple_var(name="flow", ip_min=SUBSCRIBER_BASE, ip_max=_ipv4_add(SUBSCRIBER_BASE, subs - 1),
                     port_min=1024, port_max=1024 + per_sub - 1, limit_flows=subs * per_sub)
        vm.write(fv_name="flow.ip", pkt_offset="IP.src")
        vm.write(fv_name="flow.port", pkt_offset="UDP.sport")
        vm.fix_chksum()
        pkt = _pad(Ether() / IP(src=SUBSCRIBER_BASE, dst=_ipv4_add(SERVER_BASE, 1)) / UDP(sport=1024, dport=5001) /
                   Raw(PAYLOAD), args.frame_size)
        return [STLStream(packet=STLPktBuilder(pkt=pkt, vm=vm), mode=STLTXCont(pps=1000))]

    def _cps(self, args):
        # Every packet a new flow: the tuple space (65,536 subscribers x
        # 64,000 ports = 4.2 billion) is far larger than any trial, so no
        # tuple repeats and each packet makes passgate open a session.
        # Size passgate's nat.max_sessions for rate x trial seconds.
        vm = STLVM()
        vm.tuple_var(name="flow", ip_min=SUBSCRIBER_BASE, ip_max=_ipv4_add(SUBSCRIBER_BASE, 65535),
                     port_min=1024, port_max=65023)
        vm.write(fv_name="flow.ip", pkt_offset="IP.src")
        vm.write(fv_name="flow.port", pkt_offset="UDP.sport")
        vm.fix_chksum()
        pkt = _pad(Ether() / IP(src=SUBSCRIBER_BASE, dst=_ipv4_add(SERVER_BASE, 1)) / UDP(sport=1024, dport=5001) /
                   Raw(PAYLOAD), args.frame_size)
        return [STLStream(packet=STLPktBuilder(pkt=pkt, vm=vm), mode=STLTXCont(pps=1000))]

    def _vpn(self, args):
        # passgate-gen's VPN mix: ESP 40 %, GRE v0 20 %, NAT-T 40 %. Every
        # client talks to a server of its own (GRE and ESP have no ports: two
        # clients sharing a public address and a server are told apart only
        # by SPI, and for GRE not at all).
        subs = args.subscribers or 4096
        last_sub = _ipv4_add(SUBSCRIBER_BASE, subs - 1)
        last_srv = _ipv4_add(SERVER_BASE, subs - 1)
        streams = []

        def stream(l4, share, proto=None, spi=False):
            vm = STLVM()
            vm.var(name="sub", min_value=SUBSCRIBER_BASE, max_value=last_sub, size=4, op="inc")
            vm.var(name="srv", min_value=SERVER_BASE, max_value=last_srv, size=4, op="inc")
            vm.write(fv_name="sub", pkt_offset="IP.src")
            vm.write(fv_name="srv", pkt_offset="IP.dst")
            if spi:  # SPI = 0x01000000 + client number, as passgate-gen numbers its SAs
                vm.var(name="spi", min_value=0x01000000, max_value=0x01000000 + subs - 1, size=4, op="inc")
                vm.write(fv_name="spi", pkt_offset=34)  # Ethernet 14 + IPv4 20
            vm.fix_chksum()
            ip = IP(src=SUBSCRIBER_BASE, dst=SERVER_BASE) if proto is None else \
                IP(src=SUBSCRIBER_BASE, dst=SERVER_BASE, proto=proto)
            pkt = _pad(Ether() / ip / l4, args.frame_size)
            streams.append(STLStream(packet=STLPktBuilder(pkt=pkt, vm=vm), mode=STLTXCont(percentage=share)))

        # ESP (IP protocol 50, RFC 4303): SPI and sequence number, then
        # opaque data; the SPI is rewritten per client by the VM above.
        stream(Raw(bytes.fromhex("0100000000000001") + PAYLOAD), 40, proto=50, spi=True)
        stream(GRE(proto=0x0800) / Raw(PAYLOAD), 20)  # GRE v0, RFC 2784
        stream(UDP(sport=4500, dport=4500) / Raw(PAYLOAD), 40)
        return streams


def register():
    return PassgateNat()
