"""The published SDK 1.0.0, pip-installed into its own directory for tests and benches.

It is never installed beside our package: scripts that use it run with
``python -S`` and ``PYTHONPATH`` set to this directory only. ``make refsdk``
(or ``python tests/refsdk.py``) installs it and prints the directory.
"""

from __future__ import annotations

from pathlib import Path

try:
    from .isolated import CACHE, pip_target
except ImportError:  # run as a script
    from isolated import CACHE, pip_target  # type: ignore[no-redef]

REFSDK_VERSION = "1.0.0"
REFSDK_DIR = CACHE / f"refsdk-{REFSDK_VERSION}"


def ensure_refsdk(target: Path = REFSDK_DIR) -> Path:
    return pip_target(target, f"telcoflow=={REFSDK_VERSION}")


if __name__ == "__main__":
    print(ensure_refsdk())
