"""Call records: one JSON document per call, live or ended, per connector.

:class:`CallRecords` observes the engine (a :class:`~telcoflow.engine.ports.CallObserver`).
When a call ends its record is made once — parties, ingress, timings, outcome, the
quality summary of both legs with their alerts, media counts, the recording — kept
in a bounded ring per connector (``[records] keep``, serialised: a record is a few
kB, most of it the per-second quality timeline) and appended to
``<[records] dir>/calls.jsonl`` when one is configured. Live calls' records are made
when asked, from :meth:`Engine.live_reports` (the connector's, with quality).

Record keys are camelCase (docs/operations.md, "Call records"); times are epoch ms.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine.ports import CallObserver, CallReport
from .config import GatewayConfig
from .recordings import GatewayRecorder, RecordingInfo

logger = logging.getLogger(__name__)

RECORDING_URL = "/public/v1/calls/{}/recording"


class CallRecords:
    """The engine's observer for records, and what the REST plane reads."""

    def __init__(self, engine_reports: Callable[[str], list[CallReport]],
                 wall: Callable[[], float],
                 keep: int = 200, jsonl: Path | None = None,
                 recorder: GatewayRecorder | None = None) -> None:
        self._live_reports = engine_reports
        self._wall = wall
        self.keep = keep
        self.jsonl = jsonl
        self.recorder = recorder
        self._setup_s: dict[str, float] = {}  # live calls answered: their set-up time
        self._ended: dict[str, OrderedDict[str, bytes]] = {}  # connector → id → JSON

    @classmethod
    def for_gateway(cls, config: GatewayConfig, reports: Callable[[str], list[CallReport]],
                    wall: Callable[[], float]) -> CallRecords:
        recorded = {c.uuid for c in config.connectors if c.record}
        recorder = (GatewayRecorder(config.recordings.dir, recorded)
                    if config.recordings.dir and recorded else None)
        jsonl = None
        if config.records.dir:
            Path(config.records.dir).mkdir(parents=True, exist_ok=True)
            jsonl = Path(config.records.dir) / "calls.jsonl"
        return cls(reports, wall, config.records.keep, jsonl, recorder)

    # ── CallObserver (only the call's life matters here) ─────────────────────
    def call_offered(self, call_id: str | None, ingress: str, outbound: bool) -> None:
        pass

    def call_answered(self, call_id: str, ingress: str, outbound: bool, setup_s: float) -> None:
        self._setup_s[call_id] = setup_s

    def call_ended(self, report: CallReport) -> None:
        if report.call_id is None:
            return  # refused on arrival: never a call
        recording = self.recorder.ended(report.call_id) if self.recorder else None
        record = self._record(report, self._setup_s.pop(report.call_id, None), recording,
                              ended=True)
        line = json.dumps(record, separators=(",", ":")).encode()
        ring = self._ended.setdefault(report.connector, OrderedDict())
        ring[report.call_id] = line
        while len(ring) > self.keep:
            ring.popitem(last=False)
        if self.jsonl is not None:
            try:
                with open(self.jsonl, "ab") as f:
                    f.write(line + b"\n")
            except OSError as exc:
                logger.error("cannot append the call record to %s: %s", self.jsonl, exc)

    def interrupt_done(self, seconds: float) -> None:
        pass

    def media_tick_started(self, lateness_s: float, sub_ticks: int) -> None:
        pass

    def media_tick_done(self) -> None:
        pass

    def quality_alert(self, leg: str, kind: str) -> None:
        pass

    # ── read ────────────────────────────────────────────────────────────────
    def live(self, connector: str) -> list[dict[str, Any]]:
        """The connector's live calls' records, newest first."""
        reports = [r for r in self._live_reports(connector) if r.call_id]
        reports.sort(key=lambda r: r.duration_s)
        return [self._live_record(r) for r in reports]

    def ended(self, connector: str, limit: int) -> list[bytes]:
        """The connector's ended calls' records (JSON), newest first."""
        ring = self._ended.get(connector)
        if not ring:
            return []
        out: list[bytes] = []
        for line in reversed(ring.values()):
            if len(out) >= limit:
                break
            out.append(line)
        return out

    def find(self, connector: str, call_id: str) -> bytes | None:
        """One call's record (JSON) if it is the connector's, live or ended."""
        for report in self._live_reports(connector):
            if report.call_id == call_id:
                return json.dumps(self._live_record(report), separators=(",", ":")).encode()
        ring = self._ended.get(connector)
        return ring.get(call_id) if ring is not None else None

    def _live_record(self, report: CallReport) -> dict[str, Any]:
        assert report.call_id is not None
        recording = self.recorder.info(report.call_id) if self.recorder else None
        return self._record(report, self._setup_s.get(report.call_id), recording, ended=False)

    def _record(self, r: CallReport, setup_s: float | None, recording: RecordingInfo | None,
                ended: bool) -> dict[str, Any]:
        now_ms = int(self._wall() * 1000)
        arrived = now_ms - int(r.duration_s * 1000)
        return {
            "callId": r.call_id, "connector": r.connector, "ingress": r.ingress,
            "direction": "outbound" if r.outbound else "inbound",
            "from": r.caller, "to": r.callee, "state": r.state, "outcome": r.outcome or None,
            "arrivedAt": arrived,
            "answeredAt": arrived + int(setup_s * 1000) if setup_s is not None else None,
            "endedAt": now_ms if ended else None,
            "setupMs": int(setup_s * 1000) if setup_s is not None else None,
            "durationS": round(r.duration_s, 3),
            "quality": r.quality,
            "media": {"toAgentFrames": r.to_agent_frames, "toPhoneFrames": r.to_phone_frames,
                      "agentFramesPlayed": r.agent_frames_played, "underruns": r.underruns,
                      "agentAudioRejected": r.agent_audio_rejected,
                      "playoutQueuedS": round(r.playout_queued_s, 3), "lost": r.lost,
                      "late": r.late, "concealed": r.concealed,
                      "jitterMs": None if r.jitter_ms is None else round(r.jitter_ms, 2),
                      # the agent's audio taken out to catch up after a stall
                      "compressedS": round(r.compressed_s, 3),
                      "skippedQuietS": round(r.skipped_quiet_s, 3),
                      "cutLateS": round(r.cut_late_s, 3)},
            "recording": None if recording is None else {
                "url": RECORDING_URL.format(r.call_id), "bytes": recording.bytes,
                "seconds": recording.seconds},
        }


class FanOut:
    """Several :class:`CallObserver` s as one (metrics and records)."""

    def __init__(self, *observers: CallObserver) -> None:
        self.observers = observers

    def call_offered(self, call_id: str | None, ingress: str, outbound: bool) -> None:
        for o in self.observers:
            o.call_offered(call_id, ingress, outbound)

    def call_answered(self, call_id: str, ingress: str, outbound: bool, setup_s: float) -> None:
        for o in self.observers:
            o.call_answered(call_id, ingress, outbound, setup_s)

    def call_ended(self, report: CallReport) -> None:
        for o in self.observers:
            o.call_ended(report)

    def interrupt_done(self, seconds: float) -> None:
        for o in self.observers:
            o.interrupt_done(seconds)

    def media_tick_started(self, lateness_s: float, sub_ticks: int) -> None:
        for o in self.observers:
            o.media_tick_started(lateness_s, sub_ticks)

    def media_tick_done(self) -> None:
        for o in self.observers:
            o.media_tick_done()

    def quality_alert(self, leg: str, kind: str) -> None:
        for o in self.observers:
            o.quality_alert(leg, kind)
