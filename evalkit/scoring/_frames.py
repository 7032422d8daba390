"""Length-prefixed frames over a socket: the wire format between the sandbox and its workers.

A frame is a 4-byte big-endian length, then that many bytes of JSON (never pickle: the parent must
not unpickle bytes from a process that handles untrusted input). Both sides refuse a frame longer
than ``MAX_FRAME`` as if the peer had gone away.
"""

from __future__ import annotations

import socket
import struct
import time

MAX_FRAME = 1 << 22  # 4 MiB: far above any answer pair (math_equal caps answers long before this)
_HEADER = struct.Struct("!I")


def frame(payload: bytes) -> bytes:
    """``payload`` with its length prefix."""
    return _HEADER.pack(len(payload)) + payload


def write_frame(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(frame(payload))


def read_frame(sock: socket.socket, deadline: float | None = None) -> bytes | None:
    """One frame, or None at EOF or for an over-long frame. With a ``deadline`` (a
    ``time.monotonic()`` value) raises TimeoutError once it passes; without one it blocks."""
    hdr = _recv_exact(sock, _HEADER.size, deadline)
    if hdr is None:
        return None
    (n,) = _HEADER.unpack(hdr)
    if n > MAX_FRAME:
        return None
    return _recv_exact(sock, n, deadline)


def _recv_exact(sock: socket.socket, n: int, deadline: float | None) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
        chunk = sock.recv(n - len(buf))  # raises TimeoutError (socket.timeout) past the deadline
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)
