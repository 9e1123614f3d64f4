"""What the bench reads off the processes while the callers talk, besides CPU.

- :class:`Trend`: RSS and open file descriptors of the gateway and the agent processes,
  sampled every few seconds; their least-squares slopes per hour say whether a long call
  leaks (``--duration 3600``); the RSS slope also over the second half of the samples
  alone, past the warm-up;
- :func:`scrape`: the gateway's own counters from ``/metrics`` (the bench's gateway gets
  a metrics key): audio taken out to catch up after stalls, calls refused because the
  gateway was overloaded, the media tick's lateness.
"""

from __future__ import annotations

import asyncio
import os
import re
import urllib.request
from time import monotonic
from typing import Any

from .procs import rss_bytes

SAMPLE_S = 2.0
_SAMPLE = re.compile(r'^(\w+)(?:\{([^}]*)\})? ([-+0-9.eEinfa]+)$')


def fd_count(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def slope_per_hour(points: list[tuple[float, float]]) -> float | None:
    if len(points) < 3:
        return None
    t = [p[0] for p in points]
    v = [p[1] for p in points]
    tm, vm = sum(t) / len(t), sum(v) / len(v)
    var = sum((x - tm) ** 2 for x in t)
    if var <= 0:
        return None
    return sum((x - tm) * (y - vm) for x, y in zip(t, v, strict=True)) / var * 3600


class Trend:
    """RSS (MB) and fds of named processes, every ``SAMPLE_S`` while running."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.points: dict[str, list[tuple[float, float, float]]] = {n: [] for n in pids}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        start = monotonic()
        while True:
            for name, pid in self.pids.items():
                try:
                    self.points[name].append((monotonic() - start, rss_bytes(pid) / 2**20,
                                              float(fd_count(pid))))
                except OSError:
                    pass
            await asyncio.sleep(SAMPLE_S)

    def stop(self) -> dict[str, Any]:
        if self._task is not None:
            self._task.cancel()
        out: dict[str, Any] = {}
        for name, pts in self.points.items():
            if not pts:
                continue
            rss = slope_per_hour([(t, r) for t, r, _ in pts])
            # past the warm-up (the first calls' buffers, rings, lazy imports), which
            # dominates the whole-run slope of a run of minutes
            late = slope_per_hour([(t, r) for t, r, _ in pts[len(pts) // 2:]])
            fds = slope_per_hour([(t, f) for t, _, f in pts])
            out[name] = {"samples": len(pts), "rss_mb_first": round(pts[0][1], 1),
                         "rss_mb_last": round(pts[-1][1], 1),
                         "rss_mb_per_hour": None if rss is None else round(rss, 2),
                         "rss_mb_per_hour_2nd_half": None if late is None else round(late, 2),
                         "fds_first": int(pts[0][2]), "fds_last": int(pts[-1][2]),
                         "fds_per_hour": None if fds is None else round(fds, 2)}
        return out


def scrape(url: str, key: str) -> dict[str, float]:
    """The gateway's counters of interest, summed over their labels, keyed by
    ``name`` or ``name{label=value}`` for the labels that matter here."""
    base = url.replace("ws://", "http://").replace("wss://", "https://").rstrip("/")
    req = urllib.request.Request(base + "/metrics", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 (our own gateway)
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _SAMPLE.match(line)
        if m is None:
            continue
        name, labels, value = m.group(1), m.group(2) or "", float(m.group(3))
        if name == "telcoflow_playout_catchup_seconds_total":
            how = re.search(r'how="(\w+)"', labels)
            key_ = f"catchup_{how.group(1) if how else ''}_s"
        elif name == "telcoflow_calls_ended_total" and 'outcome="GATEWAY_OVERLOADED"' in labels:
            key_ = "refused_overloaded"
        elif name == "telcoflow_agent_frames_played_total":
            key_ = "agent_frames_played"
        elif name == "telcoflow_media_stalls_total":  # by what the loop did meanwhile
            cause = re.search(r'cause="(\w+)"', labels)
            key_ = f"stalls_{cause.group(1) if cause else ''}"
        elif name == "telcoflow_loop_cpu_wait_seconds_total":
            key_ = "loop_cpu_wait_s"
        elif name == "telcoflow_media_reanchors_total":
            key_ = "reanchors"
        elif name == "telcoflow_quality_watch_cpu_seconds_total":
            key_ = "watch_cpu_s"
        elif name == "telcoflow_quality_watch_unmeasured_seconds_total":
            key_ = "watch_unmeasured_s"
        else:
            continue
        out[key_] = out.get(key_, 0.0) + value
    return out


def diff(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after.get(k, 0.0) - before.get(k, 0.0), 3) for k in after}
