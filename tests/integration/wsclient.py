"""wsclient.py - a minimal RFC 6455 WebSocket client (stdlib only) for the tests.

Connects with the opening handshake (checks Sec-WebSocket-Accept), reads text frames
(reassembling fragments), answers pings with pongs, answers a close with a close, and sends
masked text/close frames. Used to read nchan progress messages:

    with WebSocket("127.0.0.1", port, "/api/models/ws/progress") as ws:
        msg = ws.recv_json(timeout=5)
"""

import base64
import hashlib
import json
import os
import socket
import struct
import time

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class WebSocketError(Exception):
    pass


class WebSocketClosed(WebSocketError):
    def __init__(self, code=None, reason=""):
        super().__init__(f"closed by server (code {code}, {reason!r})")
        self.code = code
        self.reason = reason


class WebSocket:
    def __init__(self, host, port, path, timeout=10.0, headers=None):
        self.host, self.port, self.path = host, port, path
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        self.closed = False
        self.response_headers = {}
        self.status = None
        try:
            self._handshake(headers or {})
        except BaseException:
            self.sock.close()
            raise

    # --- opening handshake ---------------------------------------------------------------

    def _handshake(self, extra):
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {self.path} HTTP/1.1",
            f"Host: {self.host}:{self.port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ] + [f"{k}: {v}" for k, v in extra.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise WebSocketError("connection closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("iso-8859-1").split("\r\n")
        parts = status_line.split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
        for line in header_lines:
            if ":" in line:
                k, v = line.split(":", 1)
                self.response_headers[k.strip().lower()] = v.strip()
        if self.status != 101:
            raise WebSocketError(f"handshake answered {status_line!r}")
        expect = base64.b64encode(hashlib.sha1((key + _GUID).encode()).digest()).decode()
        if self.response_headers.get("sec-websocket-accept") != expect:
            raise WebSocketError("bad Sec-WebSocket-Accept")

    # --- frames ------------------------------------------------------------------------

    def _read_exact(self, n, deadline):
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no WebSocket data before the deadline")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no WebSocket data before the deadline") from None
            if not chunk:
                self.closed = True
                raise WebSocketClosed(None, "connection dropped")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def _read_frame(self, deadline):
        b0, b1 = self._read_exact(2, deadline)
        fin, opcode = b0 & 0x80, b0 & 0x0F
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_exact(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_exact(8, deadline))[0]
        mask = self._read_exact(4, deadline) if b1 & 0x80 else None
        payload = self._read_exact(n, deadline)
        if mask:
            payload = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        return bool(fin), opcode, payload

    def _send_frame(self, opcode, payload=b""):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack("!Q", n)
        masked = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    # --- API ---------------------------------------------------------------------------

    def recv(self, timeout=10.0):
        """Returns the next text message (str); binary messages come back as bytes.
        Raises TimeoutError when none arrives in time, WebSocketClosed on close."""
        deadline = time.monotonic() + timeout
        parts, first_op = [], None
        while True:
            fin, op, payload = self._read_frame(deadline)
            if op == OP_PING:
                self._send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                if not self.closed:
                    try:
                        self._send_frame(OP_CLOSE, payload[:2])
                    except OSError:
                        pass
                self.closed = True
                raise WebSocketClosed(code, payload[2:].decode("utf-8", "replace"))
            if op in (OP_TEXT, OP_BINARY):
                first_op, parts = op, [payload]
            elif op == OP_CONT:
                parts.append(payload)
            if fin and first_op is not None:
                data = b"".join(parts)
                return data.decode("utf-8") if first_op == OP_TEXT else data

    def recv_json(self, timeout=10.0):
        return json.loads(self.recv(timeout))

    def messages(self, duration):
        """Every message that arrives within `duration` seconds (a list, maybe empty)."""
        out, deadline = [], time.monotonic() + duration
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return out
            try:
                out.append(self.recv(remaining))
            except TimeoutError:
                return out

    def send_text(self, text):
        self._send_frame(OP_TEXT, text.encode("utf-8"))

    def ping(self, payload=b""):
        self._send_frame(OP_PING, payload)

    def close(self, code=1000):
        if not self.closed:
            try:
                self._send_frame(OP_CLOSE, struct.pack("!H", code))
            except OSError:
                pass
            self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
