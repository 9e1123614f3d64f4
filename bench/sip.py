"""SIP load: SIPp places calls into echo agents; the WebSocket phone beside it.

    .venv/bin/python bench/sip.py                      # 200 calls at 20/s, 30 s each
    .venv/bin/python bench/sip.py --calls 50 --talk 10 --json

One gateway (``telcoflow serve`` with ``[sip]``) and the same echo agent
processes serve two loads, one after the other:

1. the WebSocket phone (``telcoflow bench``'s callers, PCMU at 8 kHz) with
   ``--calls`` calls talking for ``--talk`` seconds — the reference;
2. SIPp (``bench/sip/uac_talk.xml``) placing ``--calls`` calls at ``--cps``
   calls/s, each streaming recorded speech as PCMU in 20 ms RTP packets for
   ``--talk`` seconds, then hanging up.

Reported: SIPp's failed calls and retransmissions, INVITE→200 time per call
(agent answer included) p50/p99/max, the gateway's per-leg RTP report
(jitter, lost, late, concealed), and the gateway's CPU seconds per call-minute
for each load, measured while every call of it is up, with their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from telcoflow.audio import g711  # noqa: E402
from telcoflow.loadgen.procs import (  # noqa: E402
    Child,
    Credentials,
    cpu_seconds,
    machine,
    machine_cpu,
    start_agent,
    start_gateway,
)
from telcoflow.loadgen.run import Bench, Plan  # noqa: E402
from telcoflow.loadgen.stats import summary  # noqa: E402
from tests.sip.peers import free_udp_port, pcap_speech  # noqa: E402

SCENARIO = Path(__file__).parent / "sip" / "uac_talk.xml"
TARGETS = {"failed_calls": 0, "invite_to_200_p99_ms": 50.0, "sip_vs_ws_cpu": 1.2}
RTP_REPORT = re.compile(
    r"RTP from \S+: (?P<packets>\d+) packets, (?P<lost>\d+) lost \([\d.]+%\), "
    r"(?P<late>\d+) late, (?P<concealed>\d+) concealed frames, jitter (?P<jitter>[\d.]+) ms; "
    r"sent (?P<sent>\d+) packets")


def sip_toml(port: int, cps: float) -> str:
    return (f'[sip]\nlisten = "127.0.0.1:{port}"\nrtp_ports = "20000-21999"\n'
            f"invites_per_second = {max(100.0, 4 * cps)}\n\n"
            '[[sip.trunks]]\nname = "sipp"\nsources = ["127.0.0.1/32"]\n')


def gateway_cpu(gateway: Child) -> dict[str, float]:
    return {"gateway": cpu_seconds(gateway.pid), **machine_cpu()}


def per_call_minute(before: dict[str, float], after: dict[str, float], calls: int,
                    seconds: float) -> dict[str, float]:
    used = after["gateway"] - before["gateway"]
    return {"window_s": round(seconds, 1), "gateway_cpu_cores": round(used / seconds, 3),
            "gateway_cpu_s_per_call_min": round(used / (calls * seconds / 60), 4),
            "machine_busy_cores": round((after["machine_busy"] - before["machine_busy"])
                                        / seconds, 3),
            "machine_steal_cores": round((after["machine_steal"] - before["machine_steal"])
                                         / seconds, 3)}


async def websocket_load(gateway: Child, creds: Credentials, workdir: Path,
                         args: argparse.Namespace) -> dict[str, Any]:
    plan = Plan([args.calls], False, args.talk, 8000, "pcmu", 20, args.agents, None)
    step = await Bench(plan, creds, gateway, workdir).step("ours", args.calls)
    res = step["resources"]
    return {"calls": args.calls, "answered": step["answered"],
            "setup_ms": step["metrics"].get("setup_ms"),
            "gateway_cpu_cores": res["gateway_cpu_cores"],
            "gateway_cpu_s_per_call_min": res["gateway_cpu_s_per_call_min"],
            "machine_steal_cores": res["machine_steal_cores"]}


async def sip_load(gateway: Child, creds: Credentials, sip_port: int, workdir: Path,
                   args: argparse.Namespace) -> dict[str, Any]:
    agents = [start_agent("ours", creds.url, c, 8000, (-1, 0), None)
              for c in creds.connectors[:args.agents]]
    try:
        await asyncio.gather(*(asyncio.to_thread(a.expect, r"^READY") for a in agents))
        return await _run_sipp(gateway, creds, sip_port, workdir, args, len(agents))
    finally:
        for agent in agents:
            agent.stop()


async def _run_sipp(gateway: Child, creds: Credentials, sip_port: int, workdir: Path,
                    args: argparse.Namespace, agents: int) -> dict[str, Any]:
    speech = workdir / "speech.ulaw"
    speech.write_bytes(g711.ulaw_encode(pcap_speech()))
    scenario = workdir / "uac_talk.xml"
    scenario.write_text(SCENARIO.read_text().replace("@SPEECH@", str(speech))
                        .replace("@TALK_MS@", str(int(args.talk * 1000))))
    numbers = workdir / "numbers.csv"
    numbers.write_text("SEQUENTIAL\n" + "".join(f"{c.number};\n"
                                                 for c in creds.connectors[:agents]))
    since = gateway.mark()
    ramp_s = args.calls / args.cps
    # every call is up from the last INVITE (+1 s to settle) until the first BYE
    window = (ramp_s + 1.0, args.talk - 1.0)
    if window[1] - window[0] < 5.0:
        raise SystemExit(f"--talk must exceed calls/cps + 7 s ({ramp_s + 7:.0f} s) for a "
                         "window with every call up")
    proc = await asyncio.create_subprocess_exec(
        "sipp", "-sf", str(scenario), "-inf", str(numbers), "-i", "127.0.0.1",
        "-p", str(free_udp_port()), "-mi", "127.0.0.1", "-mp", "40000",
        "-m", str(args.calls), "-r", str(args.cps), "-l", str(args.calls),
        "-trace_rtt", "-rtt_freq", "1", "-trace_stat", "-fd", "1", "-nostdin",
        "-timeout", f"{int(ramp_s + args.talk + 60)}s", f"127.0.0.1:{sip_port}",
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=str(workdir))
    loop = asyncio.get_running_loop()
    start = loop.time()
    await asyncio.sleep(window[0])  # the bench's own clock: the window is a span of time
    before, t0 = gateway_cpu(gateway), loop.time()
    spy = profile(gateway.pid, args.profile, window[1] - window[0])
    await asyncio.sleep(max(0.0, start + window[1] - loop.time()))
    after, t1 = gateway_cpu(gateway), loop.time()
    await proc.wait()
    if spy is not None:
        await asyncio.to_thread(spy.wait)
    reports = await rtp_reports(gateway, since, args.calls)
    return {"calls": args.calls, "cps": args.cps, "sipp_exit": proc.returncode,
            **sipp_figures(workdir), "rtp": rtp_figures(reports),
            **per_call_minute(before, after, args.calls, t1 - t0)}


def profile(pid: int, path: str | None, seconds: float) -> subprocess.Popen[bytes] | None:
    """py-spy on the gateway while every SIP call is up (raw stacks, for flame graphs)."""
    if path is None:
        return None
    spy = str(Path(sys.executable).parent / "py-spy")
    return subprocess.Popen([spy, "record", "--pid", str(pid), "--duration", str(int(seconds)),
                             "--rate", "200", "--format", "raw", "--output", path,
                             "--nonblocking"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


async def rtp_reports(gateway: Child, since: int, calls: int,
                      timeout: float = 10.0) -> list[str]:
    """The legs' RTP report lines in the gateway's output (its reader thread may lag)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [line for line in gateway.lines[since:] if RTP_REPORT.search(line)]
        if len(lines) >= calls or time.monotonic() > deadline:
            return lines
        await asyncio.sleep(0.05)


def sipp_figures(workdir: Path) -> dict[str, Any]:
    stats = list(csv.DictReader(next(workdir.glob("uac_talk_*_.csv")).open(), delimiter=";"))
    last = stats[-1]
    rtt = [float(row["response_time_ms"]) for row in
           csv.DictReader(next(workdir.glob("uac_talk_*_rtt.csv")).open(), delimiter=";")]
    return {"successful_calls": int(last["SuccessfulCall(C)"]),
            "failed_calls": int(last["FailedCall(C)"]),
            "retransmissions": int(last["Retransmissions(C)"]),
            "invite_to_200_ms": summary(rtt)}


def rtp_figures(lines: list[str]) -> dict[str, Any]:
    legs = [m.groupdict() for line in lines if (m := RTP_REPORT.search(line))]
    if not legs:
        return {"legs": 0}
    col = {k: np.array([float(leg[k]) for leg in legs]) for k in legs[0]}
    return {"legs": len(legs), "packets_in": int(col["packets"].sum()),
            "packets_out": int(col["sent"].sum()), "lost": int(col["lost"].sum()),
            "late": int(col["late"].sum()), "concealed_frames": int(col["concealed"].sum()),
            "jitter_ms": summary(col["jitter"])}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sip_port = free_udp_port()
    with tempfile.TemporaryDirectory(prefix="telcoflow-sip-bench-") as tmp:
        workdir = Path(tmp)
        gateway, creds = start_gateway(args.agents, workdir, more_toml=sip_toml(sip_port,
                                                                                args.cps))
        try:
            ws = await websocket_load(gateway, creds, workdir, args)
            sip = await sip_load(gateway, creds, sip_port, workdir, args)
        finally:
            gateway.stop()
    ratio = sip["gateway_cpu_s_per_call_min"] / ws["gateway_cpu_s_per_call_min"]
    measured = {"failed_calls": sip["failed_calls"] + (args.calls - sip["successful_calls"]),
                "invite_to_200_p99_ms": sip["invite_to_200_ms"]["p99"],
                "sip_vs_ws_cpu": round(ratio, 3)}
    return {"command": ["bench/sip.py", *sys.argv[1:]], "machine": machine(),
            "websocket_phone": ws, "sip": sip,
            "targets": {k: {"value": v, "target": TARGETS[k],
                            "met": v is not None and v <= TARGETS[k]}
                        for k, v in measured.items()}}


def render(out: dict[str, Any]) -> str:
    sip, ws, rtp = out["sip"], out["websocket_phone"], out["sip"]["rtp"]
    rt, jit = sip["invite_to_200_ms"], rtp.get("jitter_ms", {})
    rows = [
        f"SIP: {sip['calls']} calls at {sip['cps']}/s: {sip['successful_calls']} ok, "
        f"{sip['failed_calls']} failed, {sip['retransmissions']} retransmissions",
        f"INVITE -> 200 OK (agent answer included): p50 {rt['p50']} ms, p99 {rt['p99']} ms, "
        f"max {rt['max']} ms",
        f"RTP at the gateway, {rtp['legs']} legs: {rtp.get('packets_in')} packets in, "
        f"{rtp.get('lost')} lost, {rtp.get('late')} late, {rtp.get('concealed_frames')} "
        f"concealed frames; {rtp.get('packets_out')} out; jitter per leg p50 {jit.get('p50')} "
        f"ms, p99 {jit.get('p99')} ms",
        f"gateway CPU-s per call-minute: SIP {sip['gateway_cpu_s_per_call_min']}, "
        f"WebSocket phone {ws['gateway_cpu_s_per_call_min']} "
        f"(ratio {out['targets']['sip_vs_ws_cpu']['value']}); cores: SIP "
        f"{sip['gateway_cpu_cores']}, phone {ws['gateway_cpu_cores']}",
    ]
    rows += [f"target {k}: {v['value']} (<= {v['target']}) {'met' if v['met'] else 'MISSED'}"
             for k, v in out["targets"].items()]
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--cps", type=float, default=20.0, help="SIPp's call rate")
    parser.add_argument("--talk", type=float, default=30.0, help="seconds each call talks")
    parser.add_argument("--agents", type=int, default=2, help="echo agent processes")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON here")
    parser.add_argument("--profile", metavar="FILE",
                        help="py-spy the gateway while every SIP call is up (raw stacks)")
    args = parser.parse_args()
    out = asyncio.run(run(args))
    print(render(out))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return 0 if all(t["met"] for t in out["targets"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
