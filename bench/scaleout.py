"""Scale-out figures: call set-up with the Redis registry vs memory, Redis commands per
call, and the capacity ramp with one worker vs two, each run in turn on this machine.

    .venv/bin/python bench/scaleout.py [--pairs 3] [--ramps 2] [--json out.json]

Each figure is one ``telcoflow bench`` run (a private redis-server where Redis is used,
so the command counts are the bench's own); runs alternate, so a change in the
machine's other load falls on both sides. Printed as tables; docs/scale-out.md and
docs/benchmarks.md quote them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from typing import Any

STEPS = "50,100,150,200,250,300"


def bench(*args: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "telcoflow.cli.main", "bench", "--json", *args],
                          capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def setup_pairs(pairs: int) -> list[dict[str, Any]]:
    rows = []
    for _ in range(pairs):
        for registry in ("memory", "redis"):
            extra = ["--registry", "private"] if registry == "redis" else []
            run = bench("--calls", "50", "--duration", "6", *extra)["runs"][0]
            rows.append({"registry": registry, "setup_ms": run["metrics"]["setup_ms"],
                         "call_in_ms_p50": run["metrics"]["call_in_ms"]["p50"],
                         "redis": run.get("registry"),
                         "idle_cores": run["resources"]["machine_idle_cores"]})
    return rows


def ramps(count: int) -> list[dict[str, Any]]:
    out = []
    for i in range(count):
        for workers in ((1, 2) if i % 2 == 0 else (2, 1)):
            ramp = bench("--ramp", "--steps", STEPS, "--duration", "10", "--ramp-extra", "1",
                         "--workers", str(workers))["ramps"][0]
            out.append({"workers": workers, "capacity": ramp["capacity"],
                        "stopped_by": ramp["stopped_by"],
                        "steps": [{"calls": s["calls"],
                                   "uplink_p99_ms": s["metrics"]["uplink_ms"]["p99"],
                                   **{k: s["resources"].get(k) for k in (
                                       "gateway_cpu_cores", "gateway_cpu_s_per_call_min",
                                       "agent_cpu_cores", "bench_cpu_cores",
                                       "redis_cpu_cores", "machine_idle_cores")}}
                                  for s in ramp["steps"]]})
    return out


def show(pairs: list[dict[str, Any]], ramp_runs: list[dict[str, Any]]) -> None:
    print("set-up (dial → answered), 50 calls, one worker: p50 ms per run")
    for name in ("memory", "redis"):
        p50s = [r["setup_ms"]["p50"] for r in pairs if r["registry"] == name]
        print(f"  {name:7} {' '.join(f'{v:6.2f}' for v in p50s)}   median "
              f"{statistics.median(p50s):.2f}")
    added = [b["setup_ms"]["p50"] - a["setup_ms"]["p50"] for a, b in zip(
        pairs[::2], pairs[1::2], strict=True)]
    print(f"  added by Redis, per pair: {' '.join(f'{v:+.2f}' for v in added)} ms")
    counts = [r["redis"]["per_call"] for r in pairs if r["redis"]]
    print(f"  Redis commands per call: {counts}")
    for run in ramp_runs:
        print(f"ramp, {run['workers']} worker(s): capacity {run['capacity']} "
              f"(stopped by {run['stopped_by']})")
        for s in run["steps"]:
            others = sum(s[k] or 0.0 for k in ("agent_cpu_cores", "bench_cpu_cores",
                                                 "redis_cpu_cores"))
            print(f"  {s['calls']:4} calls  p99 up {s['uplink_p99_ms']:8.2f} ms  gateway "
                  f"{s['gateway_cpu_cores']:.2f} cores, {s['gateway_cpu_s_per_call_min']:.3f} "
                  f"CPU-s/call-min  callers+agents {others:.2f} cores  idle "
                  f"{s['machine_idle_cores']:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--ramps", type=int, default=1, help="ramp pairs (1 and 2 workers)")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    pairs, ramp_runs = setup_pairs(args.pairs), ramps(args.ramps)
    show(pairs, ramp_runs)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"setup": pairs, "ramps": ramp_runs}, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
