"""Transitional: the SDK's frames live in :mod:`telcoflow.protocol.sm` and ``.voice``.

Only ``sdk/session.py`` still imports these two builders from here; once it
uses ``sm.build_session_ready`` / ``sm.build_wa_msg_out`` this module goes.
"""

from __future__ import annotations

from telcoflow.protocol.sm import build_session_ready as session_ready
from telcoflow.protocol.sm import build_wa_msg_out as wa_msg_out

__all__ = ["session_ready", "wa_msg_out"]
