"""Record an SDK call with an :class:`~telcoflow.audio.recorder.AudioBufferProcessor`.

Duck-typed, no SDK import: anything with ``audio_stream()`` (async iterator
of PCM16 chunks from the caller), ``send_audio(data)`` (async, queues agent
audio) and ``clear_send_audio_buffer()`` (async, interruption) works, such as
``telcoflow.Call``. The sample rate comes from ``call.audio_config.sample_rate``
when the call has it.

Two ways:

* ``attach_to_call(processor, call)`` swaps the three methods on the call
  object itself (so existing agent code records unchanged) and returns a
  handle whose ``detach()`` restores them and ``stop()`` stops recording;
* ``RecordedCall(call, processor)`` is a proxy with the same methods that
  delegates everything else to the call; use it where patching the call
  object is not wanted.

Agent audio is recorded when ``send_audio`` accepted it (not if it raised),
caller audio when the chunk is handed to the agent, an interruption at the
moment ``clear_send_audio_buffer`` is called. Times come from ``clock``
(``time.monotonic`` by default).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from .errors import RecorderStateError
from .events import Dispatch
from .recorder import AudioBufferProcessor

__all__ = ["CallRecording", "RecordedCall", "attach_to_call"]

_METHODS = ("audio_stream", "send_audio", "clear_send_audio_buffer")


def _call_rate(call: Any, processor: AudioBufferProcessor, sample_rate: int | None) -> int:
    rate = sample_rate or getattr(getattr(call, "audio_config", None), "sample_rate", None)
    rate = rate or processor.sample_rate
    if not rate:
        raise RecorderStateError("cannot tell the call's sample rate: pass sample_rate=")
    return int(rate)


class _Hooks:
    def __init__(
        self,
        call: Any,
        processor: AudioBufferProcessor,
        clock: Callable[[], float],
        rate: int,
        channels: tuple[int, ...],
    ) -> None:
        self.call = call
        self.processor = processor
        self.clock = clock
        self.rate = rate
        self.channels = channels
        self.orig = {name: getattr(call, name) for name in _METHODS}
        own = getattr(call, "__dict__", {})
        self.own = {name for name in _METHODS if name in own}  # instance attributes

    def restore(self) -> None:
        for name in _METHODS:
            if name in self.own:
                setattr(self.call, name, self.orig[name])
            elif name in getattr(self.call, "__dict__", {}):
                delattr(self.call, name)

    def audio_stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
        channel = kwargs.get("channel_id", args[0] if args else 0)
        source = self.orig["audio_stream"](*args, **kwargs)
        if channel not in self.channels:
            return source  # type: ignore[no-any-return]
        return self._tap(source)

    async def _tap(self, source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in source:
            self.processor.add_user_audio(chunk, self.clock(), self.rate)
            yield chunk

    async def send_audio(self, audio_data: bytes, *args: Any, **kwargs: Any) -> Any:
        result = await self.orig["send_audio"](audio_data, *args, **kwargs)
        self.processor.add_bot_audio(audio_data, self.clock(), self.rate)
        return result

    async def clear_send_audio_buffer(self, *args: Any, **kwargs: Any) -> Any:
        self.processor.truncate_bot(self.clock())
        return await self.orig["clear_send_audio_buffer"](*args, **kwargs)


class CallRecording:
    """Handle returned by :func:`attach_to_call`."""

    def __init__(self, hooks: _Hooks) -> None:
        self._hooks = hooks
        self.attached = True

    @property
    def processor(self) -> AudioBufferProcessor:
        return self._hooks.processor

    def detach(self) -> None:
        """Give the call its own methods back (recording keeps its state)."""
        if self.attached:
            self._hooks.restore()
            self.attached = False

    def stop(self) -> Dispatch:
        """Detach and stop recording now; ``await`` it to wait for async handlers."""
        self.detach()
        return self._hooks.processor.stop_recording(self._hooks.clock())


def attach_to_call(
    processor: AudioBufferProcessor,
    call: Any,
    *,
    clock: Callable[[], float] = time.monotonic,
    sample_rate: int | None = None,
    channels: tuple[int, ...] = (0,),
    start: bool = True,
) -> CallRecording:
    """Record ``call`` into ``processor`` by wrapping its audio methods in place."""
    hooks = _Hooks(call, processor, clock, _call_rate(call, processor, sample_rate), channels)
    try:
        for name in _METHODS:
            setattr(call, name, getattr(hooks, name))
    except AttributeError as exc:
        hooks.restore()
        raise RecorderStateError(
            f"cannot wrap methods on {type(call).__name__} objects; use RecordedCall instead"
        ) from exc
    if start and not processor.recording:
        processor.start_recording(clock())
    return CallRecording(hooks)


class RecordedCall:
    """Proxy around a call that records its audio; every other attribute is the call's."""

    def __init__(
        self,
        call: Any,
        processor: AudioBufferProcessor,
        *,
        clock: Callable[[], float] = time.monotonic,
        sample_rate: int | None = None,
        channels: tuple[int, ...] = (0,),
        start: bool = True,
    ) -> None:
        self._hooks = _Hooks(
            call, processor, clock, _call_rate(call, processor, sample_rate), channels
        )
        if start and not processor.recording:
            processor.start_recording(clock())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._hooks.call, name)

    def audio_stream(self, *args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
        return self._hooks.audio_stream(*args, **kwargs)

    async def send_audio(self, audio_data: bytes, *args: Any, **kwargs: Any) -> Any:
        return await self._hooks.send_audio(audio_data, *args, **kwargs)

    async def clear_send_audio_buffer(self, *args: Any, **kwargs: Any) -> Any:
        return await self._hooks.clear_send_audio_buffer(*args, **kwargs)

    def stop_recording(self) -> Dispatch:
        return self._hooks.processor.stop_recording(self._hooks.clock())
