#!/usr/bin/env python3
"""Records the plain TCP streams on a loopback interface: run inside the
droplet's network namespace (nsenter -n), where nginx talks to the panel,
the relay and authd in the clear. Each connection to a watched port becomes
<port>-<n>.in (the client's bytes, as the server read them) and <port>-<n>.out
(the server's answer), each cut at --max-bytes and at the first lost segment.
Only connections whose SYN it saw are kept. Stops on SIGTERM or SIGINT, or
after --seconds, writing out what it still holds. Standard library only."""
import argparse
import os
import signal
import socket
import struct
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4  # loopback shows each packet twice: skip the outgoing copy
SO_RCVBUFFORCE = 33
SYN, FIN, RST, ACK = 0x02, 0x01, 0x04, 0x10


class Half:
    """One direction of a connection: segments by offset from the SYN."""

    def __init__(self, cap):
        self.isn = None
        self.cap = cap
        self.segments = {}
        self.fin = False

    def add(self, seq, flags, data):
        if flags & SYN:
            self.isn = (seq + 1) & 0xFFFFFFFF
            return
        if flags & FIN:
            self.fin = True
        if self.isn is None or not data:
            return
        offset = (seq - self.isn) & 0xFFFFFFFF
        if offset < self.cap and offset not in self.segments:
            self.segments[offset] = data[: self.cap - offset]

    def bytes(self):
        out = bytearray()
        for offset in sorted(self.segments):
            if offset > len(out):
                break  # a segment the socket dropped: what follows is unknown
            out += self.segments[offset][len(out) - offset:]
        return bytes(out)


class Recorder:
    def __init__(self, out, ports, cap, max_conns):
        self.out, self.ports, self.cap, self.max_conns = out, ports, cap, max_conns
        self.open = {}
        self.count = {p: 0 for p in ports}
        os.makedirs(out, exist_ok=True)

    def packet(self, frame):
        if len(frame) < 14:
            return
        ethertype = struct.unpack_from(">H", frame, 12)[0]
        ip = frame[14:]
        if ethertype == 0x0800 and len(ip) >= 20 and ip[9] == 6:
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack_from(">H", ip, 2)[0]
            src, dst, tcp = ip[12:16], ip[16:20], ip[ihl:total]
        elif ethertype == 0x86DD and len(ip) >= 40 and ip[6] == 6:
            length = struct.unpack_from(">H", ip, 4)[0]
            src, dst, tcp = ip[8:24], ip[24:40], ip[40 : 40 + length]
        else:
            return
        if len(tcp) < 20:
            return
        sport, dport, seq = struct.unpack_from(">HHI", tcp, 0)
        offset, flags = (tcp[12] >> 4) * 4, tcp[13]
        data = bytes(tcp[offset:])
        if dport in self.ports:
            key, side = (src, sport, dport), 0
        elif sport in self.ports:
            key, side = (dst, dport, sport), 1
        else:
            return
        conn = self.open.get(key)
        if conn is None:
            if side != 0 or flags & (SYN | ACK) != SYN or self.count[dport] >= self.max_conns:
                return
            self.count[dport] += 1
            conn = self.open[key] = (f"{dport}-{self.count[dport]:04d}", Half(self.cap), Half(self.cap))
        conn[1 + side].add(seq, flags, data)
        if flags & RST or (conn[1].fin and conn[2].fin):
            self.write(self.open.pop(key))

    def write(self, conn):
        name, into, back = conn
        for suffix, half in ((".in", into), (".out", back)):
            with open(os.path.join(self.out, name + suffix), "wb") as f:
                f.write(half.bytes())

    def close(self):
        for conn in self.open.values():
            self.write(conn)
        self.open.clear()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--interface", default="lo")
    p.add_argument("--ports", default="3100,9080,9090,9091")
    p.add_argument("--max-bytes", type=int, default=256 * 1024)
    p.add_argument("--max-conns", type=int, default=400, help="per port")
    p.add_argument("--seconds", type=float, default=3600)
    args = p.parse_args()

    stop = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.append(1))
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 64 * 1024 * 1024)
    sock.bind((args.interface, 0))
    sock.settimeout(0.5)
    rec = Recorder(args.out, {int(p) for p in args.ports.split(",")}, args.max_bytes, args.max_conns)
    deadline = time.monotonic() + args.seconds
    try:
        while not stop and time.monotonic() < deadline:
            try:
                frame, addr = sock.recvfrom(65536 + 256)
            except socket.timeout:
                continue
            except InterruptedError:
                continue
            if addr[2] != PACKET_OUTGOING:
                rec.packet(frame)
    finally:
        rec.close()


if __name__ == "__main__":
    main()
