#!/usr/bin/env python3
"""TCP proxy adding a fixed one-way delay in each direction (RTT = 2 x delay).

usage: delay_proxy.py LISTEN_PORT UPSTREAM_PORT DELAY_MS   (loopback only)
Bytes are never dropped or reordered; only delayed, so a flow-control window
smaller than bandwidth x RTT shows up as a throughput ceiling.
"""
import asyncio
import sys

LISTEN, UPSTREAM, DELAY = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]) / 1000


async def pipe(reader, writer):
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def send():
        while True:
            due, data = await queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(256 * 1024)
            await queue.put((loop.time() + DELAY, data or None))
            if not data:
                break
    except ConnectionError:
        pass
    await sender


async def handle(client_r, client_w):
    up_r, up_w = await asyncio.open_connection("127.0.0.1", UPSTREAM)
    await asyncio.gather(pipe(client_r, up_w), pipe(up_r, client_w), return_exceptions=True)


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    async with server:
        await server.serve_forever()


asyncio.run(main())
