"""Describe the public API of whichever ``telcoflow`` is importable, as JSON.

Run with the published SDK on PYTHONPATH (``python -S``) to get its shape, or
call :func:`describe` on ours; the test compares the two.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
from typing import Any

# Public methods whose parameters must match, per class.
METHODS = {
    "SessionManagerConfig": ["create"],
    "SessionManager": ["__init__", "on_session_notification", "open_session", "create_session",
                       "list_sessions", "setup_call_flow", "run_forever", "__aenter__",
                       "__aexit__"],
    "Session": ["on_incoming_call", "on_incoming_message", "on_closed", "ready", "send_message",
                "wait_closed", "close"],
    "Call": ["__init__", "answer", "connect", "whisper", "barge", "spy", "disconnect", "close",
             "send_audio", "clear_send_audio_buffer", "get_send_audio_buffer_size",
             "audio_stream", "on_terminated", "on_call_event", "to_json", "from_json"],
    "CallFlowBuilder": ["inbound_call", "outbound_call", "inbound_message", "outbound_message",
                        "build"],
    "CallFlowConfig": ["to_frame_data"],
    "VoiceSession": ["connect", "send_command", "send_audio", "on_event", "audio_stream",
                     "close", "is_connected", "get_send_audio_buffer_size",
                     "clear_send_audio_buffer"],
}
PROPERTIES = {"Call": ["id", "caller_number", "callee_number", "state", "audio_config"],
              "Session": ["is_closed", "channel"], "SessionManager": ["id"]}


def _params(func: Any) -> list[list[Any]]:
    sig = inspect.signature(func)
    out = []
    for p in sig.parameters.values():
        default = None if p.default is inspect.Parameter.empty else repr(p.default)
        out.append([p.name, p.kind.name, default])
    return out


def describe(mod: Any) -> dict[str, Any]:
    names = sorted(mod.__all__)
    desc: dict[str, Any] = {"__all__": names, "enums": {}, "errors": {}, "dataclasses": {},
                            "methods": {}, "constants": {}}
    for name in names:
        obj = getattr(mod, name)
        if isinstance(obj, type) and issubclass(obj, enum.Enum):
            desc["enums"][name] = {m.name: m.value for m in obj}
        elif isinstance(obj, type) and issubclass(obj, BaseException):
            desc["errors"][name] = sorted(b.__name__ for b in obj.__mro__
                                          if b.__name__ in names or b.__name__ == "WSSError")
        elif isinstance(obj, type) and dataclasses.is_dataclass(obj):
            desc["dataclasses"][name] = [
                [f.name, None if f.default is dataclasses.MISSING else repr(f.default)]
                for f in dataclasses.fields(obj)]
        elif isinstance(obj, str) and name != "__version__":
            desc["constants"][name] = obj
    for cls_name, methods in METHODS.items():
        cls = getattr(mod, cls_name)
        desc["methods"][cls_name] = {m: _params(getattr(cls, m)) for m in methods}
    desc["truthy"] = [bool(mod.CommandResult(success=True)), bool(mod.CommandResult(False))]
    desc["voice_alias"] = mod.VoiceSession is mod._VoiceConnection
    return desc


if __name__ == "__main__":
    import telcoflow

    print(json.dumps(describe(telcoflow)))
