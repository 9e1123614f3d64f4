"""Run ``telcoflow bench`` and write docs/benchmarks.md with its figures and plots.

    .venv/bin/python bench/report.py --calls 100 --duration 30 --ramp
    .venv/bin/python bench/report.py --from out/bench     # re-render saved results

It runs our SDK and the published 1.0.0 side by side at ``--calls`` (with
py-spy sampling the gateway, if installed), then with ``--ramp`` steps our
SDK's calls up to find the capacity. Raw JSON and the profile go to
out/bench/; plots to docs/img/. Only the block between the report markers
in docs/benchmarks.md is rewritten: the analysis around it is kept.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.refsdk import REFSDK_DIR, ensure_refsdk  # noqa: E402

OUT = ROOT / "out" / "bench"
DOC = ROOT / "docs" / "benchmarks.md"
IMG = ROOT / "docs" / "img"
BEGIN, END = "<!-- report:begin -->", "<!-- report:end -->"
WHO = {"ours": "our SDK", "reference": "published SDK 1.0.0"}
IDLE_LEAF = "Runner.run (asyncio/runners.py)"  # uvloop's C loop: polling, reads, idle

LATENCY_ROWS = (("uplink_ms", "uplink latency"), ("downlink_ms", "downlink latency"),
                ("roundtrip_ms", "round trip (caller → agent → caller)"),
                ("jitter_ms", "downlink jitter (vs 20 ms grid)"),
                ("interrupt_ms", "interrupt → silence"),
                ("setup_ms", "call set-up: dial → answered"),
                ("notify_ms", "  dial → session.notify"), ("call_in_ms", "  notify → call.in"),
                ("answer_ms", "  call.in → answer() done"),
                ("first_audio_ms", "first frame → first echo heard"))


def bench(args: list[str]) -> tuple[list[str], dict[str, Any]]:
    cmd = [sys.executable, "-m", "telcoflow.cli.main", "bench", *args, "--json"]
    print("running:", " ".join(["telcoflow", "bench", *args, "--json"]), flush=True)
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        sys.exit(f"bench failed:\n{done.stderr[-4000:]}")
    return ["telcoflow", "bench", *args, "--json"], json.loads(done.stdout)


# ── plots ───────────────────────────────────────────────────────────────────
def plot_cdfs(compare: dict[str, Any]) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, key, title in ((axes[0], "uplink_ms", "uplink: phone → agent's audio_stream()"),
                           (axes[1], "downlink_ms", "downlink: send_audio() → phone")):
        for run in compare["runs"]:
            values = run["cdf"][key]
            if values:
                quantiles = [i / (len(values) - 1) for i in range(len(values))]
                ax.plot(values, quantiles, label=f"{WHO[run['agent']]}, {run['answered']} calls")
        ax.set_xscale("log")
        ax.set_xlabel("latency (ms, log scale)")
        ax.set_ylabel("fraction of frames")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    path = IMG / "bench_latency_cdf.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_ramp(ramp: dict[str, Any]) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = ramp["steps"]
    calls = [s["calls"] for s in steps]
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(calls, [s["metrics"]["uplink_ms"]["p99"] for s in steps], "o-", label="p99 uplink")
    ax.plot(calls, [s["metrics"]["jitter_ms"]["p99"] for s in steps], "s-",
            label="p99 downlink jitter")
    ax.axhline(20, color="tab:blue", linestyle="--", linewidth=1, label="p99 uplink limit")
    ax.set_xlabel("concurrent calls")
    ax.set_ylabel("ms")
    ax.set_yscale("log")
    ax2 = ax.twinx()
    ax2.plot(calls, [s["underrun_pct"] or 0 for s in steps], "r^:", label="underruns (%)")
    ax2.axhline(0.1, color="r", linestyle="--", linewidth=1, label="underrun limit")
    ax2.set_ylabel("underruns, % of talk slots", color="r")
    ax.legend(loc="upper left")
    ax2.legend(loc="lower right")
    ax.set_title(f"capacity ramp ({WHO[ramp['agent']]}): latency and underruns vs calls")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    latency = IMG / "bench_ramp_latency.png"
    fig.savefig(latency, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    per_call = [s["resources"].get("gateway_cpu_s_per_call_min") for s in steps]
    ax.plot(calls, per_call, "o-", label="gateway CPU s per call-minute")
    ax.set_xlabel("concurrent calls")
    ax.set_ylabel("CPU seconds per call-minute")
    ax2 = ax.twinx()
    ax2.plot(calls, [s["resources"].get("gateway_cpu_cores") for s in steps], "s:", color="g",
             label="gateway cores busy")
    ax2.set_ylabel("cores busy", color="g")
    ax.legend(loc="upper left")
    ax2.legend(loc="lower right")
    ax.set_title("gateway CPU per call vs calls")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    cpu = IMG / "bench_ramp_cpu.png"
    fig.savefig(cpu, dpi=110)
    plt.close(fig)
    return [latency, cpu]


# ── profile ─────────────────────────────────────────────────────────────────
def _function(frame: str) -> str:
    """'f (path/to/mod.py:12)' → 'f (path/to/mod.py)'."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def profile_tables(raw: Path, top: int = 12) -> str:
    own: Counter[str] = Counter()
    within: Counter[str] = Counter()
    busy = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = [_function(f) for f in stack.split(";")]
        n = int(count)
        if frames[-1] == IDLE_LEAF:
            idle += n
            continue
        busy += n
        own[frames[-1]] += n
        for name in set(frames):
            within[name] += n
    if not busy:
        return "(no samples)"
    lines = [f"{busy} samples in Python code, {idle} in the event loop's own C code "
             "(polling, socket reads, idle; uvloop).", "",
             "| self | function |", "|---:|---|"]
    lines += [f"| {100 * n / busy:.1f} % | `{name}` |" for name, n in own.most_common(top)]
    lines += ["", "| inclusive | function |", "|---:|---|"]
    skip = ("<module>", "main (", "run (", "_run_", "Runner.run")
    lines += [f"| {100 * n / busy:.1f} % | `{name}` |" for name, n in within.most_common(top + 8)
              if not name.startswith(skip)][:top]
    return "\n".join(lines)


# ── markdown ────────────────────────────────────────────────────────────────
def _v(value: Any) -> str:
    if value is None:
        return "–"
    if not isinstance(value, float):
        return str(value)
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 10 \
        else f"{value:.2f}"


def comparison(compare: dict[str, Any]) -> str:
    runs = compare["runs"]
    head = " | ".join(f"{WHO[r['agent']]} p50 | p90 | p99 | max" for r in runs)
    lines = [f"| metric (ms) | {head} |", "|---|" + "---:|" * (4 * len(runs))]
    for key, label in LATENCY_ROWS:
        cells = " | ".join(" | ".join(_v(r["metrics"][key][q]) for q in ("p50", "p90", "p99",
                                                                          "max")) for r in runs)
        lines.append(f"| {label} | {cells} |")
    lines += ["", "| frames and resources | " + " | ".join(WHO[r["agent"]] for r in runs) + " |",
              "|---|" + "---:|" * len(runs)]
    columns = [frames_and_resources(r) for r in runs]
    for i, (label, _) in enumerate(columns[0]):
        lines.append(f"| {label} | " + " | ".join(col[i][1] for col in columns) + " |")
    lines += ["", "| target (issue 6) | " + " | ".join(WHO[r["agent"]] for r in runs) + " |",
              "|---|" + "---|" * len(runs)]
    for key in runs[0]["targets"]:
        target = runs[0]["targets"][key]["target"]
        cells = " | ".join(f"{_v(r['targets'][key]['value'])} "
                           f"{'✅' if r['targets'][key]['met'] else '❌'}" for r in runs)
        lines.append(f"| {key} ≤ {target} | {cells} |")
    return "\n".join(lines)


def frames_and_resources(run: dict[str, Any]) -> list[tuple[str, str]]:
    c, res = run["counts"], run["resources"]
    return [
        ("calls answered", f"{run['answered']} of {run['calls']}"),
        ("caller frames sent", str(c["frames_sent"])),
        ("lost uplink / downlink", f"{c['uplink_lost']} / {c['downlink_lost']}"),
        ("duplicated / reordered",
         f"{c['uplink_duplicated'] + c['downlink_duplicated']} / "
         f"{c['uplink_reordered'] + c['downlink_reordered']}"),
        ("echoes cut by the interrupt (by request)", str(c["downlink_cut_by_interrupt"])),
        ("underruns, % of talk slots", f"{_v(run['underrun_pct'])} % ({c['underrun_slots']})"),
        ("gateway CPU, s per call-minute", _v(res.get("gateway_cpu_s_per_call_min"))),
        ("gateway cores busy", _v(res.get("gateway_cpu_cores"))),
        ("gateway kernel (sys) share of its CPU", _v(res.get("gateway_sys_share"))),
        ("gateway RSS / per call", f"{_v(res.get('gateway_rss_mb'))} MB / "
                                   f"{_v(res.get('gateway_rss_kb_per_call'))} kB"),
        ("agent processes", str(res.get("agent_processes"))),
        ("agent CPU, s per call-minute", _v(res.get("agent_cpu_s_per_call_min"))),
        ("callers (bench process) cores busy", _v(res.get("bench_cpu_cores"))),
        ("whole machine: cores busy / idle / stolen by the hypervisor",
         f"{_v(res.get('machine_busy_cores'))} / {_v(res.get('machine_idle_cores'))} / "
         f"{_v(res.get('machine_steal_cores'))}"),
    ]


def ramp_table(ramp: dict[str, Any]) -> str:
    lines = [f"Capacity (agents on {WHO[ramp['agent']]}): **{ramp['capacity']} calls** "
             f"(stopped by: {ramp['stopped_by'] or 'the last step passed'}).", "",
             "| calls | p99 uplink | p99 downlink | p99 jitter | underruns | lost | gateway cores "
             "| gateway CPU s / call-min | gateway kB / call | agent cores | bench cores "
             "| machine busy / stolen |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in ramp["steps"]:
        res, m = s["resources"], s["metrics"]
        lines.append(
            f"| {s['calls']} | {_v(m['uplink_ms']['p99'])} | {_v(m['downlink_ms']['p99'])} | "
            f"{_v(m['jitter_ms']['p99'])} | {_v(s['underrun_pct'])} % | "
            f"{s['targets']['lost_frames']['value']} | {_v(res.get('gateway_cpu_cores'))} | "
            f"{_v(res.get('gateway_cpu_s_per_call_min'))} | "
            f"{_v(res.get('gateway_rss_kb_per_call'))} | {_v(res.get('agent_cpu_cores'))} | "
            f"{_v(res.get('bench_cpu_cores'))} | {_v(res.get('machine_busy_cores'))} / "
            f"{_v(res.get('machine_steal_cores'))} |")
    return "\n".join(lines)


def machine_text(data: dict[str, Any]) -> str:
    m = data["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    return (f"{m['cores']} cores ({m['cpu']}), Python {m['python']}, {m['platform']}; "
            f"{versions}.")


def render(commands: list[list[str]], compare: dict[str, Any], ramp: dict[str, Any] | None,
           profile: Path | None, images: list[Path]) -> str:
    parts = [BEGIN,
             f"_Generated by `bench/report.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC._", "",
             f"**Machine:** {machine_text(compare)} Gateway, agents and callers share it.", "",
             "**Commands:**", "", "```sh", *(" ".join(c) for c in commands), "```", "",
             f"### {compare['runs'][0]['calls']} calls, "
             f"{compare['config']['codec']} at {compare['config']['rate']} Hz, "
             f"{compare['config']['duration_s']:g} s of talk", "", comparison(compare), "",
             f"![latency CDFs](img/{images[0].name})", ""]
    if ramp is not None:
        parts += ["### Capacity ramp", "", ramp_table(ramp), ""]
        parts += [f"![{p.stem}](img/{p.name})" for p in images[1:]] + [""]
    if profile is not None and profile.exists():
        parts += [f"### Gateway profile (py-spy, {compare['runs'][0]['calls']} calls, "
                  "our SDK's agents)", "", profile_tables(profile), ""]
    parts.append(END)
    return "\n".join(parts)


def write_doc(block: str) -> None:
    text = DOC.read_text() if DOC.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(head + block + tail)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--duration", type=float, default=30.0)
    parser.add_argument("--ramp", action="store_true", help="also find the capacity")
    parser.add_argument("--ramp-duration", type=float, help="seconds per ramp step "
                        "(default: --duration)")
    parser.add_argument("--steps", default="25,50,100,200,300,400,500,600,800,1000")
    parser.add_argument("--from", dest="source", metavar="DIR",
                        help="re-render from a directory of saved results")
    args = parser.parse_args()
    source = Path(args.source) if args.source else OUT
    if not args.source:
        OUT.mkdir(parents=True, exist_ok=True)
        profile = OUT.relative_to(ROOT) / "gateway-profile.txt"
        spy = shutil.which("py-spy") or Path(sys.executable).parent / "py-spy"
        extra = ["--profile", str(profile)] if Path(spy).exists() else []
        runs = [bench(["--calls", str(args.calls), "--duration", f"{args.duration:g}",
                       "--agent", "both", "--refsdk", str(ensure_refsdk(REFSDK_DIR)), *extra])]
        if args.ramp:
            runs.append(bench(["--ramp", "--steps", args.steps, "--ramp-extra", "2", "--duration",
                               f"{args.ramp_duration or args.duration:g}"]))
        (OUT / "commands.json").write_text(json.dumps([c for c, _ in runs]))
        (OUT / "compare.json").write_text(json.dumps(runs[0][1]))
        if args.ramp:
            (OUT / "ramp.json").write_text(json.dumps(runs[1][1]))
    commands = json.loads((source / "commands.json").read_text())
    compare = json.loads((source / "compare.json").read_text())
    ramp_file = source / "ramp.json"
    ramp = json.loads(ramp_file.read_text())["ramps"][0] if ramp_file.exists() else None
    IMG.mkdir(parents=True, exist_ok=True)
    images = [plot_cdfs(compare), *(plot_ramp(ramp) if ramp is not None else [])]
    write_doc(render(commands, compare, ramp, source / "gateway-profile.txt", images))
    print(f"wrote {DOC.relative_to(ROOT)} and {len(images)} plots in {IMG.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
