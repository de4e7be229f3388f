#!/usr/bin/python3
"""An 802.1Q-tagged UDP client in scapy, for kernels without 8021q support.

  vlan_peer.py IFACE VLAN SRC GW_MAC SERVER PORT SPORT SECONDS

Sends a tagged UDP datagram from SRC:SPORT to SERVER:PORT through the
gateway (GW_MAC), waits for the tagged answer and prints its payload.
Exit 0 when an answer tagged with VLAN came back.
"""
import sys
import threading
import time

from scapy.all import IP, UDP, Dot1Q, Ether, Raw, conf, get_if_hwaddr, sendp, sniff

conf.verb = 0
iface, vlan, src, gw_mac, server, port, sport, seconds = sys.argv[1:9]
vlan, port, sport, seconds = int(vlan), int(port), int(sport), float(seconds)
answers = []


def is_answer(p):
    return (Dot1Q in p and p[Dot1Q].vlan == vlan and UDP in p and p[IP].src == server and p[IP].dst == src
            and p[UDP].dport == sport)


sniffer = threading.Thread(target=lambda: answers.extend(
    sniff(iface=iface, lfilter=is_answer, timeout=seconds, count=1)))
sniffer.start()
time.sleep(0.5)
frame = (Ether(src=get_if_hwaddr(iface), dst=gw_mac) / Dot1Q(vlan=vlan) /
         IP(src=src, dst=server) / UDP(sport=sport, dport=port) / Raw(b"who am i"))
for _ in range(3):
    sendp(frame, iface=iface)
    time.sleep(0.3)
    if answers:
        break
sniffer.join()
if not answers:
    print("no tagged answer")
    sys.exit(1)
print(bytes(answers[0][UDP].payload).decode(errors="replace"))
