"""Outgoing audio: a power-of-two byte ring and the pull-based send schedule.

Sans-I/O and synchronous: the voice connection feeds it ``buffer_request``
grants and writes, and takes ready frames out. Single-threaded asyncio code
needs no locks, so there are none.
"""

from __future__ import annotations

from .errors import BufferClosedError, BufferFullError

DEFAULT_FRAME_BYTES = 960


class ByteRing:
    """Fixed-capacity FIFO of bytes; capacity is a power of two so wrapping is a mask."""

    __slots__ = ("_buf", "_view", "_mask", "_read", "_size", "closed")

    def __init__(self, capacity: int) -> None:
        if capacity <= 0 or capacity & (capacity - 1):
            raise ValueError("Capacity must be a positive power of 2")
        self._buf = bytearray(capacity)
        self._view = memoryview(self._buf)  # the buffer never resizes
        self._mask = capacity - 1
        self._read = 0
        self._size = 0
        self.closed = False

    @property
    def capacity(self) -> int:
        return self._mask + 1

    def __len__(self) -> int:
        return self._size

    def free(self) -> int:
        return self.capacity - self._size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append all of ``data`` or nothing."""
        if self.closed:
            raise BufferClosedError("Buffer is closed")
        if type(data) is not bytes and type(data) is not bytearray:
            data = memoryview(data).cast("B")  # count bytes, not items (an int16 array)
        n = len(data)
        size = self._size
        capacity = self._mask + 1
        if n > capacity - size:
            raise BufferFullError(
                f"Buffer does not have enough space to write all the data "
                f"({n} bytes, {self.free()} free)")
        start = (self._read + size) & self._mask
        if start + n <= capacity:
            self._buf[start:start + n] = data
        else:
            first = capacity - start
            self._buf[start:] = data[:first]
            self._buf[:n - first] = data[first:]
        self._size = size + n

    def read_into(self, out: bytearray, n: int) -> None:
        """Move the oldest ``n`` bytes (n <= len(self)) to the end of ``out``."""
        start = self._read
        first = min(n, self.capacity - start)
        out += self._buf[start:start + first]
        if first < n:
            out += self._buf[:n - first]
        self._read = (start + n) & self._mask
        self._size -= n

    def take(self, n: int, prefix: bytes = b"") -> bytes:
        """``prefix`` + the oldest ``n`` bytes (n <= len(self)), removed from the ring."""
        start = self._read
        stop = start + n
        if stop <= self._mask + 1:
            out = prefix + self._view[start:stop]
        else:
            out = prefix + self._view[start:] + self._view[:stop - self._mask - 1]
        self._read = stop & self._mask
        self._size -= n
        return out

    def read(self, n: int) -> bytes:
        out = bytearray()
        self.read_into(out, min(n, self._size))
        return bytes(out)

    def clear(self) -> int:
        """Drop everything queued; returns how many bytes were dropped."""
        dropped = self._size
        self._read = 0
        self._size = 0
        return dropped

    def close(self) -> None:
        self.closed = True


class OutboundAudio:
    """The ring plus what the server has asked for and not yet received.

    The server grants ``requested_bytes`` with a preferred frame size; we owe
    it that many bytes and send them in frames of that size as audio becomes
    available (the last frame of a grant may be shorter).
    """

    __slots__ = ("ring", "owed", "frame_bytes")

    def __init__(self, capacity: int) -> None:
        self.ring = ByteRing(capacity)
        self.owed = 0
        self.frame_bytes = DEFAULT_FRAME_BYTES

    def grant(self, requested_bytes: int, prefer_frame_bytes: int) -> None:
        if requested_bytes > 0:
            self.owed += requested_bytes
        self.frame_bytes = prefer_frame_bytes if prefer_frame_bytes > 0 else DEFAULT_FRAME_BYTES

    def next_frame(self, prefix: bytes = b"") -> bytes | None:
        """The next frame to send (``prefix`` + audio), or None if none is due yet."""
        want = min(self.frame_bytes, self.owed)
        if want <= 0 or len(self.ring) < want:
            return None
        self.owed -= want
        return self.ring.take(want, prefix)

    def due_frames(self, prefix: bytes = b"") -> list[bytes]:
        """Every frame due now (see :meth:`next_frame`), in order."""
        ring = self.ring
        frame_bytes = self.frame_bytes
        frames: list[bytes] = []
        while True:
            owed = self.owed
            want = frame_bytes if frame_bytes < owed else owed
            if want <= 0 or ring._size < want:
                return frames
            self.owed = owed - want
            frames.append(ring.take(want, prefix))
