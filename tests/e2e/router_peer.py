#!/usr/bin/python3
"""Peers and frame generators for the router end-to-end test (router_e2e.sh).

  big-echo PORT              echo every UDP datagram back whole, never DF
  big-ask HOST PORT SIZE     send SIZE bytes of UDP, never DF; print the
                             length of the answer ("got N")
  df-send HOST PORT SIZE     send SIZE bytes of UDP with DF twice, a second
                             apart; print what the kernel learned ("mtu N",
                             from IP_MTU after an EMSGSIZE)
  udp-sink PORT SECONDS      print "from ADDR len N" for every datagram
  frames IFACE DSTMAC KIND COUNT   scapy: COUNT crafted frames on IFACE, kinds:
      foreign-mac DST     IPv4/UDP to DST, Ethernet to a MAC nobody owns
      broadcast-ip DST    IPv4/UDP to DST in an Ethernet broadcast frame
      martian SRC DST     IPv4/UDP from SRC (a martian) to DST, to DSTMAC
      from SRC DST        IPv4/UDP from SRC to DST, to DSTMAC
      arp-off-subnet SRC TARGET  ARP who-has TARGET from SRC, broadcast
      ttl1 SRC DST        IPv4/UDP with TTL 1, to DSTMAC
"""
import socket
import sys
import time

IP_MTU_DISCOVER = 10
IP_PMTUDISC_DONT = 0
IP_PMTUDISC_DO = 2
IP_MTU = 14


def udp_socket(df):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO if df else IP_PMTUDISC_DONT)
    return s


def big_echo(port):
    s = udp_socket(False)
    s.bind(("0.0.0.0", port))
    s.settimeout(60)
    try:
        while True:
            data, peer = s.recvfrom(65535)
            s.sendto(data, peer)
    except socket.timeout:
        pass


def big_ask(host, port, size):
    s = udp_socket(False)
    s.settimeout(2)
    for _ in range(3):
        s.sendto(bytes(i % 251 for i in range(size)), (host, port))
        try:
            data, _ = s.recvfrom(65535)
            ok = data == bytes(i % 251 for i in range(size))
            print(f"got {len(data)} {'intact' if ok else 'corrupted'}")
            return 0 if ok else 1
        except socket.timeout:
            continue
    print("no answer")
    return 1


def df_send(host, port, size):
    s = udp_socket(True)
    s.connect((host, port))
    for _ in range(3):
        try:
            s.send(bytes(size))
        except OSError:
            pass  # EMSGSIZE once the kernel knows the path MTU
        time.sleep(0.7)
    print(f"mtu {s.getsockopt(socket.IPPROTO_IP, IP_MTU)}")
    return 0


def udp_sink(port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    end = time.time() + seconds
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            data, peer = s.recvfrom(65535)
            print(f"from {peer[0]} len {len(data)}", flush=True)
        except socket.timeout:
            break
    return 0


def frames(iface, dstmac, kind, count, args):
    from scapy.all import ARP, IP, UDP, Ether, Raw, sendp  # Debian's python3-scapy

    if kind == "foreign-mac":
        f = Ether(dst="02:00:00:00:99:99") / IP(dst=args[0]) / UDP(sport=1234, dport=4000) / Raw(b"x" * 20)
    elif kind == "broadcast-ip":
        f = Ether(dst="ff:ff:ff:ff:ff:ff") / IP(dst=args[0]) / UDP(sport=1234, dport=4000) / Raw(b"x" * 20)
    elif kind in ("martian", "from"):
        f = Ether(dst=dstmac) / IP(src=args[0], dst=args[1]) / UDP(sport=1234, dport=4000) / Raw(b"x" * 20)
    elif kind == "arp-off-subnet":
        f = Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(op=1, psrc=args[0], pdst=args[1])
    elif kind == "ttl1":
        f = Ether(dst=dstmac) / IP(src=args[0], dst=args[1], ttl=1) / UDP(sport=1234, dport=33434) / Raw(b"x" * 20)
    else:
        raise SystemExit(f"unknown kind {kind}")
    sendp(f, iface=iface, count=count, inter=0.002, verbose=False)
    return 0


def main(argv):
    mode = argv[1]
    if mode == "big-echo":
        return big_echo(int(argv[2]))
    if mode == "big-ask":
        return big_ask(argv[2], int(argv[3]), int(argv[4]))
    if mode == "df-send":
        return df_send(argv[2], int(argv[3]), int(argv[4]))
    if mode == "udp-sink":
        return udp_sink(int(argv[2]), float(argv[3]))
    if mode == "frames":
        return frames(argv[2], argv[3], argv[4], int(argv[5]), argv[6:])
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
