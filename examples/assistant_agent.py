# Flow 2 of the SDK page, "AI Assistant (Connect & Whisper)", and the
# "Handling CALL_UNANSWERED for connect()" block. EXAMPLE_FLOW picks one.
import os
from array import array
from math import pi, sin

from _harness import logger, serve
from telcoflow import Call

RATE = int(os.getenv("AGENT_RATE", "16000"))
# Half a second of a 660 Hz tone stands in for synthesized guidance for the callee.
private_guidance_pcm = array(
    "h", (int(6000 * sin(2 * pi * 660 * n / RATE)) for n in range(RATE // 2))).tobytes()


def register_assistant(session):
    @session.on_incoming_call
    async def assistant_flow(call: Call):
        await call.answer()
        await call.connect(ring_time_seconds=30)
        await call.whisper()
        await call.send_audio(private_guidance_pcm)
        await call.close()


def register_unanswered(session):
    @session.on_incoming_call
    async def assistant_flow(call: Call):
        await call.answer()
        result = await call.connect(ring_time_seconds=30)
        if not result:
            if result.error_code == "CALL_UNANSWERED":
                await call.disconnect()
            else:
                logger.error("Connect failed: %s (%s)", result.error_message, result.error_code)


if __name__ == "__main__":
    flow = os.getenv("EXAMPLE_FLOW", "assistant")
    serve(register_assistant if flow == "assistant" else register_unanswered)
