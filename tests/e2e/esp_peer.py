#!/usr/bin/python3
"""Raw ESP peers for the passthrough end-to-end test (scapy).

  server IFACE SECONDS        answer every ESP packet with the server's own SPI
                              for it: 0x5e000000 | (client SPI & 0xffff)
  watch IFACE SPI SECONDS     print the SPI of every ESP packet received; exit 0
                              if some arrived and all carry SPI
  burst IFACE SECONDS GWMAC SRC:SPI [SRC:SPI ...]
                              from the LAN: send one ESP packet per client, to
                              passgate's inside MAC GWMAC, back
                              to back (the same millisecond), then again every
                              0.2 s, towards the server through passgate
"""
import sys
import time

from scapy.all import ESP, IP, Ether, Raw, conf, send, sendp, sniff

SERVER = "203.0.113.10"
conf.verb = 0


def server(iface, seconds):
    def answer(p):
        if ESP in p and p[IP].dst == SERVER:
            spi = 0x5E000000 | (p[ESP].spi & 0xFFFF)
            send(IP(src=SERVER, dst=p[IP].src) / ESP(spi=spi, seq=p[ESP].seq) / Raw(b"s" * 32), iface=iface)

    sniff(iface=iface, filter="ip proto 50", prn=answer, timeout=seconds, store=False)
    return 0


def watch(iface, spi, seconds):
    seen = []
    sniff(iface=iface, filter="ip proto 50", timeout=seconds, store=False,
          prn=lambda p: seen.append(p[ESP].spi) if ESP in p and p[IP].src == SERVER else None)
    print(" ".join(f"{s:#010x}" for s in seen) or "nothing")
    return 0 if seen and all(s == spi for s in seen) else 1


def burst(iface, seconds, gateway_mac, clients):
    frames = []
    for c in clients:
        src, spi = c.split(":")
        frames.append(Ether(dst=gateway_mac) / IP(src=src, dst=SERVER) / ESP(spi=int(spi, 0), seq=1) / Raw(b"c" * 32))
    end = time.time() + seconds
    seq = 1
    while time.time() < end:
        for f in frames:
            f[ESP].seq = seq
        sendp(frames, iface=iface)  # back to back: well within one millisecond
        seq += 1
        time.sleep(0.2)
    return 0


def main(argv):
    mode = argv[1]
    if mode == "server":
        return server(argv[2], float(argv[3]))
    if mode == "watch":
        return watch(argv[2], int(argv[3], 0), float(argv[4]))
    if mode == "burst":
        return burst(argv[2], float(argv[3]), argv[4], argv[5:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
