"""The call-control tools a model may be given, run on one SDK :class:`~telcoflow.Call`.

The same three tools for every backend (each declares them in its own schema
language): ``transfer_to_human`` rings the call's human line (``call.connect``),
``hang_up`` ends the call (``call.disconnect``), ``send_dtmf`` plays digits
(``call.send_dtmf``). :func:`run_tool` runs one and returns what goes back to the
model: ``{"result": ...}`` or ``{"error": ...}``, never an exception, because a
model that asked for something impossible should hear why and carry on.
"""

from __future__ import annotations

from typing import Any

from ..sdk.call import Call
from ..sdk.errors import BufferClosedError, WSSCallClosedError

__all__ = ["DESCRIPTIONS", "DIGITS_HELP", "NAMES", "run_tool"]

DESCRIPTIONS: dict[str, str] = {
    "transfer_to_human": "Connect the caller to a human colleague (rings them for up to 30 s).",
    "hang_up": "End the call for everyone, once the conversation is over.",
    "send_dtmf": "Press keys on the phone line (0-9 * # A-D), e.g. to navigate a phone menu.",
}
DIGITS_HELP = "1 to 32 of 0-9 * # A-D, e.g. '1' or '12#'"
NAMES = frozenset(DESCRIPTIONS)


async def run_tool(call: Call, name: str, args: dict[str, Any], *,
                   ring_time_seconds: int = 30) -> dict[str, Any]:
    """Run tool ``name`` on ``call``; the answer for the model."""
    try:
        if name == "transfer_to_human":
            result = await call.connect(ring_time_seconds=ring_time_seconds)
        elif name == "hang_up":
            result = await call.disconnect()
        elif name == "send_dtmf":
            result = await call.send_dtmf(str(args.get("digits", "")))
        else:
            return {"error": f"tool {name!r} is not available"}
    except ValueError as exc:  # the SDK's argument checks (e.g. a bad digit)
        return {"error": str(exc)}
    except (WSSCallClosedError, BufferClosedError):
        return {"error": "the call has ended"}
    if result:
        return {"result": "the call is ending" if name == "hang_up" else "ok"}
    return {"error": result.error_message or str(result.error_code)}
