"""``telcoflow call``: place a call into a running gateway, through any of its doors.

``--via phone`` (default) is the simulated phone network; ``--via twilio``
and ``--via audiocodes`` are the built-in emulators of Twilio Media Streams
and AudioCodes VoiceAI Connect (:mod:`telcoflow.testing`), which speak those
carriers' documented protocols to the gateway exactly as the real services
do. Each plays a WAV file in real time, records what the caller heard, and
hangs up at the end.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
from websockets.exceptions import InvalidHandshake, InvalidStatus

from ..audio.errors import WavError
from ..audio.resample import resample
from ..audio.wav import read_wav, write_wav
from ..server import credentials
from ..testing import Phone, PhoneError

T = TypeVar("T")
VIA = ("phone", "twilio", "audiocodes", "quic")
# where each door's key comes from when --key is not given: environment, then dev credentials
_KEYS = {"phone": ("TELCOFLOW_PHONE_KEY", "phone_key"),
         "twilio": ("TWILIO_AUTH_TOKEN", "twilio_auth_token"),
         "audiocodes": ("TELCOFLOW_AUDIOCODES_TOKEN", "audiocodes_token"),
         "quic": ("WSS_API_KEY", "api_key")}


@dataclass(frozen=True)
class CallRequest:
    to: str
    caller: str
    play: str | None
    record: str | None
    duration: float | None
    codec: str = "pcmu"
    rate: int = 8000


def talk_samples(req: CallRequest, rate: int) -> npt.NDArray[np.int16]:
    """The file at ``rate`` (silence if none), cut or padded to the call's length."""
    samples = np.zeros(0, np.int16)
    if req.play:
        raw, file_rate = read_wav(req.play)
        samples = raw if file_rate == rate else np.frombuffer(
            resample(raw, file_rate, rate), dtype="<i2").astype(np.int16)
    length = req.duration if req.duration is not None else len(samples) / rate + 1.0
    samples = samples[: int(length * rate)]
    return np.concatenate([samples, np.zeros(int(length * rate) - len(samples), np.int16)])


async def via_phone(url: str, key: str, req: CallRequest) -> dict[str, Any]:
    async with Phone(url, key) as phone:
        t0 = time.perf_counter()
        call_id = await phone.dial(req.to, req.caller, req.codec, req.rate)
        await phone.wait_answered(timeout=60)
        setup_ms = (time.perf_counter() - t0) * 1000
        frames_sent = await phone.play(talk_samples(req, req.rate))
        reason = "CALLER_HANGUP"
        if phone.hung_up:
            reason = phone.events.hangup_reason or "CLOSED"
        await phone.hangup()
        heard = phone.received()
    _record(req, heard, req.rate)
    return {"call_id": call_id, "setup_ms": round(setup_ms, 1), "frames_sent": frames_sent,
            "frames_received": phone.frames_received, "ended_by": reason,
            "recording": req.record}


async def via_twilio(url: str, token: str, req: CallRequest) -> dict[str, Any]:
    from ..testing.twilio_client import TwilioCaller
    async with TwilioCaller(url.replace("ws", "http", 1), token) as caller:
        t0 = time.perf_counter()
        await caller.dial(req.to, req.caller)
        await caller.wait_answered(60)
        setup_ms = (time.perf_counter() - t0) * 1000
        frames_sent = await caller.play(talk_samples(req, 8000))
        ended_by = "CALLER_HANGUP" if not caller.hung_up else f"GATEWAY ({caller.close_reason})"
        await caller.hangup()
        heard = caller.received()
    _record(req, heard, 8000)
    return {"setup_ms": round(setup_ms, 1), "frames_sent": frames_sent,
            "frames_played": len(heard) // 160, "ended_by": ended_by, "recording": req.record}


async def via_audiocodes(url: str, token: str, req: CallRequest) -> dict[str, Any]:
    from ..testing.vaic_client import VaicCaller
    async with VaicCaller(url, token) as caller:
        t0 = time.perf_counter()
        await caller.dial(req.to, req.caller)
        await caller.wait_answered(60)
        setup_ms = (time.perf_counter() - t0) * 1000
        rate = caller.rate
        frames_sent = await caller.play(talk_samples(req, rate))
        ended_by = "CALLER_HANGUP" if not caller.hung_up else f"GATEWAY ({caller.end_reason})"
        await caller.hangup()
        heard = caller.received()
    _record(req, heard, rate)
    return {"setup_ms": round(setup_ms, 1), "rate": rate, "frames_sent": frames_sent,
            "frames_played": len(heard) // (rate // 50), "ended_by": ended_by,
            "recording": req.record}


DEFAULT_QUIC_PORT = 4433  # --quic-port's default


@dataclass(frozen=True)
class QuicTarget:
    """``--via quic``: the gateway's QUIC port and how its certificate is checked."""

    port: int
    fingerprint: str | None
    insecure: bool


def saved_quic_target(url: str | None, given: QuicTarget) -> QuicTarget:
    """What was not given, from the dev credentials of the gateway at ``url``: a
    ``telcoflow serve --quic PORT`` on embedded defaults saves its QUIC port and its
    certificate's fingerprint there. ``--quic-port`` at its default and no
    ``--fingerprint`` (nor ``--insecure``) take the saved ones."""
    try:
        saved = credentials.load(url or os.environ.get("TELCOFLOW_URL"))
    except credentials.CredentialsError:
        return given  # several gateways saved and none chosen: said when the key is looked up
    port = given.port
    if port == DEFAULT_QUIC_PORT and saved.get("quic_port"):
        port = int(saved["quic_port"])
    fingerprint = given.fingerprint
    if not fingerprint and not given.insecure and saved.get("quic_fingerprint"):
        fingerprint = str(saved["quic_fingerprint"])
    return QuicTarget(port, fingerprint, given.insecure)


async def via_quic(url: str, key: str, req: CallRequest, target: QuicTarget
                   ) -> dict[str, Any]:
    """A QUIC agent of the connector originates the call (the file is what the agent
    says; the recording is what the number said)."""
    from urllib.parse import urlsplit

    from ..quic import QuicAgent
    from ..quic.dial import place_call
    connector = os.environ.get("WSS_CONNECTOR_UUID") or credentials.load(url).get(
        "connector_uuid")
    if not connector:
        raise PhoneError("no connector uuid: set WSS_CONNECTOR_UUID")
    host = urlsplit(url).hostname or "localhost"
    async with QuicAgent(host, target.port, key, connector, fingerprint=target.fingerprint,
                         insecure=target.insecure) as agent:
        summary, heard, rate = await place_call(agent, req.to, req.codec, req.rate,
                                                lambda r: talk_samples(req, r))
    _record(req, heard, rate)
    return {**summary, "recording": req.record}


def file_problem(req: CallRequest) -> str | None:
    """What is wrong with --play or --record, checked before dialling anyone."""
    if req.play:
        try:
            read_wav(req.play)
        except FileNotFoundError:
            return f"--play {req.play}: no such file"
        except (OSError, WavError) as exc:
            return f"--play {req.play}: not a PCM WAV file we can read ({exc})"
    if req.record:
        folder = os.path.dirname(os.path.abspath(req.record))
        if not os.path.isdir(folder) or not os.access(folder, os.W_OK):
            return f"--record {req.record}: cannot write in {folder}"
    return None


def _record(req: CallRequest, heard: npt.NDArray[np.int16], rate: int) -> None:
    if req.record:
        write_wav(req.record, heard, rate)


def main(req: CallRequest, via: str, url: str | None, key: str | None,
         quic: QuicTarget | None = None) -> int:
    problem = file_problem(req)
    if via == "quic":
        quic = saved_quic_target(url, quic or QuicTarget(DEFAULT_QUIC_PORT, None, False))
        if not (quic.fingerprint or quic.insecure):
            problem = problem or ("--via quic needs --fingerprint (what 'telcoflow serve "
                                  "--quic' printed) or --insecure; a local 'telcoflow serve "
                                  "--quic PORT' on embedded defaults saves both port and "
                                  "fingerprint for this command")
    if problem:
        print(problem, file=sys.stderr)
        return 2
    found = gateway_and_key(via, url, key)
    if isinstance(found, str):
        print(found, file=sys.stderr)
        return 2
    url, key = found
    if via == "quic":
        assert quic is not None
        summary = run_against(url, "the call", lambda: via_quic(url, key, req, quic))
    else:
        place = {"phone": via_phone, "twilio": via_twilio, "audiocodes": via_audiocodes}[via]
        summary = run_against(url, "the call", lambda: place(url, key, req))
    if isinstance(summary, int):
        return summary
    for name, value in summary.items():
        print(f"{name:16} {value}")
    return 0


def gateway_and_key(via: str, url: str | None, key: str | None) -> tuple[str, str] | str:
    """The gateway URL and the door's key (arguments, environment, then the dev
    credentials of a local ``telcoflow serve``), or a sentence saying what is missing."""
    url = url or os.environ.get("TELCOFLOW_URL")
    try:
        saved = credentials.load(url)
    except credentials.CredentialsError as exc:
        return str(exc)
    url = url or saved.get("base_url") or credentials.DEFAULT_URL
    env_name, saved_name = _KEYS[via]
    key = key or os.environ.get(env_name) or saved.get(saved_name)
    if not key:
        return (f"no key for --via {via}: pass --key, set {env_name}, or start 'telcoflow "
                "serve' on embedded defaults first")
    return url, key


def run_against(url: str, what: str, work: Callable[[], Awaitable[T]]) -> T | int:
    """Run ``work()``; a failure a user can cause is one line on stderr and exit code 1."""
    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except InvalidStatus as exc:
        body = exc.response.body.decode(errors="replace").strip() if exc.response.body else ""
        print(f"the gateway at {url} refused {what}: HTTP {exc.response.status_code}"
              + (f": {body}" if body else ""), file=sys.stderr)
    except TimeoutError:
        print(f"{what} failed: nobody answered in time", file=sys.stderr)
    except (ConnectionRefusedError, ConnectionResetError) as exc:
        print(f"cannot reach the gateway at {url}: {exc.strerror or exc}", file=sys.stderr)
    except (PhoneError, ConnectionError, InvalidHandshake) as exc:
        print(f"{what} failed: {exc}", file=sys.stderr)
    except OSError as exc:  # name resolution, no route, ...
        print(f"cannot reach the gateway at {url}: {exc.strerror or exc}", file=sys.stderr)
    except KeyboardInterrupt:
        return 0
    return 1
