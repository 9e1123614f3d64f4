"""The bench's echo agent keeps its per-frame log on disk, not in memory.

The agent times every frame for the latency figures (33 bytes a frame: 6 MB per
call-hour). Held in memory for a call's life, that log was most of the agent's
RSS slope in ``telcoflow bench --duration 3600``, which is meant to show the
SDK's; spooled to a file every ``SPOOL_FRAMES``, it holds a bounded amount,
and the bench still reads back every frame, in order.
"""

from __future__ import annotations

import gc
import json
import tracemalloc
from pathlib import Path

from telcoflow.loadgen.agent import SERIES, SPOOL_FRAMES, CallLog, load_spooled

FRAMES = 90_000  # 30 minutes of one call
# the log holds at most SPOOL_FRAMES of each series (33 B a frame); twice that for slack
HELD_BOUND = 2 * 33 * SPOOL_FRAMES


def test_a_long_calls_frame_log_stays_bounded_and_is_read_back_whole(tmp_path: Path) -> None:
    log = CallLog(str(tmp_path), index=7)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for seq in range(FRAMES):
            log.received(seq, seq * 0.02)
            log.echoed(seq, int(seq % 100 == 0), seq * 0.02 + 0.001)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < HELD_BOUND, f"the log of one {FRAMES}-frame call holds {held} bytes"

    dumped = json.loads(json.dumps({"7": log.as_json()}))  # as the agent writes its dump
    back = load_spooled(dumped)["7"]
    assert list(back["rx_seq"]) == list(range(FRAMES))
    assert list(back["tx_t"]) == [seq * 0.02 + 0.001 for seq in range(FRAMES)]
    assert sum(back["tx_start"]) == FRAMES // 100
    assert all(len(back[name]) == FRAMES for name, _ in SERIES)
    assert list(tmp_path.iterdir()) == []  # read back once: the spool files are gone
