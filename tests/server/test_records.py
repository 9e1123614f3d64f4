"""Call records and recordings through a real gateway: a simulated phone calls our SDK's
echo agent over loopback; the call's record, its stereo WAV and the REST plane that
serves them, per connector (isolation, ids, authentication)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from telcoflow import Call, SessionManager
from telcoflow.audio.wav import read_wav_channels
from telcoflow.server.config import ConfigError, Connector, GatewayConfig, load_file
from telcoflow.server.errors import TooLarge
from telcoflow.server.recordings import WavRecording
from telcoflow.server.rest import RANGE_CHUNK, byte_range
from telcoflow.testing import GatewayThread, Phone

from ..conftest import our_agent

RATE = 16000
FRAME = RATE // 50
KEY_A, KEY_B = "tfk_records_a_key_00000000", "tfk_records_b_key_00000000"
CONN_A, CONN_B = "conn-rec-a", "conn-rec-b"
NUMBER_A, NUMBER_B = "+15550100", "+15550200"
SLOP_S = 0.04  # a tick's phase wait (the call's first tick) plus one 20 ms frame


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[GatewayThread]:
    config = GatewayConfig([Connector(CONN_A, [KEY_A], [NUMBER_A], record=True),
                            Connector(CONN_B, [KEY_B], [NUMBER_B])],
                           ["tfp_records_phone_key_000"], port=0)
    config.recordings.dir = str(tmp_path / "recordings")
    config.records.dir = str(tmp_path / "records")
    with GatewayThread(config) as gateway:
        yield gateway


def http(gw: GatewayThread, path: str, key: str | None = KEY_A, connector: str = CONN_A,
         range_: str | None = None) -> tuple[int, dict[str, str], bytes]:
    headers = {"x-api-key": key, "x-connector-uuid": connector} if key else {}
    if range_ is not None:
        headers["range"] = range_
    req = urllib.request.Request(gw.http_url + path, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()


def get_json(gw: GatewayThread, path: str, **kw: Any) -> Any:
    status, _, body = http(gw, path, **kw)
    assert status == 200, body
    return json.loads(body)


def tone(seconds: float, hz: float = 1000.0, amplitude: int = 12000) -> npt.NDArray[np.int16]:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def onset(x: npt.NDArray[np.int16], start: int = 0, level: int = 3000) -> float:
    """Seconds to the first sample at or after ``start`` louder than ``level``."""
    loud = np.flatnonzero(np.abs(x[start:].astype(np.int32)) > level)
    assert loud.size, "no tone found"
    return (start + int(loud[0])) / RATE


def echo_agent(gw: GatewayThread, calls: asyncio.Queue[Call]) -> SessionManager:
    async def on_call(call: Call) -> None:
        await call.answer()
        calls.put_nowait(call)
        async for chunk in call.audio_stream():
            await call.send_audio(chunk)

    return our_agent(gw, on_call, KEY_A, CONN_A, RATE)


@pytest.mark.asyncio
async def test_a_recorded_call_leaves_its_record_and_an_aligned_stereo_wav(
        gw: GatewayThread, tmp_path: Path) -> None:
    calls: asyncio.Queue[Call] = asyncio.Queue()
    engine = gw.gateway.engine
    sent_at: list[float] = []
    async with echo_agent(gw, calls):
        async with Phone(gw.ws_url, gw.phone_key) as phone:
            await phone.dial(NUMBER_A, "+15550001", "pcm16", RATE)
            await phone.wait_answered()
            call = await asyncio.wait_for(calls.get(), 10)
            first = engine.calls[call.id]
            # 0.3 s of silence, a 0.2 s tone, then a gap: the phone sends nothing 0.5 s
            await phone.play(np.concatenate([np.zeros(int(0.3 * RATE), np.int16), tone(0.2)]),
                             on_frame_sent=lambda i, _: sent_at.append(time.monotonic()))
            tone_sent = sent_at[int(0.3 * 50)]
            live = get_json(gw, "/public/v1/calls?state=live")["items"]
            await asyncio.sleep(0.5)  # the gap itself is what is tested: no audio sent
            await phone.hangup()
        await ended(call)

    # the live record, taken during the call
    assert [r["callId"] for r in live] == [call.id]
    item = live[0]
    assert item["state"] == "ANSWERED" and item["endedAt"] is None and item["outcome"] is None
    assert set(item["quality"]["caller"]) >= {"levelDbfs", "snrDb", "clippingPct", "score",
                                              "talkRatio", "alerts", "timeline"}
    assert item["recording"]["url"] == f"/public/v1/calls/{call.id}/recording"

    record = get_json(gw, f"/public/v1/calls/{call.id}")
    assert record["connector"] == CONN_A and record["ingress"] == "simulated"
    assert record["direction"] == "inbound" and record["state"] == "ENDED"
    assert (record["from"], record["to"], record["outcome"]) == ("+15550001", NUMBER_A,
                                                                 "CALLER_HANGUP")
    assert record["arrivedAt"] <= record["answeredAt"] <= record["endedAt"]
    assert record["answeredAt"] - record["arrivedAt"] == record["setupMs"]
    assert record["media"]["toAgentFrames"] >= 25 and record["quality"]["caller"]["alerts"] == []
    listed = get_json(gw, "/public/v1/calls?state=ended&limit=5")["items"]
    assert [r["callId"] for r in listed] == [call.id]
    lines = (tmp_path / "records" / "calls.jsonl").read_text().splitlines()
    assert [json.loads(line)["callId"] for line in lines] == [call.id]

    # the recording: stereo, the call's length, caller left / agent right on one clock
    status, headers, wav = http(gw, record["recording"]["url"])
    assert status == 200 and headers["content-type"] == "audio/wav"
    path = tmp_path / "recordings" / CONN_A / f"{call.id}.wav"
    assert wav == path.read_bytes() and record["recording"]["bytes"] == len(wav)
    assert headers["accept-ranges"] == "bytes"
    # a player asks in parts: each answer is the part, and says where it sits
    url = record["recording"]["url"]
    for asked, start, part in (("bytes=0-99", 0, wav[:100]), ("bytes=100-", 100, wav[100:]),
                               ("bytes=-44", len(wav) - 44, wav[-44:])):
        status, headers, body = http(gw, url, range_=asked)
        assert (status, body) == (206, part), asked
        assert headers["content-range"] == f"bytes {start}-{start + len(part) - 1}/{len(wav)}"
    for bad in (f"bytes={len(wav)}-", "bytes=5-2", "bytes=0-1,5-9", "items=0-1", "bytes=-"):
        status, _, body = http(gw, url, range_=bad)
        assert status == 416 and json.loads(body)["code"] == "RANGE_NOT_SATISFIABLE", bad
    frames, rate = read_wav_channels(path)
    assert rate == RATE and frames.shape[1] == 2
    left, right = frames[:, 0], frames[:, 1]
    media_s = record["durationS"] - record["setupMs"] / 1000
    assert abs(len(frames) / RATE - media_s) <= SLOP_S
    assert record["recording"]["seconds"] == pytest.approx(len(frames) / RATE, abs=0.001)
    answered_at = first.arrived_at + record["setupMs"] / 1000
    tone_at = onset(left)
    assert abs(tone_at - (tone_sent - answered_at)) <= SLOP_S
    assert not left[:int((tone_at - 0.02) * RATE)].any()  # silence before it: exact zeros
    end_of_tone = tone_at + 0.2
    gap = left[int((end_of_tone + 0.04) * RATE):int((end_of_tone + 0.4) * RATE)]
    assert gap.size > 0.3 * RATE and not gap.any()  # the phone sent nothing: silence
    echo_at = onset(right)
    assert 0.0 < echo_at - tone_at < 0.4  # the echo plays after the tone, by its round trip


async def ended(call: Call) -> None:
    """The agent heard the call end: the gateway made its record in the same step."""
    done = asyncio.Event()
    call.on_terminated(done.set)
    await asyncio.wait_for(done.wait(), 10)


@pytest.mark.asyncio
async def test_records_and_recordings_are_the_connectors_own(gw: GatewayThread) -> None:
    calls: asyncio.Queue[Call] = asyncio.Queue()
    async with echo_agent(gw, calls):
        async with Phone(gw.ws_url, gw.phone_key) as phone:
            await phone.dial(NUMBER_A, "+15550001", "pcm16", RATE)
            await phone.wait_answered()
            call = await asyncio.wait_for(calls.get(), 10)
            # live: connector B sees nothing of A's call; its recording is not served yet
            assert get_json(gw, "/public/v1/calls", key=KEY_B, connector=CONN_B) == {"items": []}
            assert http(gw, f"/public/v1/calls/{call.id}", KEY_B, CONN_B)[0] == 404
            status, _, body = http(gw, f"/public/v1/calls/{call.id}/recording")
            assert status == 409 and b"still live" in body
            await phone.hangup()
        await ended(call)

    own = f"/public/v1/calls/{call.id}"
    assert http(gw, own)[0] == 200
    assert http(gw, own + "/recording")[0] == 200
    for path in (own, own + "/recording"):  # another connector: 404, as for an unknown id
        assert http(gw, path, KEY_B, CONN_B)[0] == 404
        assert http(gw, path, key=None)[0] == 401  # no credentials
        assert http(gw, path, key="tfk_wrong_key_0000000000000")[0] == 401
    assert http(gw, "/public/v1/calls", key=None)[0] == 401
    assert get_json(gw, "/public/v1/calls?state=ended", key=KEY_B, connector=CONN_B)[
        "items"] == []
    # B does not record: it is told so, even for an id that is not its call
    status, _, body = http(gw, own + "/recording", KEY_B, CONN_B)
    assert status == 404 and b"not recorded" in body


@pytest.mark.parametrize("call_id", [
    "..%2F..%2F..%2Fetc%2Fpasswd", "%2e%2e", "..", "x" * 40, "00000000-0000-0000-0000-00000000000G",
    "00000000-0000-0000-0000-000000000000.wav", "00000000-0000-0000-0000-000000000000%00"])
def test_call_ids_that_are_not_ours_are_refused_before_any_lookup(
        gw: GatewayThread, call_id: str) -> None:
    for suffix in ("", "/recording"):
        status, _, body = http(gw, f"/public/v1/calls/{call_id}{suffix}")
        assert status == 400, body
        assert json.loads(body)["code"] == "INVALID_REQUEST"
    status, _, _ = http(gw, "/public/v1/calls/../../../etc/passwd")
    assert status == 404  # not a calls path at all


def test_bad_list_queries_are_refused_with_a_reason(gw: GatewayThread) -> None:
    for query, word in (("state=open", b"state"), ("limit=0", b"limit"), ("limit=x", b"limit"),
                        ("limit=100000", b"limit")):
        status, _, body = http(gw, f"/public/v1/calls?{query}")
        assert status == 400 and word in body, query
    status, _, body = http(gw, "/public/v1/calls/00000000-0000-4000-8000-000000000000")
    assert status == 404


def test_recording_config_is_checked(tmp_path: Path) -> None:
    conf = tmp_path / "g.toml"
    conf.write_text('[[connectors]]\nuuid = "c1"\napi_keys = ["k"]\nrecord = true\n')
    with pytest.raises(ConfigError, match=r"\[recordings\] dir"):
        load_file(conf)
    conf.write_text('[[connectors]]\nuuid = "c1"\napi_keys = ["k"]\nrecord = "yes"\n')
    with pytest.raises(ConfigError, match="true or false"):
        load_file(conf)
    conf.write_text('[recordings]\ndir = "r"\nmax_served_mb = 0\n'
                    '[[connectors]]\nuuid = "c1"\napi_keys = ["k"]\n')
    with pytest.raises(ConfigError, match="max_served_mb"):
        load_file(conf)
    conf.write_text(f'[recordings]\ndir = "{tmp_path}/r"\n[records]\nkeep = 5\n'
                    '[[connectors]]\nuuid = "c1"\napi_keys = ["k"]\nrecord = true\n')
    cfg = load_file(conf)
    assert cfg.connectors[0].record and cfg.records.keep == 5


def test_a_recording_cut_off_mid_call_reads_up_to_its_last_second(tmp_path: Path) -> None:
    recording = WavRecording(tmp_path / "cut.wav", RATE)
    block = tone(0.2).tobytes()
    for _ in range(13):  # 2.6 s, and then the gateway dies: no close()
        recording.write(block, bytes(len(block)))
    # the file as the OS holds it, the process's unflushed buffer lost with it
    frames, rate = read_wav_channels(tmp_path / "cut.wav")
    assert rate == RATE and frames.shape[1] == 2
    assert len(frames) / RATE >= 2.0  # the header was rewritten at its last second
    assert frames[:, 0].any() and not frames[:, 1].any()


def test_a_big_recording_is_served_in_ranges_of_a_bounded_size() -> None:
    mb = 1 << 20
    with pytest.raises(TooLarge, match="Range"):
        byte_range(None, 65 * mb, 64 * mb)  # whole: capped
    assert byte_range(None, 64 * mb, 64 * mb) is None
    assert byte_range("bytes=0-", 65 * mb, 64 * mb) == (0, RANGE_CHUNK - 1)
    assert byte_range("bytes=10-20", 65 * mb, 64 * mb) == (10, 20)
    assert byte_range("bytes=-100", 65 * mb, 64 * mb) == (65 * mb - 100, 65 * mb - 1)
    assert byte_range("bytes=-100000000", 100, 64 * mb) == (0, 99)
