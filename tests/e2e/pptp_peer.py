#!/usr/bin/python3
"""PPTP peers for the passthrough end-to-end test (RFC 2637).

  pac SECONDS                 the server (PAC) on TCP 1723: answers
                              Start-Control-Connection and Outgoing-Call
                              requests, then sends GRE v1 to the caller keyed
                              with the caller's Call ID (as the PAC saw it),
                              the payload naming the PAC's own Call ID;
                              answers Call-Clear-Request with
                              Call-Disconnect-Notify
  pns SERVER IFACE ID [ID...] a client (PNS): opens calls with the given Call
                              IDs, checks each Outgoing-Call-Reply quotes its
                              own Call ID, that GRE for each call arrives
                              with its own Call ID and only for its own
                              calls, sends GRE back, clears the calls.
Exit 0 on success; prints what it saw.
"""
import socket
import sys
import threading
import time

from scapy.all import GRE_PPTP, IP, Raw, conf, send, sniff

from pptp_wire import ctype_of, field, message, read_message

conf.verb = 0


def pac(seconds):
    next_id = [0x7000]
    lock = threading.Lock()

    def handle(conn, peer):
        calls = {}  # caller's Call ID as seen here -> our Call ID
        conn.settimeout(seconds)
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
                    calls[theirs] = ours
                    conn.sendall(message(8, 32, {12: ours, 14: theirs, 16: 0x0100}))
                    for seq in range(3):
                        payload = b"pac-call-%04x" % ours
                        send(IP(src=conn.getsockname()[0], dst=peer[0]) /
                             GRE_PPTP(key_present=1, seqnum_present=1, payload_len=len(payload),
                                      call_id=theirs, seqence_number=seq) / Raw(payload))
                elif t == 12:  # Call-Clear-Request
                    theirs = field(m, 12)
                    conn.sendall(message(13, 148, {12: calls.pop(theirs, 0)}))
        except OSError:
            return
        finally:
            conn.close()

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", 1723))
    srv.listen(16)
    srv.settimeout(seconds)
    try:
        while True:
            conn, peer = srv.accept()
            threading.Thread(target=handle, args=(conn, peer), daemon=True).start()
    except socket.timeout:
        return 0


def pns(server, iface, ids):
    seen = []
    sniffer = threading.Thread(target=lambda: seen.extend(
        sniff(iface=iface, filter="ip proto 47", timeout=4,
              lfilter=lambda p: GRE_PPTP in p and p[IP].src == server)))
    sniffer.start()
    time.sleep(0.5)
    ok = True
    conn = socket.create_connection((server, 1723), timeout=3)
    conn.sendall(message(1, 156, {12: 0x0100}))
    if ctype_of(read_message(conn)) != 2:
        print("no Start-Control-Connection-Reply")
        return 1
    pac_ids = {}
    for cid in ids:
        conn.sendall(message(7, 168, {12: cid, 14: cid}))
        reply = read_message(conn)
        if reply is None or ctype_of(reply) != 8:
            print(f"call {cid}: no Outgoing-Call-Reply")
            return 1
        if field(reply, 14) != cid:
            print(f"call {cid}: reply quotes Peer's Call ID {field(reply, 14)}, not ours")
            ok = False
        pac_ids[cid] = field(reply, 12)
    sniffer.join()
    got = {}
    for p in seen:
        got.setdefault(p[GRE_PPTP].call_id, set()).add(bytes(p[GRE_PPTP].payload))
    for cid, ours in pac_ids.items():
        want = b"pac-call-%04x" % ours
        print(f"call {cid}: server call {ours:#06x}, GRE received {sorted(got.get(cid, []))}")
        if got.get(cid) != {want}:
            ok = False
    stray = set(got) - set(pac_ids)
    if stray:
        print(f"GRE for Call IDs that are not ours: {sorted(stray)}")
        ok = False
    for cid, ours in pac_ids.items():  # and GRE the other way, keyed by the server's Call ID
        send(IP(dst=server) / GRE_PPTP(key_present=1, payload_len=4, call_id=ours) / Raw(b"pns!"))
    for cid in ids:
        conn.sendall(message(12, 16, {12: cid}))
        m = read_message(conn)
        # RFC 2637 2.13: the PAC's Call-Disconnect-Notify carries the PAC's
        # own Call ID. Linux's nf_nat_pptp overwrites that field with the
        # PNS's Call ID on the way in; accept both, say which arrived.
        if m is None or ctype_of(m) != 13 or field(m, 12) not in (pac_ids[cid], cid):
            print(f"call {cid}: no Call-Disconnect-Notify for server call {pac_ids[cid]:#06x}")
            ok = False
        else:
            which = "the server's Call ID (RFC 2637)" if field(m, 12) == pac_ids[cid] else "our own Call ID"
            print(f"call {cid}: Call-Disconnect-Notify with {which}")
    conn.close()
    return 0 if ok else 1


if __name__ == "__main__":
    if sys.argv[1] == "pac":
        sys.exit(pac(float(sys.argv[2])))
    if sys.argv[1] == "pns":
        sys.exit(pns(sys.argv[2], sys.argv[3], [int(x, 0) for x in sys.argv[4:]]))
    print(__doc__)
    sys.exit(2)
