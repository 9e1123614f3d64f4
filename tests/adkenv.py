"""Google ADK, pip-installed into its own directory for the tests that run ADK agents.

``google-adk`` pins ``websockets<16`` and ``google-genai<3``; the test venv has the
newer majors (the codec and the Gemini bridge are tested on them). So, as a user
installing ``telcoflow[adk]`` would get, ADK and the versions it pins live in
``.cache/adk-<version>``, placed first on ``PYTHONPATH`` of the processes that run an
ADK agent (``adk_env``): our package then runs on websockets 15 and google-genai 2.
``python tests/adkenv.py`` (``make adkenv``) installs it and prints the directory.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    from .isolated import CACHE, ROOT, pip_target
except ImportError:  # run as a script
    from isolated import CACHE, ROOT, pip_target  # type: ignore[no-redef]

ADK_VERSION = "2.13.0"
ADK_DIR = CACHE / f"adk-{ADK_VERSION}"


def ensure_adk(target: Path = ADK_DIR) -> Path:
    return pip_target(target, f"google-adk=={ADK_VERSION}")


def adk_env(env: dict[str, str]) -> dict[str, str]:
    """``env`` with ADK's directory first on ``PYTHONPATH``, our sources next."""
    path = [str(ensure_adk()), str(ROOT / "src"), env.get("PYTHONPATH", "")]
    return {**env, "PYTHONPATH": os.pathsep.join(p for p in path if p)}


if __name__ == "__main__":
    print(ensure_adk())
