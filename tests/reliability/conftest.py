"""Fuzzing profiles, chosen by ``TELCOFLOW_FUZZ_PROFILE``:

- ``ci`` (default): each parser gets at least 20,000 inputs, the suite runs in well
  under a minute on two cores; ``derandomize=True`` so every CI run fuzzes the same
  inputs (a failure reproduces by running the test again);
- ``soak``: 1,000,000 inputs per parser, random (new inputs each run; Hypothesis
  prints the seed and the failing example to reproduce it).

``TELCOFLOW_FUZZ_PROFILE=soak .venv/bin/python -m pytest -p no:cacheprovider
tests/reliability/test_fuzz_*.py`` soaks the parsers (for hours: stop it with Ctrl-C
when you like; pytest-timeout is lifted for these modules). The number of inputs each
parser got is printed at the end of the run, also under ``-q`` and after Ctrl-C.

This directory also holds other reliability tests (faults, memory, soak of calls):
this conftest changes nothing for them.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from .fuzzing import DERIVED, INPUTS, OUTCOMES, PROFILE, TARGET

HERE = Path(__file__).parent

# An example is a batch of 50-200 inputs (see fuzzing.py), typically 5-60 ms: the deadline
# is per batch, generous so that a loaded machine never makes it flaky. Each input is also
# bounded on its own: fuzzing.expect fails one that costs a parser over 200 ms of CPU. A
# parser that never returns is stopped by pytest-timeout (120 s, pyproject).
settings.register_profile(
    "ci", derandomize=True, database=None, deadline=timedelta(seconds=2),
    print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "soak", derandomize=False, database=None, deadline=timedelta(seconds=5),
    print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(PROFILE)

# this suite's modules (tests/reliability also holds others' tests, which keep their timeouts)
FUZZ_MODULES = ("test_fuzz_", "test_roundtrip_planes", "test_http_front_live")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A soak runs for hours: pytest-timeout's 120 s per test (pyproject) is lifted."""
    if PROFILE != "soak":
        return
    for item in items:
        if item.path.parent == HERE and item.path.name.startswith(FUZZ_MODULES):
            item.add_marker(pytest.mark.timeout(0))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not INPUTS:
        return
    write = terminalreporter.write_line
    terminalreporter.section(f"fuzz inputs per parser (profile {PROFILE!r}, target {TARGET:,})")
    width = max(len(name) for name in INPUTS)
    for name in sorted(INPUTS, key=lambda n: (n in DERIVED, n)):
        total = INPUTS[name]
        accepted, refused = OUTCOMES[name, "accepted"], OUTCOMES[name, "refused"]
        outcome = f"{accepted:>9,} accepted" if accepted or refused else " " * 18
        if name in DERIVED:
            flag = f"   ({DERIVED[name]})"
        else:
            flag = "" if total >= TARGET else "   < target (only part of the suite ran?)"
        write(f"{name:<{width}}  {total:>10,} inputs  {outcome}{flag}")
