"""Jitter buffer and re-chunker: any chunk sizes and timings in, exact frames out.

:class:`JitterBuffer` takes PCM16 chunks with optional sequence numbers
(``push``) and hands out exactly one frame of ``frame_ms`` per ``pop`` (the
gateway's 20 ms playout ticker pulls). Time is always passed in as ``now``
(seconds, any monotonic origin); nothing here reads a clock.

Ordering and loss. Chunks carrying ``seq`` (an RTP-style 16-bit number by
default, unwrapped across wrap-around) are put back in order. A missing
sequence number is waited for while fewer than ``reorder_window`` chunks
are held behind it and for at most ``max_wait`` seconds; after that, or when
playout needs its audio, it is declared *lost* and replaced by concealment
of the size of the last chunk received. A chunk that arrives after it was
declared lost (or already played) is *late* and dropped; one received twice
is *duplicated* and dropped. Chunks without ``seq`` are taken in arrival
order (pure re-chunking).

A chunk missing when playout reaches it is first played around as an
underrun; if it is then declared lost, the underrun's concealment was its
concealment, and only what that did not cover is added: a loss at the
buffer's low point adds no delay. (A chunk that turns up after an underrun
is still played, the delay growing by what the underrun played.)

Playout. ``pop`` returns silence until ``prefill_ms`` of audio is buffered,
then real audio; on underrun it returns a *concealed* frame: the previous
frame repeated at half the amplitude each time (``conceal="repeat"``, after
three repeats it is silence) or plain silence. If more than ``max_delay_ms``
piles up (a sender faster than real time), the oldest audio is dropped to
bound the delay (``overflow_dropped`` counts frames).

Counters are in :attr:`JitterBuffer.stats` (a :class:`JitterStats`).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass

import numpy as np

from .errors import JitterBufferError

__all__ = ["JitterBuffer", "JitterStats", "Rechunker"]


@dataclass(slots=True)
class JitterStats:
    received: int = 0  # chunks accepted into the buffer
    reordered: int = 0  # accepted chunks that arrived after a higher seq
    late: int = 0  # arrived after their seq was played or declared lost
    lost: int = 0  # seqs never received in time (concealed)
    duplicated: int = 0  # a seq received again
    concealed: int = 0  # frames of concealment (for lost chunks and on underrun)
    underruns: int = 0  # pops that found less than a frame
    prefill_frames: int = 0  # silent frames before playout started
    overflow_dropped: int = 0  # frames dropped because the delay exceeded max_delay_ms
    frames_out: int = 0  # frames returned by pop
    jitter_ms: float = 0.0  # RFC 3550 interarrival jitter estimate

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


class Rechunker:
    """Arrival-order re-chunker: ``process(chunk) -> [frames]`` of exactly ``frame_bytes``."""

    def __init__(self, frame_bytes: int) -> None:
        if frame_bytes <= 0:
            raise JitterBufferError("frame_bytes must be positive")
        self.frame_bytes = frame_bytes
        self._buf = bytearray()

    def process(self, chunk: bytes) -> list[bytes]:
        self._buf += chunk
        n = len(self._buf) // self.frame_bytes * self.frame_bytes
        if n == 0:
            return []
        out = bytes(self._buf[:n])
        del self._buf[:n]
        fb = self.frame_bytes
        return [out[i : i + fb] for i in range(0, n, fb)]

    def flush(self, pad: bytes = b"\x00") -> list[bytes]:
        """Remaining bytes padded with ``pad`` to a full frame (nothing if empty)."""
        if not self._buf:
            return []
        rest = bytes(self._buf) + pad * ((self.frame_bytes - len(self._buf)) // len(pad))
        self._buf.clear()
        return [rest]

    @property
    def pending_bytes(self) -> int:
        return len(self._buf)


class JitterBuffer:
    """Reordering PCM16 jitter buffer with a pull-based 1-frame-per-``pop`` output."""

    def __init__(
        self,
        sample_rate: int = 8000,
        *,
        frame_ms: int = 20,
        prefill_ms: int = 40,
        reorder_window: int = 8,
        max_wait: float = 0.1,
        max_delay_ms: int = 400,
        conceal: str = "repeat",
        seq_bits: int | None = 16,
    ) -> None:
        if sample_rate <= 0 or frame_ms <= 0:
            raise JitterBufferError("sample_rate and frame_ms must be positive")
        if conceal not in ("repeat", "silence"):
            raise JitterBufferError(f"conceal must be 'repeat' or 'silence', got {conceal!r}")
        if reorder_window < 0 or max_wait < 0 or prefill_ms < 0:
            raise JitterBufferError("reorder_window, max_wait and prefill_ms must be >= 0")
        self.sample_rate = sample_rate
        self.frame_bytes = sample_rate * frame_ms // 1000 * 2
        self.prefill_bytes = sample_rate * prefill_ms // 1000 * 2
        self.max_delay_bytes = max(sample_rate * max_delay_ms // 1000 * 2, self.frame_bytes)
        self.reorder_window = reorder_window
        self.max_wait = max_wait
        self.conceal = conceal
        self._mod = 1 << seq_bits if seq_bits else None
        self.stats = JitterStats()
        self._fifo = bytearray()
        self._store: dict[int, tuple[bytes, float]] = {}
        self._consumed: OrderedDict[int, None] = OrderedDict()  # recently played seqs
        self._next: int | None = None  # next extended seq to append to the fifo
        self._highest: int | None = None
        self._gap_since: float | None = None  # when the current gap started blocking
        self._last_size = self.frame_bytes
        self._started = False
        self._last_frame = bytes(self.frame_bytes)
        self._repeats = 0
        self._underrun_bytes = 0  # concealment played since the last audio appended
        self._transit: float | None = None
        self._arrival_pos = 0  # samples received (for jitter estimate)

    # -- input -----------------------------------------------------------------------------

    def _extend(self, seq: int) -> int:
        if self._mod is None or self._highest is None:
            return seq if self._mod is None else seq % self._mod
        m = self._mod
        delta = (seq - self._highest) % m
        if delta >= m // 2:
            delta -= m
        return self._highest + delta

    def push(self, chunk: bytes, now: float, seq: int | None = None) -> None:
        """Add a PCM16 chunk received at ``now``; ``seq`` orders chunks when given."""
        if len(chunk) % 2:
            raise JitterBufferError(f"PCM16 chunk with odd byte count {len(chunk)}")
        if not chunk:
            return
        self._update_jitter(len(chunk) // 2, now)
        if seq is None:
            self.stats.received += 1
            self._fifo += chunk
            self._underrun_bytes = 0
            self._last_size = len(chunk)
            self._trim()
            return
        ext = self._extend(seq)
        if self._next is None:
            self._next = ext
        if ext == self._next and not self._store:
            self._push_next(chunk, ext)
            return
        if ext < self._next:
            if ext in self._consumed:
                self.stats.duplicated += 1
            else:
                self.stats.late += 1
            return
        if ext in self._store:
            self.stats.duplicated += 1
            return
        if self._highest is not None and ext < self._highest:
            self.stats.reordered += 1
        if self._highest is None or ext > self._highest:
            self._highest = ext
        self._store[ext] = (chunk, now)
        self.stats.received += 1
        self._last_size = len(chunk)
        self._drain(now)
        self._trim()

    def _push_next(self, chunk: bytes, ext: int) -> None:
        """The chunk playout waits for, nothing held behind a gap: what :meth:`push`
        does with it, without the detour through the store (the common case)."""
        self.stats.received += 1
        self._last_size = len(chunk)
        self._highest = ext
        self._fifo += chunk
        self._underrun_bytes = 0
        self._consumed[ext] = None
        if len(self._consumed) > 512:
            self._consumed.popitem(last=False)
        self._next = ext + 1
        self._gap_since = None
        self._trim()

    def push_empty(self, now: float, seq: int) -> None:
        """Let ``seq`` take its place in the order without adding audio.

        For sequence numbers that carry no audio for this buffer, such as an
        RFC 4733 event packet in the same RTP sequence: the buffer neither
        waits for them nor conceals them. Not counted in :attr:`stats`;
        nothing happens if ``seq`` was already played, declared lost or held.
        """
        ext = self._extend(seq)
        if self._next is None:
            self._next = ext
        if ext < self._next or ext in self._store:
            return
        if self._highest is None or ext > self._highest:
            self._highest = ext
        self._store[ext] = (b"", now)
        self._drain(now)

    def _drain(self, now: float) -> None:
        assert self._next is not None
        while True:
            self._append_ready()
            if not self._store:
                self._gap_since = None
                return
            if self._gap_since is None:
                self._gap_since = min(t for _, t in self._store.values())
            if len(self._store) > self.reorder_window or now - self._gap_since >= self.max_wait:
                self._declare_lost()
            else:
                return

    def _append_ready(self) -> None:
        assert self._next is not None
        while self._next in self._store:
            chunk = self._store.pop(self._next)[0]
            if chunk:
                self._fifo += chunk
                self._underrun_bytes = 0
            self._consumed[self._next] = None
            if len(self._consumed) > 512:
                self._consumed.popitem(last=False)
            self._next += 1

    def _declare_lost(self) -> None:
        assert self._next is not None
        first = min(self._store)
        missing = first - self._next
        self.stats.lost += missing
        # what an underrun already played in the missing chunks' place is not repeated
        covered = min(self._underrun_bytes, missing * self._last_size)
        self._underrun_bytes -= covered
        nbytes = missing * self._last_size - covered
        self.stats.concealed += -(-nbytes // self.frame_bytes)
        if len(self._fifo) >= self.frame_bytes:
            self._last_frame = bytes(self._fifo[-self.frame_bytes :])
            self._repeats = 0
        fill = bytearray()
        while len(fill) < nbytes:
            fill += self._conceal_frame()
        self._fifo += fill[:nbytes]
        self._next = first
        self._gap_since = None

    def _trim(self) -> None:
        excess = len(self._fifo) - self.max_delay_bytes
        if excess > 0 and self._started:
            frames = -(-excess // self.frame_bytes)
            del self._fifo[: frames * self.frame_bytes]
            self.stats.overflow_dropped += frames

    def _update_jitter(self, samples: int, now: float) -> None:
        # RFC 3550 6.4.1 with the media position given by the samples received so far.
        transit = now - self._arrival_pos / self.sample_rate
        if self._transit is not None:
            d = abs(transit - self._transit) * 1000.0
            self.stats.jitter_ms += (d - self.stats.jitter_ms) / 16.0
        self._transit = transit
        self._arrival_pos += samples

    # -- output ----------------------------------------------------------------------------

    @property
    def buffered_bytes(self) -> int:
        """Bytes ready in order (not counting chunks held behind a gap)."""
        return len(self._fifo)

    @property
    def delay_ms(self) -> float:
        return 1000.0 * len(self._fifo) / 2 / self.sample_rate

    def pop(self, now: float) -> bytes:
        """Exactly one frame of PCM16 for the tick at ``now``."""
        fb = self.frame_bytes
        if self._store and self._next is not None:
            self._drain(now)
        if not self._started:
            if len(self._fifo) < max(self.prefill_bytes, fb):
                self.stats.prefill_frames += 1
                self.stats.frames_out += 1
                return bytes(fb)
            self._started = True
        if len(self._fifo) < fb and self._store:
            # Playout needs the audio behind the gap now: the missing chunks are lost.
            self._declare_lost()
            self._drain(now)
        self.stats.frames_out += 1
        if len(self._fifo) >= fb:
            frame = bytes(self._fifo[:fb])
            del self._fifo[:fb]
            self._last_frame = frame
            self._repeats = 0
            return frame
        self.stats.underruns += 1
        self.stats.concealed += 1
        partial = bytes(self._fifo)
        self._fifo.clear()
        fill = self._conceal_frame()[len(partial) :]
        self._underrun_bytes += len(fill)
        return partial + fill

    def _conceal_frame(self) -> bytes:
        if self.conceal == "silence" or self._repeats >= 3:
            self._repeats += 1
            return bytes(self.frame_bytes)
        self._repeats += 1
        prev = np.frombuffer(self._last_frame, dtype="<i2")
        frame = (prev >> self._repeats).astype("<i2").tobytes()  # -6 dB per repeat
        return frame

    def flush(self) -> list[bytes]:
        """End of stream: everything still held (gaps concealed), as whole frames."""
        while self._store:
            self._declare_lost()
            self._append_ready()
        fb = self.frame_bytes
        if len(self._fifo) % fb:
            self._fifo += bytes(fb - len(self._fifo) % fb)
        out = [bytes(self._fifo[i : i + fb]) for i in range(0, len(self._fifo), fb)]
        self._fifo.clear()
        self.stats.frames_out += len(out)
        return out
