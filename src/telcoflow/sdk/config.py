"""Connection and audio configuration (validated at construction)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .enums import AudioMode

SampleRate = Literal[8000, 16000, 24000]

DEFAULT_BUFFER_SIZE = 1024 * 1024


@dataclass
class CallAudioConfig:
    """PCM rate, audio mode and outgoing ring-buffer size (a power of two) for every call."""

    sample_rate: SampleRate | None = 16000
    audio_mode: AudioMode = AudioMode.MIXED
    buffer_size: int = DEFAULT_BUFFER_SIZE

    def __post_init__(self) -> None:
        if self.sample_rate not in (8000, 16000, 24000):
            raise ValueError("sample_rate must be 8000, 16000 or 24000")
        if self.buffer_size <= 0 or self.buffer_size & (self.buffer_size - 1):
            raise ValueError("buffer_size must be a positive power of 2")
        # Accept the plain strings too; the setup frame needs the wire value either way.
        self.audio_mode = AudioMode(self.audio_mode)

    @property
    def rate(self) -> int:
        """The sample rate as a plain int (validated, never None)."""
        return int(self.sample_rate or 16000)


@dataclass
class SessionManagerConfig:
    """Credentials, endpoint and audio settings; build it with :meth:`create`.

    Exactly one auth mode: ``api_key`` + ``connector_uuid`` or mTLS
    ``cert_path`` + ``key_path``. Secrets are kept out of ``repr()``.
    """

    api_key: str | None = field(default=None, repr=False)
    connector_uuid: str | None = None
    cert_path: str | None = None
    key_path: str | None = field(default=None, repr=False)
    base_url: str | None = None
    call_audio: CallAudioConfig = field(default_factory=CallAudioConfig)

    def __post_init__(self) -> None:
        if bool(self.api_key) != bool(self.connector_uuid):
            raise ValueError("api_key and connector_uuid must both be provided")
        if bool(self.cert_path) != bool(self.key_path):
            raise ValueError("cert_path and key_path must both be provided")
        if not self.api_key and not self.cert_path:
            raise ValueError("requires either api_key + connector_uuid or cert_path + key_path")

    @classmethod
    def create(
        cls,
        api_key: str | None = None,
        connector_uuid: str | None = None,
        cert_path: str | None = None,
        key_path: str | None = None,
        *,
        base_url: str | None = None,
        call_audio: CallAudioConfig | None = None,
    ) -> SessionManagerConfig:
        """Build and validate a config; ``base_url`` overrides the production endpoint."""
        return cls(api_key=api_key, connector_uuid=connector_uuid, cert_path=cert_path,
                   key_path=key_path, base_url=base_url,
                   call_audio=call_audio if call_audio is not None else CallAudioConfig())
