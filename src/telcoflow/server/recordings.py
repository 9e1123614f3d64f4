"""Server-side call recordings: the engine's :class:`~telcoflow.engine.ports.Recorder`.

A recorded call (its connector has ``record = true``) becomes one stereo 16-bit WAV,
caller left and agent right, at the call's agent rate, in
``<[recordings] dir>/<connector uuid>/<call id>.wav``. The engine's quality watch hands
over 200 ms of both legs at a time, already on the media clock (silence in place of
gaps, hold and bridges); :class:`~telcoflow.audio.recorder.AudioBufferProcessor`
places them by their media time and interleaves them, and each block it delivers is
appended to the file at once: nothing of the call is buffered beyond one block.

The header's sizes are rewritten about once a second and at the end, and the data is
flushed to the OS then, so a gateway that dies mid-call leaves a WAV that reads up to
its last second. File paths are made here from the connector's uuid and the engine's
call id (a UUID), never from what a client sent.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

from ..audio.recorder import AudioBufferProcessor
from ..audio.wav import WavWriter
from ..engine.ports import CallRecording

logger = logging.getLogger(__name__)

CALL_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
PATCH_EVERY_S = 1.0


@dataclass(frozen=True, slots=True)
class RecordingInfo:
    path: Path
    bytes: int
    seconds: float


class WavRecording:
    """One call's recording (the :class:`~telcoflow.engine.ports.CallRecording` port)."""

    def __init__(self, path: Path, rate: int) -> None:
        self.rate = rate
        self.wav = WavWriter(path, rate, 2, header_every_s=PATCH_EVERY_S)
        block = rate // 5 * 2  # 200 ms per track: delivered as soon as both have it
        self._abp = AudioBufferProcessor(sample_rate=rate, num_channels=2, buffer_size=block,
                                         input_sample_rate=rate)
        self._abp.add_event_handler("on_audio_data", self._on_audio)
        self._abp.start_recording(0.0)
        self._t = 0.0  # media time recorded so far

    def _on_audio(self, _processor: object, audio: bytes, _rate: int, _channels: int) -> None:
        self.wav.write(audio)

    def write(self, caller: bytes, agent: bytes) -> None:
        start, self._t = self._t, self._t + len(caller) / 2 / self.rate
        # the agent's block plays from its start; the caller's ends at its end: the same
        # span of media time (the agent's first, so the caller's pads no ahead of it)
        self._abp.add_bot_audio(agent, start)
        self._abp.add_user_audio(caller, self._t)

    def close(self) -> None:
        try:
            self._abp.stop_recording(self._t)
        finally:
            self.wav.close()

    def info(self) -> RecordingInfo:
        return RecordingInfo(Path(self.wav.path), self.wav.bytes,
                             round(self.wav.frames / self.rate, 3))


class GatewayRecorder:
    """Opens a :class:`WavRecording` for each call of a connector that records."""

    def __init__(self, directory: str, connectors: set[str]) -> None:
        self.root = Path(directory)
        self.connectors = connectors
        self._open: dict[str, WavRecording] = {}

    def open(self, call_id: str, connector_uuid: str, rate: int) -> CallRecording | None:
        if connector_uuid not in self.connectors:
            return None
        path = self.path(connector_uuid, call_id)
        if path is None:
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            recording = WavRecording(path, rate)
        except OSError as exc:  # the call goes on unrecorded
            logger.error("cannot record call %s: %s", call_id, exc)
            return None
        self._open[call_id] = recording
        return recording

    def path(self, connector_uuid: str, call_id: str) -> Path | None:
        """Where a call's recording is; None for an id that is not one of ours."""
        if not CALL_ID.match(call_id):
            return None
        return self.root / _dir_name(connector_uuid) / f"{call_id}.wav"

    def info(self, call_id: str) -> RecordingInfo | None:
        """A live or just-ended call's recording (the record asks once, at the end)."""
        recording = self._open.get(call_id)
        return recording.info() if recording is not None else None

    def ended(self, call_id: str) -> RecordingInfo | None:
        recording = self._open.pop(call_id, None)
        return recording.info() if recording is not None else None


def _dir_name(connector_uuid: str) -> str:
    """The connector's directory: its uuid (from the configuration), or a digest of it
    if it is not a plain name."""
    if _SAFE_NAME.match(connector_uuid):
        return connector_uuid
    return hashlib.sha256(connector_uuid.encode()).hexdigest()[:32]
