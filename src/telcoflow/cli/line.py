"""``telcoflow line`` and ``telcoflow message``: a subscriber of the simulated network.

``line`` registers a number and stays: it is rung by the agents' outbound calls
and by ``call.connect`` (try whisper, barge and spy by hand), answers them per
``--answer``, plays a WAV file into each answered call and records what it
heard, and prints the WA messages agents send it. ``message`` writes one WA
message from a number to a business number and prints the answers that come
back within ``--wait`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from ..audio.wav import write_wav
from ..protocol import phone as pp
from ..testing import Phone, PhoneError
from .call import CallRequest, file_problem, gateway_and_key, run_against, talk_samples

FOREVER = 10 * 365 * 86400.0  # a timeout for "until the user stops it"


def add_parsers(sub: Any) -> None:
    line = sub.add_parser("line", help="a subscriber line on the simulated network: rung by "
                          "agents' calls and call.connect, receives their WA messages")
    line.add_argument("--number", required=True, help="the line's number")
    line.add_argument("--answer", choices=("auto", "reject", "never"), default="auto",
                      help="what the line does when rung (default: auto)")
    line.add_argument("--play", help="WAV file played into each answered call")
    line.add_argument("--record", help="WAV file of what the line heard (call N > 1 is "
                      "written to NAME-N.wav)")
    line.add_argument("--calls", type=int, help="stop after this many calls (default: never)")
    _common(line)
    msg = sub.add_parser("message", help="send a WA message from a simulated user and print "
                         "the answers")
    msg.add_argument("--to", required=True, help="the business number (a connector's)")
    msg.add_argument("--text", required=True, help="the message's text")
    msg.add_argument("--from", dest="sender", default="+15550001",
                     help="the user's number (registered as a line while this runs)")
    msg.add_argument("--wait", type=float, default=10.0,
                     help="seconds to print answers for (default 10; 0: do not wait)")
    msg.add_argument("--replies", type=int, help="stop once this many answers came")
    _common(msg)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", help="gateway base URL (default: ws://localhost:8080)")
    parser.add_argument("--key", help="the phone network key (default: env or dev credentials)")
    parser.add_argument("--codec", choices=("pcmu", "pcma", "pcm16"), default="pcmu")
    parser.add_argument("--rate", type=int, default=8000, choices=(8000, 16000, 24000, 48000))


def main(args: argparse.Namespace) -> int:
    if args.codec != "pcm16" and args.rate != 8000:
        print("pcmu and pcma run at 8000 Hz only", file=sys.stderr)
        return 2
    if args.command == "line":
        problem = file_problem(CallRequest("", "", args.play, args.record, None))
        if problem:
            print(problem, file=sys.stderr)
            return 2
    found = gateway_and_key("phone", args.url, args.key)
    if isinstance(found, str):
        print(found, file=sys.stderr)
        return 2
    url, key = found
    if args.command == "line":
        result = run_against(url, "the line", lambda: run_line(url, key, args))
    else:
        result = run_against(url, "the message", lambda: send_message(url, key, args))
    return result if isinstance(result, int) else 0


async def run_line(url: str, key: str, args: argparse.Namespace) -> int:
    async with Phone(url, key) as line:
        await line.register(args.number, args.codec, args.rate, answer=args.answer)
        say(f"line {args.number} registered; waiting for calls and messages (Ctrl-C stops)")
        printer = asyncio.create_task(print_messages(line))
        try:
            handled = 0
            while args.calls is None or handled < args.calls:
                await take_call(line, args, handled + 1)
                handled += 1
        finally:
            printer.cancel()
    return 0


async def take_call(line: Phone, args: argparse.Namespace, n: int) -> None:
    call_id = await line.wait_incoming(FOREVER)
    say(f"call {call_id} from {line.events.incoming_from}: ringing ({args.answer})")
    if args.answer == "auto":
        await line.wait_answered(FOREVER)
        say(f"call {call_id}: answered")
        start = line.frames_received
        if args.play:
            req = CallRequest("", "", args.play, None, None, args.codec, args.rate)
            await line.play(talk_samples(req, args.rate))
        reason = await line.wait_hangup(FOREVER)
        if args.record:
            write_wav(_numbered(args.record, n), line.received()[start * line.frame_samples:],
                      args.rate)
    else:
        reason = await line.wait_hangup(FOREVER)
    say(f"call {call_id}: ended ({reason}: {line.events.hangup_message})")


async def print_messages(line: Phone, limit: int | None = None) -> None:
    shown = 0
    while limit is None or shown < limit:
        try:
            messages = await line.wait_message(shown + 1, FOREVER)
        except PhoneError:
            return  # the line closed
        for message in messages[shown:]:
            say(describe(message))
        shown = len(messages)


async def send_message(url: str, key: str, args: argparse.Namespace) -> int:
    async with Phone(url, key) as user:
        await user.register(args.sender, args.codec, args.rate, answer="reject")
        await user.send_message(args.to, args.text)
        say(f"message to {args.to}: accepted")
        if args.wait > 0:
            try:
                await asyncio.wait_for(print_messages(user, args.replies), args.wait)
            except TimeoutError:
                pass
    return 0


def describe(message: pp.MessageReceived) -> str:
    content = message.content
    kind = content.get("type")
    body = content.get(kind) if isinstance(kind, str) else None
    text = body.get("body") if isinstance(body, dict) else None
    shown = repr(text) if isinstance(text, str) else f"({kind}) {content}"
    return f"message from {message.sender}: {shown}"


def say(line: str) -> None:
    print(line, flush=True)


def _numbered(path: str, n: int) -> str:
    if n == 1:
        return path
    p = Path(path)
    return str(p.with_name(f"{p.stem}-{n}{p.suffix}"))
