"""The gateway keeps freed heap memory: the quality watch's spectral analysis (a 2 s
FFT per leg every 2 s) then reuses its arrays instead of page-faulting them in anew."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# minor page faults while a leg's analysis-sized numpy work repeats (after a warm-up)
_FAULTS = """
import resource, sys
import numpy as np
from telcoflow.server.heap import keep_freed_heap
tuned = keep_freed_heap() if sys.argv[1] == "tuned" else False
x = np.random.default_rng(1).normal(size=32000)
def analyse():
    for _ in range(50):
        np.fft.rfft(x * 2.0)
analyse()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
analyse()
print(tuned, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str, **env: str) -> tuple[str, int]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", _FAULTS, mode], env={**clean, **env},
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_analysis_sized_arrays_are_reused_not_faulted_in_again() -> None:
    tuned, faults = _faults("tuned")
    _, untuned_faults = _faults("plain")
    assert tuned == "True"
    assert faults < 50 < untuned_faults  # (untuned: ~200 a transform)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_the_environment_chooses_when_it_sets_malloc_itself() -> None:
    tuned, _ = _faults("tuned", MALLOC_TRIM_THRESHOLD_="131072")
    assert tuned == "False"
