"""Three gateway nodes (separate processes) on the real Redis, started once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .nodes import Cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with Cluster(tmp_path_factory.mktemp("nodes")) as nodes:
        yield nodes
