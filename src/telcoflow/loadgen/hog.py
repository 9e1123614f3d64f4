"""A CPU hog beside the bench (``telcoflow bench --hog CORES``): other tenants, on purpose.

``CORES`` (e.g. 0.5 or 1.5) is spread over ``ceil(CORES)`` processes, each busy for its
share of every 10 ms and asleep for the rest, so the scheduler sees a steady neighbour
rather than bursts. Run as ``python -m telcoflow.loadgen.hog DUTY`` (0 < DUTY ≤ 1); it
spins until killed. The bench reports the machine's busy cores with every figure, so
what the hog took shows there.
"""

from __future__ import annotations

import math
import subprocess
import sys
import time

PERIOD_S = 0.010


def spin(duty: float) -> None:
    busy = PERIOD_S * min(1.0, max(0.0, duty))
    start = time.perf_counter()
    while True:
        start += PERIOD_S
        until = start - PERIOD_S + busy
        while time.perf_counter() < until:
            pass
        rest = start - time.perf_counter()
        if rest > 0:
            time.sleep(rest)
        else:
            start = time.perf_counter()  # descheduled: do not try to catch up


def duties(cores: float) -> list[float]:
    """Per-process duty cycles that add up to ``cores``."""
    if cores <= 0:
        return []
    n = math.ceil(cores)
    return [cores / n] * n


def start(cores: float) -> list[subprocess.Popen[bytes]]:
    return [subprocess.Popen([sys.executable, "-m", "telcoflow.loadgen.hog", f"{duty:.4f}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for duty in duties(cores)]


def stop(hogs: list[subprocess.Popen[bytes]]) -> None:
    for hog in hogs:
        hog.terminate()
    for hog in hogs:
        try:
            hog.wait(5)
        except subprocess.TimeoutExpired:
            hog.kill()
            hog.wait(5)


if __name__ == "__main__":
    spin(float(sys.argv[1]))
