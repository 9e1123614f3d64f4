"""Behaviour our gateway never triggers, against a scripted peer speaking the spec.

(call.error events, server-side TIMEOUT answers, isolated channels, requests
for channels other than 0, unknown and malformed frames.)
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from telcoflow import (
    Call,
    CallErrorCode,
    CallEvent,
    SessionManager,
    SessionManagerConfig,
    SessionNotification,
)


class ScriptedGateway:
    def __init__(self) -> None:
        self.agent_frames: list[bytes] = []
        self.commands: list[str] = []
        self.headers: dict[str, str] = {}
        self.url = ""
        self.all_sent = asyncio.Event()

    async def handler(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        if ws.request.path.startswith("/v1/agent/session-manager"):
            self.headers = dict(ws.request.headers)
            await self.session_manager(ws)
        else:
            self.headers["voice-auth"] = ws.request.headers.get("Authorization", "")
            await self.voice(ws)

    async def session_manager(self, ws: ServerConnection) -> None:
        setup = json.loads(await ws.recv())
        assert setup == {"type": "setup", "data": {"sampleRate": 16000, "audioMode": "isolated"}}
        await ws.send('{"type":"setup.done","smWsId":"smws-test"}')
        await ws.send('{"type":"some.future.frame","x":1}')
        await ws.send("this is not json")
        await ws.send(json.dumps({"type": "session.notify", "sessionId": "s1", "channel": "TELCO",
                                  "remoteAddress": "+1", "localAddress": "+2",
                                  "activity": "NEW_INCOMING_CALL", "createdAt": 1}))
        async for text in ws:
            frame = json.loads(text)
            if frame["type"] == "session.open":
                await ws.send(json.dumps({"type": "response", "reqId": frame["reqId"], "ok": True,
                                          "content": {"session": {"id": "s1", "channel": "TELCO",
                                                                  "remoteAddress": "+1",
                                                                  "localAddress": "+2"}}}))
            elif frame["type"] == "session.ready":
                await ws.send(json.dumps({"type": "call.in", "sessionId": "s1", "callId": "c1",
                                          "orgUuid": "o", "from": "+1", "to": "+2",
                                          "url": f"{self.url}/voice/c1", "token": "tok-1"}))

    async def voice(self, ws: ServerConnection) -> None:
        async for message in ws:
            if isinstance(message, bytes):
                self.agent_frames.append(message)
                if sum(len(f) - 1 for f in self.agent_frames) >= 1000:
                    await self.finish(ws)
                continue
            data = json.loads(message)["data"]
            self.commands.append(data["command"])
            cid = data["command_id"]
            if data["command"] == "call.answer":
                await ws.send(json.dumps({"type": "command_response", "data": {
                    "command_id": cid, "success": True, "result": {"ok": 1}}}))
                await ws.send(b"\x01" + b"\x11\x11" * 4)   # isolated leg 1
                await ws.send(b"\x00" + b"\x22\x22" * 4)   # primary
                await ws.send(b"\x00")                       # too short: ignored
                await ws.send(json.dumps({"type": "buffer_request", "data": {
                    "requested_bytes": 5000, "prefer_audio_frame_bytes": 400, "channelId": 1}}))
            elif data["command"] == "agent.barge":
                await ws.send(json.dumps({"type": "command_response", "data": {
                    "command_id": cid, "success": False, "error_code": "TIMEOUT",
                    "error_message": "took too long"}}))
                await ws.send(json.dumps({"type": "buffer_request", "data": {
                    "requested_bytes": 1000, "prefer_audio_frame_bytes": 400, "channelId": 0}}))

    async def finish(self, ws: ServerConnection) -> None:
        self.all_sent.set()
        await ws.send(json.dumps({"type": "call_event", "data": {
            "event": "call.error", "error_code": "TTS_SESSION_ERROR",
            "error_message": "tts down"}}))
        await ws.send('{"type":"call_event","data":{"event":"call.terminated"}}')
        await ws.close()


@pytest.mark.asyncio
async def test_scripted_call(monkeypatch: pytest.MonkeyPatch) -> None:
    peer = ScriptedGateway()
    result: dict[str, Any] = {"errors": [], "terminated": 0}
    terminated = asyncio.Event()
    async with serve(peer.handler, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        peer.url = f"ws://127.0.0.1:{port}"
        from telcoflow import AudioMode, CallAudioConfig
        config = SessionManagerConfig.create(
            api_key="key-xyz", connector_uuid="conn-1", base_url=peer.url,
            call_audio=CallAudioConfig(audio_mode=AudioMode.ISOLATED))
        async with SessionManager(config) as sm:
            @sm.on_session_notification
            async def handle(noti: SessionNotification) -> None:
                session = await sm.open_session(noti.session_id)

                @session.on_incoming_call
                async def on_call(call: Call) -> None:
                    @call.on_call_event(CallEvent.CALL_ERROR)
                    def on_error(data: dict[str, Any]) -> None:
                        result["errors"].append(data)

                    @call.on_terminated
                    def on_terminated() -> None:
                        result["terminated"] += 1
                        terminated.set()

                    result["answer"] = await call.answer()
                    result["leg1"] = await anext(call.audio_stream(1))
                    result["leg0"] = await anext(call.audio_stream())
                    await call.send_audio(bytes(range(200)) * 6)
                    result["barge"] = await call.barge()

                await session.ready()

            await asyncio.wait_for(terminated.wait(), 10)
            await asyncio.wait_for(peer.all_sent.wait(), 10)
            assert sm.id == "smws-test"
    assert peer.headers["x-api-key"] == "key-xyz" and peer.headers["x-connector-uuid"] == "conn-1"
    assert peer.headers["x-sdk-version"] and peer.headers["voice-auth"] == "Bearer tok-1"
    assert result["answer"].payload == {"ok": 1}
    assert result["leg1"] == b"\x11\x11" * 4 and result["leg0"] == b"\x22\x22" * 4
    assert not result["barge"] and result["barge"].error_code == "TIMEOUT"
    # only channel 0's request was answered, in frames of the preferred size
    assert [len(f) for f in peer.agent_frames] == [401, 401, 201]
    assert {f[0] for f in peer.agent_frames} == {0}
    assert b"".join(f[1:] for f in peer.agent_frames) == (bytes(range(200)) * 6)[:1000]
    assert result["errors"] == [{"error_code": CallErrorCode.TTS_SESSION_ERROR.value,
                                 "error_message": "tts down"}]
    assert result["terminated"] == 1
    assert peer.commands == ["call.answer", "agent.barge"]
