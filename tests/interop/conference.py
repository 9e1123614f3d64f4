"""Helpers for the call-control tests: who hears whom, by energy per frequency."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt

from telcoflow.testing import GatewayThread

from ..conftest import refsdk_command, refsdk_env

AGENTS = Path(__file__).parent / "agents"

# one tone per party, all below 4 kHz so they survive an 8 kHz µ-law leg
FREQS = {"caller": 500.0, "callee": 1300.0, "agent": 2100.0}
AMPLITUDE = 6000
HEARD, SILENT = 1200.0, 150.0  # tone amplitude seen by a listener: clearly there / not there


def amplitude(signal: npt.NDArray[np.int16], freq: float, rate: int) -> float:
    """Amplitude of the ``freq`` component over the whole signal (a one-bin DFT)."""
    if not len(signal):
        return 0.0
    t = np.arange(len(signal)) / rate
    return float(2 * abs(np.dot(signal.astype(np.float64), np.exp(-2j * np.pi * freq * t)))
                 / len(signal))


def who_is_heard(signal: npt.NDArray[np.int16], rate: int) -> set[str]:
    """The parties whose tone is clearly in ``signal``; fails on an ambiguous level."""
    heard = set()
    for party, freq in FREQS.items():
        level = amplitude(signal, freq, rate)
        assert level > HEARD or level < SILENT, \
            f"{party}'s tone at an ambiguous level {level:.0f} ({len(signal)} samples)"
        if level > HEARD:
            heard.add(party)
    return heard


def agent_command(sdk: str, refsdk: Path, gw: GatewayThread, script: str, *args: str,
                  **extra: str) -> tuple[list[str], dict[str, str]]:
    """The same agent script on the published SDK (isolated) or on ours."""
    path = AGENTS / script
    if sdk == "published":
        return refsdk_command(path, *args), refsdk_env(refsdk, gw, **extra)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "WSS_"))}
    env.update(WSS_API_KEY=gw.api_key, WSS_CONNECTOR_UUID=gw.connector_uuid,
               TELCOFLOW_BASE_URL=gw.ws_url, **extra)
    return [sys.executable, "-u", str(path), *args], env
