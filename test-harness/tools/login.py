#!/usr/bin/env python3
"""login.py URL USER PASSWORD TOTP_SECRET --cacert FILE --jar FILE [--resolve HOST:IP]

Signs a visitor in as a browser would: opens URL, follows the redirect to the
login portal, posts the password form, then the TOTP form (code computed
here), and follows the redirects back. Saves the cookies to --jar (Netscape
format, readable by `curl -b`), prints the final status and the session
cookie as `name=value`. Exit 0 only when the final page is a 200 from URL's host."""
import argparse
import http.cookiejar
import re
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ap = argparse.ArgumentParser()
ap.add_argument("url")
ap.add_argument("user")
ap.add_argument("password")
ap.add_argument("totp_secret")
ap.add_argument("--cacert", required=True)
ap.add_argument("--jar", required=True)
ap.add_argument("--resolve", action="append", default=[], help="HOST:IP, like curl's")
args = ap.parse_args()

pinned = dict(r.split(":", 1) for r in args.resolve)
real_getaddrinfo = socket.getaddrinfo
socket.getaddrinfo = lambda host, *a, **kw: real_getaddrinfo(pinned.get(host, host), *a, **kw)

jar = http.cookiejar.MozillaCookieJar(args.jar)
ctx = ssl.create_default_context(cafile=args.cacert)


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **kw):
        return None


opener = urllib.request.build_opener(
    urllib.request.HTTPSHandler(context=ctx), urllib.request.HTTPCookieProcessor(jar), NoRedirect
)


def fetch(url, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with opener.open(urllib.request.Request(url, data=data), timeout=15) as r:
            return r.status, r.headers, r.read().decode(errors="replace"), r.geturl()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode(errors="replace"), url


def follow(url, form=None, hops=8):
    status, headers, body, where = fetch(url, form)
    while status in (301, 302, 303, 307) and hops > 0:
        url = urllib.parse.urljoin(where, headers["Location"])
        status, headers, body, where = fetch(url)
        hops -= 1
    return status, body, url


def hidden(body, name):
    m = re.search(r'name="%s" value="([^"]*)"' % name, body)
    return m.group(1) if m else ""


def form_action(body, url):
    m = re.search(r'<form[^>]*action="([^"]*)"', body)
    return urllib.parse.urljoin(url, m.group(1) if m else "")


status, body, url = follow(args.url)
if 'name="password"' not in body:
    sys.exit(f"expected the login form, got HTTP {status} at {url}")
status, body, url = follow(form_action(body, url), {
    "csrf": hidden(body, "csrf"), "rd": hidden(body, "rd"),
    "username": args.user, "password": args.password,
})
if 'name="code"' not in body:
    sys.exit(f"expected the TOTP form after the password, got HTTP {status} at {url}")
code = subprocess.run([sys.executable, str(Path(__file__).with_name("totp.py")), args.totp_secret],
                      capture_output=True, text=True, check=True).stdout.strip()
status, body, url = follow(form_action(body, url), {"csrf": hidden(body, "csrf"), "rd": hidden(body, "rd"), "code": code})
# curl reads Netscape jars with empty fields collapsed: a session cookie's
# empty expiry shifts every later field, so give it one (12 h, as authd).
for c in jar:
    if c.expires is None:
        c.expires, c.discard = int(time.time()) + 12 * 3600, False
jar.save(ignore_discard=True, ignore_expires=True)
session = [f"{c.name}={c.value}" for c in jar if "session" in c.name.lower()]
print(f"HTTP {status} at {url}; cookie {session[0] if session else '-'}")
target = urllib.parse.urlparse(args.url).hostname
sys.exit(0 if status == 200 and urllib.parse.urlparse(url).hostname == target else 1)
