#!/usr/bin/env python3
"""The home sample app the journey publishes through a tunnel.

GET /          a small HTML page
GET /stream    a chunked response: five lines, 200 ms apart
GET /sse       Server-Sent Events: three events
GET /ws        WebSocket echo (text and binary frames)
GET /headers   the request headers it received, as text
"""
import base64
import hashlib
import http.server
import socketserver
import struct
import sys
import threading
import time

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
PAGE = b"<!doctype html><title>Home app</title><h1>hello from the home app</h1>\n"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Seconds a connection may sit without sending or taking bytes: an idle
    # keep-alive connection or a visitor that stopped reading frees its thread.
    timeout = 60

    def log_message(self, fmt, *args):
        sys.stderr.write("app: " + (fmt % args) + "\n")

    def send_body(self, body, content_type):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/":
            self.send_body(PAGE, "text/html; charset=utf-8")
        elif self.path == "/headers":
            self.send_body(str(self.headers).encode(), "text/plain")
        elif self.path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(5):
                line = f"line {i}\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
                time.sleep(0.2)
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/sse":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")
            self.end_headers()
            for i in range(3):
                self.wfile.write(f"data: event {i}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.2)
            self.close_connection = True
        elif self.path == "/ws" and self.headers.get("Upgrade", "").lower() == "websocket":
            self.websocket_echo()
        else:
            self.send_error(404)

    def websocket_echo(self):
        key = self.headers.get("Sec-WebSocket-Key", "").encode()
        accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.close_connection = True
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", self.rfile.read(2))[0]
            elif length == 127:
                length = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:
                self.wfile.write(b"\x88\x00")
                return
            if opcode == 9:
                opcode = 10
            size = len(data)
            header = bytes([0x80 | opcode])
            if size < 126:
                header += bytes([size])
            elif size < 65536:
                header += bytes([126]) + struct.pack(">H", size)
            else:
                header += bytes([127]) + struct.pack(">Q", size)
            self.wfile.write(header + data)
            self.wfile.flush()


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    # socketserver's default listen backlog is 5: a burst of new connections
    # (the journey's 1,000 concurrent visitors) overflows it, and the dropped
    # handshakes stall for a minute or more. Real servers ask for hundreds.
    request_queue_size = 4096


if __name__ == "__main__":
    # One thread per connection, 1,000 at once in the load step: each gets
    # a 512 KiB stack instead of the default 8 MiB (the handlers need far
    # less), so the threads' reservations stay small.
    threading.stack_size(512 * 1024)
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
    Server(("0.0.0.0", port), Handler).serve_forever()
