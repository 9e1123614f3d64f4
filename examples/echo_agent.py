# Echo agent: the Quick Start of the SDK page, pointed at a local gateway.
#
#   WSS_API_KEY=... WSS_CONNECTOR_UUID=... python examples/echo_agent.py
#
# TELCOFLOW_BASE_URL picks the gateway (default ws://localhost:8080).
import asyncio
import logging
import os
from telcoflow import SessionManager, SessionManagerConfig, SessionNotification, Call, CallAudioConfig

logging.basicConfig(level=logging.INFO, format='%(asctime)s - %(name)s - %(levelname)s - %(message)s')
logger = logging.getLogger(__name__)


async def main():
    config = SessionManagerConfig.create(
        api_key=os.getenv("WSS_API_KEY"),
        connector_uuid=os.getenv("WSS_CONNECTOR_UUID"),
        base_url=os.getenv("TELCOFLOW_BASE_URL", "ws://localhost:8080"),
        call_audio=CallAudioConfig(sample_rate=24000),
    )
    try:
        async with SessionManager(config) as sm:
            logger.info("Connected. Waiting for sessions...")

            @sm.on_session_notification
            async def handle_session(noti: SessionNotification):
                session = await sm.open_session(noti.session_id)

                @session.on_incoming_call
                async def on_call(call: Call):
                    logger.info("Incoming call %s from %s", call.id, call.caller_number)

                    @call.on_terminated
                    def on_terminated():
                        logger.info("Call %s terminated", call.id)

                    result = await call.answer()
                    if not result:
                        logger.error("Answer failed: %s (%s)", result.error_message, result.error_code)
                        return
                    async for audio_chunk in call.audio_stream():
                        await call.send_audio(audio_chunk)  # echo back
                    await call.close()

                await session.ready()  # start event delivery (register handlers first!)

            await sm.run_forever()
    except asyncio.CancelledError:
        logger.info("Interrupted.")


if __name__ == "__main__":
    asyncio.run(main())
