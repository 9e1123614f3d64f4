# "Event Handling" of the SDK page: on_terminated and CALL_ERROR handlers.
from _harness import serve
from telcoflow import Call, CallEvent


def register(session):
    @session.on_incoming_call
    async def handle_call(call: Call):
        await call.answer()

        @call.on_terminated
        def on_terminated():
            print("Call ended")

        # Server-side call errors (e.g. TTS failures)
        @call.on_call_event(CallEvent.CALL_ERROR)
        def on_error(data):
            print(f"Call error: {data['error_code']} — {data.get('error_message')}")


if __name__ == "__main__":
    serve(register)
