"""Fuzzed connections to a gateway's port, run as a child process by test_http_front_live.

``python -m tests.reliability.http_fuzzer PORT SEED CONNECTIONS`` (credentials in the
environment: TF_API_KEY, TF_CONNECTOR_UUID, TF_PHONE_KEY) opens CONNECTIONS
connections over loopback, CONCURRENCY at a time, and prints one JSON line:
what was sent where the server left a connection hanging, the 500 answers, and
how many answers of each status came back.

A child process, not a task beside the gateway thread: the fuzzing is CPU-bound
Python, and in the gateway's own process it would hold the GIL the gateway's
media clock needs every 5 ms.

Each connection is one :class:`Attempt`: HTTP requests of every method and version
with broken framing (Content-Length, chunked bodies, pipelining, oversized heads),
well-formed requests that reach the routes, WebSocket upgrades with good and bad
handshakes and credentials (followed by junk frames), and raw junk; written in
chunks, then half-closed (or aborted, or left open after a ``Connection: close``
request the server must close itself).
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import sys
import time
from collections import Counter
from dataclasses import dataclass

from .fuzzing import TOKENS_BYTES, Mutator

CONCURRENCY = 16  # below the gateway's 64 not-yet-WebSocket connections per address
BOUND_S = 5.0     # an answered or closed connection ends well within this


@dataclass(frozen=True, slots=True)
class Credentials:
    api_key: str
    connector_uuid: str
    phone_key: str


@dataclass(slots=True)
class Attempt:
    """One connection: its chunks to write, then half-close (or abort)."""

    chunks: list[bytes]
    abort: bool = False
    half_close: bool = True


@dataclass(slots=True)
class Outcome:
    answer: bytes = b""
    seconds: float = 0.0
    hung: bool = False


class Generator:
    """Seeded HTTP, upgrade and junk byte streams for one gateway's credentials."""

    def __init__(self, creds: Credentials, seed: int) -> None:
        self.creds = creds
        self.mutator = Mutator(seed)
        self.rng = self.mutator.rng

    def pick(self, *options: str) -> str:
        return self.rng.choice(options)

    def target(self) -> str:
        return self.pick(
            "/public/v1/sessions", "/public/v1/sessions?state=OPEN&channel=TELCO",
            "/public/v1/sessions?state=%ff%fe", "/public/v1/sessions/x/close",
            "/v1/twilio/voice", "/v1/agent/session-manager", "/v1/phone", "/v1/audiocodes",
            "/v1/twilio/media", "/v1/voice/abc", "/v1/voice/" + "a" * 70, "/", "*", "/%00",
            "/public/" + "x" * 5000, "http://gw/public/v1/sessions", "/é", "/a b", "")

    def headers(self) -> list[str]:
        rng, creds = self.rng, self.creds
        lines = [f"Host: {self.pick('gw', 'gw:1', '[', '', 'a b', 'gw' * 3000)}"]
        options = [
            f"x-api-key: {creds.api_key}", f"x-connector-uuid: {creds.connector_uuid}",
            "x-api-key: tfk_nope", "x-connector-uuid: \u00e9",
            f"Authorization: Bearer {creds.phone_key}", "Authorization: Bearer x",
            "Authorization: Basic Zm9vOmJhcg==", "Connection: close", "Connection: keep-alive",
            "Content-Type: application/x-www-form-urlencoded", "X-Twilio-Signature: abc",
            "Expect: 100-continue", "Transfer-Encoding: chunked", "Content-Length: 5",
            "Content-Length: -1", "Content-Length: 99999999999999999999", "Content-Length: x",
            "Content-Length: 3\r\nContent-Length: 4", "Upgrade: websocket", "Upgrade: h2c",
            "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Key: short", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8",
            "Sec-WebSocket-Extensions: permessage-deflate", "X-Long: " + "v" * 9000,
            "bad header line", " folded: continuation", "X-Null: a\x00b", "X-Utf8: é☎"]
        lines += rng.sample(options, rng.randint(0, 6))
        if rng.random() < 0.05:
            lines += [f"X-{i}: {i}" for i in range(rng.choice((100, 1000)))]
        return lines

    def body(self) -> bytes:
        return self.rng.choice((
            b"", b"hello", b"CallSid=CA1&To=%2B15550100&From=%2B1", b"a=%zz&&==",
            b"5\r\nhello\r\n0\r\n\r\n", b"zz\r\nbad chunk\r\n", bytes(70_000), b"\xff\xfe"))

    def http(self) -> bytes:
        method = self.pick("GET", "GET", "POST", "POST", "HEAD", "PUT", "DELETE", "OPTIONS",
                           "BREW", "G\u00c9T", "")
        version = self.pick("HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/1.1 x", "")
        head = "\r\n".join([f"{method} {self.target()} {version}", *self.headers()])
        eol = self.pick("\r\n\r\n", "\r\n\r\n", "\r\n\r\n", "\n\n", "\r\n")
        return head.encode() + eol.encode() + self.body()

    def good_http(self) -> bytes:
        """A well-formed request that asks the server to close after answering it: it
        reaches the routes (REST with credentials, the Twilio webhook, the WebSocket-only
        paths) and the server, not our half-close, must end the connection."""
        creds = self.creds
        body = self.rng.choice((b"", b"CallSid=CA1&To=%2B15550100", b"a=%zz&&==", b"\xff"))
        auth = self.pick(f"x-api-key: {creds.api_key}\r\nx-connector-uuid: "
                         f"{creds.connector_uuid}", "X-Twilio-Signature: bm9wZQ==",
                         "x-api-key: nope")
        return (f"{self.pick('GET', 'POST', 'HEAD', 'DELETE')} {self.target()} HTTP/1.1\r\n"
                f"Host: {self.pick('gw', '[', 'gw:99999', 'é')}\r\n{auth}\r\n"
                f"Content-Type: application/x-www-form-urlencoded\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body

    def ws_frame(self) -> bytes:
        """A masked client frame of any kind, junk often."""
        rng = self.rng
        opcode = rng.choice((0x1, 0x1, 0x2, 0x2, 0x8, 0x9, 0x0, 0x3))
        payload = rng.choice((
            b'{"type":"setup","data":{"sampleRate":8000}}', b'{"type":"x"}', b"[" * 50,
            b'{"type":"session.open","reqId":"r","sessionId":"nope"}', b"\xff\xfe",
            b'{"type":"hangup"}', b'{"event":"connected"}', bytes(rng.randrange(400)),
            b'{"type":"session.initiate","conversationId":"c"}', struct.pack("!H", 1000)))
        if rng.random() < 0.3:
            payload = self.mutator.mutate_bytes(payload)
        first = (0x80 if rng.random() < 0.9 else 0) | opcode
        key = rng.randbytes(4)
        masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
        n = len(payload)
        head = bytes((first, 0x80 | n)) if n < 126 else struct.pack("!BBH", first, 0xFE, n)
        return head + key + masked

    def upgrade(self) -> bytes:
        creds = self.creds
        path, auth = self.rng.choice((
            ("/v1/agent/session-manager",
             f"x-api-key: {creds.api_key}\r\nx-connector-uuid: {creds.connector_uuid}\r\n"),
            ("/v1/phone", f"Authorization: Bearer {creds.phone_key}\r\n"),
            ("/v1/audiocodes", "Authorization: Bearer nope\r\n"),
            ("/v1/twilio/media", ""), ("/v1/voice/c1", "Authorization: Bearer x\r\n"),
            ("/nowhere", "")))
        head = (f"GET {path} HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Sec-WebSocket-Version: 13\r\n{auth}\r\n")
        if self.rng.random() < 0.3:
            head = self.mutator.mutate_lines(head)
        return head.encode("utf-8", "surrogatepass") + b"".join(
            self.ws_frame() for _ in range(self.rng.randint(0, 8)))

    def junk(self) -> bytes:
        rng = self.rng
        return rng.choice((
            rng.randbytes(rng.randrange(1, 600)), b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + rng.randbytes(64),
            b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 3000, b"\r\n" * 100, b"\x00" * 2000,
            rng.choice(TOKENS_BYTES) * rng.randrange(1, 50)))

    def attempt(self) -> Attempt:
        rng = self.rng
        kind = rng.random()
        if kind < 0.15:
            return Attempt([self.good_http()], half_close=False)
        if kind < 0.45:
            data = self.http()
            if rng.random() < 0.15:  # pipelined
                data += self.http()
        elif kind < 0.75:
            data = self.upgrade()
        else:
            data = self.junk()
        if rng.random() < 0.25:
            data = self.mutator.mutate_bytes(data)
        cuts = sorted(rng.sample(range(len(data)), min(len(data), rng.choice((0, 0, 1, 3)))))
        chunks = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
        return Attempt([c for c in chunks if c], abort=rng.random() < 0.1)


async def run_attempt(port: int, attempt: Attempt) -> Outcome:
    """Connect, write, half-close and read until the server closes: within BOUND_S."""
    outcome = Outcome()
    started = time.monotonic()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(BOUND_S):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                for chunk in attempt.chunks:
                    writer.write(chunk)
                    await writer.drain()
                if attempt.abort:
                    writer.transport.abort()
                    return outcome
                if attempt.half_close:
                    writer.write_eof()
            except (ConnectionError, OSError):
                pass  # the server closed first: then reading sees the end too
            try:
                while data := await reader.read(65536):
                    outcome.answer += data[:max(0, 4096 - len(outcome.answer))]
            except (ConnectionError, OSError):
                pass  # a reset is a close too
    except TimeoutError:
        outcome.hung = True
    finally:
        outcome.seconds = time.monotonic() - started
        if writer is not None:
            writer.transport.abort()
    return outcome


async def fuzz(port: int, attempts: list[Attempt]) -> list[Outcome]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(attempt: Attempt) -> Outcome:
        async with gate:
            return await run_attempt(port, attempt)

    return await asyncio.gather(*(one(a) for a in attempts))


def main() -> None:
    port, seed, count = (int(arg) for arg in sys.argv[1:4])
    creds = Credentials(os.environ["TF_API_KEY"], os.environ["TF_CONNECTOR_UUID"],
                        os.environ["TF_PHONE_KEY"])
    generator = Generator(creds, seed)
    attempts = [generator.attempt() for _ in range(count)]
    started = time.perf_counter()
    outcomes = asyncio.run(fuzz(port, attempts))
    statuses = Counter(o.answer[9:12].decode("latin-1") if o.answer.startswith(b"HTTP/1.1 ")
                       else "closed" for o in outcomes)
    print(json.dumps({
        "connections": len(outcomes),
        "seconds": time.perf_counter() - started,
        "slowest": max(o.seconds for o in outcomes),
        "hung": [repr(b"".join(a.chunks))[:300] for a, o in zip(attempts, outcomes, strict=True)
                 if o.hung],
        "errors": [o.answer[:300].decode("latin-1") for o in outcomes
                   if o.answer.startswith(b"HTTP/1.1 500")],
        "statuses": dict(statuses.most_common()),
    }))


if __name__ == "__main__":
    main()
