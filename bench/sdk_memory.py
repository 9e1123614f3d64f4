"""SDK memory: an echo agent's RSS with 1,000 calls up, and over 1,000 sequential calls.

    .venv/bin/python bench/sdk_memory.py                                  # both SDKs, 1,000 calls
    .venv/bin/python bench/sdk_memory.py --calls 100 --churn-calls 100    # a quick look
    .venv/bin/python bench/sdk_memory.py --agent ours --json out/sdk_memory.json

The issue's targets: an agent serving 1,000 concurrent echo calls stays under 150 MB,
and 1,000 sequential calls end within 5 MB of where they started; the published SDK
1.0.0 (``make refsdk``) is measured beside ours. The gateway, the echo agents
(``loadgen/agent.py``) and the simulated callers are ``telcoflow bench``'s
(``telcoflow.loadgen``); each agent and scenario gets a fresh gateway.

- concurrent: ``--calls`` callers dial (20 at a time), then talk 1 s each, 100 at a
  time (2 cores cannot carry 1,000 calls of real-time audio at once), and all stay on
  the line 5 s more. The agents' RSS is sampled every 0.5 s from the moment every call
  is up until the hang-up; the peak is reported, beside the idle RSS before the first
  call. Ours serves them all from one process; the published SDK takes one process per
  30 calls (its session-manager history refuses events past 100, ~45 calls in a
  process's life), so its figure is the sum over its processes.
- churn: ``--churn-calls`` calls, ``--at-once`` at a time, each 0.5 s of talk and a
  hang-up; RSS after a warm-up of the first ``--at-once`` x 5 calls and at the end
  (1 s after the last call ended in the agent). The agent's own per-call logs (the
  bench's, not the SDK's) are written out and dropped after every batch.

kB / call: concurrent, (peak - idle) / calls set up; churn, the growth / the calls
after the warm-up. The agent's RSS includes the bench's own per-call log (about 2 kB
a call for 1 s of talk). Calls that failed to set up, and calls the gateway hung up
early, are counted and printed. The verdicts are text: the exit code is 0 unless the
bench itself broke.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from telcoflow.loadgen.phones import HEARD_CALLER, BenchPhone, place_calls, talk  # noqa: E402
from telcoflow.loadgen.procs import (  # noqa: E402
    Child,
    find_refsdk,
    machine,
    rss_bytes,
    start_gateway,
)
from telcoflow.loadgen.run import Bench, Plan, _new_loop  # noqa: E402

TARGET_CONCURRENT_MB = 150.0
TARGET_CHURN_MB = 5.0
DIAL_CONCURRENCY = 20      # calls being set up at once
DIAL_RATE_PER_AGENT = 50.0  # calls placed per second and agent process (as telcoflow bench)
SETUP_TIMEOUT_S = 60.0
TALK_S = 1.0               # concurrent: each caller's audio (under 1.6 s: no interrupt scene)
TALK_GROUP = 100           # concurrent: callers talking at the same time
HOLD_S = 5.0               # concurrent: all calls up and silent, after the talking
SAMPLE_EVERY_S = 0.5
CHURN_TALK_S = 0.5
SETTLE_S = 1.0             # before an idle or end-of-churn sample
MB = 2**20


# ── processes ──────────────────────────────────────────────────────────────
def agents_rss(agents: list[Child]) -> int:
    return sum(rss_bytes(a.pid) for a in agents)


async def settled_rss(agents: list[Child]) -> int:
    await asyncio.sleep(SETTLE_S)
    return agents_rss(agents)


@contextlib.asynccontextmanager
async def running(which: str, calls: int, talk_s: float, rate: int, refsdk: Path | None,
                  workdir: Path) -> AsyncIterator[tuple[Bench, list[Child]]]:
    """A fresh gateway and the echo agents for ``calls`` calls (loadgen's process count)."""
    plan = Plan(counts=[calls], ramp=False, duration=talk_s, rate=rate, codec="pcm16",
                dial_concurrency=DIAL_CONCURRENCY, agent_procs=1, profile=None, refsdk=refsdk)
    gateway, creds = start_gateway(plan.procs(which, calls), workdir)
    try:
        bench = Bench(plan, creds, gateway, workdir)
        agents = await bench._agents(which, calls)  # started as telcoflow bench starts them
        try:
            yield bench, agents
        finally:
            for agent in agents:
                agent.stop()
    finally:
        gateway.stop()


# ── calls ──────────────────────────────────────────────────────────────────
async def dial(bench: Bench, phones: list[BenchPhone], agents: int) -> list[str]:
    """Set the calls up; caller i rings agent process i % agents. Returns the failures."""
    creds = bench.creds
    numbers = [c.number for c in creds.connectors[:agents]]
    return await place_calls(phones, creds.url, creds.phone_key, numbers, DIAL_CONCURRENCY,
                             DIAL_RATE_PER_AGENT * agents, SETUP_TIMEOUT_S)


async def hang_up(phones: list[BenchPhone]) -> None:
    await asyncio.gather(*(p.hangup() for p in phones), return_exceptions=True)


async def talk_in_groups(live: list[BenchPhone], seconds: float, group: int) -> None:
    for first in range(0, len(live), group):
        members = live[first:first + group]
        await talk(members, seconds)
        await asyncio.gather(*(p.tail(2.0) for p in members))


async def sampled(agents: list[Child], work: Awaitable[None]) -> list[int]:
    """The agents' summed RSS every SAMPLE_EVERY_S while ``work`` runs, and once after."""
    samples: list[int] = []
    done = asyncio.Event()

    async def sample() -> None:
        while not done.is_set():
            samples.append(agents_rss(agents))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), SAMPLE_EVERY_S)

    task = asyncio.create_task(sample())
    try:
        await work
    finally:
        done.set()
        await task
    samples.append(agents_rss(agents))
    return samples


def call_counts(phones: list[BenchPhone], failures: list[str]) -> dict[str, Any]:
    live = [p for p in phones if "answered" in p.events]
    return {"calls": len(phones), "set_up": len(live), "failed": len(phones) - len(live),
            "dropped": sum(1 for p in live if p.hangup_reason is not None),
            "echoed": sum(1 for p in live if HEARD_CALLER in p.heard_kind),
            "failures": failures[:5]}


# ── the scenarios ──────────────────────────────────────────────────────────
async def concurrent(which: str, calls: int, rate: int, refsdk: Path | None,
                     workdir: Path) -> dict[str, Any]:
    async with running(which, calls, TALK_S, rate, refsdk, workdir) as (bench, agents):
        idle = await settled_rss(agents)
        phones = [BenchPhone(i, "pcm16", rate) for i in range(calls)]
        failures = await dial(bench, phones, len(agents))
        live = [p for p in phones if "answered" in p.events]

        async def talk_and_hold() -> None:
            await talk_in_groups(live, TALK_S, TALK_GROUP)
            await asyncio.sleep(HOLD_S)

        samples = await sampled(agents, talk_and_hold())
        counts = call_counts(phones, failures)  # before our hang-up: "dropped" is the gateway's
        await hang_up(phones)
    peak = max(samples)
    per_call = (peak - idle) / 1024 / max(1, counts["set_up"])
    return {"agent": which, "scenario": "concurrent", "processes": len(agents), **counts,
            "idle_mb": round(idle / MB, 1), "peak_mb": round(peak / MB, 1),
            "last_mb": round(samples[-1] / MB, 1), "samples": len(samples),
            "kb_per_call": round(per_call, 1), "target_mb": TARGET_CONCURRENT_MB,
            "met": peak / MB <= TARGET_CONCURRENT_MB}


async def churn_batch(bench: Bench, agents: list[Child], batch: list[BenchPhone]) -> list[str]:
    """Dial, talk, hang up; then every agent drops the batch's call logs (``DUMP``)."""
    failures = await dial(bench, batch, len(agents))
    live = [p for p in batch if "answered" in p.events]
    await talk(live, CHURN_TALK_S)
    await asyncio.gather(*(p.tail(2.0) for p in live))
    await hang_up(batch)
    ended = [sum(1 for p in live if p.index % len(agents) == j) for j in range(len(agents))]
    await asyncio.gather(*(bench._dump(a, n) for a, n in zip(agents, ended, strict=True) if n))
    return failures


async def churn(which: str, calls: int, at_once: int, rate: int, refsdk: Path | None,
                workdir: Path) -> dict[str, Any]:
    warmup = min(calls, at_once * 5)
    async with running(which, calls, CHURN_TALK_S, rate, refsdk, workdir) as (bench, agents):
        idle = await settled_rss(agents)
        phones: list[BenchPhone] = []
        failures: list[str] = []
        start: int | None = None
        trace: list[tuple[int, float]] = []
        for first in range(0, calls, at_once):
            batch = [BenchPhone(i, "pcm16", rate)
                     for i in range(first, min(calls, first + at_once))]
            failures += await churn_batch(bench, agents, batch)
            phones += batch
            if start is None and len(phones) >= warmup:
                start = await settled_rss(agents)
            if len(phones) % 100 < at_once:
                trace.append((len(phones), round(agents_rss(agents) / MB, 2)))
        end = await settled_rss(agents)
    assert start is not None
    growth = (end - start) / MB
    return {"agent": which, "scenario": "churn", "processes": len(agents),
            **call_counts(phones, failures), "at_once": at_once, "warmup_calls": warmup,
            "idle_mb": round(idle / MB, 1), "start_mb": round(start / MB, 2),
            "end_mb": round(end / MB, 2), "growth_mb": round(growth, 2),
            "kb_per_call": round(growth * 1024 / max(1, calls - warmup), 2),
            "target_mb": TARGET_CHURN_MB, "met": growth <= TARGET_CHURN_MB,
            "rss_mb_by_calls": trace}


async def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    which = ["ours", "reference"] if args.agent == "both" else [args.agent]
    refsdk = find_refsdk(args.refsdk) if "reference" in which else None
    rows: list[dict[str, Any]] = []
    for agent in which:
        if args.scenario in ("concurrent", "both"):
            rows.append(await concurrent(agent, args.calls, args.rate, refsdk, workdir))
            print(json.dumps(_brief(rows[-1])), flush=True)
        if args.scenario in ("churn", "both"):
            rows.append(await churn(agent, args.churn_calls, args.at_once, args.rate, refsdk,
                                    workdir))
            print(json.dumps(_brief(rows[-1])), flush=True)
    return {"command": ["bench/sdk_memory.py", *sys.argv[1:]], "machine": machine(),
            "rate": args.rate, "codec": "pcm16", "rows": rows}


def _brief(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("rss_mb_by_calls",)}


# ── the table ──────────────────────────────────────────────────────────────
HEADER = ("agent", "scenario", "procs", "set up / failed", "idle MB", "RSS MB",
          "kB / call", "target", "result")


def table_row(row: dict[str, Any]) -> tuple[str, ...]:
    calls = f"{row['set_up']} / {row['failed']}"
    if row["dropped"]:
        calls += f" ({row['dropped']} dropped)"
    if row["scenario"] == "concurrent":
        scenario = f"{row['calls']} at once"
        rss = f"{row['peak_mb']:.1f} peak, all up"
        target = f"<= {row['target_mb']:.0f} MB"
    else:
        scenario = f"{row['calls']} in turn, {row['at_once']} at once"
        rss = f"{row['start_mb']:.1f} -> {row['end_mb']:.1f} ({row['growth_mb']:+.2f})"
        target = f"growth <= {row['target_mb']:.0f} MB"
    result = "met" if row["met"] else "NOT met"
    if row["failed"] or row["dropped"]:
        result += " (not all calls up)"
    return (row["agent"], scenario, str(row["processes"]), calls, f"{row['idle_mb']:.1f}",
            rss, f"{row['kb_per_call']:.1f}", target, result)


def render(rows: list[dict[str, Any]]) -> str:
    lines = [HEADER, *(table_row(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    text = ["  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
            for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    for row in rows:
        text += [f"{row['agent']} {row['scenario']}: {f}" for f in row["failures"]]
    return "\n".join(text)


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--agent", choices=("ours", "reference", "both"), default="both")
    ap.add_argument("--scenario", choices=("concurrent", "churn", "both"), default="both")
    ap.add_argument("--calls", type=int, default=1000, help="concurrent calls (default 1000)")
    ap.add_argument("--churn-calls", type=int, default=1000,
                    help="sequential calls (default 1000)")
    ap.add_argument("--at-once", type=int, default=10,
                    help="churn: calls up at a time (default 10)")
    ap.add_argument("--rate", type=int, choices=(8000, 16000, 24000), default=8000,
                    help="phone and agent sample rate (default 8000)")
    ap.add_argument("--refsdk", metavar="DIR", help="the published SDK's directory "
                    "(default: .cache/refsdk-1.0.0, which 'make refsdk' fills)")
    ap.add_argument("--json", metavar="FILE", help="write the result here too")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="telcoflow-sdkmem-") as tmp, \
            asyncio.Runner(loop_factory=_new_loop) as runner:
        result = runner.run(measure(args, Path(tmp)))
    print(render(result["rows"]))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
