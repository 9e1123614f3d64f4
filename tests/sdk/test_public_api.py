"""Our top-level API against the published SDK 1.0.0's, read in a separate interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import telcoflow

from .api_describe import describe

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def published(refsdk_path: Path) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-S", str(HERE / "api_describe.py")],
                         env={"PYTHONPATH": str(refsdk_path)}, capture_output=True, text=True,
                         check=True, timeout=60)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def ours() -> dict[str, Any]:
    return describe(telcoflow)


def test_all_names_match(published: dict[str, Any], ours: dict[str, Any]) -> None:
    assert ours["__all__"] == published["__all__"]


# Our documented additions to the published enums (docs/sdk.md); nothing else may differ.
EXTENSIONS = {"CallEvent": {"DTMF": "call.dtmf", "QUALITY": "call.quality"},
              "CallErrorCode": {c: c for c in ("CALLER_AUDIO_INVALID", "AGENT_AUDIO_DROPPED",
                                               "MEDIA_FAILURE")}}


def test_enum_values_and_constants_match(published: dict[str, Any], ours: dict[str, Any]) -> None:
    assert ours["enums"].keys() == published["enums"].keys()
    for name, members in published["enums"].items():
        assert ours["enums"][name] == {**members, **EXTENSIONS.get(name, {})}, name
    assert ours["constants"] == published["constants"]


def test_exception_tree_matches(published: dict[str, Any], ours: dict[str, Any]) -> None:
    assert ours["errors"] == published["errors"]


def test_dataclass_fields_match(published: dict[str, Any], ours: dict[str, Any]) -> None:
    assert ours["dataclasses"].keys() == published["dataclasses"].keys()
    for name, fields in published["dataclasses"].items():
        assert [f[0] for f in ours["dataclasses"][name]] == [f[0] for f in fields], name
        assert ours["dataclasses"][name] == fields, name


@pytest.mark.parametrize("cls", ["SessionManagerConfig", "SessionManager", "Session", "Call",
                                 "CallFlowBuilder", "CallFlowConfig", "VoiceSession"])
def test_method_signatures_match(published: dict[str, Any], ours: dict[str, Any],
                                 cls: str) -> None:
    for method, params in published["methods"][cls].items():
        mine = ours["methods"][cls][method]
        # VoiceSession.__init__ takes an optional TLS context after the published parameters.
        assert mine[:len(params)] == params, f"{cls}.{method}"
        assert all(p[2] is not None or p[1] == "VAR_KEYWORD" for p in mine[len(params):])


def test_command_result_truthiness_and_alias(published: dict[str, Any],
                                             ours: dict[str, Any]) -> None:
    assert ours["truthy"] == published["truthy"] == [True, False]
    assert ours["voice_alias"] and published["voice_alias"]


def test_extras_importable_from_top_level() -> None:
    names = ("SendWAMessage", "BaseSendMessage", "WSSSessionBusy", "WSSSessionNotFound",
             "WSSSessionClosed", "WSSQuotaExceeded", "WSSMessageError", "DtmfDigit",
             "PlayoutPosition")
    extras = {name: getattr(telcoflow, name) for name in names}
    assert issubclass(extras["WSSSessionBusy"], telcoflow.WSSSessionError)
