"""JSON helpers shared by every plane: strict reading for servers, lenient for clients.

A server checks what it is sent (:func:`field` raises a specific error); a
client reads what a server sends leniently (:func:`str_or_empty`, :func:`int_or_zero`
take defaults, an unknown ``type`` becomes :class:`Unknown`), so a newer
server never breaks an older client. Both refuse a frame that is not a JSON
object.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import FrameTooLarge, MalformedFrame

T = TypeVar("T")

# What a client accepts from a server: generous, a newer server may send more than we know.
CLIENT_READ_LIMIT = 1024 * 1024
#: Deepest nesting any plane's frame may have. Ours need 4; json's C parser recurses
#: once per level, and 1,000 levels raise RecursionError instead of a parse error.
MAX_DEPTH = 32
# a JSON string (skipped whole, brackets inside it do not count) or one bracket
_STRING_OR_BRACKET = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class TooDeep(ValueError):
    """A JSON text nested deeper than :data:`MAX_DEPTH`."""


def check_depth(text: str | bytes, limit: int = MAX_DEPTH) -> None:
    """Raise :class:`TooDeep` if ``text`` nests deeper than ``limit``, before parsing it.
    Counting brackets (in C) settles almost every frame; only a frame with more than
    ``limit`` openers is scanned, skipping strings."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if data.count(b"[") + data.count(b"{") <= limit:
        return
    depth = 0
    for match in _STRING_OR_BRACKET.finditer(data):
        token = match.group()
        if token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                raise TooDeep(f"JSON nested more than {limit} levels deep")
        elif token in (b"]", b"}"):
            depth -= 1


def loads_bounded(text: str | bytes, depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` with the nesting bounded first; every failure a ``ValueError``."""
    check_depth(text, depth)
    try:
        return json.loads(text)
    except RecursionError:  # a depth check gone wrong must still not escape as one
        raise TooDeep("JSON nested too deeply") from None


def decode_object(frame: str | bytes, limit: int) -> dict[str, Any]:
    """Parse one text frame into a JSON object, or raise a specific error."""
    if len(frame) > limit:
        raise FrameTooLarge(f"frame of {len(frame)} bytes exceeds the {limit}-byte limit")
    try:
        obj = loads_bounded(frame)
    except TooDeep as exc:
        raise MalformedFrame(f"frame is not acceptable JSON: {exc}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedFrame(f"frame is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise MalformedFrame(f"frame must be a JSON object, not {type(obj).__name__}")
    return obj


def field(obj: dict[str, Any], name: str, kind: type[T], *, where: str = "frame",
          request_id: str | None = None, required: bool = True, default: T | None = None) -> T:
    """Read ``obj[name]`` and check its JSON type; bool never passes for int."""
    if name not in obj or obj[name] is None:
        if required:
            raise MalformedFrame(f"{where} is missing field '{name}'", request_id)
        return default  # type: ignore[return-value]
    value = obj[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedFrame(
            f"{where} field '{name}' must be {_json_name(kind)}, not {_json_name(type(value))}",
            request_id,
        )
    return value


def _json_name(kind: type) -> str:
    return {str: "a string", int: "an integer", bool: "a boolean", dict: "an object",
            list: "an array", float: "a number"}.get(kind, kind.__name__)


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))


# ── lenient reading (clients) ────────────────────────────────────────────────

@dataclass(frozen=True, slots=True)
class Unknown:
    """A server frame whose ``type`` this client does not know (or that lacks what it needs)."""

    type: str


def str_or_empty(obj: dict[str, Any], key: str) -> str:
    """``obj[key]`` if it is a string, else ``""``."""
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def int_or_zero(obj: dict[str, Any], key: str) -> int:
    """``obj[key]`` as an int if it is a JSON number (floats truncate), else 0; bool is not,
    nor a non-finite number."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if isinstance(value, float) and not math.isfinite(value):
        # json.loads reads 1e999, Infinity and NaN, which int() refuses (OverflowError,
        # ValueError): a lenient reader must not raise for a JSON object, so they read as 0
        return 0
    return int(value)
