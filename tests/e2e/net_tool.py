#!/usr/bin/env python3
"""Tiny UDP/TCP peers for the end-to-end tests (standard library only).

  udp-echo PORT            answer every datagram with "seen <ip>:<port>"
  udp-ask HOST PORT SPORT [BIND]
                           send from SPORT (and address BIND), print the answer
  udp-send HOST PORT SPORT send one datagram from SPORT
  udp-listen PORT SECONDS  print "from <ip>:<port>" for each datagram
  tcp-echo PORT            answer each connection with "seen <ip>:<port>"
  tcp-ask HOST PORT [BIND] connect (from address BIND), print the answer
  tcp-mirror PORT          echo every byte of each connection back
  udp-stream HOST PORT SPORT RATE SECONDS
                           datagrams at RATE per second to a udp-echo; prints
                           "sent N received M lost K"
  tcp-stream HOST PORT SECONDS
                           one connection to a tcp-mirror, a message every
                           20 ms; prints "messages N echoed M longest_wait_ms W"
  udp-spread HOSTS PORTS SRC...
                           from each SRC address, one flow to every HOST x PORT
                           (comma-separated) of a udp-echo, all at once; prints
                           "SRC HOST:PORT seen IP:PORT" or "SRC HOST:PORT none"
  udp-probe SRC HOST PORT SECONDS INTERVAL_MS
                           a new flow (new source port on address SRC) to a
                           udp-echo every INTERVAL_MS; prints for each the
                           wall-clock send time and what the server saw:
                           "T_SEND seen IP:PORT", or "T_SEND none" after 1 s
Every mode stops by itself (servers after 60 s idle at most).
"""
import select
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


def udp_ask(host, port, sport, bind="0.0.0.0"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((bind, sport))
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


def tcp_ask(host, port, bind=None):
    s = socket.create_connection((host, port), timeout=3, source_address=(bind, 0) if bind else None)
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


def udp_spread(hosts, ports, sources):
    """Every flow asked at once, unanswered ones again every 0.5 s (3 tries)."""
    flows = {}
    for src in sources:
        for host in hosts:
            for port in ports:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((src, 0))
                s.setblocking(False)
                flows[s] = (src, host, port)
    answers = {}
    for _ in range(3):
        for s, (_, host, port) in flows.items():
            if s not in answers:
                s.sendto(b"who am i", (host, port))
        end = time.time() + 0.5
        while len(answers) < len(flows) and time.time() < end:
            ready, _, _ = select.select([s for s in flows if s not in answers], [], [], max(0, end - time.time()))
            for s in ready:
                try:
                    answers[s] = s.recv(2048).decode()
                except OSError:
                    pass
        if len(answers) == len(flows):
            break
    missing = 0
    for s, (src, host, port) in flows.items():
        print(f"{src} {host}:{port} {answers.get(s, 'none')}")
        missing += s not in answers
        s.close()
    return 1 if missing else 0


def udp_probe(src, host, port, seconds, interval_ms):
    """A new flow every interval; each answered line as soon as it is known."""
    pending = {}  # socket -> send time
    interval = interval_ms / 1000.0
    start = time.time()
    next_send = start
    end = start + seconds
    while True:
        now = time.time()
        if now >= end and not pending:
            break
        if now < end and now >= next_send:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((src, 0))
            s.setblocking(False)
            s.sendto(b"probe", (host, port))
            pending[s] = now
            next_send += interval
        for s, sent in list(pending.items()):
            if now - sent > 1.0:
                print(f"{sent:.3f} none", flush=True)
                s.close()
                del pending[s]
        wait = max(0.0, min(next_send - time.time(), 0.01)) if now < end else 0.01
        ready, _, _ = select.select(list(pending), [], [], wait)
        for s in ready:
            try:
                data = s.recv(2048).decode()
            except OSError:
                continue
            print(f"{pending[s]:.3f} {data}", flush=True)
            s.close()
            del pending[s]
    return 0


def main(argv):
    mode = argv[1]
    if mode == "udp-echo":
        return udp_echo(int(argv[2]))
    if mode == "udp-ask":
        return udp_ask(argv[2], int(argv[3]), int(argv[4]), *argv[5:6])
    if mode == "udp-send":
        return udp_send(argv[2], int(argv[3]), int(argv[4]))
    if mode == "udp-listen":
        return udp_listen(int(argv[2]), float(argv[3]))
    if mode == "tcp-echo":
        return tcp_echo(int(argv[2]))
    if mode == "tcp-ask":
        return tcp_ask(argv[2], int(argv[3]), *argv[4:5])
    if mode == "tcp-mirror":
        return tcp_mirror(int(argv[2]))
    if mode == "udp-stream":
        return udp_stream(argv[2], int(argv[3]), int(argv[4]), float(argv[5]), float(argv[6]))
    if mode == "tcp-stream":
        return tcp_stream(argv[2], int(argv[3]), float(argv[4]))
    if mode == "udp-spread":
        return udp_spread(argv[2].split(","), [int(p) for p in argv[3].split(",")], argv[4:])
    if mode == "udp-probe":
        return udp_probe(argv[2], argv[3], int(argv[4]), float(argv[5]), float(argv[6]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
