"""What an ended call leaves behind in the gateway: a small session record (listable
through REST until KEEP_CLOSED later closings push it out) and its call record (JSON,
in the records ring until ``[records] keep`` later calls push it out), nothing else."""

from __future__ import annotations

import gc
import sys
import tracemalloc

import pytest

from telcoflow.engine.sessions import Session, SessionStore
from telcoflow.protocol import voice as vp
from telcoflow.testing import GatewayThread, Phone

from ..server.rawclient import claim_call, recv_type, sm_connect, voice_connect

CALLS = 200


@pytest.mark.asyncio
@pytest.mark.timeout(90)
async def test_ended_calls_leave_only_a_small_record(gateway: GatewayThread) -> None:
    sm = await sm_connect(gateway)

    async def one_call() -> None:
        async with Phone(gateway.ws_url, gateway.phone_key) as phone:
            await phone.dial(gateway.number, "+15550001", "pcm16", 16000)
            voice = await voice_connect(await claim_call(sm))
            await voice.send(vp.build_command("a", "call.answer", 5000))
            await recv_type(voice, "command_response")
            await phone.wait_answered()
            await phone.hangup()
            await recv_type(sm, "session.closed")
            await voice.close()

    for _ in range(20):  # caches, pools and the allocator warm up first
        await one_call()
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.get_traced_memory()[0]
        for _ in range(CALLS):
            await one_call()
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - start
    finally:
        tracemalloc.stop()
    engine = gateway.gateway.engine
    assert gateway.run(lambda: (len(engine.calls), len(engine.legs))) == (0, 0)
    records = gateway.run(lambda: gateway.gateway.records.ended(gateway.connector_uuid, CALLS))
    assert len(records) == CALLS
    # a call record is a JSON line in a dict by its id: the line, the id and the entry
    record_bytes = sum(sys.getsizeof(line) + 2 * 100 for line in records) / CALLS
    per_call = kept / CALLS - record_bytes
    print(f"{per_call:.0f} bytes kept per ended call besides its {record_bytes:.0f}-byte call "
          "record (this process: gateway and callers)")
    assert record_bytes < 2000, f"a call record takes {record_bytes:.0f} bytes"
    assert per_call < 2000, f"{per_call:.0f} bytes kept per ended call"  # was 7 kB
    await sm.close()


def test_closed_sessions_are_kept_up_to_a_bound() -> None:
    store = SessionStore()
    store.KEEP_CLOSED = 100
    for n in range(1000):
        session = store.add(Session("c", "TELCO", f"+1555{n:04d}", "+15550100", n))
        store.close(session, "CALL_TERMINATED", n)
    assert len(store.find("c")) == 100
    assert store.find("c", state="OPEN") == []
