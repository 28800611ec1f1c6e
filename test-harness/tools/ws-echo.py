#!/usr/bin/env python3
"""ws-echo.py URL [--cacert FILE] [--cookie 'name=value']: opens a WebSocket,
sends a text frame and checks that the same text comes back. Exit 0 on echo."""
import argparse
import base64
import os
import socket
import ssl
import struct
import sys
import urllib.parse

ap = argparse.ArgumentParser()
ap.add_argument("url")
ap.add_argument("--cacert")
ap.add_argument("--cookie")
args = ap.parse_args()
u = urllib.parse.urlparse(args.url)
port = u.port or (443 if u.scheme == "wss" else 80)
sock = socket.create_connection((u.hostname, port), timeout=10)
if u.scheme == "wss":
    ctx = ssl.create_default_context(cafile=args.cacert)
    sock = ctx.wrap_socket(sock, server_hostname=u.hostname)
key = base64.b64encode(os.urandom(16)).decode()
lines = [f"GET {u.path or '/'} HTTP/1.1", f"Host: {u.hostname}", "Upgrade: websocket",
         "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
if args.cookie:
    lines.append(f"Cookie: {args.cookie}")
sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
head = b""
while b"\r\n\r\n" not in head:
    chunk = sock.recv(1)
    if not chunk:
        sys.exit("connection closed during the handshake")
    head += chunk
status = head.split(b"\r\n")[0].decode()
if " 101 " not in status + " ":
    sys.exit(f"no upgrade: {status}")
message = b"portico echo " + os.urandom(4).hex().encode()
mask = os.urandom(4)
sock.sendall(bytes([0x81, 0x80 | len(message)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(message)))
reply = sock.recv(2)
length = reply[1] & 0x7F
if length == 126:
    length = struct.unpack(">H", sock.recv(2))[0]
data = b""
while len(data) < length:
    data += sock.recv(length - len(data))
print(f"{status}; echo: {data.decode(errors='replace')}")
sys.exit(0 if data == message else 1)
