"""``CallCommand`` → the engine's command names, and their checks."""

from __future__ import annotations

import re

from ...protocol import quic

Command = quic.CallCommand.Command

ENGINE_NAMES: dict[int, str] = {
    Command.ANSWER: "call.answer",
    Command.HANGUP: "call.disconnect",
    Command.INTERRUPT: "agent.interrupt",
    Command.CONNECT: "call.connect",
    Command.WHISPER: "agent.whisper",
    Command.BARGE: "agent.barge",
    Command.SPY: "agent.spy",
    Command.LEAVE: "call.close",
    Command.SEND_DTMF: "call.dtmf",
}
COMMAND_TIMEOUT_S = 30.0
DEFAULT_RING_S = 60
_DIGITS = re.compile(r"^[0-9*#A-D]{1,32}$")


def check(command: quic.CallCommand) -> tuple[str, str] | None:
    """``(code, message)`` when the command cannot be run as sent, else None."""
    if command.command not in ENGINE_NAMES:
        return "UNKNOWN_COMMAND", f"command {int(command.command)} is not one this gateway runs"
    if command.command == Command.SEND_DTMF and not _DIGITS.match(command.digits):
        return "INVALID_REQUEST", "SEND_DTMF needs 1 to 32 digits of 0-9 * # A-D"
    return None
