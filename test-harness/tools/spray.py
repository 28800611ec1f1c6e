#!/usr/bin/env python3
"""spray.py URL USER COUNT --cacert FILE [--resolve HOST:IP]

Tries COUNT wrong passwords for USER on the login portal as a browser would
(opens URL, follows the redirect to the portal, posts the form with its CSRF
token) and prints one HTTP status per attempt, with Retry-After when given.
Exit 0 when every attempt got an answer (401 or 429), 1 otherwise."""
import argparse
import http.cookiejar
import re
import socket
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("url")
ap.add_argument("user")
ap.add_argument("count", type=int)
ap.add_argument("--cacert", required=True)
ap.add_argument("--resolve", action="append", default=[], help="HOST:IP, like curl's")
args = ap.parse_args()

pinned = dict(r.split(":", 1) for r in args.resolve)
real_getaddrinfo = socket.getaddrinfo
socket.getaddrinfo = lambda host, *a, **kw: real_getaddrinfo(pinned.get(host, host), *a, **kw)

ctx = ssl.create_default_context(cafile=args.cacert)
opener = urllib.request.build_opener(
    urllib.request.HTTPSHandler(context=ctx), urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
)


def fetch(url, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with opener.open(urllib.request.Request(url, data=data), timeout=15) as r:
            return r.status, r.headers, r.read().decode(errors="replace"), r.geturl()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode(errors="replace"), url


def hidden(body, name):
    m = re.search(r'name="%s" value="([^"]*)"' % name, body)
    return m.group(1) if m else ""


ok = True
for _ in range(args.count):
    status, _, body, where = fetch(args.url)
    if 'name="password"' not in body:
        sys.exit(f"expected the login form, got HTTP {status} at {where}")
    m = re.search(r'<form[^>]*action="([^"]*)"', body)
    action = urllib.parse.urljoin(where, m.group(1) if m else "")
    status, headers, _, _ = fetch(action, {
        "csrf": hidden(body, "csrf"), "rd": hidden(body, "rd"),
        "username": args.user, "password": "not the password",
    })
    retry = headers.get("Retry-After")
    print(status if retry is None else f"{status} retry-after={retry}")
    ok = ok and status in (401, 429)
sys.exit(0 if ok else 1)
