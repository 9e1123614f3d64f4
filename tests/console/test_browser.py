"""The console in Debian's Chromium, headless: login, live calls, the softphone, records.

One browser for the module (conftest); each test a fresh context (its own cookies).
Waits are on the page's own state (``window.consoleView``, ``window.softphone``), never
on time; every page is kept as a screenshot under out/console/.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from telcoflow.audio.wav import read_wav_channels
from telcoflow.testing import GatewayThread, Phone

from .conftest import ARTEFACTS, AgentLoop, Tenant, request

WAIT_MS = 15_000


@pytest.fixture
def page(browser: Any, gw: GatewayThread) -> Iterator[Any]:
    context = browser.new_context(base_url=gw.http_url, viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()


def until(page: Any, predicate: str) -> Any:
    """Wait until the arrow function ``predicate`` holds in the page (CSP-safe form)."""
    return page.wait_for_function(f"() => {predicate}").json_value()


def log_in(page: Any, key: str) -> None:
    page.goto("/")
    page.fill("#key", key)
    page.click("button[type=submit]")
    until(page, "document.getElementById('who')?.textContent.includes('connector')")


def test_login_refuses_a_bad_key_and_opens_the_console_for_a_good_one(
        page: Any, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    page.goto("/")
    page.fill("#key", a.key + "-wrong")
    page.click("button[type=submit]")
    assert page.text_content("#error") == "invalid API key"
    assert page.context.cookies() == []
    page.screenshot(path=str(ARTEFACTS / "login.png"))
    log_in(page, a.key)
    assert a.connector.uuid in page.text_content("#who")
    cookie, = page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert page.evaluate("document.cookie") == "", "the session is readable by script"


async def call_with_speech(gw: GatewayThread, number: str, answered: asyncio.Event,
                           done: asyncio.Event) -> str:
    """A caller talking (a tone in bursts) until ``done``."""
    rate = 16000
    t = np.arange(rate) / rate
    second = (np.sin(2 * np.pi * 440 * t) * 8000 * (t < 0.6)).astype(np.int16)
    async with Phone(gw.ws_url, gw.phone_key) as phone:
        call_id = await phone.dial(number, "+15550123", "pcm16", rate)
        await phone.wait_answered(10)
        answered.set()
        while not done.is_set():
            await phone.play(second)
        await phone.hangup()
    return call_id


def test_the_console_lists_a_live_call_with_its_quality(
        page: Any, gw: GatewayThread, tenants: tuple[Tenant, Tenant], agents: AgentLoop) -> None:
    a, _ = tenants
    log_in(page, a.key)
    answered, done = agents.run(_events(2))
    call = asyncio.run_coroutine_threadsafe(call_with_speech(gw, a.number, answered, done),
                                            agents.loop)
    try:
        agents.run(asyncio.wait_for(answered.wait(), 10))
        # listed, and its quality measured (the caller's score appears after a block)
        row = until(page, "(() => { const r = window.consoleView.live.find((c) => "
                    f"c.to === {json.dumps(a.number)}); return r && r.quality && r.quality.caller"
                    " && typeof r.quality.caller.score === 'number' ? r : null; })()")
        page.wait_for_selector(f"#live-table tr[data-call-id='{row['callId']}']")
        assert row["from"] == "+15550123" and row["state"]
        page.screenshot(path=str(ARTEFACTS / "live.png"), full_page=True)
    finally:
        agents.loop.call_soon_threadsafe(done.set)
        call.result(15)
    until(page, f"!window.consoleView.live.some((c) => c.callId === '{row['callId']}')")


async def _events(n: int) -> list[asyncio.Event]:
    return [asyncio.Event() for _ in range(n)]


def test_the_softphone_calls_the_echo_agent_then_its_record_plays_back(
        page: Any, gw: GatewayThread, tenants: tuple[Tenant, Tenant], agents: AgentLoop,
        tmp_path: Path) -> None:
    """The fake microphone plays a tone burst a second; the page hears each one echoed
    (its onset at the speaker after its onset at the microphone) and measures the delay."""
    a, _ = tenants
    log_in(page, a.key)
    page.goto("/#phone")
    page.check("#phone-raw")  # the file's bursts as they are: no echo canceller on them
    page.click("#phone-call")
    until(page, "window.softphone.status === 'answered'")
    until(page, "window.softphone.latenciesMs.length >= 3")
    state = page.evaluate("window.softphone")
    page.screenshot(path=str(ARTEFACTS / "softphone.png"), full_page=True)
    page.click("#phone-hangup")
    until(page, "window.softphone.status === 'ended'")
    assert state["framesHeard"] > 0 and state["earPeakDbfs"] > -20, state
    (ARTEFACTS / "softphone.json").write_text(json.dumps(state, indent=2))
    print(f"\nsoftphone mouth-to-ear: {state['latenciesMs']} ms "
          f"(+{state['outputLatencyMs']:.0f} ms output latency reported)")

    # its record, with the recording: played by the <audio> element, drawn from the WAV
    page.goto("/#records")
    row = f"#records-table tr[data-call-id='{state['callId']}']"
    page.click(row)
    view = until(page, "window.consoleView.waveform")
    assert view["channels"] == 2 and view["seconds"] > 1
    assert min(view["peaks"]) > 0.05, "the recording is silent on a side"
    assert until(page, "window.consoleView.quality")["points"] > 0
    page.evaluate("document.getElementById('record-audio').play()")
    until(page, "document.getElementById('record-audio').currentTime > 0.2")
    page.screenshot(path=str(ARTEFACTS / "records.png"), full_page=True)
    # what the page sent was the microphone's tone at its pitch (the capture worklet
    # resampled at the right ratio), and the agent's side of the recording is its echo
    cookie, = page.context.cookies()
    status, _, wav = request(gw, "GET", f"/console/api/calls/{state['callId']}/recording",
                             headers={"cookie": f"{cookie['name']}={cookie['value']}"})
    assert status == 200
    (tmp_path / "call.wav").write_bytes(wav)
    frames, rate = read_wav_channels(tmp_path / "call.wav")
    for side in (0, 1):
        assert abs(pitch(frames[:, side], rate) - 1000) < 10, f"channel {side}"


def pitch(samples: np.ndarray, rate: int) -> float:
    """The strongest frequency of ``samples`` (Hz)."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.argmax(spectrum[1:]) + 1) * rate / len(samples)
