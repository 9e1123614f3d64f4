# Gemini agent: the "Integration with AI Models" example of the SDK page, unchanged.
#
#   GEMINI_API_KEY=... WSS_API_KEY=... WSS_CONNECTOR_UUID=... python examples/gemini_agent.py
#
# TELCOFLOW_BASE_URL picks the gateway (default ws://localhost:8080). For a key-less
# trial, point google-genai at the local fake with the lines
# `python -m telcoflow.testing.gemini_fake` prints (GOOGLE_GEMINI_BASE_URL, SSL_CERT_FILE).
# As written on the page it answers one model turn per call: google-genai's
# session.receive() ends at the first turnComplete.
import asyncio
import os
from google import genai
from google.genai import types
from telcoflow import SessionManager, SessionManagerConfig, SessionNotification, Call, CallAudioConfig

gemini_client = genai.Client(api_key=os.getenv("GEMINI_API_KEY"))
MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"


async def start_gemini_session(call: Call):
    await call.answer()
    async with gemini_client.aio.live.connect(model=MODEL) as session:

        async def stream_to_gemini():
            async for chunk in call.audio_stream():
                await session.send_realtime_input(
                    audio=types.Blob(data=chunk, mime_type="audio/pcm;rate=24000")
                )

        async def receive_from_gemini():
            async for response in session.receive():
                if content := response.server_content:
                    if content.interrupted:
                        await call.clear_send_audio_buffer()
                    elif content.model_turn:
                        for part in content.model_turn.parts:
                            if part.inline_data:
                                await call.send_audio(part.inline_data.data)

        await asyncio.gather(stream_to_gemini(), receive_from_gemini())


async def main():
    config = SessionManagerConfig.create(
        api_key=os.getenv("WSS_API_KEY"),
        connector_uuid=os.getenv("WSS_CONNECTOR_UUID"),
        call_audio=CallAudioConfig(sample_rate=24000),
    )
    async with SessionManager(config) as sm:

        @sm.on_session_notification
        async def handle_session(noti: SessionNotification):
            session = await sm.open_session(noti.session_id)

            @session.on_incoming_call
            async def on_call(call: Call):
                await start_gemini_session(call)

            await session.ready()

        await sm.run_forever()


if __name__ == "__main__":
    asyncio.run(main())
