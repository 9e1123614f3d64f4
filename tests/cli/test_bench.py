"""``telcoflow bench`` end to end at tiny scale, on our SDK and the published one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from telcoflow.audio import g711
from telcoflow.loadgen import agent as marker

LATENCIES = ("uplink_ms", "downlink_ms", "roundtrip_ms", "jitter_ms", "interrupt_ms",
             "setup_ms", "notify_ms", "call_in_ms", "answer_ms", "first_audio_ms")


def test_marker_levels_are_the_ulaw_codes_and_survive_both_codecs() -> None:
    decoded = np.frombuffer(g711.ulaw_decode_bytes(marker.ULAW_CODES), dtype="<i2")
    assert tuple(int(v) for v in decoded) == marker.LEVELS
    assert g711.ulaw_encode(decoded) == marker.ULAW_CODES
    pcm = marker.pcm16_frame(marker.BURST, 513, 70_000, 160)
    assert marker.read_pcm16(pcm) == (marker.BURST, 513, 70_000)
    ulaw = marker.ulaw_frame(marker.CALLER, 7, 12, 160)
    assert marker.read_ulaw(ulaw) == (marker.CALLER, 7, 12)
    # what the gateway does to a pcmu caller's frame on the way to the agent, and back
    assert g711.ulaw_decode_bytes(ulaw)[:24] == marker.pcm16_frame(marker.CALLER, 7, 12, 12)
    assert g711.ulaw_encode(np.frombuffer(g711.ulaw_decode_bytes(ulaw), "<i2")) == ulaw
    assert marker.read_pcm16(bytes(320)) is None


@pytest.fixture(scope="module")
def bench_json(refsdk_path: Path) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "telcoflow.cli.main", "bench", "--calls", "2", "--duration", "2",
         "--agent", "both", "--refsdk", str(refsdk_path), "--json"],
        capture_output=True, text=True, timeout=110)
    assert done.returncode == 0, done.stderr[-3000:]
    for prefix in ("tfk_", "tfp_"):  # the generated keys are never printed
        assert prefix not in done.stdout + done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


@pytest.mark.parametrize("agent", ["ours", "reference"])
def test_bench_measures_every_frame_of_both_sdks(bench_json: dict[str, object],
                                                 agent: str) -> None:
    runs = {run["agent"]: run for run in bench_json["runs"]}  # type: ignore[attr-defined]
    run = runs[agent]
    assert run["calls"] == run["answered"] == 2 and not run["setup_failures"]
    counts = run["counts"]
    assert counts["frames_sent"] == 2 * 100
    assert counts["uplink_received"] == counts["frames_sent"]
    for fault in ("uplink_lost", "uplink_duplicated", "uplink_reordered", "uplink_unmarked",
                  "downlink_lost", "downlink_duplicated", "downlink_reordered",
                  "downlink_foreign", "calls_without_agent_log"):
        assert counts[fault] == 0, fault
    assert counts["echoes_sent"] > 0 and counts["downlink_heard"] >= counts["echoes_sent"] - \
        counts["downlink_cut_by_interrupt"]
    assert counts["interrupts_measured"] == 2
    for name in LATENCIES:
        m = run["metrics"][name]
        assert m["n"] > 0, name
        assert m["p50"] <= m["p90"] <= m["p99"] <= m["max"], name
    assert run["metrics"]["uplink_ms"]["n"] == counts["frames_sent"]
    assert run["metrics"]["interrupt_ms"]["n"] == 2
    assert run["underrun_pct"] is not None and counts["talk_slots"] > 0
    assert set(run["targets"]) == {"uplink_p99_ms", "downlink_p99_beyond_playout_ms",
                                   "lost_frames", "underrun_pct", "interrupt_p99_ms"}
    assert run["targets"]["lost_frames"]["met"]
    resources = run["resources"]
    assert resources["gateway_cpu_s_per_call_min"] > 0
    assert resources["gateway_rss_mb"] > 0
    cdf = run["cdf"]["uplink_ms"]
    assert len(cdf) > 100 and cdf == sorted(cdf)


def test_bench_records_machine_and_command(bench_json: dict[str, object]) -> None:
    machine = bench_json["machine"]
    assert machine["cores"] >= 1 and machine["python"]  # type: ignore[index]
    assert bench_json["command"][:2] == ["telcoflow", "bench"]  # type: ignore[index]
    assert bench_json["config"]["codec"] == "pcm16"  # type: ignore[index]


def test_bench_pcmu_callers_arrive_bit_exact() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "telcoflow.cli.main", "bench", "--calls", "2", "--duration", "2",
         "--codec", "pcmu", "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-3000:]
    run = json.loads(done.stdout)["runs"][0]
    assert json.loads(done.stdout)["config"]["rate"] == 8000
    counts = run["counts"]
    # a marker that did not survive µ-law both ways would show as unmarked or foreign
    assert counts["uplink_received"] == counts["frames_sent"] == 200
    assert counts["uplink_unmarked"] == counts["downlink_foreign"] == 0
    assert counts["uplink_lost"] == counts["downlink_lost"] == 0
    assert counts["downlink_heard"] > 0
