"""Plots from saved ``telcoflow bench --json`` outputs (docs/benchmarks.md, issue 19).

    python bench/plot_runs.py downlink OUT.png LABEL=RUN.json [LABEL=RUN.json ...]
    python bench/plot_runs.py floor OUT.png LABEL=RUN.json [LABEL=RUN.json ...]

``downlink``: each run's downlink latency (``send_audio`` → heard) as a quantile
curve, log scale. ``floor``: each ``--floor`` run's gateway and floor CPU per
call-minute side by side, with the ratio above them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def _runs(pairs: list[str]) -> list[tuple[str, dict[str, Any]]]:
    runs = []
    for pair in pairs:
        label, _, path = pair.partition("=")
        if not path:
            sys.exit(f"expected LABEL=RUN.json, not {pair!r}")
        runs.append((label, json.loads(Path(path).read_text())))
    return runs


def downlink(out: Path, runs: list[tuple[str, dict[str, Any]]]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4))
    for label, result in runs:
        values = result["runs"][0]["cdf"]["downlink_ms"]
        quantiles = [100 * i / (len(values) - 1) for i in range(len(values))]
        ax.plot(quantiles, [max(v, 1.0) for v in values], label=label)
    ax.set_yscale("log")
    ax.set_xlabel("percentile of the agent's frames heard")
    ax.set_ylabel("downlink: send_audio() → heard (ms, log)")
    ax.axhline(400, color="grey", linestyle="--", linewidth=1, label="400 ms (issue 19)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def floor(out: Path, runs: list[tuple[str, dict[str, Any]]]) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    for i, (_, result) in enumerate(runs):
        measured = result["floor"]
        gw, fl = measured["gateway_cpu_s_per_call_min"], measured["cpu_s_per_call_min"]
        ax.bar(i - 0.2, gw, 0.4, color="tab:blue", label="gateway" if i == 0 else None)
        ax.bar(i + 0.2, fl, 0.4, color="tab:grey", label="floor" if i == 0 else None)
        ax.text(i, gw * 1.02, f"{gw / fl:.2f}×", ha="center", fontsize=8)
    ax.set_xticks(range(len(runs)), [label for label, _ in runs], fontsize=8)
    ax.set_ylabel("CPU-s per call-minute")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[0] not in ("downlink", "floor"):
        sys.exit(__doc__)
    {"downlink": downlink, "floor": floor}[argv[0]](Path(argv[1]), _runs(argv[2:]))


if __name__ == "__main__":
    main(sys.argv[1:])
