"""Every WhatsApp test checks that no configured secret reached a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from .payloads import SECRETS


@pytest.fixture(autouse=True)
def no_secret_in_any_log_line(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG)
    yield
    for record in caplog.records:
        line = record.getMessage() + (record.exc_text or "")
        for secret in SECRETS:
            assert secret not in line, f"a secret in the log: {line!r}"
