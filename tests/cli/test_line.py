"""``telcoflow line`` and ``telcoflow message`` as a user runs them, against a real gateway
and an agent on our SDK."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest

from telcoflow import Call, ChannelType, IncomingMessage, SessionNotification
from telcoflow.audio.wav import read_wav, write_wav
from telcoflow.sdk import SendWAMessage
from telcoflow.testing import GatewayThread

from ..interop.signals import chirp
from ..sdk.conftest import manager
from .test_errors import clean_env, one_clear_line, telcoflow

LINE = "+15557005"


@asynccontextmanager
async def cli(gw: GatewayThread, tmp: Path, *args: str
              ) -> AsyncIterator[asyncio.subprocess.Process]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "telcoflow.cli.main", *args, "--url", gw.ws_url,
        "--key", gw.phone_key, env=clean_env(tmp), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def line_saying(proc: asyncio.subprocess.Process, text: str) -> str:
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line, f"the command ended before saying {text!r}"
        if text in line:
            return line.strip()


@pytest.mark.asyncio
async def test_a_line_answers_an_agents_call_plays_and_records(
        gateway: GatewayThread, tmp_path: Path) -> None:
    tone = chirp(0.6, 16000)
    write_wav(str(tmp_path / "say.wav"), tone, 16000)
    async with cli(gateway, tmp_path, "line", "--number", LINE, "--calls", "1",
                   "--codec", "pcm16", "--rate", "16000", "--play", str(tmp_path / "say.wav"),
                   "--record", str(tmp_path / "heard.wav")) as proc, manager(gateway) as sm:
        await line_saying(proc, "registered")
        session = await sm.create_session(ChannelType.TELCO, LINE)

        @session.on_incoming_call
        async def on_call(call: Call) -> None:
            await call.answer()
            got = 0
            async for chunk in call.audio_stream():  # echo the line's 0.6 s, then hang up
                await call.send_audio(chunk)
                got += len(chunk)
                if got >= 2 * 16000:
                    break
            await call.disconnect()

        await session.ready()
        ringing = await line_saying(proc, "ringing")
        await line_saying(proc, "answered")
        ended = await line_saying(proc, "ended")
        assert await asyncio.wait_for(proc.wait(), 20) == 0
    assert f"from {gateway.number}" in ringing and "AGENT_HANGUP" in ended
    heard, rate = read_wav(str(tmp_path / "heard.wav"))
    assert rate == 16000 and np.abs(heard).max() > 1000  # its own words, echoed


@pytest.mark.asyncio
async def test_a_message_from_the_command_line_and_the_agents_answer(
        gateway: GatewayThread, tmp_path: Path) -> None:
    async with manager(gateway) as sm:
        @sm.on_session_notification
        async def on_notify(note: SessionNotification) -> None:
            session = await sm.open_session(note.session_id)

            @session.on_incoming_message
            async def on_message(message: IncomingMessage) -> None:
                if message.content.get("type") == "text":
                    body = message.content["text"]["body"]
                    await session.send_message(SendWAMessage("v23.0", {
                        "type": "text", "text": {"body": f"you said {body}"}}))

            await session.ready()

        async with cli(gateway, tmp_path, "message", "--to", gateway.number, "--text",
                       "opening hours?", "--replies", "1") as proc:
            out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err
    assert out.decode().splitlines() == [
        f"message to {gateway.number}: accepted",
        f"message from {gateway.number}: 'you said opening hours?'"]


def test_a_message_to_a_number_in_no_service_is_one_clear_line(
        gateway: GatewayThread, tmp_path: Path) -> None:
    run = telcoflow("message", "--to", "+19990000000", "--text", "hi", "--url", gateway.ws_url,
                    "--key", gateway.phone_key, env=clean_env(tmp_path))
    one_clear_line(run, 1, "the number +19990000000 is not in service")


def test_a_line_with_a_wrong_key_is_one_clear_line(gateway: GatewayThread,
                                                    tmp_path: Path) -> None:
    run = telcoflow("line", "--number", LINE, "--url", gateway.ws_url, "--key", "wrong",
                    env=clean_env(tmp_path))
    one_clear_line(run, 1, "refused the line: HTTP 401")
