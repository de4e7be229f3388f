#!/usr/bin/env python3
"""Tiny UDP/TCP peers for the end-to-end tests (standard library only).

  udp-echo PORT            answer every datagram with "seen <ip>:<port>"
  udp-ask HOST PORT SPORT  send from SPORT, print the answer
  udp-send HOST PORT SPORT send one datagram from SPORT
  udp-listen PORT SECONDS  print "from <ip>:<port>" for each datagram
  tcp-echo PORT            answer each connection with "seen <ip>:<port>"
  tcp-ask HOST PORT        connect, print the answer
  tcp-mirror PORT          echo every byte of each connection back
  udp-stream HOST PORT SPORT RATE SECONDS
                           datagrams at RATE per second to a udp-echo; prints
                           "sent N received M lost K"
  tcp-stream HOST PORT SECONDS
                           one connection to a tcp-mirror, a message every
                           20 ms; prints "messages N echoed M longest_wait_ms W"
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


def tcp_mirror(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    s.settimeout(60)
    try:
        while True:
            c, _ = s.accept()
            c.settimeout(60)
            while True:
                data = c.recv(65536)
                if not data:
                    break
                c.sendall(data)
            c.close()
    except socket.timeout:
        pass


def udp_stream(host, port, sport, rate, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", sport))
    s.setblocking(False)
    sent = received = 0
    start = time.time()
    interval = 1.0 / rate
    next_send = start
    end = start + seconds
    while True:
        now = time.time()
        if now >= end + 1.0:  # one second for the last answers
            break
        if now < end and now >= next_send:
            s.sendto(f"seq {sent}".encode(), (host, port))
            sent += 1
            next_send += interval
        try:
            while True:
                s.recvfrom(2048)
                received += 1
        except BlockingIOError:
            pass
        time.sleep(min(interval, 0.001))
    print(f"sent {sent} received {received} lost {sent - received}")
    return 0 if sent == received else 1


def tcp_stream(host, port, seconds):
    s = socket.create_connection((host, port), timeout=5)
    messages = echoed = 0
    longest = 0.0
    end = time.time() + seconds
    while time.time() < end:
        payload = f"message {messages:010d}".ljust(64).encode()
        t0 = time.time()
        s.sendall(payload)
        messages += 1
        got = b""
        while len(got) < len(payload):
            chunk = s.recv(len(payload) - len(got))
            if not chunk:
                raise SystemExit("connection closed")
            got += chunk
        if got == payload:
            echoed += 1
        longest = max(longest, time.time() - t0)
        time.sleep(0.02)
    s.close()
    print(f"messages {messages} echoed {echoed} longest_wait_ms {int(longest * 1000)}")
    return 0 if messages == echoed else 1


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
    if mode == "tcp-mirror":
        return tcp_mirror(int(argv[2]))
    if mode == "udp-stream":
        return udp_stream(argv[2], int(argv[3]), int(argv[4]), float(argv[5]), float(argv[6]))
    if mode == "tcp-stream":
        return tcp_stream(argv[2], int(argv[3]), float(argv[4]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
