#!/usr/bin/env python3
"""Opens N keep-alive client connections to a proxy, completes one request on each (the
peer benchmark's GraphQL POST), then holds them all idle until stdin closes or a line
arrives; used for the "RSS at 10k idle connections" measurement of benches/scaling.sh.
    idle_conns.py HOST PORT N REQUEST_FILE [BATCH]
Prints `READY <open> <failed>` on stdout once every connection has its response (nothing
else is sent afterwards), then `CLOSED` after closing them. Exits 1 if fewer than N opened.
Connections are opened BATCH (default 200) at a time, so the proxy needs only a handful of
upstream connections and its listen backlog is never the limit.
"""
import asyncio
import sys


async def one(host, port, request, opened):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = head.split(b" ", 2)[1]
    length = None
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
        elif k.strip().lower() == b"transfer-encoding" and b"chunked" in v.lower():
            length = -1
    if length is None:
        raise RuntimeError("response without a length: %r" % head[:200])
    if length >= 0:
        await reader.readexactly(length)
    else:  # chunked: read chunks until the last one
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    if status != b"200":
        raise RuntimeError("status %r" % status)
    opened.append((reader, writer))


async def main():
    host, port, n, request_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 200
    body = open(request_file, "rb").read()
    request = (b"POST /graphql HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
               b"User-Agent: slogate-scaling-bench/1 (idle)\r\nContent-Length: %d\r\n\r\n"
               % (host.encode(), port, len(body))) + body
    opened, failed = [], 0
    for start in range(0, n, batch):
        results = await asyncio.gather(
            *(one(host, port, request, opened) for _ in range(min(batch, n - start))),
            return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        failed += len(errors)
        if errors and failed == len(errors):
            print("idle_conns.py: %s" % errors[0], file=sys.stderr)
    print("READY %d %d" % (len(opened), failed), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    # Anything the proxy sent meanwhile (it should send nothing) would be a problem.
    for _, w in opened:
        w.close()
    print("CLOSED", flush=True)
    return 0 if len(opened) == n else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
