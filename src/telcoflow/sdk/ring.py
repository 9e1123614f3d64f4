"""Outgoing audio: a byte ring that grows with its queue, and the pull-based send schedule.

Sans-I/O and synchronous: the voice connection feeds it ``buffer_request``
grants and writes, and takes ready frames out. Single-threaded asyncio code
needs no locks, so there are none.
"""

from __future__ import annotations

from .errors import BufferClosedError, BufferFullError

DEFAULT_FRAME_BYTES = 960
# What a ring holds when little is queued: 256 ms of 16 kHz PCM16 (170 ms at 24 kHz), more
# than an echo or a speech stream sent as it is made keeps queued; a burst grows it.
SMALL_BUFFER = 8 * 1024


class ByteRing:
    """FIFO of at most ``capacity`` bytes in a power-of-two buffer, so wrapping is a mask.

    The buffer follows what is queued rather than the bound: it starts at
    ``initial`` bytes (``SMALL_BUFFER``), doubles when a write needs more, up
    to ``capacity``, and goes back to ``initial`` bytes once drained. A call
    that echoes 20 ms frames or streams speech as it is made holds 8 KiB, not
    the 1 MiB bound; a burst of TTS holds at most twice its own size, and only
    until it has been sent.
    """

    __slots__ = ("_buf", "_view", "_mask", "_read", "_size", "_capacity", "_initial", "closed")

    def __init__(self, capacity: int, *, initial: int = SMALL_BUFFER) -> None:
        if not _power_of_two(capacity):
            raise ValueError("Capacity must be a positive power of 2")
        if not _power_of_two(initial):
            raise ValueError("The initial size must be a positive power of 2")
        self._capacity = capacity
        self._initial = min(initial, capacity)
        self._read = 0
        self._size = 0
        self.closed = False
        self._allocate(self._initial)

    def _allocate(self, size: int) -> None:
        """Start over in a new zeroed buffer of ``size`` bytes (nothing is queued)."""
        self._buf = bytearray(size)
        self._view = memoryview(self._buf)
        self._mask = size - 1  # -1 for the empty buffer of a closed ring: nothing to wrap
        self._read = 0

    def _resize(self, size: int) -> None:
        """Grow or cut the buffer where it is (a realloc: no zero-fill, no fresh block).

        Growing repeats the buffer (``buf *= k``): the queue, ``[_read, _read +
        _size)`` modulo the old size, then lies in order from ``_read`` on, wrapped
        part included, so nothing else moves. Cutting keeps the first ``size`` bytes.
        """
        self._view.release()  # a bytearray with a view on it cannot be resized
        allocated = self._mask + 1
        if size > allocated:
            self._buf *= size // allocated
        else:
            del self._buf[size:]
        self._view = memoryview(self._buf)
        self._mask = size - 1

    @property
    def capacity(self) -> int:
        """The bound: the most bytes the ring will queue (the configured buffer size)."""
        return self._capacity

    @property
    def allocated(self) -> int:
        """Bytes of buffer held now (grows with the queue, never beyond ``capacity``)."""
        return self._mask + 1

    def __len__(self) -> int:
        return self._size

    def free(self) -> int:
        return self._capacity - self._size

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append all of ``data`` or nothing (BufferFullError past ``capacity``)."""
        if self.closed:
            raise BufferClosedError("Buffer is closed")
        if type(data) is not bytes and type(data) is not bytearray:
            data = memoryview(data).cast("B")  # count bytes, not items (an int16 array)
        n = len(data)
        size = self._size
        allocated = self._mask + 1
        if n > allocated - size:  # one comparison on the hot path, as with a fixed buffer
            self._grow(size + n)
            allocated = self._mask + 1
        start = (self._read + size) & self._mask
        if start + n <= allocated:
            self._buf[start:start + n] = data
        else:
            first = allocated - start
            self._buf[start:] = data[:first]
            self._buf[:n - first] = data[first:]
        self._size = size + n

    def _grow(self, need: int) -> None:
        """Double the buffer until ``need`` bytes fit, keeping the queue in order."""
        if need > self._capacity:
            raise BufferFullError(
                f"Buffer does not have enough space to write all the data "
                f"({need - self._size} bytes, {self.free()} free)")
        size = self._mask + 1
        while size < need:
            size <<= 1
        self._resize(size)

    def _drained(self) -> None:
        """The queue just emptied: start again at the front, in the initial buffer."""
        self._read = 0
        if self._mask >= self._initial:  # grown for a burst that has now been sent
            self._resize(self._initial)

    def read_into(self, out: bytearray, n: int) -> None:
        """Move the oldest ``n`` bytes (n <= len(self)) to the end of ``out``."""
        start = self._read
        first = min(n, self._mask + 1 - start)
        out += self._buf[start:start + first]
        if first < n:
            out += self._buf[:n - first]
        self._size -= n
        if self._size:
            self._read = (start + n) & self._mask
        else:
            self._drained()

    def take(self, n: int, prefix: bytes = b"") -> bytes:
        """``prefix`` + the oldest ``n`` bytes (n <= len(self)), removed from the ring."""
        start = self._read
        stop = start + n
        if stop <= self._mask + 1:
            out = prefix + self._view[start:stop]
        else:
            out = prefix + self._view[start:] + self._view[:stop - self._mask - 1]
        size = self._size - n
        self._size = size
        if size:
            self._read = stop & self._mask
        elif self._mask < self._initial:  # _drained() inlined: an echo drains every frame
            self._read = 0
        else:
            self._drained()
        return out

    def read(self, n: int) -> bytes:
        out = bytearray()
        self.read_into(out, min(n, self._size))
        return bytes(out)

    def clear(self) -> int:
        """Drop everything queued; returns how many bytes were dropped."""
        dropped = self._size
        self._size = 0
        self._drained()
        return dropped

    def close(self) -> None:
        """Refuse writes from now on; drop what is queued and free the buffer."""
        self.closed = True
        self._size = 0
        self._allocate(0)


def _power_of_two(n: int) -> bool:
    return n > 0 and not n & (n - 1)


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
