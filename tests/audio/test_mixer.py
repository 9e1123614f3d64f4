"""The batched conference mixer: routing, mix-minus, saturation, batch = one by one."""

from __future__ import annotations

import numpy as np
import pytest

from telcoflow.audio.mixer import AGENT, CALLEE, CALLER, BatchMixer, mix_batch, routes_for


def frames_of(*values: int, samples: int = 4) -> np.ndarray:
    return np.array([[v] * samples for v in values], np.int16)


def test_routes_per_mode_and_nobody_hears_themselves() -> None:
    barge = routes_for(True, True)
    assert barge.tolist() == [[0, 1, 1], [1, 0, 1], [1, 1, 0]]
    whisper = routes_for(False, True)
    assert whisper[CALLER, AGENT] == 0 and whisper[CALLEE, AGENT] == 1
    spy = routes_for(False, False)
    assert spy[:, AGENT].tolist() == [0, 0, 0] and spy[AGENT].tolist() == [1, 1, 0]
    for r in (barge, whisper, spy, routes_for(True, True, caller=False)):
        assert not np.diagonal(r).any()


def test_a_party_that_left_is_neither_heard_nor_routed() -> None:
    r = routes_for(True, True, caller=False)
    assert not r[CALLER].any() and not r[:, CALLER].any()
    assert r[CALLEE, AGENT] == 1 and r[AGENT, CALLEE] == 1


def test_each_listener_hears_the_sum_of_its_routes() -> None:
    frames = frames_of(100, 20, 3)[None]
    out = mix_batch(frames, routes_for(False, True)[None])[0]
    assert out[:, 0].tolist() == [20, 103, 120]  # caller, callee, agent


def test_mixing_saturates_instead_of_wrapping() -> None:
    frames = frames_of(30000, 30000, -30000)[None]
    out = mix_batch(frames, routes_for(True, True)[None])[0]
    assert out[AGENT, 0] == 32767            # 60000 clipped, not wrapped negative
    assert out[CALLER, 0] == 0 and out[CALLEE, 0] == 0
    neg = mix_batch(frames_of(-30000, -30000, 0)[None], routes_for(True, True)[None])[0]
    assert neg[AGENT, 0] == -32768


def test_a_batch_equals_each_call_mixed_alone() -> None:
    rng = np.random.default_rng(5)
    calls = 37
    frames = rng.integers(-32768, 32767, (calls, 3, 320), endpoint=True).astype(np.int16)
    modes = [(True, True), (False, True), (False, False)]
    routes = np.stack([routes_for(*modes[i % 3], caller=i % 5 != 0) for i in range(calls)])
    batch = mix_batch(frames, routes)
    for i in range(calls):
        alone = mix_batch(frames[i:i + 1], routes[i:i + 1])[0]
        assert np.array_equal(batch[i], alone)
        expected = np.clip(routes[i].astype(np.int64) @ frames[i].astype(np.int64),
                           -32768, 32767)
        assert np.array_equal(batch[i], expected)


def test_buffers_grow_and_inputs_start_silent() -> None:
    mixer = BatchMixer(160)
    f, r = mixer.inputs(2)
    f[...] = 1000
    r[...] = routes_for(True, True)
    mixer.mix(2)
    f, r = mixer.inputs(100)  # grows
    assert f.shape == (100, 3, 160) and not f.any()
    r[...] = routes_for(True, True)
    assert not mixer.mix(100).any()


def test_shape_errors_are_specific() -> None:
    with pytest.raises(ValueError, match=r"\(calls, 3, samples\)"):
        mix_batch(np.zeros((1, 2, 4), np.int16), np.zeros((1, 3, 3), np.int32))
