"""Codec and rate conversion between a phone leg and the agent's PCM16 rate.

One :class:`Uplink` and one :class:`Downlink` per leg; synchronous, stateful
(resampler history), allocation-light. The polyphase resampler turns each
20 ms frame into exactly one 20 ms frame, so no jitter is added here.
"""

from __future__ import annotations

from ..audio.codec import decode, encode
from ..audio.polyphase import PolyphaseResampler


class Uplink:
    """Phone audio in any chunking → 20 ms PCM16 frames at the agent rate."""

    def __init__(self, codec: str, phone_rate: int, agent_rate: int) -> None:
        self.codec = codec
        self._resampler = PolyphaseResampler(phone_rate, agent_rate)
        self._frame_bytes = agent_rate // 50 * 2
        self._pending = bytearray()
        # PCM16 at the agent's rate: a whole frame in, with nothing pending, is the frame out
        self._direct = codec == "pcm16" and self._resampler.is_passthrough

    def process(self, payload: bytes) -> list[bytes]:
        if (self._direct and len(payload) == self._frame_bytes and not self._pending
                and type(payload) is bytes):  # (bytes: immutable, safe to pass on as is)
            return [payload]
        pcm = self._resampler.process(decode(self.codec, payload))
        self._pending += pcm
        fb = self._frame_bytes
        count = len(self._pending) // fb
        if not count:
            return []
        frames = [bytes(self._pending[i * fb:(i + 1) * fb]) for i in range(count)]
        del self._pending[:count * fb]
        return frames


class Downlink:
    """Agent PCM16 (one 20 ms frame per tick) → one phone frame per tick, or silence."""

    def __init__(self, codec: str, phone_rate: int, agent_rate: int) -> None:
        self.codec = codec
        self._phone_rate = phone_rate
        self._agent_rate = agent_rate
        self._resampler = PolyphaseResampler(agent_rate, phone_rate)
        self._phone_frame = phone_rate // 50 * 2
        self._agent_silence = bytes(agent_rate // 50 * 2)
        self._pending = bytearray()
        self._idle = True  # nothing of the agent's is left in the filter
        self._held = False  # one silent tick passed with the talkspurt's tail kept
        self._direct = codec == "pcm16" and self._resampler.is_passthrough  # frame as is

    def process(self, agent_frame: bytes | None) -> bytes | None:
        """The phone frame for this tick; ``None`` when the leg has only silence to hear."""
        if self._direct:  # (same-rate PCM16: no filter, so no tail to carry out)
            return agent_frame
        if agent_frame is None:
            if self._idle:
                return None
            if self._resampler.is_passthrough:
                self._idle = True
                return None
            if not self._held:
                # the agent may be late rather than done: keep the filter's tail for a
                # tick, so a talkspurt that goes on resumes seamlessly after a clean
                # 20 ms of silence (flushing now would cut the tail off with zeros and
                # restart the filter from silence: a ramp, and the rest ~1 ms late)
                self._held = True
                return None
            # still nothing: one frame of silence through the filter carries the tail out
            self._idle, self._held = True, False
            agent_frame = self._agent_silence
        else:
            self._idle, self._held = False, False
        if self._resampler.is_passthrough:
            return encode(self.codec, agent_frame)
        self._pending += self._resampler.process(agent_frame)
        fb = self._phone_frame
        if len(self._pending) >= fb:
            pcm = bytes(self._pending[:fb])
            del self._pending[:fb]
        else:
            pcm = bytes(self._pending) + bytes(fb - len(self._pending))
            self._pending.clear()
        return encode(self.codec, pcm)

    def reset(self) -> None:
        """After an interrupt: forget the resampler's history of the dropped audio."""
        self._resampler = PolyphaseResampler(self._agent_rate, self._phone_rate)
        self._pending.clear()
        self._idle, self._held = True, False
        self._idle = True
