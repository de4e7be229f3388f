#!/usr/bin/python3
"""The well-behaved side of the end-to-end abuse test (tests/e2e/abuse_e2e.sh):
subscribers that keep working while others attack, the servers they talk
to, and a NAT event collector. Standard library only (raw sockets for ESP
and GRE). Every mode stops by itself; results are JSON lines on stdout.

  collect PORT FILE SECONDS        syslog collector on 127.0.0.1:PORT (UDP):
                                   every datagram a line in FILE
  seen-hold PORT SECONDS           TCP server: answers "seen IP:PORT\\n" and
                                   keeps the connection open
  hold SERVER UDPPORT TCPPORT SPORT SECONDS
                                   a subscriber with one live UDP mapping
                                   (from SPORT) and one live TCP connection;
                                   prints the public endpoints the server saw
                                   ("udp A:P", "tcp A:P"), then holds both
  flows SERVER UDPPORT TCPPORT SECONDS INTERVAL [FRAGSIZE]
                                   every INTERVAL (fixed cadence, each attempt
                                   in its own thread) a new TCP connection and
                                   a new UDP exchange (new source port each),
                                   and with FRAGSIZE a UDP datagram of that
                                   many bytes (fragmented by the kernel);
                                   one line per attempt {t, kind, ok}
  late SERVER PORT SPACING ADDR [ADDR...]
                                   new subscribers: one UDP exchange from each
                                   ADDR, SPACING seconds apart; {t, addr, ok}
  tunnels SECONDS                  the VPN server: a PPTP PAC on TCP 1723 that
                                   answers every GRE v1 packet of a call with
                                   one keyed with the caller's Call ID and the
                                   same sequence number, and an ESP responder
                                   answering SPI s with 0x5e000000|(s&0xffff)
  esp SERVER SPI SECONDS INTERVAL  an ESP client: a packet every INTERVAL;
                                   prints {sent: [[seq, t]], received: [...]}
  pptp SERVER CALLID SECONDS INTERVAL
                                   a PPTP client (PNS): control connection,
                                   one call, GRE every INTERVAL, then the call
                                   cleared; prints {setup, sent, received,
                                   cleared}
"""
import json
import socket
import struct
import sys
import threading
import time

from pptp_wire import ctype_of, field, message, read_message

ESP_SERVER_SPI = 0x5E000000


def out(obj):
    print(json.dumps(obj), flush=True)


# --------------------------------------------------------------- collector
def collect(port, path, seconds):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.setsockopt(socket.SOL_SOCKET, 33, 32 << 20)  # SO_RCVBUFFORCE (root)
    except OSError:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
    s.bind(("127.0.0.1", port))
    end = time.time() + seconds
    with open(path, "w", buffering=1) as f:
        while time.time() < end:
            s.settimeout(max(0.05, end - time.time()))
            try:
                data = s.recv(65535)
            except socket.timeout:
                continue
            f.write(data.decode(errors="replace").rstrip("\n") + "\n")
    return 0


# ------------------------------------------------------------- TCP server
def seen_hold(port, seconds):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(64)
    end = time.time() + seconds

    def serve(c, peer):
        try:
            c.sendall(f"seen {peer[0]}:{peer[1]}\n".encode())
            c.settimeout(max(1.0, end - time.time()))
            while c.recv(4096):
                pass
        except OSError:
            pass
        finally:
            c.close()

    while time.time() < end:
        srv.settimeout(max(0.1, end - time.time()))
        try:
            c, peer = srv.accept()
        except socket.timeout:
            break
        threading.Thread(target=serve, args=(c, peer), daemon=True).start()
    return 0


# ------------------------------------------------- a subscriber's mappings
def hold(server, udp_port, tcp_port, sport, seconds):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("0.0.0.0", sport))
    u.settimeout(1)
    for _ in range(3):
        u.sendto(b"hold", (server, udp_port))
        try:
            print("udp " + u.recv(2048).decode().split()[1], flush=True)
            break
        except socket.timeout:
            continue
    else:
        print("udp none", flush=True)
    t = socket.create_connection((server, tcp_port), timeout=3)
    line = b""
    while not line.endswith(b"\n"):
        chunk = t.recv(256)
        if not chunk:
            break
        line += chunk
    print("tcp " + (line.decode().split()[1] if line.startswith(b"seen") else "none"), flush=True)
    u.setblocking(False)
    end = time.time() + seconds
    while time.time() < end:
        u.sendto(b"keepalive", (server, udp_port))
        stop = time.time() + 2
        while time.time() < stop:  # drain what the floods push through
            try:
                while u.recv(2048):
                    pass
            except (BlockingIOError, ConnectionRefusedError):
                pass
            time.sleep(0.05)
    t.close()
    return 0


# ------------------------------------------------------------ new flows
def tcp_once(server, port):
    try:
        with socket.create_connection((server, port), timeout=3) as c:
            c.settimeout(3)
            return c.recv(256).startswith(b"seen")
    except OSError:
        return False


def udp_once(server, port, size):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("0.0.0.0", 0))
        if size:
            u.setsockopt(socket.IPPROTO_IP, 10, 0)  # IP_MTU_DISCOVER = IP_PMTUDISC_DONT: fragment
        u.settimeout(0.7)
        payload = b"f" * size if size else b"who am i"
        for _ in range(3):
            u.sendto(payload, (server, port))
            try:
                if u.recv(2048).startswith(b"seen"):
                    return True
            except socket.timeout:
                continue
        return False
    except OSError:
        return False
    finally:
        u.close()


def flows(server, udp_port, tcp_port, seconds, interval, frag_size):
    """A fixed cadence: each attempt runs in its own thread, so a failing
    one (up to 3 s of timeouts) does not delay the next."""
    lock = threading.Lock()

    def attempt(kind):
        t = time.time()
        ok = tcp_once(server, tcp_port) if kind == "tcp" else udp_once(server, udp_port, frag_size if kind == "frag" else 0)
        with lock:
            out({"t": t, "kind": kind, "ok": ok})

    kinds = ["tcp", "udp"] + (["frag"] if frag_size else [])
    threads = []
    start = time.time()
    k = 0
    while time.time() < start + seconds:
        for kind in kinds:
            th = threading.Thread(target=attempt, args=(kind,))
            th.start()
            threads.append(th)
        k += 1
        time.sleep(max(0.0, start + k * interval - time.time()))
    for th in threads:
        th.join()
    return 0


def late(server, port, spacing, addrs):
    def one(addr):
        t = time.time()
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind((addr, 0))
        u.settimeout(1)
        seen = None
        for _ in range(3):
            u.sendto(b"new subscriber", (server, port))
            try:
                seen = u.recv(2048).decode().split()[1]
                break
            except socket.timeout:
                continue
        out({"t": t, "addr": addr, "ok": seen is not None, "seen": seen})

    threads = []
    for addr in addrs:
        th = threading.Thread(target=one, args=(addr,))
        th.start()
        threads.append(th)
        time.sleep(spacing)
    for th in threads:
        th.join()
    return 0


# ------------------------------------------------------------ VPN server
def gre_v1(call_id, seq, payload):
    # C=0 R=0 K=1 S=1 s=0 recur=0, A=0, flags 0, version 1; PPP (0x880b)
    return struct.pack("!HHHHI", 0x3001, 0x880B, len(payload), call_id, seq) + payload


def parse_gre_v1(packet):
    """(src, call_id, seq) of a received GRE v1 packet (IP header first), or None."""
    ihl = (packet[0] & 0x0F) * 4
    g = packet[ihl:]
    if len(g) < 8:
        return None
    flags, ptype = struct.unpack_from("!HH", g, 0)
    if flags & 0x7 != 1 or not flags & 0x2000:
        return None
    call_id = struct.unpack_from("!H", g, 6)[0]
    seq = struct.unpack_from("!I", g, 8)[0] if flags & 0x1000 and len(g) >= 12 else None
    return socket.inet_ntoa(packet[12:16]), call_id, seq


def tunnels(seconds):
    end = time.time() + seconds
    calls = {}  # our Call ID -> (caller's address, caller's Call ID as seen here)
    lock = threading.Lock()
    next_id = [0x7000]

    def esp_responder():
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)
        while time.time() < end:
            s.settimeout(max(0.1, end - time.time()))
            try:
                p, (src, _) = s.recvfrom(4096)
            except socket.timeout:
                continue
            ihl = (p[0] & 0x0F) * 4
            if len(p) < ihl + 8:
                continue
            spi, seq = struct.unpack_from("!II", p, ihl)
            s.sendto(struct.pack("!II", ESP_SERVER_SPI | (spi & 0xFFFF), seq) + b"s" * 32, (src, 0))

    def gre_responder():
        s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)
        while time.time() < end:
            s.settimeout(max(0.1, end - time.time()))
            try:
                p, _ = s.recvfrom(4096)
            except socket.timeout:
                continue
            g = parse_gre_v1(p)
            if not g:
                continue
            src, ours, seq = g
            with lock:
                call = calls.get(ours)
            if call and call[0] == src:
                s.sendto(gre_v1(call[1], seq or 0, b"pac-call-%04x" % ours), (src, 0))

    def control(conn, peer):
        mine = []
        conn.settimeout(max(1.0, end - time.time()))
        try:
            while True:
                m = read_message(conn)
                if m is None:
                    return
                t = ctype_of(m)
                if t == 1:  # Start-Control-Connection-Request
                    conn.sendall(message(2, 156, {12: 0x0100, 14: 0x0100}))
                elif t == 7:  # Outgoing-Call-Request
                    theirs = field(m, 12)
                    with lock:
                        next_id[0] += 1
                        ours = next_id[0]
                        calls[ours] = (peer[0], theirs)
                    mine.append(ours)
                    conn.sendall(message(8, 32, {12: ours, 14: theirs, 16: 0x0100}))
                elif t == 12:  # Call-Clear-Request
                    theirs = field(m, 12)
                    with lock:
                        ours = next((k for k, v in calls.items() if v == (peer[0], theirs)), 0)
                        calls.pop(ours, None)
                    conn.sendall(message(13, 148, {12: ours}))
        except OSError:
            return
        finally:
            with lock:
                for ours in mine:
                    calls.pop(ours, None)
            conn.close()

    for target in (esp_responder, gre_responder):
        threading.Thread(target=target, daemon=True).start()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 1723))
    srv.listen(16)
    while time.time() < end:
        srv.settimeout(max(0.1, end - time.time()))
        try:
            conn, peer = srv.accept()
        except socket.timeout:
            continue
        threading.Thread(target=control, args=(conn, peer), daemon=True).start()
    return 0


# ------------------------------------------------------------ VPN clients
def paced_exchange(send, receive, seconds, interval):
    """send(seq) every interval for seconds while receive() collects
    answered sequence numbers; one more second for the last answers."""
    sent, received = [], []
    stop = threading.Event()

    def rx():
        while not stop.is_set():
            seq = receive()
            if seq is not None:
                received.append([seq, time.time()])

    th = threading.Thread(target=rx, daemon=True)
    th.start()
    end = time.time() + seconds
    seq = 1
    while time.time() < end:
        sent.append([seq, time.time()])
        try:
            send(seq)
        except OSError:
            pass
        seq += 1
        time.sleep(interval)
    time.sleep(1.0)
    stop.set()
    th.join()
    return sent, received


def esp_client(server, spi, seconds, interval):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 50)
    s.settimeout(0.2)
    want = ESP_SERVER_SPI | (spi & 0xFFFF)

    def send(seq):
        s.sendto(struct.pack("!II", spi, seq) + b"c" * 32, (server, 0))

    def receive():
        try:
            p, (src, _) = s.recvfrom(4096)
        except socket.timeout:
            return None
        ihl = (p[0] & 0x0F) * 4
        if src != server or len(p) < ihl + 8:
            return None
        got_spi, seq = struct.unpack_from("!II", p, ihl)
        return seq if got_spi == want else None

    sent, received = paced_exchange(send, receive, seconds, interval)
    out({"sent": sent, "received": received})
    return 0


def pptp_client(server, call_id, seconds, interval):
    result = {"setup": False, "sent": [], "received": [], "cleared": False}
    try:
        conn = socket.create_connection((server, 1723), timeout=3)
        conn.sendall(message(1, 156, {12: 0x0100}))
        m = read_message(conn)
        if m is None or ctype_of(m) != 2:
            raise OSError("no Start-Control-Connection-Reply")
        conn.sendall(message(7, 168, {12: call_id, 14: call_id}))
        m = read_message(conn)
        if m is None or ctype_of(m) != 8 or field(m, 14) != call_id:
            raise OSError("no Outgoing-Call-Reply quoting our Call ID")
        pac_call = field(m, 12)
        result.update(setup=True, pac_call=pac_call)
    except OSError as e:
        result["error"] = str(e)
        out(result)
        return 1
    g = socket.socket(socket.AF_INET, socket.SOCK_RAW, 47)
    g.settimeout(0.2)

    def send(seq):
        g.sendto(gre_v1(pac_call, seq, b"pns!"), (server, 0))

    def receive():
        try:
            p, _ = g.recvfrom(4096)
        except socket.timeout:
            return None
        r = parse_gre_v1(p)
        return r[2] if r and r[0] == server and r[1] == call_id else None

    result["sent"], result["received"] = paced_exchange(send, receive, seconds, interval)
    try:  # the control connection still works after the floods: clear the call
        conn.settimeout(3)
        conn.sendall(message(12, 16, {12: call_id}))
        m = read_message(conn)
        result["cleared"] = m is not None and ctype_of(m) == 13 and field(m, 12) == pac_call
        conn.close()
    except OSError as e:
        result["error"] = str(e)
    out(result)
    return 0


def main(argv):
    mode, args = argv[1] if len(argv) > 1 else "", argv[2:]
    if mode == "collect":
        return collect(int(args[0]), args[1], float(args[2]))
    if mode == "seen-hold":
        return seen_hold(int(args[0]), float(args[1]))
    if mode == "hold":
        return hold(args[0], int(args[1]), int(args[2]), int(args[3]), float(args[4]))
    if mode == "flows":
        return flows(args[0], int(args[1]), int(args[2]), float(args[3]), float(args[4]),
                     int(args[5]) if len(args) > 5 else 0)
    if mode == "late":
        return late(args[0], int(args[1]), float(args[2]), args[3:])
    if mode == "tunnels":
        return tunnels(float(args[0]))
    if mode == "esp":
        return esp_client(args[0], int(args[1], 0), float(args[2]), float(args[3]))
    if mode == "pptp":
        return pptp_client(args[0], int(args[1], 0), float(args[2]), float(args[3]))
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv) or 0)
