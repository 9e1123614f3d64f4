"""JSON helpers shared by every plane: strict reading for servers, lenient for clients.

A server checks what it is sent (:func:`field` raises a specific error); a
client reads what a server sends leniently (:func:`str_or_empty`, :func:`int_or_zero`
take defaults, an unknown ``type`` becomes :class:`Unknown`), so a newer
server never breaks an older client. Both refuse a frame that is not a JSON
object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import FrameTooLarge, MalformedFrame

T = TypeVar("T")

# What a client accepts from a server: generous, a newer server may send more than we know.
CLIENT_READ_LIMIT = 1024 * 1024


def decode_object(frame: str | bytes, limit: int) -> dict[str, Any]:
    """Parse one text frame into a JSON object, or raise a specific error."""
    if len(frame) > limit:
        raise FrameTooLarge(f"frame of {len(frame)} bytes exceeds the {limit}-byte limit")
    try:
        obj = json.loads(frame)
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
    """``obj[key]`` as an int if it is a JSON number (floats truncate), else 0; bool is not."""
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value)
