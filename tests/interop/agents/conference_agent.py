"""A call-control agent that runs unchanged on our SDK and on the published one.

argv[1] is the mode to set after connect: default (none), whisper, barge or
spy. It answers, connects the callee, sets the mode, marks ``ready``, then
plays TONE_FILE and records channel 0 (and 1, 2 when AUDIO_MODE=isolated)
until the test says ``stop`` on stdin; it writes REC_DIR/ch<N>.pcm, marks
``recorded``, and on ``end`` disconnects. Standard library only: the
published SDK runs with no site-packages.
"""
import asyncio
import os
import sys

from telcoflow import (AudioMode, Call, CallAudioConfig, SessionManager, SessionManagerConfig,
                       SessionNotification)

MODE = sys.argv[1]
ISOLATED = os.getenv("AUDIO_MODE") == "isolated"
CHANNELS = (0, 1, 2) if ISOLATED else (0,)


def mark(*parts):
    print("MARK", *parts, flush=True)


async def stdin_line():
    return (await asyncio.to_thread(sys.stdin.readline)).strip()


async def record(call: Call, channel: int, into: bytearray):
    async for chunk in call.audio_stream(channel):
        into += chunk


async def handle(call: Call):
    result = await call.answer()
    mark("answered", bool(result))
    recordings = {ch: bytearray() for ch in CHANNELS}
    tasks = [asyncio.create_task(record(call, ch, buf)) for ch, buf in recordings.items()]
    result = await call.connect(ring_time_seconds=int(os.getenv("RING_TIME", "10")))
    mark("connected", bool(result), result.error_code)
    if not result:
        return
    if MODE != "default":
        result = await getattr(call, MODE)()
        mark("mode", MODE, bool(result), result.error_code)
    mark("ready")
    with open(os.environ["TONE_FILE"], "rb") as fh:
        await call.send_audio(fh.read())
    await stdin_line()
    for channel, buf in recordings.items():
        with open(os.path.join(os.environ["REC_DIR"], f"ch{channel}.pcm"), "wb") as fh:
            fh.write(bytes(buf))
    mark("recorded")
    await stdin_line()
    result = await call.disconnect()
    mark("disconnected", bool(result))
    for task in tasks:
        task.cancel()


async def main():
    config = SessionManagerConfig.create(
        api_key=os.environ["WSS_API_KEY"],
        connector_uuid=os.environ["WSS_CONNECTOR_UUID"],
        base_url=os.environ["TELCOFLOW_BASE_URL"],
        call_audio=CallAudioConfig(sample_rate=int(os.environ["AGENT_RATE"]),
                                   audio_mode=AudioMode.ISOLATED if ISOLATED
                                   else AudioMode.MIXED))
    async with SessionManager(config) as sm:
        @sm.on_session_notification
        async def on_notify(noti: SessionNotification):
            session = await sm.open_session(noti.session_id)

            @session.on_incoming_call
            async def on_call(call: Call):
                await handle(call)

            await session.ready()

        mark("connected_sm")
        await sm.run_forever()


asyncio.run(main())
