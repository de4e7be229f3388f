#!/usr/bin/python3
"""Writes subscriber traffic as a pcap for the pcap/ring port tests (scapy).

  make_pcap.py OUT.pcap [EMPTY.pcap]

OUT: UDP, TCP SYN and ping from two subscribers (100.64.0.11, .12) to
203.0.113.10, Ethernet-framed towards passgate's inside port. EMPTY, if
given, gets a pcap with no packets (a receive queue that stays idle).
"""
import sys

from scapy.all import ICMP, IP, TCP, UDP, Ether, PcapWriter, Raw

out = sys.argv[1]
packets = []
for sub in ("100.64.0.11", "100.64.0.12"):
    eth = Ether(src="02:00:00:00:00:11", dst="02:00:00:00:00:01")
    for i in range(10):
        packets.append(eth / IP(src=sub, dst="203.0.113.10") / UDP(sport=40000 + i, dport=9000) / Raw(b"x" * 32))
    for i in range(5):
        packets.append(eth / IP(src=sub, dst="203.0.113.10") / TCP(sport=50000 + i, dport=443, flags="S"))
    packets.append(eth / IP(src=sub, dst="203.0.113.10") / ICMP(id=77, seq=1) / Raw(b"ping" * 8))
writer = PcapWriter(out, linktype=1, sync=True)
for p in packets:
    writer.write(p)
writer.close()
if len(sys.argv) > 2:
    PcapWriter(sys.argv[2], linktype=1, sync=True).close()
print(len(packets))
