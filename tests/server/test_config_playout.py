"""`[server]` playout and media settings: the catch-up bound and the quality watch are
read, checked, and reach calls."""

from __future__ import annotations

from pathlib import Path

import pytest

from telcoflow.server.config import ConfigError, load_file

CONNECTOR = '[[connectors]]\nuuid = "c"\napi_keys = ["' + "k" * 24 + '"]\nnumbers = ["+1555"]\n'


def config(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(f"[server]\n{server}\n{CONNECTOR}")
    return path


@pytest.mark.parametrize("value", [0, 40, 200, 10_000])
def test_a_catch_up_bound_or_none_is_taken(tmp_path: Path, value: int) -> None:
    cfg = load_file(config(tmp_path, f"playout_max_lag_ms = {value}"))
    assert cfg.engine_settings().playout_max_lag_ms == value


@pytest.mark.parametrize("value", [-1, 10, 39, 10_001])
def test_a_bound_too_small_to_catch_up_with_is_refused(tmp_path: Path, value: int) -> None:
    with pytest.raises(ConfigError, match="playout_max_lag_ms must be 0"):
        load_file(config(tmp_path, f"playout_max_lag_ms = {value}"))


def test_the_default_bound_is_target_plus_200_ms(tmp_path: Path) -> None:
    assert load_file(config(tmp_path, "")).engine_settings().playout_max_lag_ms == 200


@pytest.mark.parametrize("value", [True, False])
def test_the_quality_watch_can_be_switched_off(tmp_path: Path, value: bool) -> None:
    cfg = load_file(config(tmp_path, f"quality_watch = {str(value).lower()}"))
    assert cfg.engine_settings().quality_watch is value
    assert load_file(config(tmp_path, "")).engine_settings().quality_watch is True


def test_a_quality_watch_that_is_not_a_boolean_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="quality_watch must be true or false, not 'no'"):
        load_file(config(tmp_path, 'quality_watch = "no"'))


def test_a_misspelt_server_setting_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown \\[server\\] setting 'quality_wach'"):
        load_file(config(tmp_path, "quality_wach = false"))


def test_max_calls_is_taken_and_a_bad_one_refused(tmp_path: Path) -> None:
    assert load_file(config(tmp_path, "max_calls = 300")).engine_settings().max_calls == 300
    assert load_file(config(tmp_path, "")).engine_settings().max_calls == 0  # no cap
    for bad in ("-1", "true", '"300"', "2.5"):
        with pytest.raises(ConfigError, match="max_calls must be 0 \\(no cap\\) or a number"):
            load_file(config(tmp_path, f"max_calls = {bad}"))
