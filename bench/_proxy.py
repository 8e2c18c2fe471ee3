"""A counting HTTP/1.1 reverse proxy for the benchmarks.

It forwards every request unchanged to one upstream server (the local Cyrus) and counts, per
client, the requests it forwarded and the bytes that went each way (status line, headers and
body as sent on the wire, so compressed bodies count compressed). All three columns of the sync
benchmark (jmapsyncd, vdirsyncer, the bare JMAP loop) and both client libraries go through it,
so they pay the same small extra hop.

Cyrus builds absolute URLs (redirects) from the ``Host`` header and gives a relative ``apiUrl``,
so a client pointed at the proxy stays on the proxy.

Two paths are answered by the proxy itself and never counted:

* ``GET /__bench__/counts`` — JSON ``{"requests", "bytes_in", "bytes_out", "by_method"}``
  (``bytes_in``: received by the client, i.e. the responses);
* ``POST /__bench__/reset`` — zero the counters.

Run: ``python bench/_proxy.py --upstream 127.0.0.1:18310``; it prints the port it listens on.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from dataclasses import dataclass, field


@dataclass
class Counts:
    requests: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    by_method: dict[str, int] = field(default_factory=dict)

    def as_json(self) -> bytes:
        return json.dumps(
            {
                "requests": self.requests,
                "bytes_in": self.bytes_in,
                "bytes_out": self.bytes_out,
                "by_method": self.by_method,
            }
        ).encode()


class ClosedError(Exception):
    """The peer closed the connection between two messages."""


async def read_head(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            raise ClosedError from exc
        raise


def header_map(head: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        if b":" in line:
            name, _, value = line.partition(b":")
            key = name.strip().lower().decode("latin-1")
            val = value.strip().decode("latin-1")
            headers[key] = f"{headers[key]}, {val}" if key in headers else val
    return headers


async def copy_body(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    headers: dict[str, str],
    until_close: bool,
) -> int:
    """Copy one message body; return the bytes copied."""
    copied = 0
    if "chunked" in headers.get("transfer-encoding", "").lower():
        while True:
            line = await reader.readuntil(b"\r\n")
            writer.write(line)
            copied += len(line)
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    trailer = await reader.readuntil(b"\r\n")
                    writer.write(trailer)
                    copied += len(trailer)
                    if trailer == b"\r\n":
                        return copied
            data = await reader.readexactly(size + 2)
            writer.write(data)
            copied += len(data)
            if writer.transport.get_write_buffer_size() > 1 << 20:
                await writer.drain()
    length = headers.get("content-length")
    if length is not None:
        remaining = int(length)
        while remaining:
            data = await reader.read(min(remaining, 1 << 18))
            if not data:
                raise ClosedError
            writer.write(data)
            copied += len(data)
            remaining -= len(data)
            if writer.transport.get_write_buffer_size() > 1 << 20:
                await writer.drain()
        return copied
    if until_close:
        while data := await reader.read(1 << 18):
            writer.write(data)
            copied += len(data)
            await writer.drain()
    return copied


class Proxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream_host = upstream_host
        self.upstream_port = upstream_port
        self.counts = Counts()
        # Handlers of idle keep-alive or streaming connections wait for a long time; holding
        # them here keeps them from being collected while pending.
        self.tasks: set[asyncio.Task[None]] = set()

    async def control(self, head: bytes, writer: asyncio.StreamWriter) -> None:
        path = head.split(b" ", 2)[1]
        if path.startswith(b"/__bench__/reset"):
            self.counts = Counts()
        body = self.counts.as_json()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    async def handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        task = asyncio.current_task()
        if task is not None:
            self.tasks.add(task)
        try:
            while True:
                try:
                    head = await read_head(creader)
                except ClosedError:
                    return
                if head.split(b" ", 2)[1].startswith(b"/__bench__/"):
                    await self.control(head, cwriter)
                    continue
                if upstream is None:
                    upstream = await asyncio.open_connection(self.upstream_host, self.upstream_port)
                ureader, uwriter = upstream
                method = head.split(b" ", 1)[0].decode("latin-1")
                req_headers = header_map(head)
                uwriter.write(head)
                sent = len(head) + await copy_body(creader, uwriter, req_headers, False)
                await uwriter.drain()
                resp_head = await read_head(ureader)
                resp_headers = header_map(resp_head)
                status = int(resp_head.split(b" ", 2)[1])
                cwriter.write(resp_head)
                received = len(resp_head)
                no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
                if not no_body:
                    received += await copy_body(ureader, cwriter, resp_headers, True)
                await cwriter.drain()
                c = self.counts
                c.requests += 1
                c.bytes_out += sent
                c.bytes_in += received
                c.by_method[method] = c.by_method.get(method, 0) + 1
                if "close" in resp_headers.get("connection", "").lower():
                    uwriter.close()
                    upstream = None
        except (ConnectionError, asyncio.IncompleteReadError, ClosedError):
            return
        finally:
            if upstream is not None:
                upstream[1].close()
            with contextlib.suppress(Exception):
                cwriter.close()
            if task is not None:
                self.tasks.discard(task)


async def serve(upstream: str, port: int) -> None:
    host, _, uport = upstream.rpartition(":")
    proxy = Proxy(host, int(uport))
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", port, limit=1 << 20)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", default="127.0.0.1:18310")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.upstream, args.port))
    sys.exit(0)


if __name__ == "__main__":
    main()
