"""Raw HTTP/1.1 over sockets for the serve protocol tests: what a hostile or careless client
sends, byte for byte, and a reader that parses exactly one reply at a time."""

from __future__ import annotations

import socket


def connect(rt) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", rt.port), timeout=10)
    return sock


def post(path: str, body: bytes, *extra: str, version: str = "1.1") -> bytes:
    head = [f"POST {path} HTTP/{version}", "Host: 127.0.0.1", "Content-Type: application/json",
            f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


class Reader:
    def __init__(self, sock: socket.socket):
        self.file = sock.makefile("rb")

    def response(self, head: bool = False) -> tuple[int, dict, bytes]:
        status_line = self.file.readline()
        assert status_line.startswith(b"HTTP/1.1 "), status_line
        status = int(status_line.split()[1])
        headers = {}
        while (line := self.file.readline()) not in (b"\r\n", b""):
            key, _, value = line.decode("latin-1").partition(":")
            headers[key.strip().lower()] = value.strip()
        if status == 100 or head:
            return status, headers, b""
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while (size := int(self.file.readline().strip(), 16)):
                body += self.file.read(size)
                self.file.readline()
            self.file.readline()
            return status, headers, body
        return status, headers, self.file.read(int(headers.get("content-length", 0)))

    def closed(self) -> bool:
        return self.file.read(1) == b""
