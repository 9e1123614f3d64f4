"""A package pip-installed into a directory of its own under ``.cache/``, once.

The published SDK (``refsdk.py``) and google-adk (``adkenv.py``) each need versions
the test venv must not have; their tests put the directory on ``PYTHONPATH`` of the
processes that use them. Concurrent callers (test workers, benches) wait on one lock.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".cache"


def pip_target(target: Path, requirement: str) -> Path:
    """``pip install --target target requirement`` unless done; ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / ".complete").exists():
            pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                                  "--disable-pip-version-check", "--target", str(target),
                                  requirement], capture_output=True, text=True)
            if pip.returncode:  # pip's warnings are shown only when it failed
                raise RuntimeError(f"installing {requirement} failed:\n{pip.stderr[-4000:]}")
            (target / ".complete").touch()
    return target
