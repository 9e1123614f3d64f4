"""Plain-text tables of a ``telcoflow bench`` result (``rich`` is not a dependency)."""

from __future__ import annotations

from typing import Any

ROWS = (
    ("uplink_ms", "uplink latency (ms)"),
    ("downlink_ms", "downlink latency (ms)"),
    ("roundtrip_ms", "round trip, caller to caller (ms)"),
    ("jitter_ms", "downlink jitter vs 20 ms grid (ms)"),
    ("interrupt_ms", "interrupt to silence (ms)"),
    ("setup_ms", "call set-up, dial to answered (ms)"),
    ("notify_ms", "  dial to session.notify (ms)"),
    ("call_in_ms", "  notify to call.in (ms)"),
    ("answer_ms", "  call.in to answer() done (ms)"),
    ("first_audio_ms", "first frame to first echo (ms)"),
)
COUNTS = ("frames_sent", "uplink_lost", "uplink_duplicated", "uplink_reordered",
          "echoes_sent", "downlink_lost", "downlink_duplicated", "downlink_reordered",
          "downlink_foreign", "underrun_slots", "talk_slots")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def run_table(run: dict[str, Any], title: str) -> str:
    lines = [title, f"{'':38}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}{'n':>9}"]
    for key, label in ROWS:
        m = run["metrics"][key]
        lines.append(f"{label:38}" + "".join(f"{_cell(m[q]):>9}"
                                             for q in ("p50", "p90", "p99", "max", "n")))
    counts = run["counts"]
    lines.append("frames: " + ", ".join(f"{k.replace('_', ' ')} {counts[k]}" for k in COUNTS))
    lines.append(f"underruns: {_cell(run['underrun_pct'])} % of talk slots")
    res = run["resources"]
    cpu = [(who, res.get(f"{who}_cpu_cores"), res.get(f"{who}_cpu_s_per_call_min"))
           for who in ("gateway", "redis", "agent", "bench", "relay")
           if f"{who}_cpu_cores" in res]
    lines.append("CPU (cores busy / s per call-minute): "
                 + ", ".join(f"{who} {_cell(cores)} / {_cell(rate)}" for who, cores, rate in cpu))
    lines.append(f"whole machine (cores): busy {_cell(res.get('machine_busy_cores'))}, "
                 f"idle {_cell(res.get('machine_idle_cores'))}, "
                 f"stolen by the hypervisor {_cell(res.get('machine_steal_cores'))}")
    if res.get("gateway_watch_cpu_s_per_call_min") is not None:
        paused = (run.get("gateway_counts") or {}).get("watch_unmeasured_pct")
        lines.append("of the gateway's, the quality watch (CPU-s per call-minute): "
                     f"{_cell(res['gateway_watch_cpu_s_per_call_min'])}; paused (overload) "
                     f"for {_cell(paused)} % of the talk")
    if res.get("gateway_rss_mb") is not None:
        lines.append(f"gateway RSS: {res['gateway_rss_mb']} MB, "
                     f"{res['gateway_rss_kb_per_call']} kB per call")
    lines.append("targets: " + ", ".join(
        f"{k} {_cell(t['value'])} ({'met' if t['met'] else 'NOT met'}, <= {t['target']})"
        for k, t in run["targets"].items()))
    counts_ = run.get("gateway_counts")
    if counts_:
        lines.append("catch-up (% of talk time): compressed "
                     f"{_cell(counts_.get('catchup_compressed_pct'))}, quiet frames skipped "
                     f"{_cell(counts_.get('catchup_quiet_pct'))}, cut "
                     f"{_cell(counts_.get('catchup_cut_pct'))}; calls refused as overloaded: "
                     f"{run.get('refused_overloaded', 0)}")
        if "stalls_busy" in counts_:
            lines.append("media clock stalls (>= 50 ms late): "
                         f"{int(counts_.get('stalls_cpu_wait', 0))} waiting for a CPU, "
                         f"{int(counts_['stalls_busy'])} running, "
                         f"{int(counts_.get('stalls_blocked', 0))} blocked; re-anchored "
                         f"{int(counts_.get('reanchors', 0))}; the loop waited for a CPU "
                         f"{_cell(counts_.get('loop_cpu_wait_pct'))} % of the time")
    for who, t in (run.get("trends") or {}).items():
        lines.append(f"{who}: RSS {t['rss_mb_first']} -> {t['rss_mb_last']} MB "
                     f"({_cell(t['rss_mb_per_hour'])} MB/h; 2nd half "
                     f"{_cell(t.get('rss_mb_per_hour_2nd_half'))} MB/h), fds {t['fds_first']} -> "
                     f"{t['fds_last']} ({_cell(t['fds_per_hour'])}/h), {t['samples']} samples")
    if run["setup_failures"]:
        lines.append("set-up failures: " + "; ".join(run["setup_failures"]))
    if "registry" in run:
        lines.append(registry_line(run["registry"]))
    if "quic" in run:
        lines.append(quic_line(run["quic"]))
    return "\n".join(lines)


def registry_line(reg: dict[str, Any]) -> str:
    top = ", ".join(f"{k} {v}" for k, v in list(reg["by_command_per_call"].items())[:6])
    return (f"Redis registry ({reg['workers']} worker(s)): {reg['per_call']} commands per call "
            f"(heartbeats left out; {reg['redis_commands']} in the step): {top}")


def quic_line(q: dict[str, Any]) -> str:
    """What the QUIC plane itself counted, and what the relay dropped."""
    text = (f"QUIC: {q['carrier']} carrier, {q['connections']} connection(s); the plane's own "
            f"counts: the gateway missed {q.get('gateway_missing')} of the agent's frames "
            f"(LOSS events), the agent missed {q.get('agent_missing')} of the gateway's")
    relay = q.get("relay")
    if relay:
        dropped, passed = relay["dropped"], relay["forwarded"]
        text += (f"; the relay dropped {dropped['up']} of {dropped['up'] + passed['up']} "
                 f"packets agent → gateway and {dropped['down']} of "
                 f"{dropped['down'] + passed['down']} gateway → agent")
    if q.get("streams_stopped"):
        text += (f"; the gateway stopped the agent's audio stream of {q['streams_stopped']} "
                 f"calls, {q.get('streams_stopped_while_live')} of them before the call's "
                 "ENDED event")
    if q.get("errors"):
        text += f"; ERROR events (at most one per code and second): {q['errors']}"
    return text


def planes_table(planes: dict[str, Any]) -> str:
    """The WebSocket and QUIC planes side by side, with QUIC / WebSocket."""
    loss = planes["loss"]
    lines = [f"\n== agent planes side by side: {planes['calls']} calls via "
             f"{planes['via']}, WebSocket (our SDK) then QUIC ({planes['carrier']} carrier) =="]
    if loss:
        lines.append(f"loss: QUIC: {100 * loss:g} % of the media packets (>= 150 bytes) each way "
                     f"between the QUIC agent and the gateway, {planes['carrier']} carrier, "
                     "dropped by telcoflow.testing.lossy_relay in a relay process, while the "
                     "callers talk; WebSocket: " + planes.get("ws_loss", "none injected") +
                     "; a userspace relay cannot drop TCP segments (it sees a byte stream "
                     "that TCP below it has already made whole).")
    else:
        lines.append("loss: none injected on either plane")
    lines.append("interrupt scene: off on both planes (QuicCall cannot clear audio it queued)")
    for plane in planes.get("saturated", []):
        lines.append(f"WARNING: no idle CPU on this machine during the "
                     f"{'WebSocket' if plane == 'ws' else 'QUIC'} window: its processes got "
                     "less CPU than they asked for, so its latencies and losses are the "
                     "machine's and its CPU per call-minute is what it got, not what the work "
                     "needs; compare at fewer calls")
    lines.append(f"{'':32}{'WebSocket':>11}{'QUIC':>11}{'QUIC/WS':>9}")
    for row in planes["rows"]:
        lines.append(f"{row['figure']:32}{_cell(row['ws']):>11}{_cell(row['quic']):>11}"
                     f"{_cell(row['ratio']):>9}")
    return "\n".join(lines)


def floor_line(floor: dict[str, Any]) -> str:
    """The gateway against the floor: the same frames relayed and nothing else."""
    return (f"\n== floor (loadgen/floor.py: the same callers, agents and frames, only "
            f"relayed), {floor['answered']} calls ==\n"
            f"floor CPU {_cell(floor['cpu_s_per_call_min'])} s per call-minute "
            f"({_cell(floor['cores'])} cores, kernel share {_cell(floor['sys_share'])}, "
            f"machine busy {_cell(floor['machine_busy_cores'])} cores); gateway "
            f"{_cell(floor['gateway_cpu_s_per_call_min'])}: ratio to the floor "
            f"{_cell(floor['ratio'])}x" + (
                "" if floor.get("ratio_without_watch") is None else
                f"; of which the quality watch {_cell(floor['watch_cpu_s_per_call_min'])}: "
                f"without it {_cell(floor['ratio_without_watch'])}x"))


def render(out: dict[str, Any]) -> str:
    cfg = out["config"]
    head = (f"telcoflow bench: {cfg['codec']} at {cfg['rate']} Hz, {cfg['duration_s']:g} s "
            f"per step; {out['machine']['cores']} cores ({out['machine']['cpu']})")
    parts = [head]
    for run in out["runs"]:
        via = f" via {run['via']}" if run.get("via", "phone") != "phone" else ""
        if "planes" not in out:
            who = f"{run['agent']} SDK"
        elif run.get("plane") == "quic":
            who = "QUIC plane (loadgen/quic_agent.py)"
        else:
            who = "WebSocket plane (our SDK)"
        parts.append(run_table(run, f"\n== {who}{via}, {run['answered']} calls =="))
    if "planes" in out:
        parts.append(planes_table(out["planes"]))
    if "floor" in out:
        parts.append(floor_line(out["floor"]))
    for ramp in out["ramps"]:
        parts.append(f"\n== ramp, {ramp['agent']} SDK: capacity {ramp['capacity']} calls "
                     f"(stopped by: {ramp['stopped_by'] or 'the last step'}) ==")
        parts.append(f"{'calls':>6}{'p99 up':>9}{'p99 down':>10}{'underrun %':>11}"
                     f"{'lost':>6}{'gw cores':>9}{'gw CPU s/call-min':>18}{'kB/call':>9}"
                     f"{'others cores':>13}{'idle':>6}")
        for step in ramp["steps"]:
            res = step["resources"]
            parts.append(
                f"{step['calls']:>6}{_cell(step['metrics']['uplink_ms']['p99']):>9}"
                f"{_cell(step['metrics']['downlink_ms']['p99']):>10}"
                f"{_cell(step['underrun_pct']):>11}"
                f"{_cell(step['targets']['lost_frames']['value']):>6}"
                f"{_cell(res.get('gateway_cpu_cores')):>9}"
                f"{_cell(res.get('gateway_cpu_s_per_call_min')):>18}"
                f"{_cell(res.get('gateway_rss_kb_per_call')):>9}"
                f"{_cell(_others(res)):>13}{_cell(res.get('machine_idle_cores')):>6}")
    return "\n".join(parts)


def _others(res: dict[str, Any]) -> float | None:
    """Cores the bench's own callers and agents (and a private Redis) used: they share the
    machine with the gateway."""
    parts = [res.get(f"{who}_cpu_cores") for who in ("agent", "bench", "redis")]
    return round(sum(p for p in parts if p is not None), 3) if parts[0] is not None else None
