"""An echo agent (the SDK page's Quick Start) that reports its own memory after each call.

``tests/sdk/test_memory.py`` runs it in a process of its own, so that
tracemalloc sees the agent and nothing else (the gateway and the simulated
phones stay in the test's process). Lines it prints, flushed:

- ``MARK ready`` once connected (tracemalloc counts from here on);
- ``MARK echoed <n>`` when call ``n`` has sent back its first chunk;
- ``MARK ended <n> <traced> <peak>`` when the handler of call ``n`` has
  returned: the bytes tracemalloc traces now, and the most it traced since
  the previous ``ended`` line.

Environment: ``WSS_API_KEY``, ``WSS_CONNECTOR_UUID``, ``TELCOFLOW_BASE_URL``
(as for the examples; ``tests/sdk/conftest.py:example_env`` sets them).
"""

from __future__ import annotations

import asyncio
import os
import tracemalloc

from telcoflow import Call, SessionManager, SessionManagerConfig, SessionNotification


def mark(*fields: object) -> None:
    print("MARK", *fields, flush=True)


async def main() -> None:
    config = SessionManagerConfig.create(api_key=os.environ["WSS_API_KEY"],
                                         connector_uuid=os.environ["WSS_CONNECTOR_UUID"],
                                         base_url=os.environ["TELCOFLOW_BASE_URL"])
    calls = 0
    async with SessionManager(config) as sm:

        @sm.on_session_notification
        async def handle_session(noti: SessionNotification) -> None:
            session = await sm.open_session(noti.session_id)

            @session.on_incoming_call
            async def on_call(call: Call) -> None:
                nonlocal calls
                calls += 1
                n = calls

                @call.on_terminated
                def on_terminated() -> None:  # closes over the call, as the Quick Start's does
                    assert call.id

                try:
                    if await call.answer():
                        echoed = False
                        async for chunk in call.audio_stream():
                            await call.send_audio(chunk)
                            if not echoed:
                                echoed = True
                                mark("echoed", n)
                finally:
                    traced, peak = tracemalloc.get_traced_memory()
                    tracemalloc.reset_peak()
                    mark("ended", n, traced, peak)

            await session.ready()

        tracemalloc.start()
        mark("ready")
        await sm.run_forever()


if __name__ == "__main__":
    asyncio.run(main())
