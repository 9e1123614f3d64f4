"""Agents for the cluster tests: our SDK in-process, and raw session-manager clients."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from telcoflow import Call, CallAudioConfig, SessionManager, SessionManagerConfig

from .nodes import Cluster


@dataclass
class Seen:
    calls: list[Call] = field(default_factory=list)
    voice_urls: list[str] = field(default_factory=list)  # each call.in's, from to_json()
    session_of: dict[str, str] = field(default_factory=dict)  # caller number → session id
    answered: asyncio.Event = field(default_factory=asyncio.Event)
    terminated: asyncio.Event = field(default_factory=asyncio.Event)
    closed: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # sid → reason, cause
    closed_event: asyncio.Event = field(default_factory=asyncio.Event)


@asynccontextmanager
async def echo_agent(cluster: Cluster, base_url: str, rate: int = 8000) -> AsyncIterator[Seen]:
    """Our SDK connected to one node: claims every call offered, answers, echoes."""
    seen = Seen()
    config = SessionManagerConfig.create(api_key=cluster.api_key,
                                         connector_uuid=cluster.connector_uuid,
                                         base_url=base_url,
                                         call_audio=CallAudioConfig(sample_rate=rate))
    async with SessionManager(config) as sm:
        @sm.on_session_notification
        async def on_notify(noti: Any) -> None:
            session = await sm.open_session(noti.session_id)

            @session.on_closed
            def closed(reason: Any) -> None:
                seen.closed[session.id] = (str(getattr(reason, "value", reason)),
                                           session.close_cause)
                seen.closed_event.set()

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                seen.calls.append(call)
                seen.session_of[call.caller_number] = session.id
                seen.voice_urls.append(json.loads(call.to_json())["session_url"])

                @call.on_terminated
                def gone() -> None:
                    seen.terminated.set()

                assert await call.answer()
                seen.answered.set()
                async for chunk in call.audio_stream():
                    await call.send_audio(chunk)

            await session.ready()

        yield seen


class RawAgent:
    """A session-manager client that sends exactly what a test says."""

    def __init__(self, cluster: Cluster, base_url: str) -> None:
        self.cluster, self.base_url = cluster, base_url
        self.ws: ClientConnection | None = None
        self.sm_ws_id = ""
        self.frames: list[dict[str, Any]] = []
        self._news = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> RawAgent:
        self.ws = await connect(self.base_url + "/v1/agent/session-manager", additional_headers={
            "x-api-key": self.cluster.api_key, "x-connector-uuid": self.cluster.connector_uuid,
            "x-sdk-version": "test"})
        await self.ws.send(json.dumps({"type": "setup",
                                       "data": {"sampleRate": 8000, "audioMode": "mixed"}}))
        self._reader = asyncio.create_task(self._read())
        done = await self.wait(lambda f: f["type"] == "setup.done")
        self.sm_ws_id = done["smWsId"]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.ws is not None and self._reader is not None
        await self.ws.close()
        await asyncio.gather(self._reader, return_exceptions=True)

    async def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        assert self.ws is not None
        req_id = str(uuid.uuid4())
        await self.ws.send(json.dumps({"type": kind, "reqId": req_id, **fields}))
        return await self.wait(lambda f: f.get("reqId") == req_id)

    async def send(self, kind: str, **fields: Any) -> None:
        assert self.ws is not None
        await self.ws.send(json.dumps({"type": kind, **fields}))

    async def wait(self, match: Any, timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            while True:
                found = next((f for f in self.frames if match(f)), None)
                if found is not None:
                    return found
                self._news.clear()
                await self._news.wait()

    async def _read(self) -> None:
        assert self.ws is not None
        async for text in self.ws:
            self.frames.append(json.loads(text))
            self._news.set()
