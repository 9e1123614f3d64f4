"""A published-SDK agent whose behaviour the test picks: argv[1] is the scenario.

It logs 'MARK <what> <details>' lines the test waits on, and reads commands
from stdin where the test must say when to act (no sleeps anywhere).
"""
import asyncio
import json
import logging
import os
import sys
import time

from telcoflow import (Call, CallAudioConfig, CallEvent, ChannelType, SessionManager,
                       SessionManagerConfig, SessionNotification)
from telcoflow.messages import SendWAMessage

logging.basicConfig(level=logging.INFO, format="%(name)s %(levelname)s %(message)s")
log = logging.getLogger("agent")
SCENARIO = sys.argv[1]


def mark(*parts):
    print("MARK", *parts, flush=True)


async def stdin_line():
    return (await asyncio.to_thread(sys.stdin.readline)).strip()


def config(api_key=None):
    return SessionManagerConfig.create(
        api_key=api_key or os.environ["WSS_API_KEY"],
        connector_uuid=os.environ["WSS_CONNECTOR_UUID"],
        base_url=os.environ["TELCOFLOW_BASE_URL"],
        call_audio=CallAudioConfig(sample_rate=int(os.getenv("AGENT_RATE", "16000"))),
    )


async def echo(call: Call):
    async for chunk in call.audio_stream():
        await call.send_audio(chunk)


async def run_main():
    calls = []
    async with SessionManager(config()) as sm:
        mark("connected", sm.id)

        @sm.on_session_notification
        async def on_notify(noti: SessionNotification):
            mark("notify", noti.session_id, noti.activity)
            if SCENARIO == "ignore":
                return
            session = await sm.open_session(noti.session_id)
            mark("opened", session.id)

            @session.on_closed
            def closed(reason):
                mark("session_closed", session.id, reason)

            @session.on_incoming_call
            async def on_call(call: Call):
                mark("call_in", call.id)

                @call.on_terminated
                def terminated():
                    mark("call_terminated", call.id)

                @call.on_call_event(CallEvent.CALL_ERROR)
                def call_error(data):
                    mark("call_error", data.get("error_code"))

                calls.append(call)
                await handle_call(call, calls)

            if noti.channel == "WA":
                session.on_incoming_message(reply_to(session))

            if SCENARIO == "gating" or noti.activity == "RESUME" and os.getenv("HOLD_RESUME"):
                mark("waiting_for_go")
                await stdin_line()
            await session.ready()
            mark("ready", session.id)

        await sm.run_forever()


def reply_to(session):
    """WA: mark each message, and answer a text with 'echo: <text>'."""
    async def on_message(message):
        mark("message", session.id, message.sender, json.dumps(message.content, sort_keys=True))
        if message.content.get("type") == "text":
            body = "echo: " + message.content["text"]["body"]
            await send(session, {"type": "text", "text": {"body": body}})
    return on_message


async def send(session, data):
    result = await session.send_message(SendWAMessage("v23.0", data))
    detail = result.response_content if result.success else result.error_content
    mark("sent", result.success, result.error_code, json.dumps(detail, sort_keys=True))


async def run_wa_outbound():
    """Start a conversation with OUTBOUND_TO: a template, then answer what comes back."""
    async with SessionManager(config()) as sm:
        session = await sm.create_session(ChannelType.WA, os.environ["OUTBOUND_TO"])
        mark("created", session.id)
        session.on_incoming_message(reply_to(session))
        await session.ready()
        await send(session, {"type": "text", "text": {"body": "not yet"}})  # outside the window
        await send(session, {"type": "template", "template": {
            "name": "hello_world", "language": {"code": "en_US"}}})
        await sm.run_forever()


async def handle_call(call: Call, calls: list):
    if SCENARIO == "crossed_token":
        if len(calls) < 2:
            return
        first, second = calls
        crossed = Call.from_json(json.dumps({
            "channel": "TELCO", "id": second.id, "caller": "x", "callee": "y",
            "session_url": second._session_url, "session_token": first._session_token}))
        try:
            await crossed.answer()
            mark("crossed_answer_succeeded")
        except Exception as exc:
            cause = exc.__cause__.__cause__ if exc.__cause__ else None
            body = getattr(getattr(cause, "response", None), "body", b"")
            status = getattr(getattr(cause, "response", None), "status_code", None)
            mark("crossed_refused", status, body.decode(errors="replace").strip())
        result = await first.answer()
        mark("first_answered", bool(result))
        return
    result = await call.answer()
    mark("answered", bool(result), result.error_code)
    if SCENARIO in ("echo", "gating", "resume"):
        await echo(call)
        mark("stream_ended", call.id)
    elif SCENARIO == "record":
        with open(os.environ["RECORD_FILE"], "wb") as out:
            async for chunk in call.audio_stream():
                out.write(chunk)
                await call.send_audio(chunk)
        mark("stream_ended", call.id)
    elif SCENARIO in ("close", "disconnect"):
        await stdin_line()
        result = await (call.close() if SCENARIO == "close" else call.disconnect())
        mark("command_done", SCENARIO, bool(result), call.state)
    elif SCENARIO == "interrupt":
        tone = os.environ["TONE_FILE"]
        with open(tone, "rb") as fh:
            await call.send_audio(fh.read())
        mark("audio_queued", await call.get_send_audio_buffer_size())
        await stdin_line()
        dropped = await call.clear_send_audio_buffer()
        mark("cleared", dropped, time.perf_counter())
        await echo(call)


async def run_busy():
    async with SessionManager(config()) as first, SessionManager(config()) as second:
        opened = asyncio.Event()
        mark("connected", first.id, second.id)

        @first.on_session_notification
        async def claim(noti):
            await first.open_session(noti.session_id)
            mark("first_opened", first.id)
            opened.set()

        @second.on_session_notification
        async def late(noti):
            await opened.wait()
            try:
                await second.open_session(noti.session_id)
                mark("second_opened")
            except Exception as exc:
                mark("second_refused", type(exc).__name__, getattr(exc, "bound_sm_ws_id", None))

        await first.run_forever()


async def run_outbound():
    """Call OUTBOUND_TO through the gateway, answer it when it connects, and echo."""
    async with SessionManager(config()) as sm:
        mark("connected", sm.id)
        session = await sm.create_session(ChannelType.TELCO, os.environ["OUTBOUND_TO"])
        mark("created", session.id)

        @session.on_closed
        def closed(reason):
            mark("session_closed", session.id, reason)

        @session.on_incoming_call
        async def on_call(call: Call):
            mark("call_in", call.id, call.caller_number, call.callee_number)
            result = await call.answer()
            mark("answered", bool(result), result.error_code)
            await echo(call)
            mark("stream_ended", call.id)

        await session.ready()
        await sm.run_forever()


async def run_bad_key():
    try:
        async with SessionManager(config(api_key="tfk_wrong")):
            mark("connected_with_bad_key")
    except Exception as exc:
        mark("refused", type(exc).__name__, str(exc))


if __name__ == "__main__":
    runner = {"busy": run_busy, "bad_key": run_bad_key, "outbound": run_outbound,
              "wa_outbound": run_wa_outbound}.get(
        SCENARIO, run_main)
    asyncio.run(runner())
