"""Metrics, health probes and JSON logs: the engine's observer on a hand-moved clock,
then a real gateway scraped during calls placed by phones and answered by our SDK."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from telcoflow import (
    Call,
    CallAudioConfig,
    SessionManager,
    SessionManagerConfig,
    SessionNotification,
)
from telcoflow.engine import Engine
from telcoflow.engine.ports import DialFailure, NoObserver
from telcoflow.protocol.rtp import RtpStats
from telcoflow.server.config import ConfigError, embedded_defaults, from_env, load_file
from telcoflow.server.logformat import JsonFormatter, config_secrets
from telcoflow.server.metrics import GatewayMetrics, Sources
from telcoflow.testing import GatewayThread, Phone, PhoneError

from ..engine.harness import Harness

RATE = 16000
FRAME = RATE // 50
UNANSWERED = "+15550999"  # the agent below leaves this caller's calls ringing


# ── helpers ────────────────────────────────────────────────────────────────────

def observed(metrics: GatewayMetrics) -> Harness:
    """The engine harness, with ``metrics`` observing its engine."""
    h = Harness()
    h.engine = Engine(h.settings, h.clock, metrics)
    h.engine.set_waker(lambda: None)
    h.engine.add_dialler(h.dialler)
    metrics.sources = Sources(h.engine, lambda: ())
    return h


def sample(metrics: GatewayMetrics, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def http_get(url: str, key: str | None = None, method: str = "GET"
             ) -> tuple[int, dict[str, str], bytes]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    req = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


class Scrape:
    """One parsed ``/metrics``: ``value(name, **labels)`` sums the matching samples."""

    def __init__(self, text: str) -> None:
        self.samples = [s for family in text_string_to_metric_families(text)
                        for s in family.samples]

    def value(self, name: str, **labels: str) -> float:
        return sum(s.value for s in self.samples if s.name == name
                   and all(s.labels.get(k) == v for k, v in labels.items()))


async def scrape(gw: GatewayThread) -> Scrape:
    status, headers, body = await asyncio.to_thread(
        http_get, gw.http_url + "/metrics", gw.config.metrics.keys[0])
    assert status == 200, body
    assert headers["content-type"].startswith("text/plain")
    return Scrape(body.decode())


async def until(gw: GatewayThread, name: str, want: float, timeout: float = 5.0,
                **labels: str) -> Scrape:
    """Scrape until ``name`` reaches ``want``: only for a figure that is due at the next
    media tick by design (an interrupt is counted when its call's next frame went out)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await scrape(gw)
        if found.value(name, **labels) >= want or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.02)


def noise(seconds: float, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(-8000, 8000, int(seconds * RATE)).astype(np.int16)


# ── the engine's observer, on a fake clock ─────────────────────────────────────

def test_the_engine_reports_set_up_interrupt_tick_lateness_and_ends_exactly() -> None:
    metrics = GatewayMetrics()
    h = observed(metrics)
    fake = {"ingress": "fake", "direction": "inbound"}

    assert h.dial(to="+19999999")[1] is None  # not routed: refused, and counted
    assert sample(metrics, "telcoflow_calls_ended_total", **fake, outcome="NOT_IN_SERVICE",
                  answered="false") == 1

    link = h.link()
    leg, call_id = h.dial()
    assert call_id is not None
    h.run(0.5)  # it rings half a second before the agent answers
    agent = h.claim(link, call_id)
    h.command(agent, "call.answer")
    answered_at = h.clock.t
    assert sample(metrics, "telcoflow_call_setup_seconds_count", **fake) == 1
    assert sample(metrics, "telcoflow_call_setup_seconds_sum", **fake) == pytest.approx(0.5)
    assert sample(metrics, "telcoflow_calls_active", **fake, state="ANSWERED") == 1

    h.engine.leg_audio(leg, bytes(3 * 2 * FRAME))     # 3 frames from the caller
    h.engine.agent_audio(agent, bytes(6 * 2 * FRAME))  # 6 frames from the agent
    # the call ticks in phase 0: at +20 ms, +40 ms, +60 ms … after the answer
    h.run(0.041)
    h.command(agent, "agent.interrupt")               # 1 ms after a tick …
    h.run(0.030)                                      # … heard at once: the tick runs now
    assert sample(metrics, "telcoflow_interrupt_seconds_count") == 1
    assert sample(metrics, "telcoflow_interrupt_seconds_sum") == 0.0
    assert h.clock.t == pytest.approx(answered_at + 0.071)

    # every tick so far ran on time; a stall makes the next one 9 ms late
    assert sample(metrics, "telcoflow_media_tick_lateness_seconds_sum") == 0
    h.stall(0.013)  # the sub-tick due at +75 ms runs at +84 ms
    assert sample(metrics, "telcoflow_media_tick_lateness_seconds_sum") == pytest.approx(0.009)
    ticks = sample(metrics, "telcoflow_media_tick_seconds_count")
    assert ticks == sample(metrics, "telcoflow_media_tick_lateness_seconds_count") > 0

    live = {"ingress": "fake", "path": "to_agent"}
    assert sample(metrics, "telcoflow_media_frames_total", **live) == 3
    to_phone = sample(metrics, "telcoflow_media_frames_total", ingress="fake", path="to_phone")
    assert to_phone == leg.frames == 4  # ticks at +20, +40, +60, +80 ms

    leg.receive_stats = RtpStats(lost=2, late=1, concealed=3, jitter_ms=12.5)  # type: ignore[attr-defined]
    h.engine.leg_hung_up(leg)
    assert sample(metrics, "telcoflow_calls_ended_total", **fake, outcome="CALLER_HANGUP",
                  answered="true") == 1
    assert sample(metrics, "telcoflow_calls_active", **fake, state="ANSWERED") == 0
    # the ended call's counts stay counted (counters never go back)
    assert sample(metrics, "telcoflow_media_frames_total", **live) == 3
    assert sample(metrics, "telcoflow_media_frames_total", ingress="fake",
                  path="to_phone") == to_phone
    assert sample(metrics, "telcoflow_phone_frames_lost_total", ingress="fake") == 2
    assert sample(metrics, "telcoflow_phone_frames_concealed_total", ingress="fake") == 3
    assert sample(metrics, "telcoflow_phone_jitter_seconds_sum",
                  ingress="fake") == pytest.approx(0.0125)
    assert sample(metrics, "telcoflow_call_duration_seconds_count", **fake) == 1

    _, unanswered = h.dial()  # nobody claims it: it ends at the ring timeout
    assert sample(metrics, "telcoflow_calls_active", **fake, state="RINGING") == 1
    h.run(31)
    assert unanswered not in h.engine.calls
    assert sample(metrics, "telcoflow_calls_ended_total", **fake, outcome="NO_ANSWER",
                  answered="false") == 1
    assert sample(metrics, "telcoflow_calls_offered_total", **fake) == 3


def test_outbound_calls_are_counted_by_direction_and_why_they_failed() -> None:
    metrics = GatewayMetrics()
    h = observed(metrics)
    h.dialler.numbers.update(("+15557777", "+15558888"))
    h.dialler.busy.add("+15558888")
    link = h.link()
    for number in ("+15557777", "+15558888"):
        session_id, _ = h.engine.create_session(link, "TELCO", number)
        h.engine.open_session(link, session_id)
        h.engine.session_ready(link, session_id)
    out = {"ingress": "fake", "direction": "outbound"}
    # the busy number was never a call: no leg rang (the agent is told CALLEE_BUSY)
    assert sample(metrics, "telcoflow_calls_offered_total", **out) == 1
    h.run(1.0)
    h.engine.leg_failed(h.dialler.last, DialFailure.REJECTED, "no")
    assert sample(metrics, "telcoflow_calls_ended_total", **out, outcome="CALL_REJECTED",
                  answered="false") == 1
    assert sample(metrics, "telcoflow_call_setup_seconds_count", **out) == 0


def test_an_engine_without_an_observer_runs_its_media_as_before() -> None:
    h = Harness()
    assert isinstance(h.engine.observer, NoObserver)
    leg, _, agent, _ = h.answered_call()
    h.engine.agent_audio(agent, bytes(2 * FRAME))
    h.command(agent, "agent.interrupt")  # a frame of silence at once, the count kept
    h.run(0.1)
    assert leg.frames == 5


# ── a real gateway, scraped during calls ───────────────────────────────────────

@pytest.fixture
def gw() -> Iterator[GatewayThread]:
    with GatewayThread(ring_timeout_s=1.0) as gateway:
        yield gateway


@pytest.fixture
def json_log() -> Iterator[tuple[io.StringIO, io.StringIO, JsonFormatter]]:
    """Every telcoflow log line at INFO and above for the test's duration: as JSON, and
    as the code wrote it (unscrubbed: the code itself must log no secret)."""
    out, raw = io.StringIO(), io.StringIO()
    formatter = JsonFormatter()
    handler, raw_handler = logging.StreamHandler(out), logging.StreamHandler(raw)
    handler.setFormatter(formatter)
    raw_handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    logger = logging.getLogger("telcoflow")
    level = logger.level
    logger.addHandler(handler)
    logger.addHandler(raw_handler)
    logger.setLevel(logging.INFO)
    try:
        yield out, raw, formatter
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(raw_handler)
        logger.setLevel(level)


def sdk_config(gw: GatewayThread) -> SessionManagerConfig:
    return SessionManagerConfig.create(api_key=gw.api_key, connector_uuid=gw.connector_uuid,
                                       base_url=gw.ws_url,
                                       call_audio=CallAudioConfig(sample_rate=RATE))


@pytest.mark.asyncio
async def test_a_scrape_during_calls_counts_what_the_test_did(
        gw: GatewayThread, json_log: tuple[io.StringIO, io.StringIO, JsonFormatter]) -> None:
    log, raw, formatter = json_log
    formatter.add_secrets(config_secrets(gw.config))
    ended: asyncio.Queue[str] = asyncio.Queue()
    interrupted = asyncio.Event()
    talker: list[str] = []
    answered = 3

    async with SessionManager(sdk_config(gw)) as sm:
        @sm.on_session_notification
        async def offered(noti: SessionNotification) -> None:
            if noti.remote_address == UNANSWERED:
                return  # nobody claims it: it rings until the ring timeout
            session = await sm.open_session(noti.session_id)
            session.on_incoming_call(on_call)
            await session.ready()

        async def on_call(call: Call) -> None:
            call.on_terminated(lambda: ended.put_nowait(call.id))
            first = not talker
            talker.append(call.id)  # claimed before any await: the calls run concurrently
            await call.answer()
            if first:  # the first call's agent talks, then stops short
                await call.send_audio(noise(1.0).tobytes())
                await call.clear_send_audio_buffer()
                interrupted.set()
            async for chunk in call.audio_stream():  # then echoes the caller
                await call.send_audio(chunk)

        # refused: a number nobody routes, and a phone with a wrong key
        async with Phone(gw.ws_url, gw.phone_key) as lost:
            with pytest.raises(PhoneError, match="NOT_IN_SERVICE"):
                await lost.dial(to="+19999999", caller="+15550001")
        with pytest.raises(Exception, match="401"):
            async with Phone(gw.ws_url, "tfp_not-the-phone-key-000000000000000"):
                pass

        async with AsyncExitStack() as stack:
            phones = [await stack.enter_async_context(Phone(gw.ws_url, gw.phone_key))
                      for _ in range(answered)]
            for i, phone in enumerate(phones):
                await phone.dial(to=gw.number, caller=f"+1555000{i}", codec="pcm16",
                                 sample_rate=RATE)
            for phone in phones:
                await phone.wait_answered(timeout=10)
            await asyncio.gather(*(phone.play(noise(0.2, seed=i))
                                   for i, phone in enumerate(phones)))
            await asyncio.gather(*(phone.wait_frames(20) for phone in phones))
            await asyncio.wait_for(interrupted.wait(), 10)
            during = await until(gw, "telcoflow_interrupt_seconds_count", 1)
            for phone in phones:
                await phone.hangup()

        simulated = {"ingress": "simulated", "direction": "inbound"}
        assert during.value("telcoflow_calls_active", **simulated, state="ANSWERED") == answered
        assert during.value("telcoflow_calls_active", state="RINGING") == 0
        assert during.value("telcoflow_calls_offered_total", **simulated) == answered + 1
        assert during.value("telcoflow_connections", plane="phone") == answered
        assert during.value("telcoflow_connections", plane="voice") == answered
        assert during.value("telcoflow_connections", plane="session_manager") == 1
        assert during.value("telcoflow_media_frames_total", path="to_agent") > 0
        # every phone heard 20 frames: the gateway played it at least 20 ticks
        assert during.value("telcoflow_media_frames_total", path="to_phone") >= answered * 20
        assert during.value("telcoflow_agent_frames_played_total") > 0
        assert during.value("telcoflow_interrupt_seconds_count") == 1
        assert 0 <= during.value("telcoflow_interrupt_seconds_sum") < 0.5  # heard at once
        assert during.value("telcoflow_media_tick_seconds_count") > 0

        for _ in range(answered):  # the engine ended each call before its agent was told
            await asyncio.wait_for(ended.get(), 10)
        between = await scrape(gw)
        assert between.value("telcoflow_calls_active") == 0

        async with Phone(gw.ws_url, gw.phone_key) as ringing:
            await ringing.dial(to=gw.number, caller=UNANSWERED, codec="pcm16", sample_rate=RATE)
            ring = await scrape(gw)
            assert ring.value("telcoflow_calls_active", **simulated, state="RINGING") == 1
            assert await ringing.wait_hangup(timeout=10) == "NO_ANSWER"

    after = await scrape(gw)
    assert after.value("telcoflow_calls_offered_total", **simulated) == answered + 2
    assert after.value("telcoflow_calls_ended_total", **simulated, outcome="CALLER_HANGUP",
                       answered="true") == answered
    assert after.value("telcoflow_calls_ended_total", **simulated, outcome="NO_ANSWER",
                       answered="false") == 1
    assert after.value("telcoflow_calls_ended_total", **simulated, outcome="NOT_IN_SERVICE",
                       answered="false") == 1
    assert after.value("telcoflow_calls_ended_total") == answered + 2
    assert after.value("telcoflow_call_setup_seconds_count", **simulated) == answered
    assert after.value("telcoflow_call_duration_seconds_count", **simulated) == answered + 1
    assert after.value("telcoflow_calls_active") == 0
    for path in ("to_agent", "to_phone"):  # ended calls keep their frames counted
        assert after.value("telcoflow_media_frames_total", path=path) >= \
            during.value("telcoflow_media_frames_total", path=path)
    assert after.value("telcoflow_auth_failures_total", plane="phone",
                       reason="invalid_key") == 1

    # the log: JSON lines, none holding a key or a token
    lines = log.getvalue().splitlines()
    assert len(lines) > 10
    records = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any("call" in r["message"] for r in records)
    for text in (log.getvalue(), raw.getvalue()):  # scrubbed, and as the code wrote it
        for secret in config_secrets(gw.config):
            assert secret not in text
        assert not re.search(r"v1\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}", text)


@pytest.mark.asyncio
async def test_metrics_refuse_unauthenticated_requests_and_count_them(
        gw: GatewayThread) -> None:
    url = gw.http_url + "/metrics"
    status, headers, body = await asyncio.to_thread(http_get, url)
    assert status == 401 and headers["www-authenticate"].startswith("Bearer")
    assert json.loads(body)["code"] == "UNAUTHORIZED"
    for wrong in ("tfm_wrong-key-00000000000000000000000", gw.api_key, gw.phone_key):
        status, _, body = await asyncio.to_thread(http_get, url, wrong)
        assert status == 401 and b"telcoflow_" not in body
    status, _, _ = await asyncio.to_thread(http_get, url, gw.config.metrics.keys[0], "POST")
    assert status == 405
    found = await scrape(gw)
    assert found.value("telcoflow_auth_failures_total", plane="metrics", reason="missing") == 1
    assert found.value("telcoflow_auth_failures_total", plane="metrics",
                       reason="invalid_key") == 3
    # the gateway's own planes count their refusals too
    status, _, _ = await asyncio.to_thread(http_get, gw.http_url + "/public/v1/sessions")
    assert status == 401
    found = await scrape(gw)
    assert found.value("telcoflow_auth_failures_total", plane="rest", reason="missing") == 1


def test_health_probes_answer_without_a_key_and_readyz_turns_503_while_stopping() -> None:
    gw = GatewayThread()
    release, stopping = asyncio.Event(), threading.Event()

    async def start() -> None:
        pass

    async def stop() -> None:  # a service that takes its time to stop
        stopping.set()
        await release.wait()

    gw.gateway.add_service(start, stop)
    assert gw.gateway.readiness == "starting"
    gw.__enter__()
    exiting = threading.Thread(target=gw.__exit__, args=(None, None, None))  # it stops
    try:
        status, _, body = http_get(gw.http_url + "/healthz")
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        status, _, body = http_get(gw.http_url + "/readyz")
        assert (status, json.loads(body)) == (200, {"status": "ready"})
        exiting.start()
        assert stopping.wait(5)
        status, _, body = http_get(gw.http_url + "/readyz")
        assert (status, json.loads(body)) == (503, {"status": "stopping"})
        assert http_get(gw.http_url + "/healthz")[0] == 200  # alive all the same
    finally:
        gw.call_soon(release.set)
        if exiting.ident is None:
            exiting.start()
        exiting.join(10)


def test_a_separate_listener_serves_metrics_and_the_probes() -> None:
    config = embedded_defaults(port=0)
    config.metrics.host, config.metrics.port = "127.0.0.1", 0
    with GatewayThread(config) as gw:
        key = config.metrics.keys[0]
        admin = f"http://127.0.0.1:{config.metrics.port}"
        assert config.metrics.port == gw.gateway.admin_port != gw.config.port
        status, _, body = http_get(admin + "/metrics", key)
        assert status == 200 and b"telcoflow_info{" in body
        assert http_get(admin + "/metrics")[0] == 401
        assert http_get(admin + "/readyz")[0] == 200
        assert http_get(admin + "/nothing")[0] == 404
        assert http_get(gw.http_url + "/metrics", key)[0] == 404  # not on the public port
        assert http_get(gw.http_url + "/readyz")[0] == 200        # the probes are


def test_switched_off_metrics_are_404_and_the_engine_unobserved() -> None:
    config = embedded_defaults(port=0)
    config.metrics.enabled = False
    with GatewayThread(config) as gw:
        # the call records and the stall log observe it: no metric is kept
        assert gw.gateway.metrics is None
        observers = gw.gateway.engine.observer.observers  # type: ignore[attr-defined]
        assert observers == (gw.gateway.records, gw.gateway.stalls)
        assert http_get(gw.http_url + "/metrics", config.metrics.keys[0])[0] == 404
        assert http_get(gw.http_url + "/healthz")[0] == 200


# ── configuration and logs ─────────────────────────────────────────────────────

def test_the_metrics_section_and_its_keys(tmp_path: Path) -> None:
    assert embedded_defaults().metrics.keys[0].startswith("tfm_")
    env = {"TELCOFLOW_API_KEY": "tfk_" + "a" * 32, "TELCOFLOW_CONNECTOR_UUID": "c1",
           "TELCOFLOW_METRICS_KEY": "tfm_" + "b" * 32}
    cfg = from_env(env)
    assert cfg is not None and cfg.metrics.keys == ["tfm_" + "b" * 32]
    base = '[[connectors]]\nuuid = "c1"\napi_keys = ["tfk_aaaaaaaaaaaaaaaaaaaaaaaa"]\n'
    path = tmp_path / "gw.toml"
    path.write_text(base + '[metrics]\nkeys = ["tfm_cccccccccccccccccccc"]\n'
                    'listen = "127.0.0.1:9999"\n')
    loaded = load_file(path).metrics
    assert (loaded.keys, loaded.host, loaded.port, loaded.enabled) == (
        ["tfm_cccccccccccccccccccc"], "127.0.0.1", 9999, True)
    for bad in ('[metrics]\nkeys = ["short"]\n', '[metrics]\nenabled = "yes"\n',
                '[metrics]\nlisten = "nowhere"\n',
                '[metrics]\nkeys = ["tfk_aaaaaaaaaaaaaaaaaaaaaaaa"]\n'):  # an API key
        path.write_text(base + bad)
        with pytest.raises(ConfigError):
            load_file(path)


def test_json_log_lines_carry_extras_and_never_a_key() -> None:
    secret = "a-configured-secret-of-any-shape"
    formatter = JsonFormatter([secret])
    logger = logging.getLogger("telcoflow.test.logformat")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("key %s token %s header %s and %s", "tfk_" + "x" * 32,
                       "v1.eyJjIjoiY2FsbCJ9.abcdefghijklmnopqrstuvwxyz0123", "Bearer s3cr3t-value",
                       secret, extra={"call_id": "call-1", "session_id": "s-1",
                                      "rtp": RtpStats(lost=4)})
        try:
            raise ValueError(f"failed with {secret}")
        except ValueError:
            logger.exception("it broke for call %s", "call-2", extra={"call_id": "call-2"})
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["level"] == "WARNING" and first["logger"] == "telcoflow.test.logformat"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert first["call_id"] == "call-1" and first["session_id"] == "s-1"
    assert first["rtp"]["lost"] == 4
    assert first["message"] == ("key tfk_[REDACTED] token v1.[REDACTED] header "
                                "Bearer [REDACTED] and [REDACTED]")
    assert second["call_id"] == "call-2" and "ValueError" in second["exc_info"]
    text = out.getvalue()
    for leaked in ("x" * 32, "s3cr3t", secret, "abcdefghijklmnop"):
        assert leaked not in text


def test_help_texts_that_name_a_key_are_left_readable() -> None:
    formatter = JsonFormatter()
    assert formatter.scrub("send Authorization: Bearer <phone network key>") == \
        "send Authorization: Bearer <phone network key>"

