"""A minimal asyncio WebSocket client (RFC 6455) for the benchmarks: text frames, ping, close.

The benchmarks import Django with daphne installed, which binds txaio (and so autobahn) to
Twisted; this keeps the bench clients on plain asyncio streams. Client frames are masked as
the RFC requires; fragmented messages are reassembled; pings are answered.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import struct

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WebSocketClosed(Exception):
    """The server closed the socket; `code` is its close code (None when the stream just ended)."""

    def __init__(self, code: int | None) -> None:
        super().__init__(f"closed with code {code}")
        self.code = code


class WebSocket:
    """One client connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, host: str, port: int, path: str, headers: dict[str, str]) -> WebSocket:
        reader, writer = await asyncio.open_connection(host, port, limit=2**24)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *[f"{name}: {value}" for name, value in headers.items()],
            "",
            "",
        ]
        writer.write("\r\n".join(lines).encode())
        await writer.drain()
        response = await reader.readuntil(b"\r\n\r\n")
        status = response.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise WebSocketClosed(None)
        accept = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest())
        if accept not in response:
            raise ConnectionError("the server's Sec-WebSocket-Accept does not match")
        return cls(reader, writer)

    def _frame(self, opcode: int, payload: bytes) -> bytes:
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 2**16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        return head + mask + masked

    def send_text(self, text: str) -> None:
        self.writer.write(self._frame(0x1, text.encode()))

    async def receive(self) -> str:
        """The next text message; raises WebSocketClosed when the server closes."""
        parts: list[bytes] = []
        while True:
            try:
                first, second = await self.reader.readexactly(2)
            except asyncio.IncompleteReadError:
                raise WebSocketClosed(None) from None
            opcode = first & 0x0F
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(length)
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise WebSocketClosed(code)
            if opcode == 0x9:
                self.writer.write(self._frame(0xA, payload))
                continue
            if opcode == 0xA:
                continue
            parts.append(payload)
            if first & 0x80:
                return b"".join(parts).decode()

    async def close(self) -> None:
        try:
            self.writer.write(self._frame(0x8, struct.pack("!H", 1000)))
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            pass
        self.writer.close()
