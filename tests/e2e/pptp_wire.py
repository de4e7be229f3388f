"""PPTP control messages on the wire (RFC 2637 section 2): building one,
reading one whole message from a TCP stream, and reading its fields. Shared
by the PPTP peers of the end-to-end tests (pptp_peer.py, abuse_peers.py).
"""
import struct

COOKIE = 0x1A2B3C4D


def message(ctype, length, fields):
    m = bytearray(length)
    struct.pack_into("!HHIH", m, 0, length, 1, COOKIE, ctype)
    for off, value in fields.items():
        struct.pack_into("!H", m, off, value)
    return bytes(m)


def read_message(conn):
    head = b""
    while len(head) < 2:
        chunk = conn.recv(2 - len(head))
        if not chunk:
            return None
        head += chunk
    length = struct.unpack("!H", head)[0]
    body = head
    while len(body) < length:
        chunk = conn.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return body


def ctype_of(m):
    return struct.unpack_from("!H", m, 8)[0]


def field(m, off):
    return struct.unpack_from("!H", m, off)[0]
