"""Merge what the phones heard with what the agents logged; the figures of one bench step.

All times are ``time.perf_counter()`` readings taken in different processes:
on Linux that is CLOCK_MONOTONIC, one clock for the whole machine.

Definitions (per 20 ms frame unless said otherwise):

- uplink: the phone writes a frame → the agent's ``audio_stream()`` yields it;
- downlink: the agent calls ``send_audio()`` → the phone receives the frame;
- jitter: how late the phone receives a frame against the gateway's ideal
  20 ms grid (the grid's offset is the earliest arrival within ±1 s);
- underrun: a silent frame the gateway inserted mid-talkspurt although the
  frame that was played next had been handed to ``send_audio()`` before that
  silent slot was due (silences before a talkspurt starts are the prebuffer's
  by design and do not count);
- interrupt: ``clear_send_audio_buffer()`` is called → the first frame the
  phone receives that is silence or audio handed over after the interrupt;
- lost / duplicated / reordered: caller frames missing at the agent or echoes
  missing at the phone, seen twice, or seen after a later one (echoes still
  queued when the agent interrupts are dropped by request: counted apart).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .phones import HEARD_BURST, HEARD_CALLER, HEARD_OTHER, HEARD_SILENCE, BenchPhone

FloatArray = npt.NDArray[np.float64]
GRID_WINDOW = 50  # frames either side when estimating the delivery grid
CDF_POINTS = 201


def summary(values_ms: list[float] | FloatArray) -> dict[str, float | int | None]:
    arr = np.asarray(values_ms, dtype=np.float64)
    if arr.size == 0:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    p50, p90, p99 = np.percentile(arr, [50, 90, 99])
    return {"n": int(arr.size), "p50": _r(p50), "p90": _r(p90), "p99": _r(p99),
            "max": _r(arr.max()), "mean": _r(arr.mean())}


def cdf(values_ms: FloatArray) -> list[float]:
    """The values at evenly spaced quantiles 0..1, enough to plot a CDF."""
    if values_ms.size == 0:
        return []
    return [_r(v) for v in np.quantile(values_ms, np.linspace(0, 1, CDF_POINTS))]


def _r(value: float | np.floating[Any]) -> float:
    return round(float(value), 3)


def _order_faults(seqs: npt.NDArray[np.int64]) -> tuple[int, int]:
    """(duplicates, reordered) in a sequence of frame numbers as received."""
    if seqs.size == 0:
        return 0, 0
    duplicates = int(seqs.size - np.unique(seqs).size)
    running_max = np.maximum.accumulate(seqs)
    reordered = int(np.count_nonzero(seqs[1:] < running_max[:-1])) - duplicates
    return duplicates, max(0, reordered)


class CallResult:
    """One call's frames, matched up; accumulates into :class:`StepFigures`."""

    def __init__(self, phone: BenchPhone, log: dict[str, Any] | None) -> None:
        self.phone, self.log = phone, log or {}
        self.sent = np.frombuffer(phone.sent_t, dtype=np.float64)
        self.heard_t = np.frombuffer(phone.heard_t, dtype=np.float64)
        self.heard_kind = np.frombuffer(phone.heard_kind, dtype=np.int8)
        self.heard_seq = np.frombuffer(phone.heard_seq, dtype=np.int64).astype(np.int64)
        rx_seq = np.asarray(self.log.get("rx_seq", []), dtype=np.int64)
        rx_t = np.asarray(self.log.get("rx_t", []), dtype=np.float64)
        frames = self.sent.size
        valid = (rx_seq >= 0) & (rx_seq < frames)
        self.rx_seq, self.rx_t = rx_seq[valid], rx_t[valid]
        self.rx_unmarked = int(np.count_nonzero(~valid))
        tx_seq = np.asarray(self.log.get("tx_seq", []), dtype=np.int64)
        keep = (tx_seq >= 0) & (tx_seq < frames)
        self.tx_seq = tx_seq[keep]
        self.tx_t = np.asarray(self.log.get("tx_t", []), dtype=np.float64)[keep]
        self.tx_start = np.asarray(self.log.get("tx_start", []), dtype=np.int8)[keep]

    def uplink_ms(self) -> FloatArray:
        return (self.rx_t - self.sent[self.rx_seq]) * 1000

    def _echo(self) -> tuple[FloatArray, npt.NDArray[np.int64], FloatArray]:
        """(send_audio time per frame number, heard echo numbers, their arrival times)."""
        sent_back = np.full(self.sent.size, np.nan)
        sent_back[self.tx_seq] = self.tx_t
        mask = self.heard_kind == HEARD_CALLER
        return sent_back, self.heard_seq[mask], self.heard_t[mask]

    def downlink_ms(self) -> FloatArray:
        sent_back, seqs, times = self._echo()
        ok = (seqs < sent_back.size)
        lat = (times[ok] - sent_back[seqs[ok]]) * 1000
        return lat[~np.isnan(lat)]

    def roundtrip_ms(self) -> FloatArray:
        _, seqs, times = self._echo()
        ok = seqs < self.sent.size
        return (times[ok] - self.sent[seqs[ok]]) * 1000

    def grid(self) -> FloatArray:
        """The ideal tick time of every heard frame (one frame per gateway tick)."""
        t = self.heard_t
        if t.size == 0:
            return t
        offset = t - 0.02 * np.arange(t.size)
        padded = np.pad(offset, GRID_WINDOW, mode="edge")
        windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * GRID_WINDOW + 1)
        return np.asarray(windows.min(axis=1) + 0.02 * np.arange(t.size), dtype=np.float64)

    def jitter_ms(self) -> FloatArray:
        return (self.heard_t - self.grid()) * 1000

    def underruns(self) -> tuple[int, int]:
        """(underrun slots, slots inside talkspurts)."""
        kind = self.heard_kind
        voiced = np.flatnonzero((kind == HEARD_CALLER) | (kind == HEARD_BURST))
        if voiced.size == 0:
            return 0, 0
        sent_back, start = np.full(self.sent.size, np.nan), np.zeros(self.sent.size, np.int8)
        sent_back[self.tx_seq], start[self.tx_seq] = self.tx_t, self.tx_start
        burst_t = float(self.log.get("burst_t", [np.inf])[0]) if self.log.get("burst_t") \
            else np.inf
        # for each voiced frame: when it was handed over, and whether it opens a talkspurt
        handed = np.where(kind[voiced] == HEARD_BURST, burst_t,
                          sent_back[np.minimum(self.heard_seq[voiced], self.sent.size - 1)])
        opens = np.where(kind[voiced] == HEARD_BURST, 0,
                         start[np.minimum(self.heard_seq[voiced], self.sent.size - 1)])
        silent = np.flatnonzero(kind == HEARD_SILENCE)
        silent = silent[(silent > voiced[0]) & (silent < voiced[-1])]
        nxt = np.searchsorted(voiced, silent)
        due = self.grid()[silent]
        under = (opens[nxt] == 0) & (handed[nxt] < due)
        # silence before a talkspurt opens (after an interrupt) is a pause, not talk
        talk = int(voiced[-1] - voiced[0] + 1 - np.count_nonzero(opens[nxt] == 1))
        return int(np.count_nonzero(under)), talk

    @property
    def interrupted_at(self) -> float | None:
        interrupted = self.log.get("interrupt") or []
        return float(interrupted[0]) if interrupted else None

    def interrupt_ms(self) -> float | None:
        """To the first frame that is silence or audio handed over after the interrupt."""
        at = self.interrupted_at
        if at is None:
            return None
        sent_back, _, _ = self._echo()
        kind, seq = self.heard_kind, np.minimum(self.heard_seq, self.sent.size - 1)
        fresh = (kind == HEARD_SILENCE) | ((kind == HEARD_CALLER) & (sent_back[seq] > at))
        after = np.flatnonzero((self.heard_t > at) & fresh)
        if after.size == 0:
            return None
        return float((self.heard_t[after[0]] - at) * 1000)

    def counts(self) -> dict[str, int]:
        up_dup, up_reorder = _order_faults(self.rx_seq)
        _, heard, _ = self._echo()
        down_dup, down_reorder = _order_faults(heard)
        # echoes still queued when the agent interrupts are dropped on purpose
        at = self.interrupted_at
        cut = self.tx_t < at if at is not None else np.zeros(self.tx_t.size, bool)
        return {
            "frames_sent": int(self.sent.size),
            "uplink_received": int(self.rx_seq.size),
            "uplink_lost": int(self.sent.size - np.unique(self.rx_seq).size),
            "uplink_duplicated": up_dup, "uplink_reordered": up_reorder,
            "uplink_unmarked": self.rx_unmarked,
            "echoes_sent": int(self.tx_seq.size),
            "downlink_heard": int(heard.size),
            "downlink_lost": int(np.setdiff1d(self.tx_seq[~cut], heard).size),
            "downlink_cut_by_interrupt": int(np.setdiff1d(self.tx_seq[cut], heard).size),
            "downlink_duplicated": down_dup, "downlink_reordered": down_reorder,
            "downlink_foreign": int(np.count_nonzero(self.heard_kind == HEARD_OTHER)),
            "frames_heard": int(self.heard_t.size),
        }

    def setup(self) -> dict[str, float | None]:
        ev, ag = self.phone.events, self.log.get("events", {})

        def gap(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else (b - a) * 1000

        first_sent = float(self.sent[0]) if self.sent.size else None
        echo = self.heard_t[self.heard_kind == HEARD_CALLER]
        return {"setup_ms": gap(ev.get("dial"), ev.get("answered")),
                "notify_ms": gap(ev.get("dial"), ag.get("notify")),
                "call_in_ms": gap(ag.get("notify"), ag.get("call_in")),
                "answer_ms": gap(ag.get("call_in"), ag.get("answered")),
                "first_audio_ms": gap(first_sent, float(echo[0]) if echo.size else None)}


def step_figures(phones: list[BenchPhone], logs: dict[str, Any]) -> dict[str, Any]:
    """Every per-frame and per-call metric of one step, summarised."""
    results = [CallResult(p, logs.get(str(p.index))) for p in phones]
    series: dict[str, list[FloatArray]] = {"uplink_ms": [], "downlink_ms": [],
                                           "roundtrip_ms": [], "jitter_ms": []}
    per_call: dict[str, list[float]] = {k: [] for k in (
        "interrupt_ms", "setup_ms", "notify_ms", "call_in_ms", "answer_ms", "first_audio_ms")}
    counts: dict[str, int] = {}
    under = talk = missing_logs = 0
    for res in results:
        missing_logs += res.log == {}
        series["uplink_ms"].append(res.uplink_ms())
        series["downlink_ms"].append(res.downlink_ms())
        series["roundtrip_ms"].append(res.roundtrip_ms())
        series["jitter_ms"].append(res.jitter_ms())
        u, t = res.underruns()
        under, talk = under + u, talk + t
        if (ms := res.interrupt_ms()) is not None:
            per_call["interrupt_ms"].append(ms)
        for key, value in res.setup().items():
            if value is not None:
                per_call[key].append(value)
        for key, n in res.counts().items():
            counts[key] = counts.get(key, 0) + n
    joined = {k: np.concatenate(v) if v else np.zeros(0) for k, v in series.items()}
    metrics = {k: summary(v) for k, v in joined.items()}
    metrics.update({k: summary(v) for k, v in per_call.items()})
    counts.update(underrun_slots=under, talk_slots=talk, calls_without_agent_log=missing_logs,
                  interrupts_measured=len(per_call["interrupt_ms"]))
    return {"metrics": metrics, "counts": counts,
            "underrun_pct": round(100.0 * under / talk, 4) if talk else None,
            "cdf": {k: cdf(joined[k]) for k in ("uplink_ms", "downlink_ms")}}
