#!/usr/bin/env python3
"""A minimal authoritative DNS responder (UDP) for scripts/build-images' image checks.

Usage: dns_server.py ADDR NAME IPV4 LOG_FILE
Answers A queries for NAME with IPV4, AAAA queries for NAME with no records (NOERROR), and
everything else with NXDOMAIN; each query is appended to LOG_FILE as "<name> <type>". The
check points the image's /etc/resolv.conf at ADDR (port 53) to prove that the static binary's
built-in glibc "dns" NSS module resolves names with no libnss_*.so in the image.
"""
import socket
import struct
import sys


def parse_question(msg):
    """Returns (qname, qtype, end offset) of the first question."""
    labels = []
    i = 12
    while msg[i] != 0:
        n = msg[i]
        labels.append(msg[i + 1 : i + 1 + n].decode("ascii").lower())
        i += 1 + n
    qtype, _qclass = struct.unpack("!HH", msg[i + 1 : i + 5])
    return ".".join(labels), qtype, i + 5


def answer(msg, name, ipv4):
    """Builds the response to one query."""
    txid = msg[:2]
    qname, qtype, end = parse_question(msg)
    question = msg[12:end]
    if qname == name and qtype == 1:
        rcode, answers = 0, [b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 5, 4) + socket.inet_aton(ipv4)]
    elif qname == name:
        rcode, answers = 0, []
    else:
        rcode, answers = 3, []
    # QR=1, opcode 0, AA=1, RD copied, RA=1.
    rd = msg[2] & 0x01
    flags = struct.pack("!BB", 0x84 | rd, 0x80 | rcode)
    header = txid + flags + struct.pack("!HHHH", 1, len(answers), 0, 0)
    return qname, qtype, header + question + b"".join(answers)


if __name__ == "__main__":
    addr, name, ipv4, log_file = sys.argv[1:5]
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((addr, 53))
    while True:
        data, peer = sock.recvfrom(512)
        try:
            qname, qtype, reply = answer(data, name.lower(), ipv4)
        except (IndexError, struct.error, UnicodeDecodeError):
            continue
        with open(log_file, "a", encoding="utf-8") as log:
            log.write(f"{qname} {qtype}\n")
        sock.sendto(reply, peer)
