#!/usr/bin/env python3
"""Tiny UDP/TCP peers for the end-to-end tests (standard library only).

  udp-echo PORT            answer every datagram with "seen <ip>:<port>"
  udp-ask HOST PORT SPORT  send from SPORT, print the answer
  udp-send HOST PORT SPORT send one datagram from SPORT
  udp-listen PORT SECONDS  print "from <ip>:<port>" for each datagram
  tcp-echo PORT            answer each connection with "seen <ip>:<port>"
  tcp-ask HOST PORT        connect, print the answer
Every mode stops by itself (servers after 60 s idle at most).
"""
import socket
import sys
import time


def udp_echo(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", port))
    s.settimeout(60)
    try:
        while True:
            data, peer = s.recvfrom(2048)
            s.sendto(f"seen {peer[0]}:{peer[1]}".encode(), peer)
    except socket.timeout:
        pass


def udp_ask(host, port, sport):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", sport))
    s.settimeout(2)
    for _ in range(3):
        s.sendto(b"who am i", (host, port))
        try:
            data, _ = s.recvfrom(2048)
            print(data.decode())
            return 0
        except socket.timeout:
            continue
    print("no answer")
    return 1


def udp_send(host, port, sport):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", sport))
    for _ in range(3):
        s.sendto(b"hello", (host, port))
        time.sleep(0.1)
    return 0


def udp_listen(port, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    end = time.time() + seconds
    while time.time() < end:
        s.settimeout(max(0.05, end - time.time()))
        try:
            _, peer = s.recvfrom(2048)
            print(f"from {peer[0]}:{peer[1]}", flush=True)
        except socket.timeout:
            break
    return 0


def tcp_echo(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    s.settimeout(60)
    try:
        while True:
            c, peer = s.accept()
            c.sendall(f"seen {peer[0]}:{peer[1]}".encode())
            c.close()
    except socket.timeout:
        pass


def tcp_ask(host, port):
    s = socket.create_connection((host, port), timeout=3)
    print(s.recv(2048).decode())
    s.close()
    return 0


def main(argv):
    mode = argv[1]
    if mode == "udp-echo":
        return udp_echo(int(argv[2]))
    if mode == "udp-ask":
        return udp_ask(argv[2], int(argv[3]), int(argv[4]))
    if mode == "udp-send":
        return udp_send(argv[2], int(argv[3]), int(argv[4]))
    if mode == "udp-listen":
        return udp_listen(int(argv[2]), float(argv[3]))
    if mode == "tcp-echo":
        return tcp_echo(int(argv[2]))
    if mode == "tcp-ask":
        return tcp_ask(argv[2], int(argv[3]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
