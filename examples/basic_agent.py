# Flow 1 of the SDK page, "Basic AI Agent (Answer)": answer, listen, respond.
#
# ai_model is a local stand-in for a speech model (no cloud service needed):
# its "reply" to each chunk is the same audio at half volume.
from array import array

from _harness import serve
from telcoflow import Call


class LocalModel:
    async def generate(self, chunk: bytes) -> bytes:
        samples = array("h", chunk)
        return array("h", (s // 2 for s in samples)).tobytes()


ai_model = LocalModel()


def register(session):
    @session.on_incoming_call
    async def handle_call(call: Call):
        await call.answer()
        async for chunk in call.audio_stream():
            response = await ai_model.generate(chunk)
            await call.send_audio(response)
        await call.close()


if __name__ == "__main__":
    serve(register)
