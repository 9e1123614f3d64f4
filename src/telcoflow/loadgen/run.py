"""``telcoflow bench``: capacity, latency, jitter and interrupt time of a gateway.

Three kinds of process share one clock (CLOCK_MONOTONIC): the gateway (started
here with ``telcoflow serve`` on a free port, or ``--gateway URL``), the echo
agents (``loadgen/agent.py`` on our SDK or the published 1.0.0) and this one,
which runs the callers (``bench_phones``) and merges the time stamps
(``bench_stats``). ``--ramp`` steps the number of calls up until p99 uplink
latency passes 20 ms, underruns pass 0.1 % or a frame is lost; the last step
that passed is the capacity.

``--plane quic`` (alias: ``--via quic``) compares the agents' two planes on one
gateway in one run: the WebSocket voice plane (our SDK) first, then the QUIC
plane (``loadgen/quic_agent.py``: one process, QUIC connections spread over
connectors), with the same callers and call count; ``--loss F`` drops that
fraction of the QUIC media packets each way in a relay process between the QUIC
agent and the gateway (``loadgen/relay.py``).
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
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..server.config import SERVER_SETTINGS, GatewayConfig
from . import hog, probe
from .agent import load_spooled
from .carriers import VAIC_FORMATS, BenchTwilio, BenchVaic
from .floor import start_floor
from .phones import BenchPhone, place_calls, talk
from .probe import Trend
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
    start_quic_agent,
    start_relay,
)
from .scaleout import PrivateRedis, commands, family, per_call
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
# calls per QUIC connection of the bench's QUIC agent (docs/quic.md, "Limits per
# connection"): the gateway takes at most 64 calls on one connection, and lets every call
# it holds open its audio stream at once
QUIC_CALLS_PER_CONNECTION = {"stream": 64, "datagram": 64}
SATURATED_IDLE_CORES = 0.1  # less idle than this in a talking window: the machine ran out
QUIC_MEDIA_PACKET = 150  # bytes: the relay drops only packets this big (media, not ACKs)


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
                       help="py-spy the gateway during the first talking window (raw stacks); "
                       "with --plane quic, each plane's window, the gateway and the agent "
                       "process: FILE.ws, FILE.ws-agent, FILE.quic, FILE.quic-agent")
    bench.add_argument("--dial-concurrency", type=int, default=20,
                       help="calls being set up at once (default 20)")
    bench.add_argument("--dial-rate", type=float, default=50.0,
                       help="calls placed per second and agent process (default 50)")
    bench.add_argument("--agent-procs", type=int, default=1,
                       help="agent processes, each on its own connector (default 1; the "
                       f"published SDK gets one per {REFERENCE_CALLS_PER_PROCESS} calls)")
    bench.add_argument("--workers", type=int, default=1, metavar="N",
                       help="run the gateway as 'serve --workers N' (N > 1: on a private "
                       "Redis registry); the CPU figures add up its processes")
    bench.add_argument("--registry", metavar="private|URL",
                       help="the gateway's [registry]: 'private' starts a redis-server for the "
                       "run (the default with --workers > 1), or a Redis URL; the Redis "
                       "commands per call are counted")
    bench.add_argument("--json", action="store_true", help="print JSON instead of a table")
    bench.add_argument("--gateway-log", metavar="FILE",
                       help="write the bench gateway's log (its warnings: stalls, alerts) to "
                       "FILE when the run ends")
    bench.add_argument("--via", choices=("phone", "twilio", "audiocodes", "quic"),
                       default="phone",
                       help="the door the callers come through; twilio and audiocodes run the "
                       "simulated phone first, in the same run, as the reference. quic: the "
                       "simulated phone with --plane quic (QUIC is the agents' plane)")
    bench.add_argument("--plane", choices=("ws", "quic"), default="ws",
                       help="the agents' plane. quic: the WebSocket plane (our SDK) first, "
                       "then the QUIC plane, same callers and call count, side by side")
    bench.add_argument("--loss", type=float, default=0.0, metavar="FRACTION",
                       help="--plane quic: drop this fraction of the QUIC media packets each "
                       "way between the QUIC agent and the gateway (a relay process), while "
                       "the callers talk")
    bench.add_argument("--floor", action="store_true",
                       help="then run the same callers and agents against the floor (a "
                       "process that only relays the same frames, loadgen/floor.py) and print "
                       "the gateway's CPU per call-minute as a ratio to it")
    bench.add_argument("--hog", type=float, default=0.0, metavar="CORES",
                       help="keep CORES cores (e.g. 0.5) busy with a CPU hog beside the run")
    bench.add_argument("--server", action="append", default=[], metavar="KEY=VALUE",
                       help="a [server] setting for the bench's gateway, VALUE in TOML "
                       "(e.g. quality_watch=false, playout_target_ms=80); repeatable")
    bench.add_argument("--quic-carrier", choices=("stream", "datagram"),
                       help="--plane quic: the QUIC agent's audio on the calls' streams or "
                       "on DATAGRAMs (default: stream; datagram with --loss)")


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
    plane: str = "ws"              # "quic": the WebSocket plane, then the QUIC plane
    loss: float = 0.0              # of the QUIC media packets, each way
    carrier: str = "stream"        # the QUIC agent's audio: "stream" or "datagram"
    interrupt_scene: bool = True
    workers: int = 1
    registry: str | None = None    # the gateway's Redis URL (None: the memory registry)
    registry_pid: int | None = None  # a private redis-server's (its CPU is counted)
    server: str = ""               # extra [server] lines of the bench gateway's config

    @property
    def interrupt(self) -> tuple[int, int]:
        """(first frame, spread) of the interrupt scene; too short a talk has none."""
        frames = round(self.duration * 50)
        if not self.interrupt_scene or frames < 80:
            return (-1, 0)
        return (int(frames * 0.3), int(frames * 0.4))

    def quic_connections(self, calls: int) -> int:
        return -(-calls // QUIC_CALLS_PER_CONNECTION[self.carrier])

    def procs(self, which: str, calls: int) -> int:
        if which == "reference":
            return max(self.agent_procs, -(-calls // REFERENCE_CALLS_PER_PROCESS))
        return self.agent_procs


class Bench:
    def __init__(self, plan: Plan, creds: Credentials, gateway: Child | None,
                 workdir: Path) -> None:
        self.plan, self.creds, self.gateway, self.workdir = plan, creds, gateway, workdir
        self.idle_rss = _rss(gateway.pid) if gateway is not None else None
        self._profiled: set[str] = set()   # the planes profiled so far

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

    async def step(self, which: str, calls: int, via: str = "phone",
                   plane: str = "ws") -> dict[str, Any]:
        """One measurement: fresh agent processes, ``calls`` callers, talk, hang up, merge."""
        if plane == "quic":
            return await self._quic_step(calls, via)
        agents = await self._agents(which, calls)
        try:
            return {"via": via, "plane": plane,
                    **await self._step(agents, calls, via, plane=plane)}
        finally:
            for agent in agents:
                agent.stop()

    async def _quic_step(self, calls: int, via: str) -> dict[str, Any]:
        """The QUIC plane: one agent process, a connection per connector it needs; with
        loss, a relay process between it and the gateway."""
        plan, creds = self.plan, self.creds
        if creds.quic_port is None or not creds.quic_fingerprint:
            raise SystemExit("--plane quic: the gateway's QUIC port and certificate "
                             "fingerprint are not known (a gateway started with "
                             "'telcoflow serve --quic PORT' saves them; or set "
                             "TELCOFLOW_QUIC_PORT and TELCOFLOW_QUIC_FINGERPRINT)")
        wanted = plan.quic_connections(calls)
        if wanted > len(creds.connectors):
            raise SystemExit(f"--plane quic: {calls} calls on the {plan.carrier} carrier need "
                             f"{wanted} connectors (at most "
                             f"{QUIC_CALLS_PER_CONNECTION[plan.carrier]} calls per QUIC "
                             f"connection); the gateway has {len(creds.connectors)}")
        connectors = creds.connectors[:wanted]
        host = urlsplit(creds.url).hostname or "127.0.0.1"
        relay: Child | None = None
        port = creds.quic_port
        if plan.loss > 0:
            relay, port = await asyncio.to_thread(start_relay, host, creds.quic_port)
        try:
            agent = start_quic_agent(host, port, creds.quic_fingerprint, connectors, plan.rate,
                                     plan.carrier)
            try:
                await asyncio.to_thread(agent.expect, r"^READY")
                result = await self._step([agent], calls, via,
                                          [c.number for c in connectors], relay, "quic")
            finally:
                agent.stop()
        finally:
            if relay is not None:
                relay.stop()
        result["quic"] = {"carrier": plan.carrier, "connections": wanted,
                          "loss": plan.loss, **result.pop("quic_counts", {})}
        return {"via": via, "plane": "quic", **result}

    async def _step(self, agents: list[Child], calls: int, via: str,
                    numbers: list[str] | None = None, relay: Child | None = None,
                    plane: str = "ws") -> dict[str, Any]:
        """Callers to ``numbers`` (default: one connector per agent process): set up, talk,
        hang up; caller ``i`` belongs to agent ``i % len(numbers) % len(agents)``."""
        plan, creds = self.plan, self.creds
        caller = {"phone": BenchPhone, "twilio": BenchTwilio, "audiocodes": BenchVaic}[via]
        phones = [caller(i, plan.codec, plan.rate) for i in range(calls)]
        if numbers is None:
            numbers = [c.number for c in creds.connectors[:len(agents)]]
        key = {"phone": creds.phone_key, "twilio": creds.twilio_token,
               "audiocodes": creds.audiocodes_token}[via]
        if key is None:
            raise SystemExit(f"--via {via}: the gateway's key for that door is not known")
        redis_before = commands(plan.registry) if plan.registry else None
        step_started = time.monotonic()
        failures = await place_calls(phones, creds.url, key, numbers,
                                     plan.dial_concurrency, plan.dial_rate * len(agents), 60.0)
        live = [p for p in phones if "answered" in p.events]
        loop = asyncio.get_running_loop()
        rss: list[int] = []
        gw_pid = self.gateway.pid if self.gateway is not None else None
        if gw_pid is not None:
            loop.call_later(plan.duration / 2, lambda: rss.append(_rss(gw_pid)))
        if relay is not None:  # loss while the callers talk only, as tests/quic/test_loss.py
            await self._relay(relay, f"LOSS {plan.loss} {plan.loss} {QUIC_MEDIA_PACKET}")
        profilers = self._start_profilers(gw_pid, agents, plane)
        trend = Trend({**({"gateway": gw_pid} if gw_pid is not None else {}),
                       **{f"agent{i}": a.pid for i, a in enumerate(agents)}})
        trend.start()
        counted = await self._scrape()
        before = self._cpu(agents, relay)
        await talk(live, plan.duration)
        after = self._cpu(agents, relay)
        later = await self._scrape()
        counted = probe.diff(counted, later) if counted is not None and later is not None \
            else None
        trends = trend.stop()
        relay_counts: dict[str, Any] | None = None
        if relay is not None:
            await self._relay(relay, f"LOSS 0 0 {QUIC_MEDIA_PACKET}")
        await asyncio.gather(*(p.tail(5.0) for p in live))
        await asyncio.gather(*(p.hangup() for p in phones), return_exceptions=True)
        for profiler in profilers:
            await asyncio.to_thread(profiler.wait)
        owner = [p.index % len(numbers) % len(agents) for p in live]
        logs = await asyncio.gather(*(self._dump(agent, owner.count(j))
                                      for j, agent in enumerate(agents)))
        merged = {k: v for log in logs for k, v in log.items()}
        # read after the agents' logs: the sessions' closings are written by then too
        redis_after = commands(plan.registry) if plan.registry else None
        step_s = time.monotonic() - step_started
        if relay is not None:
            relay_counts = json.loads((await self._relay(relay, "COUNTS")).split(" ", 1)[1])
        figures = step_figures(live, merged)
        minutes = len(live) * plan.duration / 60 or 1.0
        resources: dict[str, float | None] = {"agent_processes": len(agents)}
        for who in ("gateway", "agent", "bench", "relay", "redis"):
            if who == "relay" and relay is None or who == "redis" and who not in before:
                continue
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
        if counted is not None and "watch_cpu_s" in counted:  # the live quality watch's part
            resources["gateway_watch_cpu_s_per_call_min"] = round(
                counted["watch_cpu_s"] / minutes, 4)
        if rss and self.idle_rss is not None:
            resources["gateway_rss_mb"] = round(rss[0] / 2**20, 1)
            resources["gateway_rss_kb_per_call"] = round(
                (rss[0] - self.idle_rss) / 1024 / max(1, len(live)), 1)
        targets = judge(figures)
        if plan.interrupt[0] < 0:  # no interrupt scene: nothing to judge
            targets.pop("interrupt_p99_ms")
        refused = sum("GATEWAY_OVERLOADED" in f for f in failures)
        result = {"calls": calls, "answered": len(live), "setup_failures": failures[:10],
                  "refused_overloaded": refused, "trends": trends,
                  "gateway_counts": catch_up_share(counted, len(live) * plan.duration,
                                                   plan.duration),
                  "duration_s": plan.duration, "interrupt_scene": plan.interrupt[0] >= 0,
                  **figures, "resources": resources, "targets": targets}
        if "_connections" in merged:
            result["quic_counts"] = quic_counts(merged, relay_counts)
        if redis_before is not None and redis_after is not None:
            # the whole step: set-up, talk and hang-up of every call
            result["registry"] = {"workers": plan.workers, **per_call(
                redis_before, redis_after, calls, step_s, plan.workers)}
        return result

    async def _scrape(self) -> dict[str, float] | None:
        key = self.creds.metrics_key
        if key is None:
            return None
        try:
            return await asyncio.to_thread(probe.scrape, self.creds.url, key)
        except OSError:
            return None

    async def _relay(self, relay: Child, command: str) -> str:
        since = relay.mark()
        relay.say(command)
        word = command.split()[0]
        match = await asyncio.to_thread(relay.expect, rf"^{word}\b.*", since, 10.0)
        return match.group(0)

    async def _dump(self, agent: Child, calls: int) -> dict[str, Any]:
        path = self.workdir / f"agent-{agent.pid}-{time.monotonic_ns()}.json"
        since = agent.mark()
        agent.say(f"DUMP {path} {calls}")
        await asyncio.to_thread(agent.expect, r"^DUMPED", since, 120.0)
        logs: dict[str, Any] = load_spooled(json.loads(path.read_text()))
        path.unlink()
        return logs

    def _cpu(self, agents: list[Child], relay: Child | None = None) -> dict[str, float]:
        cpu = {"agent": sum(cpu_seconds(a.pid) for a in agents), "bench": time.process_time(),
               **machine_cpu()}
        if relay is not None:
            cpu["relay"] = cpu_seconds(relay.pid)
        if self.plan.registry_pid is not None:  # the private redis-server: the gateway's too
            cpu["redis"] = cpu_seconds(self.plan.registry_pid)
        if self.gateway is not None:  # with workers: the supervisor and every worker
            pids = family(self.gateway.pid)
            cpu["gateway"] = sum(cpu_seconds(pid) for pid in pids)
            cpu["gateway_sys"] = sum(cpu_times(pid)[1] for pid in pids)
        return cpu

    def _start_profilers(self, gateway_pid: int | None, agents: list[Child],
                         plane: str) -> list[subprocess.Popen[bytes]]:
        """py-spy on the gateway during the first talking window; comparing planes, once
        per plane, and on the (one) agent process too: FILE → FILE.ws / FILE.quic and
        FILE.ws-agent / FILE.quic-agent (before FILE's suffix)."""
        if self.plan.profile is None or gateway_pid is None or plane in self._profiled:
            return []
        self._profiled.add(plane)
        path = Path(self.plan.profile)
        if self.plan.plane == "ws":
            return [self._spy(gateway_pid, path)]
        return [self._spy(gateway_pid, path.with_name(f"{path.stem}.{plane}{path.suffix}")),
                self._spy(agents[0].pid,
                          path.with_name(f"{path.stem}.{plane}-agent{path.suffix}"))]

    def _spy(self, pid: int, output: Path) -> subprocess.Popen[bytes]:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration",
                                 str(max(1, int(self.plan.duration))), "--rate", "200",
                                 "--format", "raw", "--output", str(output),
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


def catch_up_share(counted: dict[str, float] | None, talk_s: float,
                   wall_s: float = 0.0) -> dict[str, Any] | None:
    """The gateway's catch-up counters over the talking window, and their share of the
    agent audio the callers should have heard (and the share of ``wall_s`` its loop's
    thread spent waiting for a CPU)."""
    if counted is None:
        return None
    out: dict[str, Any] = dict(counted)
    if talk_s and "watch_unmeasured_s" in counted:  # the watch paused under overload
        out["watch_unmeasured_pct"] = round(100 * counted["watch_unmeasured_s"] / talk_s, 2)
    if "loop_cpu_wait_s" in counted and wall_s:
        out["loop_cpu_wait_pct"] = round(100 * counted["loop_cpu_wait_s"] / wall_s, 2)
    for how in ("compressed", "quiet", "cut"):
        seconds = counted.get(f"catchup_{how}_s", 0.0)
        out[f"catchup_{how}_pct"] = round(100 * seconds / talk_s, 3) if talk_s else None
    return out


def _rss(pid: int) -> int:
    """The gateway's resident memory: with workers, the supervisor's and theirs."""
    return sum(rss_bytes(p) for p in family(pid))


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


def quic_counts(logs: dict[str, Any], relay: dict[str, Any] | None) -> dict[str, Any]:
    """The QUIC plane's own loss counts, summed over the calls: the gateway's LOSS events
    (the agent's audio as it arrived there), the agent's trackers (the gateway's audio as
    it arrived at the agent), and what the relay dropped."""
    counts = {"gateway_received": 0, "gateway_missing": 0, "agent_received": 0,
              "agent_missing": 0, "calls_without_loss_event": 0,
              "streams_stopped_while_live": 0}
    stopped: dict[str, int] = {}
    errors: dict[str, int] = {}
    connections = logs.get("_connections") or []
    for conn in connections:
        for reason, n in conn["errors"].items():
            errors[reason] = errors.get(reason, 0) + n
    for index, log in logs.items():
        if index.startswith("_"):
            continue
        q = log.get("quic") or {}
        if q.get("gateway_missing") is None:
            counts["calls_without_loss_event"] += 1
        for key in ("gateway_received", "gateway_missing", "agent_received", "agent_missing"):
            counts[key] += int(q.get(key) or 0)
        counts["streams_stopped_while_live"] += bool(q.get("stopped_while_live"))
        if q.get("stream_stopped"):
            stopped[q["stream_stopped"]] = stopped.get(q["stream_stopped"], 0) + 1
        for reason in q.get("errors") or []:
            errors[reason] = errors.get(reason, 0) + 1
    out: dict[str, Any] = {**counts, "streams_stopped": stopped, "errors": errors,
                           "connections_closed": sum(c["closed"] for c in connections)}
    if relay is not None:
        out["relay"] = relay
    return out


PLANE_ROWS = (  # (label, how to read it off a run, whether a ratio means anything)
    ("uplink latency p50 (ms)", ("metrics", "uplink_ms", "p50"), True),
    ("uplink latency p99 (ms)", ("metrics", "uplink_ms", "p99"), True),
    ("downlink latency p50 (ms)", ("metrics", "downlink_ms", "p50"), True),
    ("downlink latency p99 (ms)", ("metrics", "downlink_ms", "p99"), True),
    ("round trip p50 (ms)", ("metrics", "roundtrip_ms", "p50"), True),
    ("round trip p99 (ms)", ("metrics", "roundtrip_ms", "p99"), True),
    ("downlink jitter p50 (ms)", ("metrics", "jitter_ms", "p50"), True),
    ("downlink jitter p99 (ms)", ("metrics", "jitter_ms", "p99"), True),
    ("frames lost uplink", ("counts", "uplink_lost"), False),
    ("frames lost downlink", ("counts", "downlink_lost"), False),
    ("underruns (% of talk slots)", ("underrun_pct",), False),
    ("gateway CPU-s per call-minute", ("resources", "gateway_cpu_s_per_call_min"), True),
    ("agent CPU-s per call-minute", ("resources", "agent_cpu_s_per_call_min"), True),
    ("gateway cores busy", ("resources", "gateway_cpu_cores"), True),
    ("agent cores busy", ("resources", "agent_cpu_cores"), True),
    ("gateway kernel (sys) share", ("resources", "gateway_sys_share"), True),
    ("machine cores busy", ("resources", "machine_busy_cores"), False),
)


def _dig(run: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = run
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def compare_planes(ws: dict[str, Any], quic: dict[str, Any]) -> list[dict[str, Any]]:
    """The figures of both planes side by side, with QUIC / WebSocket where it means
    something (not of counts that are 0 on one side, nor of busy cores of a shared box)."""
    rows = []
    for label, path, ratio in PLANE_ROWS:
        a, b = _dig(ws, path), _dig(quic, path)
        r = round(b / a, 2) if ratio and isinstance(a, int | float) and \
            isinstance(b, int | float) and a > 0 else None
        rows.append({"figure": label, "ws": a, "quic": b, "ratio": r})
    return rows


def _saturated(run: dict[str, Any]) -> bool:
    """The machine had (almost) no idle CPU while the callers talked: every process got
    less than it asked for, so its CPU per call-minute is what it got, not what the work
    needs, and its latencies are the machine's."""
    idle = run["resources"].get("machine_idle_cores")
    return idle is not None and idle < SATURATED_IDLE_CORES


def netem_note() -> str:
    """Why the WebSocket plane runs without loss: tried, in a network namespace of its own
    (so nothing on this machine is touched), whether kernel netem can drop packets."""
    if shutil.which("tc") is None or shutil.which("unshare") is None:
        return "tc or unshare is not installed, so kernel netem could not be tried"
    try:
        done = subprocess.run(["unshare", "--net", "tc", "qdisc", "add", "dev", "lo", "root",
                               "netem", "loss", "1%"], capture_output=True, text=True,
                              timeout=10)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"kernel netem could not be tried ({exc})"
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or ["no message"])[-1]
        return f"kernel netem is not available here ('tc qdisc add ... netem' in a private " \
               f"network namespace: {why})"
    return "kernel netem works here, but the bench does not drive it yet (it needs the " \
           "agents in a network namespace of their own, behind a veth pair with netem)"


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
        if plan.plane == "quic":
            connectors = max(connectors, plan.quic_connections(max(plan.counts)))
        gateway, creds = start_gateway(connectors, workdir, quic=plan.plane == "quic",
                                       workers=plan.workers, registry=plan.registry,
                                       server=plan.server)
    bench = Bench(plan, creds, gateway, workdir)
    hogs = hog.start(args.hog)
    out: dict[str, Any] = {"command": ["telcoflow", *sys.argv[1:]],
                           "machine": machine(),
                           "config": {"codec": plan.codec, "rate": plan.rate,
                                      "duration_s": plan.duration, "ramp": plan.ramp,
                                      "playout_target_ms": PLAYOUT_TARGET_MS,
                                      "hog_cores": args.hog,
                                      "gateway": "external" if args.gateway else "subprocess",
                                      "plane": plan.plane, "via": plan.via,
                                      "workers": plan.workers,
                                      "server": args.server,
                                      "registry": "redis" if plan.registry else "memory",
                                      **({"loss": plan.loss, "carrier": plan.carrier}
                                         if plan.plane == "quic" else {})},
                           "runs": [], "ramps": []}
    try:
        if plan.plane == "quic":  # the reference: the WebSocket plane, same gateway and run
            ws = await bench.step("ours", plan.counts[0], plan.via, "ws")
            out["runs"].append({"agent": "ours", **ws})
            quic = await bench.step("ours", plan.counts[0], plan.via, "quic")
            out["runs"].append({"agent": "ours", **quic})
            out["planes"] = {"calls": plan.counts[0], "via": plan.via,
                             "carrier": plan.carrier, "loss": plan.loss,
                             "interrupt_scene": False, "rows": compare_planes(ws, quic),
                             "saturated": [name for name, run in (("ws", ws), ("quic", quic))
                                           if _saturated(run)]}
            if plan.loss > 0:
                out["planes"]["ws_loss"] = "none injected: " + netem_note()
            return out
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
        if args.floor and gateway is not None and out["runs"]:
            out["floor"] = await _floor(plan, creds, workdir, out["runs"][0])
    finally:
        hog.stop(hogs)
        if gateway is not None:
            gateway.stop()
            if args.gateway_log:
                text = "".join(f"{line}\n" for line in gateway.lines)
                try:
                    await asyncio.to_thread(Path(args.gateway_log).write_text, text)
                except OSError as exc:  # the run's figures still print
                    print(f"--gateway-log: cannot write {args.gateway_log}: {exc.strerror}",
                          file=sys.stderr)
    return out


async def _floor(plan: Plan, creds: Credentials, workdir: Path,
                 measured: dict[str, Any]) -> dict[str, Any]:
    """The same step against the floor, right after the gateway's: its CPU and the ratio."""
    child, floor_creds = await asyncio.to_thread(start_floor, workdir / "gateway.toml", creds)
    try:
        run = await Bench(plan, floor_creds, child, workdir).step(
            measured["agent"], measured["calls"])
    finally:
        child.stop()
    gw = measured["resources"].get("gateway_cpu_s_per_call_min")
    fl = run["resources"].get("gateway_cpu_s_per_call_min")
    watch = measured["resources"].get("gateway_watch_cpu_s_per_call_min")
    return {"calls": run["calls"], "answered": run["answered"],
            "cpu_s_per_call_min": fl, "cores": run["resources"].get("gateway_cpu_cores"),
            "sys_share": run["resources"].get("gateway_sys_share"),
            "machine_busy_cores": run["resources"].get("machine_busy_cores"),
            "gateway_cpu_s_per_call_min": gw,
            "ratio": round(gw / fl, 2) if gw and fl else None,
            # the media path alone: the gateway less what its quality watch measured taking
            "watch_cpu_s_per_call_min": watch,
            "ratio_without_watch": round((gw - watch) / fl, 2) if gw and fl and watch is not None
            else None}


def _plane_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with --plane / --loss / --quic-carrier, if anything."""
    if args.plane == "ws":
        if args.loss:
            return "--loss applies to the QUIC plane: pass --plane quic (or --via quic)"
        if args.quic_carrier:
            return "--quic-carrier applies to the QUIC plane: pass --plane quic"
        return None
    if args.ramp:
        return "--plane quic compares the two planes at one call count: pass --calls N"
    if args.agent != "ours":
        return "--plane quic runs our SDK on the WebSocket plane (the published SDK has no QUIC)"
    if not 0.0 <= args.loss < 1.0:
        return f"--loss is a fraction of the packets (0 to 1), not {args.loss}"
    return None


def server_lines(settings: list[str]) -> str:
    """``--server KEY=VALUE`` options as ``[server]`` lines; a ``ValueError`` says which
    one is not a key and a TOML value."""
    lines = []
    for setting in settings:
        key, _, value = setting.partition("=")
        key = key.strip()
        if key not in SERVER_SETTINGS or key in ("host", "port") or not _one_value(key, value):
            raise ValueError(f"--server {setting!r}: expected KEY=VALUE, VALUE in TOML "
                             "(true, 80, \"tone\"), KEY a [server] setting other than "
                             "host and port")
        lines.append(f"{key} = {value.strip()}\n")
    return "".join(lines)


def _one_value(key: str, value: str) -> bool:
    """``value`` is one TOML value, no second line, key or table smuggled in with it."""
    if "\n" in value or "\r" in value:
        return False
    try:
        return list(tomllib.loads(f"{key} = {value}")) == [key]
    except tomllib.TOMLDecodeError:
        return False


def _floor_problem(args: argparse.Namespace) -> str | None:
    if not args.floor:
        return None
    if args.gateway or args.ramp or args.plane != "ws" or args.via != "phone":
        return "--floor runs beside a bench gateway at one call count: no --gateway, " \
               "--ramp, --plane quic or --via"
    if args.codec != "pcm16":
        return "--floor relays frames unchanged: pass --codec pcm16"
    return None


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
    if args.via == "quic":  # QUIC is the agents' plane; the callers are simulated phones
        args.via, args.plane = "phone", "quic"
    problem = _plane_problem(args) or _floor_problem(args)
    if problem:
        print(problem, file=sys.stderr)
        return 2
    carrier = args.quic_carrier or ("datagram" if args.loss > 0 else "stream")
    plan = Plan(counts, args.ramp, args.duration, args.rate, args.codec, args.dial_concurrency,
                args.agent_procs, args.profile, args.ramp_extra, args.dial_rate,
                via=args.via, plane=args.plane, loss=args.loss, carrier=carrier,
                interrupt_scene=args.plane == "ws", workers=args.workers)
    if args.workers < 1:
        print("--workers must be 1 or more", file=sys.stderr)
        return 2
    try:
        plan.server = server_lines(args.server)
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    if plan.server and args.gateway:
        print("--server configures the bench's own gateway: not with --gateway", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="telcoflow-bench-") as tmp, \
            asyncio.Runner(loop_factory=_new_loop) as runner:
        redis = None
        if args.registry == "private" or args.registry is None and args.workers > 1:
            redis = PrivateRedis(Path(tmp))
            plan.registry, plan.registry_pid = redis.url, redis.proc.pid
        elif args.registry:
            plan.registry = args.registry
        try:
            out = runner.run(_bench(args, plan, Path(tmp)))
        finally:
            if redis is not None:
                redis.stop()
    if args.json:
        print(json.dumps(out, indent=1))
    else:
        from .table import render
        print(render(out))
    return 0
