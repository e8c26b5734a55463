#!/usr/bin/python3
"""The lab's NetworkPolicy probe agent, one per pod, run inside the pod's network namespace.

  netpol_agent.py serve                      listen on ports 80 and 81 over TCP, UDP and SCTP
  netpol_agent.py probe PROTO PORT IP...     try each address once, all at the same time, and
                                             print {"IP": true|false, ...} as JSON
  netpol_agent.py stream IP                  one TCP connection to IP's echo port (8080): a line
                                             every 50 ms; prints "sent N" and "echoed N" as they go

TCP is a connect, UDP a datagram answered by an echo. This machine's kernel has no SCTP
stack, so SCTP is spoken with raw sockets: the probe sends a real SCTP INIT chunk (with its
CRC32c), the server answers with an INIT ACK carrying a state cookie, which is the first half
of SCTP's handshake; connection tracking and the nftables rules see exactly the packets an
SCTP stack sends there. A probe succeeds when its answer comes back within --timeout seconds.
"""
import json
import os
import random
import select
import socket
import struct
import sys
import threading
import time

PORTS = (80, 81)
ECHO_PORT = 8080
SCTP = 132


def _crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


CRC_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def sctp_packet(sport, dport, vtag, chunk):
    header = struct.pack("!HHII", sport, dport, vtag, 0)
    packet = header + chunk
    return header[:8] + struct.pack("<I", crc32c(packet)) + chunk


def init_chunk(chunk_type, tag, params=b""):
    body = struct.pack("!IIHHI", tag, 65535, 1, 1, tag) + params
    return struct.pack("!BBH", chunk_type, 0, 4 + len(body)) + body


def state_cookie():
    cookie = b"flannel-ts-lab-cookie"
    pad = b"\0" * ((4 - len(cookie) % 4) % 4)
    return struct.pack("!HH", 7, 4 + len(cookie)) + cookie + pad


def parse_sctp(data):
    """The (source ip, sport, dport, vtag, chunk type, init tag) of a raw IPv4 SCTP packet."""
    ihl = (data[0] & 0x0F) * 4
    src = socket.inet_ntoa(data[12:16])
    sport, dport, vtag = struct.unpack("!HHI", data[ihl:ihl + 8])
    chunk_type = data[ihl + 12]
    init_tag = struct.unpack("!I", data[ihl + 16:ihl + 20])[0] if len(data) >= ihl + 20 else 0
    return src, sport, dport, vtag, chunk_type, init_tag


def serve_tcp(port):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(128)
    while True:
        conn, _ = server.accept()
        conn.close()


def serve_echo():
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", ECHO_PORT))
    server.listen(16)

    def echo(conn):
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                conn.sendall(data)

    while True:
        conn, _ = server.accept()
        threading.Thread(target=echo, args=(conn,), daemon=True).start()


def stream(ip):
    conn = socket.create_connection((ip, ECHO_PORT), timeout=5)
    conn.settimeout(0.05)
    sent = echoed = 0
    buffered = b""
    while True:
        sent += 1
        conn.sendall(b"%d\n" % sent)
        print(f"sent {sent}", flush=True)
        deadline = time.monotonic() + 0.05
        while time.monotonic() < deadline:
            try:
                data = conn.recv(4096)
            except socket.timeout:
                break
            if not data:
                print("closed", flush=True)
                return
            buffered += data
            while b"\n" in buffered:
                _, buffered = buffered.split(b"\n", 1)
                echoed += 1
                print(f"echoed {echoed}", flush=True)


def serve_udp(port):
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("0.0.0.0", port))
    while True:
        data, peer = server.recvfrom(2048)
        server.sendto(data, peer)


def serve_sctp():
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, SCTP)
    while True:
        data, _ = raw.recvfrom(2048)
        src, sport, dport, _, chunk_type, init_tag = parse_sctp(data)
        if chunk_type == 1 and dport in PORTS:  # INIT: answer with INIT ACK
            own = random.getrandbits(32) or 1
            chunk = init_chunk(2, own, state_cookie())
            raw.sendto(sctp_packet(dport, sport, init_tag, chunk), (src, 0))


def serve():
    threads = [threading.Thread(target=serve_sctp, daemon=True), threading.Thread(target=serve_echo, daemon=True)]
    for port in PORTS:
        threads.append(threading.Thread(target=serve_tcp, args=(port,), daemon=True))
        threads.append(threading.Thread(target=serve_udp, args=(port,), daemon=True))
    for t in threads:
        t.start()
    print("serving", flush=True)
    while True:
        time.sleep(3600)


def probe_tcp(ips, port, timeout):
    pending = {}
    for ip in ips:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((ip, port))
        pending[s] = ip
    result = {ip: False for ip in ips}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        _, writable, _ = select.select([], list(pending), [], deadline - time.monotonic())
        for s in writable:
            ip = pending.pop(s)
            result[ip] = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            s.close()
    for s in pending:
        s.close()
    return result


def probe_udp(ips, port, timeout):
    sockets = {}
    for ip in ips:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((ip, port))
        s.send(b"probe")
        sockets[s] = ip
    result = {ip: False for ip in ips}
    deadline = time.monotonic() + timeout
    while sockets and time.monotonic() < deadline:
        readable, _, _ = select.select(list(sockets), [], [], deadline - time.monotonic())
        for s in readable:
            ip = sockets.pop(s)
            try:
                result[ip] = s.recv(2048) == b"probe"
            except OSError:
                result[ip] = False  # ICMP unreachable
            s.close()
    for s in sockets:
        s.close()
    return result


def probe_sctp(ips, port, timeout):
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, SCTP)
    tags = {}
    for ip in ips:
        tag = random.getrandbits(32) or 1
        sport = random.randint(20000, 60000)
        tags[(ip, sport)] = tag
        raw.sendto(sctp_packet(sport, port, 0, init_chunk(1, tag)), (ip, 0))
    result = {ip: False for ip in ips}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(result.values()):
        readable, _, _ = select.select([raw], [], [], deadline - time.monotonic())
        if not readable:
            break
        src, sport, dport, vtag, chunk_type, _ = parse_sctp(raw.recvfrom(2048)[0])
        if chunk_type == 2 and sport == port and tags.get((src, dport)) == vtag:
            result[src] = True
    raw.close()
    return result


def main(argv):
    if argv[:1] == ["serve"]:
        serve()
        return 0
    if len(argv) == 2 and argv[0] == "stream":
        stream(argv[1])
        return 0
    if len(argv) >= 3 and argv[0] == "probe":
        timeout = float(os.environ.get("PROBE_TIMEOUT", "1"))
        proto, port, ips = argv[1].upper(), int(argv[2]), argv[3:]
        probe = {"TCP": probe_tcp, "UDP": probe_udp, "SCTP": probe_sctp}.get(proto)
        if probe is None:
            print(f"netpol_agent: unknown protocol {proto!r}: expected TCP, UDP or SCTP", file=sys.stderr)
            return 2
        print(json.dumps(probe(ips, port, timeout)))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
