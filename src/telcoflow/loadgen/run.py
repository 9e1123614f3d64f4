"""``telcoflow bench``: capacity, latency, jitter and interrupt time of a gateway.

Three kinds of process share one clock (CLOCK_MONOTONIC): the gateway (started
here with ``telcoflow serve`` on a free port, or ``--gateway URL``), the echo
agents (``loadgen/agent.py`` on our SDK or the published 1.0.0) and this one,
which runs the callers (``bench_phones``) and merges the time stamps
(``bench_stats``). ``--ramp`` steps the number of calls up until p99 uplink
latency passes 20 ms, underruns pass 0.1 % or a frame is lost; the last step
that passed is the capacity.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..server.config import GatewayConfig
from .carriers import VAIC_FORMATS, BenchTwilio, BenchVaic
from .phones import BenchPhone, place_calls, talk
from .procs import (
    Child,
    Credentials,
    cpu_seconds,
    cpu_times,
    external_gateway,
    find_refsdk,
    machine,
    machine_cpu,
    rss_bytes,
    start_agent,
    start_gateway,
)
from .stats import step_figures

DEFAULT_STEPS = "25,50,100,200,300,400,500,600,800,1000"
RAMP_P99_UPLINK_MS = 20.0
RAMP_UNDERRUN_PCT = 0.1
# the published SDK 1.0.0 keeps every session-manager event in a history capped at 100
# and then refuses new ones, so one process takes ~45 calls in its lifetime
REFERENCE_CALLS_PER_PROCESS = 30
PLAYOUT_TARGET_MS = GatewayConfig([], []).playout_target_ms
TARGETS = {"uplink_p99_ms": 10.0, "downlink_p99_beyond_playout_ms": 20.0, "lost_frames": 0,
           "underrun_pct": 0.1, "interrupt_p99_ms": 20.0}


def add_parser(sub: Any) -> None:
    bench = sub.add_parser("bench", help="measure capacity, latency, jitter and interrupt time")
    size = bench.add_mutually_exclusive_group()
    size.add_argument("--calls", type=int, default=100, help="concurrent calls (default 100)")
    size.add_argument("--ramp", action="store_true",
                      help="step the calls up (--steps) until a limit is passed")
    bench.add_argument("--steps", default=DEFAULT_STEPS, help="call counts for --ramp")
    bench.add_argument("--ramp-extra", type=int, default=0, metavar="K",
                       help="steps to run past the first failing one, to show the trend")
    bench.add_argument("--duration", type=float, default=30.0,
                       help="seconds every caller talks, per step (default 30)")
    bench.add_argument("--rate", type=int, choices=(8000, 16000, 24000),
                       help="phone and agent sample rate (default: 16000; pcmu: 8000)")
    bench.add_argument("--codec", choices=("pcm16", "pcmu"), default="pcm16")
    bench.add_argument("--agent", choices=("ours", "reference", "both"), default="ours",
                       help="the SDK the echo agents run on")
    bench.add_argument("--gateway", metavar="URL",
                       help="bench a running gateway (credentials from the environment)")
    bench.add_argument("--refsdk", metavar="DIR",
                       help="the published SDK's directory (default: .cache/refsdk-1.0.0, "
                       "which 'make refsdk' fills)")
    bench.add_argument("--profile", metavar="FILE",
                       help="py-spy the gateway during the first talking window (raw stacks)")
    bench.add_argument("--dial-concurrency", type=int, default=20,
                       help="calls being set up at once (default 20)")
    bench.add_argument("--dial-rate", type=float, default=50.0,
                       help="calls placed per second and agent process (default 50)")
    bench.add_argument("--agent-procs", type=int, default=1,
                       help="agent processes, each on its own connector (default 1; the "
                       f"published SDK gets one per {REFERENCE_CALLS_PER_PROCESS} calls)")
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bench.add_argument("--via", choices=("phone", "twilio", "audiocodes"), default="phone",
                       help="the door the callers come through; twilio and audiocodes run the "
                       "simulated phone first, in the same run, as the reference")


@dataclass
class Plan:
    counts: list[int]
    ramp: bool
    duration: float
    rate: int
    codec: str
    dial_concurrency: int
    agent_procs: int
    profile: str | None
    ramp_extra: int = 0
    dial_rate: float = 50.0
    refsdk: Path | None = None
    via: str = "phone"

    @property
    def interrupt(self) -> tuple[int, int]:
        """(first frame, spread) of the interrupt scene; too short a talk has none."""
        frames = round(self.duration * 50)
        return (int(frames * 0.3), int(frames * 0.4)) if frames >= 80 else (-1, 0)

    def procs(self, which: str, calls: int) -> int:
        if which == "reference":
            return max(self.agent_procs, -(-calls // REFERENCE_CALLS_PER_PROCESS))
        return self.agent_procs


class Bench:
    def __init__(self, plan: Plan, creds: Credentials, gateway: Child | None,
                 workdir: Path) -> None:
        self.plan, self.creds, self.gateway, self.workdir = plan, creds, gateway, workdir
        self.idle_rss = rss_bytes(gateway.pid) if gateway is not None else None
        self._profiled = False

    async def _agents(self, which: str, calls: int) -> list[Child]:
        wanted = min(self.plan.procs(which, calls), len(self.creds.connectors))
        agents = [start_agent(which, self.creds.url, c, self.plan.rate, self.plan.interrupt,
                              self.plan.refsdk) for c in self.creds.connectors[:wanted]]
        try:
            await asyncio.gather(*(asyncio.to_thread(a.expect, r"^READY") for a in agents))
        except BaseException:
            for agent in agents:
                agent.stop()
            raise
        return agents

    async def step(self, which: str, calls: int, via: str = "phone") -> dict[str, Any]:
        """One measurement: fresh agent processes, ``calls`` callers, talk, hang up, merge."""
        agents = await self._agents(which, calls)
        try:
            return {"via": via, **await self._step(agents, calls, via)}
        finally:
            for agent in agents:
                agent.stop()

    async def _step(self, agents: list[Child], calls: int, via: str) -> dict[str, Any]:
        plan, creds = self.plan, self.creds
        caller = {"phone": BenchPhone, "twilio": BenchTwilio, "audiocodes": BenchVaic}[via]
        phones = [caller(i, plan.codec, plan.rate) for i in range(calls)]
        numbers = [c.number for c in creds.connectors[:len(agents)]]
        key = {"phone": creds.phone_key, "twilio": creds.twilio_token,
               "audiocodes": creds.audiocodes_token}[via]
        if key is None:
            raise SystemExit(f"--via {via}: the gateway's key for that door is not known")
        failures = await place_calls(phones, creds.url, key, numbers,
                                     plan.dial_concurrency, plan.dial_rate * len(agents), 60.0)
        live = [p for p in phones if "answered" in p.events]
        loop = asyncio.get_running_loop()
        rss: list[int] = []
        gw_pid = self.gateway.pid if self.gateway is not None else None
        if gw_pid is not None:
            loop.call_later(plan.duration / 2, lambda: rss.append(rss_bytes(gw_pid)))
        profiler = self._start_profiler(gw_pid)
        before = self._cpu(agents)
        await talk(live, plan.duration)
        after = self._cpu(agents)
        await asyncio.gather(*(p.tail(5.0) for p in live))
        await asyncio.gather(*(p.hangup() for p in phones), return_exceptions=True)
        if profiler is not None:
            await asyncio.to_thread(profiler.wait)
        logs = await asyncio.gather(*(self._dump(agent, sum(
            1 for p in live if p.index % len(agents) == j)) for j, agent in enumerate(agents)))
        figures = step_figures(live, {k: v for log in logs for k, v in log.items()})
        minutes = len(live) * plan.duration / 60 or 1.0
        resources: dict[str, float | None] = {"agent_processes": len(agents)}
        for who in ("gateway", "agent", "bench"):
            used = after[who] - before[who] if who in before else None
            resources[f"{who}_cpu_cores"] = None if used is None else round(used / plan.duration, 3)
            resources[f"{who}_cpu_s_per_call_min"] = None if used is None else round(
                used / minutes, 4)
        for what in ("busy", "idle", "steal"):
            # other work on the machine, and a hypervisor taking CPU away, both show here
            spent = after[f"machine_{what}"] - before[f"machine_{what}"]
            resources[f"machine_{what}_cores"] = round(spent / plan.duration, 3)
        if "gateway" in before and after["gateway"] > before["gateway"]:
            resources["gateway_sys_share"] = round((after["gateway_sys"] - before["gateway_sys"])
                                                   / (after["gateway"] - before["gateway"]), 3)
        if rss and self.idle_rss is not None:
            resources["gateway_rss_mb"] = round(rss[0] / 2**20, 1)
            resources["gateway_rss_kb_per_call"] = round(
                (rss[0] - self.idle_rss) / 1024 / max(1, len(live)), 1)
        return {"calls": calls, "answered": len(live), "setup_failures": failures[:10],
                "duration_s": plan.duration, **figures, "resources": resources,
                "targets": judge(figures)}

    async def _dump(self, agent: Child, calls: int) -> dict[str, Any]:
        path = self.workdir / f"agent-{agent.pid}-{time.monotonic_ns()}.json"
        since = agent.mark()
        agent.say(f"DUMP {path} {calls}")
        await asyncio.to_thread(agent.expect, r"^DUMPED", since, 120.0)
        logs: dict[str, Any] = json.loads(path.read_text())
        path.unlink()
        return logs

    def _cpu(self, agents: list[Child]) -> dict[str, float]:
        cpu = {"agent": sum(cpu_seconds(a.pid) for a in agents), "bench": time.process_time(),
               **machine_cpu()}
        if self.gateway is not None:
            cpu["gateway"] = cpu_seconds(self.gateway.pid)
            cpu["gateway_sys"] = cpu_times(self.gateway.pid)[1]
        return cpu

    def _start_profiler(self, pid: int | None) -> subprocess.Popen[bytes] | None:
        if self.plan.profile is None or pid is None or self._profiled:
            return None
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        self._profiled = True
        return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration",
                                 str(max(1, int(self.plan.duration))), "--rate", "200",
                                 "--format", "raw", "--output", self.plan.profile,
                                 "--nonblocking"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    async def run(self, which: str) -> dict[str, Any] | list[dict[str, Any]]:
        if not self.plan.ramp:
            return await self.step(which, self.plan.counts[0], self.plan.via)
        steps: list[dict[str, Any]] = []
        extra = self.plan.ramp_extra
        for calls in self.plan.counts:
            step = await self.step(which, calls, self.plan.via)
            step["passed"], step["stopped_by"] = ramp_verdict(step)
            steps.append(step)
            if not all(s["passed"] for s in steps):
                if extra <= 0:
                    break
                extra -= 1
        return steps


def judge(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The issue's targets, each with the measured value and whether it is met."""
    m, c = figures["metrics"], figures["counts"]
    down = m["downlink_ms"]["p99"]
    measured = {
        "uplink_p99_ms": m["uplink_ms"]["p99"],
        "downlink_p99_beyond_playout_ms": None if down is None else round(
            down - PLAYOUT_TARGET_MS, 3),
        "lost_frames": c["uplink_lost"] + c["downlink_lost"],
        "underrun_pct": figures["underrun_pct"],
        "interrupt_p99_ms": m["interrupt_ms"]["p99"],
    }
    return {k: {"value": v, "target": TARGETS[k], "met": v is not None and v <= TARGETS[k]}
            for k, v in measured.items()}


def ramp_verdict(step: dict[str, Any]) -> tuple[bool, str | None]:
    p99 = step["metrics"]["uplink_ms"]["p99"]
    lost = step["targets"]["lost_frames"]["value"]
    if step["answered"] < step["calls"]:
        return False, f"{step['calls'] - step['answered']} calls were not set up"
    if p99 is None or p99 > RAMP_P99_UPLINK_MS:
        return False, f"p99 uplink {p99} ms > {RAMP_P99_UPLINK_MS} ms"
    if (step["underrun_pct"] or 0.0) > RAMP_UNDERRUN_PCT:
        return False, f"underruns {step['underrun_pct']} % > {RAMP_UNDERRUN_PCT} %"
    if lost:
        return False, f"{lost} frames lost"
    return True, None


async def _bench(args: argparse.Namespace, plan: Plan, workdir: Path) -> dict[str, Any]:
    agents = ["ours", "reference"] if args.agent == "both" else [args.agent]
    if "reference" in agents:
        plan.refsdk = find_refsdk(args.refsdk)
    gateway: Child | None = None
    if args.gateway:
        creds = external_gateway(args.gateway)
    else:
        connectors = max(plan.procs(which, max(plan.counts)) for which in agents)
        gateway, creds = start_gateway(connectors, workdir)
    bench = Bench(plan, creds, gateway, workdir)
    out: dict[str, Any] = {"command": ["telcoflow", *sys.argv[1:]],
                           "machine": machine(),
                           "config": {"codec": plan.codec, "rate": plan.rate,
                                      "duration_s": plan.duration, "ramp": plan.ramp,
                                      "playout_target_ms": PLAYOUT_TARGET_MS,
                                      "gateway": "external" if args.gateway else "subprocess"},
                           "runs": [], "ramps": []}
    try:
        if plan.via != "phone":  # the reference: the simulated phone, same gateway, same run
            reference = await bench.step(agents[0], plan.counts[0], "phone")
            out["runs"].append({"agent": agents[0], **reference})
        for which in agents:
            result = await bench.run(which)
            if isinstance(result, list):
                first_bad = next((s for s in result if not s["passed"]), None)
                good = [s["calls"] for s in result[:result.index(first_bad)]] \
                    if first_bad is not None else [s["calls"] for s in result]
                out["ramps"].append({"agent": which, "steps": result,
                                     "capacity": good[-1] if good else 0,
                                     "stopped_by": first_bad["stopped_by"] if first_bad else None})
            else:
                out["runs"].append({"agent": which, **result})
    finally:
        if gateway is not None:
            gateway.stop()
    return out


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # the callers' own cost stays low on uvloop
        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


def main(args: argparse.Namespace) -> int:
    if args.rate is None:
        args.rate = 8000 if args.codec == "pcmu" else 16000
    if args.codec == "pcmu" and args.rate != 8000:
        print("pcmu runs at 8000 Hz: pass --rate 8000", file=sys.stderr)
        return 2
    counts = [int(n) for n in args.steps.split(",")] if args.ramp else [args.calls]
    if args.via == "twilio" and (args.codec, args.rate) != ("pcmu", 8000):
        print("--via twilio carries μ-law at 8 kHz: pass --codec pcmu", file=sys.stderr)
        return 2
    if args.via == "audiocodes" and (args.codec, args.rate) not in VAIC_FORMATS:
        print("--via audiocodes carries pcmu at 8 kHz or pcm16 at 8, 16 or 24 kHz",
              file=sys.stderr)
        return 2
    plan = Plan(counts, args.ramp, args.duration, args.rate, args.codec, args.dial_concurrency,
                args.agent_procs, args.profile, args.ramp_extra, args.dial_rate,
                via=args.via)
    with tempfile.TemporaryDirectory(prefix="telcoflow-bench-") as tmp, \
            asyncio.Runner(loop_factory=_new_loop) as runner:
        out = runner.run(_bench(args, plan, Path(tmp)))
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        from .table import render
        print(render(out))
    return 0
