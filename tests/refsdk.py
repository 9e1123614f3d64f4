"""The published SDK 1.0.0, pip-installed into its own directory for tests and benches.

It is never installed beside our package: scripts that use it run with
``python -S`` and ``PYTHONPATH`` set to this directory only. ``make refsdk``
(or ``python tests/refsdk.py``) installs it and prints the directory.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

REFSDK_VERSION = "1.0.0"
ROOT = Path(__file__).resolve().parent.parent
REFSDK_DIR = ROOT / ".cache" / f"refsdk-{REFSDK_VERSION}"


def ensure_refsdk(target: Path = REFSDK_DIR) -> Path:
    """Install once; concurrent callers (test workers, benches) wait on one lock."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / "refsdk.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():
            subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                            "--disable-pip-version-check", "--target", str(target),
                            f"telcoflow=={REFSDK_VERSION}"], check=True)
            (target / ".complete").touch()
    return target


if __name__ == "__main__":
    print(ensure_refsdk())
