#!/usr/bin/env python3
"""The Supervisor's ingress proxy, as far as add-ons can tell.

Serves /api/hassio_ingress/<token>/<path> and forwards to the add-on of that
token at http://<addon>/<path> with the headers the Supervisor adds
(X-Ingress-Path, X-Remote-User-Id/-Name/-Display-Name, X-Forwarded-For).
Request bodies follow the Supervisor's rule: a POST streams through when the
add-on's config.yaml says `ingress_stream: true`; every other body is read
whole first and refused with 413 above 16 MiB (aiohttp's client_max_size).
The manifest is read on every request, like the Supervisor's view of it.

Tokens (argv): TOKEN=HOST:PORT=CONFIG_PATH ...
"""

import http.client
import os
import http.server
import re
import sys

MAX_BUFFERED = 16 * 1024 * 1024  # bytes, the Supervisor's client_max_size
CHUNK = 64 * 1024
USER = {"X-Remote-User-Id": "8f2d", "X-Remote-User-Name": "owner", "X-Remote-User-Display-Name": "Owner"}
DROPPED = {"content-length", "transfer-encoding", "content-encoding", "connection", "host",
           "x-remote-user-id", "x-remote-user-name", "x-remote-user-display-name", "x-ingress-path"}
ADDONS = {}


def ingress_stream(config_path):
    with open(config_path, encoding="utf-8") as f:
        m = re.search(r"^ingress_stream:\s*(true|false)\s*(?:#.*)?$", f.read(), re.M)
    return bool(m and m.group(1) == "true")


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("ingress: " + (fmt % args) + "\n")

    def fail(self, code, text):
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def body_chunks(self, length):
        left = length
        while left > 0:
            data = self.rfile.read(min(CHUNK, left))
            if not data:
                raise ConnectionError("client closed the body early")
            left -= len(data)
            yield data

    def handle_any(self):
        m = re.match(r"^/api/hassio_ingress/([^/]+)(/.*)?$", self.path)
        if not m or m.group(1) not in ADDONS:
            return self.fail(503, "no such ingress token")
        token, rest = m.group(1), m.group(2) or "/"
        addr, config = ADDONS[token]
        if self.headers.get("Transfer-Encoding"):
            return self.fail(411, "this stand-in needs Content-Length")
        length = int(self.headers.get("Content-Length") or 0)
        stream = self.command == "POST" and ingress_stream(config)
        body = None
        if not stream:
            if length > MAX_BUFFERED:
                # aiohttp refuses while reading; the add-on never sees it.
                return self.fail(413, "Request Entity Too Large")
            body = self.rfile.read(length) if length else b""
        host, port = addr.rsplit(":", 1)
        up = http.client.HTTPConnection(host, int(port), timeout=120)
        up.putrequest(self.command, rest, skip_host=True, skip_accept_encoding=True)
        up.putheader("Host", addr)
        for k, v in self.headers.items():
            if k.lower() not in DROPPED:
                up.putheader(k, v)
        for k, v in USER.items():
            up.putheader(k, v)
        up.putheader("X-Ingress-Path", f"/api/hassio_ingress/{token}")
        fwd = self.headers.get("X-Forwarded-For")
        up.putheader("X-Forwarded-For", f"{fwd}, {self.client_address[0]}" if fwd else self.client_address[0])
        up.putheader("Content-Length", str(length))
        up.endheaders()
        try:
            if stream:
                for data in self.body_chunks(length):
                    up.send(data)
            elif body:
                up.send(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the add-on answered early; its answer is read below
        try:
            res = up.getresponse()
        except (http.client.HTTPException, OSError) as e:
            return self.fail(502, f"add-on did not answer: {e}")
        data = res.read()
        self.send_response(res.status)
        for k, v in res.getheaders():
            if k.lower() not in ("transfer-encoding", "content-length", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        up.close()

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = handle_any


def main():
    for arg in sys.argv[1:]:
        token, addr, config = arg.split("=", 2)
        ADDONS[token] = (addr, config)
    port = int(os.environ.get("INGRESS_PORT", "8000"))
    server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Proxy)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
