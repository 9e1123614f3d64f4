"""``telcoflow call``: place a simulated call into a running gateway."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import numpy as np

from ..audio.resample import resample
from ..audio.wav import read_wav, write_wav
from ..server import credentials
from ..testing import Phone, PhoneError


async def place_call(url: str, key: str, to: str, caller: str, play: str | None,
                     record: str | None, duration: float | None, codec: str,
                     rate: int) -> dict[str, object]:
    samples = np.zeros(0, np.int16)
    if play:
        raw, file_rate = read_wav(play)
        samples = raw if file_rate == rate else np.frombuffer(
            resample(raw, file_rate, rate), dtype="<i2").astype(np.int16)
    length = duration if duration is not None else len(samples) / rate + 1.0
    samples = samples[: int(length * rate)]
    tail = np.zeros(int(length * rate) - len(samples), np.int16)
    async with Phone(url, key) as phone:
        t0 = time.perf_counter()
        call_id = await phone.dial(to, caller, codec, rate)
        await phone.wait_answered(timeout=60)
        setup_ms = (time.perf_counter() - t0) * 1000
        frames_sent = await phone.play(np.concatenate([samples, tail]))
        reason = "CALLER_HANGUP"
        if phone.hung_up:
            reason = phone.events.hangup_reason or "CLOSED"
        await phone.hangup()
        heard = phone.received()
    if record:
        write_wav(record, heard, rate)
    return {"call_id": call_id, "setup_ms": round(setup_ms, 1),
            "frames_sent": frames_sent,
            "frames_received": phone.frames_received, "ended_by": reason,
            "recording": record}


def main(to: str, caller: str, play: str | None, record: str | None, duration: float | None,
         url: str | None, key: str | None, codec: str, rate: int) -> int:
    saved = credentials.load()
    url = url or os.environ.get("TELCOFLOW_URL") or saved.get("base_url") or "ws://localhost:8080"
    key = key or os.environ.get("TELCOFLOW_PHONE_KEY") or saved.get("phone_key")
    if not key:
        print("no phone network key: pass --key, set TELCOFLOW_PHONE_KEY, or start "
              "'telcoflow serve' on embedded defaults first", file=sys.stderr)
        return 2
    try:
        summary = asyncio.run(place_call(url, key, to, caller, play, record, duration, codec,
                                         rate))
    except PhoneError as exc:
        print(f"call failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"cannot reach the gateway at {url}: {exc}", file=sys.stderr)
        return 1
    for name, value in summary.items():
        print(f"{name:16} {value}")
    return 0
