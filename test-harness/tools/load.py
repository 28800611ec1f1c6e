#!/usr/bin/env python3
"""Concurrent visitors for the harness's load step, bounded in count and time.

usage: load.py URL --connections N --requests R [--ws PATH] [--cacert FILE] [--timeout S]

Opens N TLS connections at once; each sends R keep-alive GET requests one
after another (and, with --ws, then opens a WebSocket to PATH on a new
connection and has one message echoed). Prints one JSON line: how many
responses had each status, and how many connections failed and why.
"""
import argparse
import asyncio
import base64
import collections
import json
import os
import ssl
import sys
import urllib.parse


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif status not in (101, 204, 304):
        await reader.read()
    return status, headers


async def visitor(url, requests, ws_path, ctx, statuses, errors):
    host, port = url.hostname, url.port or 443
    try:
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
        for _ in range(requests):
            writer.write(f"GET {url.path or '/'} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
            status, headers = await read_response(reader)
            statuses[status] += 1
            if headers.get("connection", "").lower() == "close":
                writer.close()
                reader, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
        writer.close()
        if ws_path:
            reader, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                f"GET {ws_path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
            )
            status, _ = await read_response(reader)
            statuses[f"ws {status}"] += 1
            if status == 101:
                payload = b"echo"
                writer.write(bytes([0x81, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
                reply = await reader.readexactly(2 + len(payload))
                statuses["ws echoed" if reply[2:] == payload else "ws wrong echo"] += 1
                writer.write(b"\x88\x80\0\0\0\0")
            writer.close()
    except Exception as e:  # noqa: BLE001 - every failure is counted by kind
        errors[type(e).__name__] += 1


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--requests", type=int, default=3)
    p.add_argument("--ws")
    p.add_argument("--cacert")
    p.add_argument("--timeout", type=float, default=120)
    a = p.parse_args()
    ctx = ssl.create_default_context(cafile=a.cacert)
    url = urllib.parse.urlparse(a.url)
    statuses, errors = collections.Counter(), collections.Counter()
    tasks = [
        asyncio.create_task(visitor(url, a.requests, a.ws, ctx, statuses, errors)) for _ in range(a.connections)
    ]
    done, pending = await asyncio.wait(tasks, timeout=a.timeout)
    for t in pending:
        t.cancel()
    if pending:
        errors["unfinished at the time limit"] += len(pending)
    print(json.dumps({"statuses": {str(k): v for k, v in statuses.items()}, "errors": dict(errors)}))


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
