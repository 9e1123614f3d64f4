"""``bench/soak.py`` in its short form (make soak runs it for 30 minutes at 100 calls):
it runs, every call is set up and no frame is lost over the redial rounds, and its
figures are printed. The slopes are reported, not asserted, over so short a run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.timeout(180)
def test_a_short_soak_runs_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "soak.py"), "--minutes", "0.15",
                          "--calls", "10", "--round", "3", "--no-assert", "--json", str(out)],
                         capture_output=True, text=True, timeout=170)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert len(result["rounds"]) >= 2
    assert result["setup_failures"] == 0 and result["frames_lost"] == 0
    assert all(r["answered"] == 10 for r in result["rounds"])
    print({k: result[k] for k in ("rss_mb_per_10min", "fds_per_10min",
                                  "gateway_cpu_s_per_call_min")})
