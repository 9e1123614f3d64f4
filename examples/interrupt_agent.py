# "Buffer Management" and "Handling Interruptions" of the audio streaming page.
#
# The agent starts "talking" (a long tone queued with send_audio); as soon as
# the caller speaks, it is interrupted: queued audio is dropped on both sides.
# LocalVad stands in for the model's interruption event (event.interrupted).
import os
from array import array
from dataclasses import dataclass
from math import pi, sin

from _harness import logger, serve
from telcoflow import Call

RATE = int(os.getenv("AGENT_RATE", "16000"))
PROMPT_SECONDS = 5


@dataclass
class Event:
    interrupted: bool


class LocalVad:
    """Reports an interruption when a chunk is loud enough to be speech."""

    def feed(self, chunk: bytes) -> Event:
        samples = array("h", chunk)
        return Event(interrupted=max(map(abs, samples), default=0) > 1000)


def register(session):
    @session.on_incoming_call
    async def on_call(call: Call):
        await call.answer()
        prompt = array("h", (int(4000 * sin(2 * pi * 440 * n / RATE))
                             for n in range(PROMPT_SECONDS * RATE))).tobytes()
        await call.send_audio(prompt)

        # Check buffer size
        size = call.get_send_audio_buffer_size()
        logger.info("Queued prompt; %d bytes waiting to be played", size)

        vad = LocalVad()
        async for chunk in call.audio_stream():
            event = vad.feed(chunk)
            if event.interrupted:
                size = await call.get_send_audio_buffer_size()
                await call.clear_send_audio_buffer()
                # Now safe to start sending new audio
                logger.info("Interrupted with %d bytes still queued; now %d", size,
                            call.get_send_audio_buffer_size())
                break
        async for _ in call.audio_stream():  # stay on the line until the caller hangs up
            pass


if __name__ == "__main__":
    serve(register)
