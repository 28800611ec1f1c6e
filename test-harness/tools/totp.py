#!/usr/bin/env python3
"""Prints the current RFC 6238 code (SHA-1, 30 s, 6 digits) for a base32 secret
or an otpauth:// URI, as an authenticator app would."""
import base64
import hmac
import struct
import sys
import time
import urllib.parse

arg = sys.argv[1]
if arg.startswith("otpauth://"):
    arg = urllib.parse.parse_qs(urllib.parse.urlparse(arg).query)["secret"][0]
secret = base64.b32decode(arg.upper() + "=" * (-len(arg) % 8))
counter = int(time.time()) // 30 + (int(sys.argv[2]) if len(sys.argv) > 2 else 0)
digest = hmac.new(secret, struct.pack(">Q", counter), "sha1").digest()
offset = digest[-1] & 0x0F
code = (struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
print(f"{code:06d}")
