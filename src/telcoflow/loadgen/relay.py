"""The bench's lossy UDP relay, in its own process: between the QUIC agent and the gateway.

Run as a script: ``python -u -P loadgen/relay.py``, with ``BENCH_RELAY_TARGET``
(``host:port``, the gateway's QUIC door) and ``BENCH_RELAY_SEED``. It is
:class:`telcoflow.testing.lossy_relay.LossyRelay`, as in ``tests/quic/test_loss.py``,
in a process of its own so that what it costs is not counted as the gateway's or
the agent's CPU (the bench reports it apart).

Protocol with the bench (stdin/stdout, one line each): ``RELAY <port>`` once
listening; ``LOSS <up> <down> <min_size>`` sets the loss from now on (``up``: agent
→ gateway) and answers ``LOSS``; ``COUNTS`` answers ``COUNTS <json>`` (forwarded and
dropped, per direction). End of stdin stops it. It starts with no loss, so the
QUIC handshakes and the calls' set-up are not disturbed; the bench turns the loss on
for the talking window only, as the loss test does.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading

from telcoflow.testing.lossy_relay import LossyRelay


def _read_commands(loop: asyncio.AbstractEventLoop, relay: LossyRelay,
                   stop: asyncio.Event) -> None:
    def loss(up: float, down: float, min_size: int) -> None:
        relay.set_loss(up=up, down=down, min_size=min_size)
        print("LOSS", flush=True)

    def counts() -> None:
        print("COUNTS " + json.dumps({"forwarded": relay.forwarded, "dropped": relay.dropped,
                                      "loss": relay.loss, "min_size": relay.min_size}),
              flush=True)

    for line in sys.stdin:
        words = line.split()
        if len(words) == 4 and words[0] == "LOSS":
            loop.call_soon_threadsafe(loss, float(words[1]), float(words[2]), int(words[3]))
        elif words == ["COUNTS"]:
            loop.call_soon_threadsafe(counts)
    loop.call_soon_threadsafe(stop.set)


async def main() -> None:
    host, _, port = os.environ["BENCH_RELAY_TARGET"].rpartition(":")
    stop = asyncio.Event()
    async with LossyRelay((host, int(port)), seed=int(os.environ.get("BENCH_RELAY_SEED", "1")),
                          host=host) as relay:
        threading.Thread(target=_read_commands, args=(asyncio.get_running_loop(), relay, stop),
                         daemon=True).start()
        print(f"RELAY {relay.port}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
