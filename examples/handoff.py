# Flow 3 of the SDK page, "Distributed Call Handling", across two processes.
#
#   python examples/handoff.py media      # answers handed-off calls, echoes audio
#   HANDOFF_ADDR=127.0.0.1:PORT python examples/handoff.py front   # receives calls
#
# message_queue is a stand-in for "your message queue / HTTP": one JSON line per
# call over a local TCP connection.
import asyncio
import os
import sys

from _harness import logger, serve
from telcoflow import Call


class LineQueue:
    """Publishes one line per message to the media node's TCP listener."""

    async def publish(self, message: str) -> None:
        host, port = os.environ["HANDOFF_ADDR"].rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(message.encode() + b"\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()


message_queue = LineQueue()


def register_front(session):
    @session.on_incoming_call
    async def forward_call(call: Call):
        # Send handoff JSON to another server via your message queue / HTTP
        await message_queue.publish(call.to_json())


async def handle_handoff(received_message: str) -> None:
    # On the other server:
    call = Call.from_json(received_message)
    await call.answer()

    @call.on_terminated
    def on_terminated():
        logger.info("Handed-off call %s terminated", call.id)

    logger.info("Answered handed-off call %s from %s", call.id, call.caller_number)
    async for chunk in call.audio_stream():
        await call.send_audio(chunk)


async def media_node() -> None:
    tasks = set()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        line = await reader.readline()
        writer.close()
        task = asyncio.create_task(handle_handoff(line.decode()))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(on_connection, "127.0.0.1",
                                        int(os.getenv("HANDOFF_PORT", "0")))
    port = server.sockets[0].getsockname()[1]
    logger.info("Handoff listening on port %d", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    if sys.argv[1:] == ["media"]:
        try:
            asyncio.run(media_node())
        except KeyboardInterrupt:
            pass
    else:
        serve(register_front)
