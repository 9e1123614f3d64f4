"""The gateway's Prometheus metrics (``prometheus-client``), on a registry of its own.

:class:`GatewayMetrics` is the engine's :class:`~telcoflow.engine.ports.CallObserver`:
events (a call offered, answered, ended; an interrupt heard; a media tick) update
counters and histograms as they happen. What is state — calls up now, connections
open, audio queued, and the media each live call has moved so far — is read when
Prometheus scrapes (:class:`_StateCollector`), not kept up to date on every frame:
the per-frame path has no metric call at all, and each media tick costs two
(its lateness and its duration).

Frame counters (``telcoflow_media_frames_total`` and the rest) are the ended
calls' final counts plus every live call's count at the scrape; a call's counts
move from one to the other in one step of the engine, so they only grow.

Nothing here is a credential: labels are short fixed codes (ingress = the leg's
``network``, outcome, plane, reason). Several gateways in one process (tests)
each have their own registry.
"""

from __future__ import annotations

import importlib.metadata
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

from ..engine import Engine
from ..engine.ports import CallReport
from .stalls import StallWatch

PLANES = ("session_manager", "voice", "phone", "quic")  # connections are counted by these

# call set-up: an agent answering takes from ~50 ms (in-process) to the ring timeout
SETUP_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)
DURATION_BUCKETS = (1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
# interrupt → the caller's next frame: one phase wait (≤ 20 ms) plus the tick's lateness
INTERRUPT_BUCKETS = (0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.06, 0.1, 0.2, 0.5)
# a media tick: ~20 µs empty, ~1 ms at a few hundred calls
TICK_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05)
LATENESS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25)
JITTER_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16)
# a leg's average quality score over the call (0..100; the seed's alert threshold is 60)
SCORE_BUCKETS = (20.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 95.0, 100.0)
SNR_BUCKETS = (0.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 60.0)


@dataclass(slots=True)
class _Media:
    """Media counts summed over calls (one per ingress)."""

    to_agent: int = 0
    to_phone: int = 0
    agent_played: int = 0
    underruns: int = 0
    rejected: int = 0
    lost: int = 0
    late: int = 0
    concealed: int = 0
    compressed_s: float = 0.0
    skipped_quiet_s: float = 0.0
    cut_late_s: float = 0.0

    def add(self, r: CallReport) -> None:
        self.compressed_s += r.compressed_s
        self.skipped_quiet_s += r.skipped_quiet_s
        self.cut_late_s += r.cut_late_s
        self.to_agent += r.to_agent_frames
        self.to_phone += r.to_phone_frames
        self.agent_played += r.agent_frames_played
        self.underruns += r.underruns
        self.rejected += r.agent_audio_rejected
        self.lost += r.lost
        self.late += r.late
        self.concealed += r.concealed

    def copy(self) -> _Media:
        return _Media(self.to_agent, self.to_phone, self.agent_played, self.underruns,
                      self.rejected, self.lost, self.late, self.concealed, self.compressed_s,
                      self.skipped_quiet_s, self.cut_late_s)


@dataclass(slots=True)
class Sources:
    """Where the scrape-time figures come from (the gateway fills it in at start)."""

    engine: Engine
    auth_failures: Callable[[], Iterable[tuple[tuple[str, str], int]]]
    tcp_connections: Callable[[], int] = lambda: 0
    registry_up: Callable[[], bool] | None = None  # a shared registry (Redis) answers
    stalls: StallWatch | None = None  # why media ticks ran late


class GatewayMetrics:
    """The engine's observer, and everything ``/metrics`` shows."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        r = self.registry
        call = ["ingress", "direction"]
        self._offered = Counter("telcoflow_calls_offered", "Calls that arrived (inbound) or "
                                "were dialled (outbound), refused ones included.", call,
                                registry=r)
        self._ended = Counter("telcoflow_calls_ended", "Calls ended, by outcome and whether "
                              "media started.", [*call, "outcome", "answered"], registry=r)
        self._setup = Histogram("telcoflow_call_setup_seconds", "From a call's arrival (or "
                                "dialling) to its answer.", call, buckets=SETUP_BUCKETS,
                                registry=r)
        self._duration = Histogram("telcoflow_call_duration_seconds", "From a call's arrival "
                                   "(or dialling) to its end, refused calls excepted.", call,
                                   buckets=DURATION_BUCKETS, registry=r)
        self._interrupt = Histogram("telcoflow_interrupt_seconds", "From an agent.interrupt "
                                    "to the caller's next frame without the dropped audio.",
                                    buckets=INTERRUPT_BUCKETS, registry=r)
        self._tick = Histogram("telcoflow_media_tick_seconds", "Duration of one media tick "
                               "(every call due in it).", buckets=TICK_BUCKETS, registry=r)
        self._lateness = Histogram("telcoflow_media_tick_lateness_seconds", "How late a media "
                                   "tick ran after it was due.", buckets=LATENESS_BUCKETS,
                                   registry=r)
        self._jitter = Histogram("telcoflow_phone_jitter_seconds", "Interarrival jitter of the "
                                 "phone leg's audio at the call's end (legs with a jitter "
                                 "buffer: RTP).", ["ingress"], buckets=JITTER_BUCKETS,
                                 registry=r)
        self._alerts = Counter("telcoflow_quality_alerts", "Quality alerts raised on a call's "
                               "leg (caller, agent), by kind (low_snr, high_thd, clipping, "
                               "low_quality_score).", ["leg", "kind"], registry=r)
        self._score = Histogram("telcoflow_call_quality_score", "A leg's average quality "
                                "score (0-100) over an ended call, legs that spoke only.",
                                ["leg"], buckets=SCORE_BUCKETS, registry=r)
        self._snr = Histogram("telcoflow_call_snr_db", "A leg's average SNR over an ended "
                              "call, legs that spoke only.", ["leg"], buckets=SNR_BUCKETS,
                              registry=r)
        self.registry_errors = Counter("telcoflow_registry_errors", "Errors talking to the "
                                       "shared session registry (Redis), by operation.",
                                       ["operation"], registry=r)
        # WebSocket connections open now, by plane (the gateway counts them)
        self.connections: dict[str, int] = dict.fromkeys(PLANES, 0)
        self.sources: Sources | None = None
        self._ended_media: dict[str, _Media] = {}
        self._tick_started = 0.0
        self._perf = time.perf_counter
        r.register(_StateCollector(self))

    # ── CallObserver ─────────────────────────────────────────────────────────
    def call_offered(self, call_id: str | None, ingress: str, outbound: bool) -> None:
        self._offered.labels(ingress, _direction(outbound)).inc()

    def call_answered(self, call_id: str, ingress: str, outbound: bool, setup_s: float) -> None:
        self._setup.labels(ingress, _direction(outbound)).observe(setup_s)

    def call_ended(self, report: CallReport) -> None:
        direction = _direction(report.outbound)
        self._ended.labels(report.ingress, direction, report.outcome,
                           "true" if report.answered else "false").inc()
        if report.call_id is None:
            return  # refused on arrival: no duration, no media
        self._duration.labels(report.ingress, direction).observe(report.duration_s)
        media = self._ended_media.get(report.ingress)
        if media is None:
            media = self._ended_media[report.ingress] = _Media()
        media.add(report)
        if report.jitter_ms is not None:
            self._jitter.labels(report.ingress).observe(report.jitter_ms / 1000)
        for leg, q in (report.quality or {}).items():
            if isinstance(q, dict) and q.get("averageScore") is not None:
                self._score.labels(leg).observe(q["averageScore"])
                if q.get("averageSnrDb") is not None:
                    self._snr.labels(leg).observe(q["averageSnrDb"])

    def interrupt_done(self, seconds: float) -> None:
        self._interrupt.observe(seconds)

    def media_tick_started(self, lateness_s: float, sub_ticks: int) -> None:
        self._lateness.observe(lateness_s)
        self._tick_started = self._perf()

    def media_tick_done(self) -> None:
        self._tick.observe(self._perf() - self._tick_started)

    def quality_alert(self, leg: str, kind: str) -> None:
        self._alerts.labels(leg, kind).inc()

    # ── the gateway's counts ─────────────────────────────────────────────────
    def connection_opened(self, plane: str) -> None:
        self.connections[plane] = self.connections.get(plane, 0) + 1

    def connection_closed(self, plane: str) -> None:
        self.connections[plane] -= 1

    # ── exposition ───────────────────────────────────────────────────────────
    def render(self, accept: str = "") -> tuple[bytes, str]:
        """The scrape's body and content type (OpenMetrics if ``accept`` asks for it)."""
        encode, content_type = choose_encoder(accept)
        return encode(self.registry), content_type

    def media_totals(self, live: list[CallReport]) -> dict[str, _Media]:
        totals = {ingress: media.copy() for ingress, media in self._ended_media.items()}
        for report in live:
            media = totals.get(report.ingress)
            if media is None:
                media = totals[report.ingress] = _Media()
            media.add(report)
        return totals


class _StateCollector(Collector):
    """What is read at scrape time (see the module documentation)."""

    def __init__(self, metrics: GatewayMetrics) -> None:
        self._m = metrics

    def collect(self) -> Iterator[Metric]:
        m = self._m
        info = GaugeMetricFamily("telcoflow_info", "The gateway's version.", labels=["version"])
        info.add_metric([_version()], 1)
        yield info
        conns = GaugeMetricFamily("telcoflow_connections", "WebSocket connections open now, "
                                  "by plane.", labels=["plane"])
        for plane, count in sorted(m.connections.items()):
            conns.add_metric([plane], count)
        yield conns
        sources = m.sources
        if sources is None:
            return
        yield GaugeMetricFamily("telcoflow_tcp_connections", "Connections on the gateway's "
                                "port now (HTTP, WebSocket and closing).",
                                value=sources.tcp_connections())
        failures = CounterMetricFamily("telcoflow_auth_failures", "Refused credentials, by "
                                       "plane and reason.", labels=["plane", "reason"])
        for (plane, reason), count in sorted(sources.auth_failures()):
            failures.add_metric([plane, reason], count)
        yield failures
        if sources.registry_up is not None:
            yield GaugeMetricFamily("telcoflow_registry_up", "1 while the shared session "
                                    "registry (Redis) answers; 0 while it does not (new calls "
                                    "are refused).", value=int(sources.registry_up()))
        engine = sources.engine
        live = engine.live_reports()
        yield from _calls_active(live)
        yield from _media(m.media_totals(live))
        queued = [r.playout_queued_s for r in live]
        yield GaugeMetricFamily("telcoflow_playout_queued_seconds", "Agent audio waiting in "
                                "the playout buffers now, summed over calls.",
                                value=sum(queued))
        yield GaugeMetricFamily("telcoflow_playout_queued_max_seconds", "The fullest call's "
                                "playout buffer now.", value=max(queued, default=0.0))
        clock = engine.media.clock.stats
        for name, value, doc in (
                ("telcoflow_media_subticks", clock.ticks, "5 ms media sub-ticks run."),
                ("telcoflow_media_late_subticks", clock.late_ticks,
                 "Sub-ticks run late, in a catch-up burst."),
                ("telcoflow_media_reanchors", clock.reanchors,
                 "Stalls too long to catch up: the media clock restarted."),
                ("telcoflow_quality_watch_cpu_seconds", engine.watch_cost.seconds,
                 "CPU the live quality watch took measuring calls' legs (its share of the "
                 "gateway's CPU)."),
                ("telcoflow_quality_watch_unmeasured_seconds", engine.watch_cost.unmeasured_s,
                 "Call-seconds the quality watch left unmeasured, paused while the media "
                 "tick ran late.")):
            yield CounterMetricFamily(name, doc, value=value)
        yield GaugeMetricFamily("telcoflow_quality_watch_paused", "1 while the quality watch "
                                "is paused (the media tick ran late); 0 while it measures.",
                                value=int(engine.watch_cost.paused))
        if sources.stalls is not None:
            yield from _stalls(sources.stalls)


def _stalls(stalls: StallWatch) -> Iterator[Metric]:
    counts = CounterMetricFamily("telcoflow_media_stalls", "Media ticks 50 ms late or more, "
                                 "by what the loop's thread did meanwhile: waiting for a CPU "
                                 "(the machine is short of cores), running (the gateway's "
                                 "own work) or neither (blocked or asleep).", labels=["cause"])
    counts.add_metric(["cpu_wait"], stalls.totals.waiting)
    counts.add_metric(["busy"], stalls.totals.busy)
    counts.add_metric(["blocked"], stalls.totals.blocked)
    yield counts
    yield CounterMetricFamily("telcoflow_loop_cpu_wait_seconds", "Time the event loop's thread "
                              "was runnable but waiting for a CPU (Linux; 0 elsewhere).",
                              value=stalls.cpu_wait_s())


def _calls_active(live: list[CallReport]) -> Iterator[Metric]:
    counts: dict[tuple[str, str, str], int] = {}
    for r in live:
        key = (r.ingress, _direction(r.outbound), r.state)
        counts[key] = counts.get(key, 0) + 1
    active = GaugeMetricFamily("telcoflow_calls_active", "Calls up now, by state (RINGING, "
                               "ANSWERED).", labels=["ingress", "direction", "state"])
    for labels, count in sorted(counts.items()):
        active.add_metric(list(labels), count)
    yield active


def _media(totals: dict[str, _Media]) -> Iterator[Metric]:
    frames = CounterMetricFamily("telcoflow_media_frames", "20 ms frames moved: the phone "
                                 "party's audio to the agent, and the ticks played to the "
                                 "phone leg (silence included).", labels=["ingress", "path"])
    played = CounterMetricFamily("telcoflow_agent_frames_played", "Frames of agent audio "
                                 "played to the phone leg.", labels=["ingress"])
    underruns = CounterMetricFamily("telcoflow_playout_underruns", "Agent talkspurts that ran "
                                    "dry mid-speech.", labels=["ingress"])
    rejected = CounterMetricFamily("telcoflow_agent_audio_rejected", "Agent audio chunks "
                                   "refused: the playout buffer was full.", labels=["ingress"])
    lost = CounterMetricFamily("telcoflow_phone_frames_lost", "Phone-leg audio never received "
                               "in time (legs with a jitter buffer: RTP).", labels=["ingress"])
    late = CounterMetricFamily("telcoflow_phone_frames_late", "Phone-leg audio that arrived "
                               "after its turn and was dropped.", labels=["ingress"])
    concealed = CounterMetricFamily("telcoflow_phone_frames_concealed", "Frames of "
                                    "concealment played for missing phone-leg audio.",
                                    labels=["ingress"])
    catch_up = CounterMetricFamily("telcoflow_playout_catchup_seconds", "Agent audio taken "
                                   "out to catch up after the caller fell behind: speech "
                                   "time-compressed, quiet frames skipped, or cut past the "
                                   "delay bound.", labels=["ingress", "how"])
    for ingress, t in sorted(totals.items()):
        for how, seconds in (("compressed", t.compressed_s), ("quiet", t.skipped_quiet_s),
                             ("cut", t.cut_late_s)):
            catch_up.add_metric([ingress, how], seconds)
        frames.add_metric([ingress, "to_agent"], t.to_agent)
        frames.add_metric([ingress, "to_phone"], t.to_phone)
        played.add_metric([ingress], t.agent_played)
        underruns.add_metric([ingress], t.underruns)
        rejected.add_metric([ingress], t.rejected)
        lost.add_metric([ingress], t.lost)
        late.add_metric([ingress], t.late)
        concealed.add_metric([ingress], t.concealed)
    yield from (frames, played, underruns, rejected, lost, late, concealed, catch_up)


def _direction(outbound: bool) -> str:
    return "outbound" if outbound else "inbound"


_VERSION: list[str] = []


def _version() -> str:
    if not _VERSION:
        try:
            _VERSION.append(importlib.metadata.version("telcoflow"))
        except importlib.metadata.PackageNotFoundError:
            _VERSION.append("unknown")
    return _VERSION[0]
