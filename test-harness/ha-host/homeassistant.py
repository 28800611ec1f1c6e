#!/usr/bin/env python3
"""A stand-in for Home Assistant's HTTP server on :8123.

Like Home Assistant, it answers 400 Bad Request to a request carrying
X-Forwarded-For unless the peer is one of its trusted_proxies (argv), and
otherwise its page. usage: homeassistant.py PORT TRUSTED_PROXY...
"""

import http.server
import sys

TRUSTED = set(sys.argv[2:])


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        forwarded = self.headers.get("X-Forwarded-For")
        if forwarded and self.client_address[0] not in TRUSTED:
            code, body = 400, b"400: Bad Request"
            sys.stderr.write(f"homeassistant: refused forwarded request from untrusted proxy {self.client_address[0]}\n")
        else:
            code, body = 200, b"<html><body><h1>Home Assistant stand-in</h1></body></html>"
        self.send_response(code)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
