"""Shared scaffolding for the flow examples: the Quick Start's main() around one handler.

Each example defines its ``@session.on_incoming_call`` handler exactly as the
SDK page prints it; this module supplies the surrounding connection code.
"""

import asyncio
import logging
import os
from typing import Any, Callable

from telcoflow import CallAudioConfig, SessionManager, SessionManagerConfig, SessionNotification

logging.basicConfig(level=logging.INFO, format='%(asctime)s - %(name)s - %(levelname)s - %(message)s')
logger = logging.getLogger("example")


def config() -> SessionManagerConfig:
    return SessionManagerConfig.create(
        api_key=os.getenv("WSS_API_KEY"),
        connector_uuid=os.getenv("WSS_CONNECTOR_UUID"),
        base_url=os.getenv("TELCOFLOW_BASE_URL", "ws://localhost:8080"),
        call_audio=CallAudioConfig(sample_rate=int(os.getenv("AGENT_RATE", "16000"))),
    )


def serve(register: Callable[[Any], None]) -> None:
    """Run an agent whose ``register(session)`` installs the session's handlers."""

    async def main() -> None:
        try:
            async with SessionManager(config()) as sm:
                logger.info("Connected. Waiting for sessions...")

                @sm.on_session_notification
                async def handle_session(noti: SessionNotification) -> None:
                    session = await sm.open_session(noti.session_id)
                    register(session)
                    await session.ready()

                await sm.run_forever()
        except asyncio.CancelledError:
            logger.info("Interrupted.")

    asyncio.run(main())

