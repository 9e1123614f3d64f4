# Google ADK agent: the "Integration with Google ADK" example of the SDK page, unchanged.
#
#   pip install 'telcoflow[adk]'
#   GEMINI_API_KEY=... WSS_API_KEY=... WSS_CONNECTOR_UUID=... python examples/adk_agent.py
#
# TELCOFLOW_BASE_URL picks the gateway (default ws://localhost:8080); the local Gemini
# Live fake stands in for Google as for gemini_agent.py. As printed on the page, every
# call fails at runner.run_live(): ADK 2.x finds no session with id call.id (the page
# never creates one) and raises SessionNotFoundError; the caller hears silence until
# they hang up. docs/ai-backends.md gives the one-line fix; `telcoflow agent adk`
# (telcoflow.integrations.adk) is the complete agent.
import asyncio
import os
from google.adk.agents import Agent
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.adk.agents.live_request_queue import LiveRequestQueue
from google.adk.agents.run_config import RunConfig, StreamingMode
from google.genai import types
from telcoflow import SessionManager, SessionManagerConfig, SessionNotification, Call, CallAudioConfig

# Configure ADK Agent
agent = Agent(
    name="telcoflow_agent",
    model="gemini-2.5-flash-native-audio-preview-12-2025",
    instruction="You are a helpful AI assistant talking over a phone call.",
)
session_service = InMemorySessionService()
runner = Runner(app_name="telcoflow_app", agent=agent, session_service=session_service)


async def start_adk_session(call: Call):
    """Bridges audio with ADK Live Runner."""
    await call.answer()

    # ADK uses a queue to receive real-time inputs (audio chunks)
    live_request_queue = LiveRequestQueue()

    # Task 1: Stream audio to ADK
    async def stream_to_adk():
        async for audio_chunk in call.audio_stream():
            audio_blob = types.Blob(
                data=audio_chunk,
                mime_type="audio/pcm;rate=24000"
            )
            live_request_queue.send_realtime(audio_blob)

    # Task 2: Receive events and audio from ADK and send back to caller
    async def receive_from_adk():
        run_config = RunConfig(
            streaming_mode=StreamingMode.BIDI,
            response_modalities=["AUDIO"]
        )

        async for event in runner.run_live(
            user_id="default_user",
            session_id=call.id,
            live_request_queue=live_request_queue,
            run_config=run_config,
        ):
            # Instant interruption handling
            if event.interrupted:
                await call.clear_send_audio_buffer()

            # Forward model audio to the caller
            if event.content and event.content.parts[0].inline_data:
                await call.send_audio(event.content.parts[0].inline_data.data)

    # Run both directions concurrently
    await asyncio.gather(stream_to_adk(), receive_from_adk())


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
            async def handle_call(call: Call):
                await start_adk_session(call)

            await session.ready()

        await sm.run_forever()


if __name__ == "__main__":
    asyncio.run(main())
