"""The console in Debian's Chromium, headless: login, live calls, records, softphone."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from telcoflow.testing import GatewayThread

from .conftest import ARTEFACTS, AgentLoop, Tenant


@pytest.fixture
def page(browser: Any, gw: GatewayThread) -> Iterator[Any]:
    context = browser.new_context(base_url=gw.http_url)
    page = context.new_page()
    page.on("console", lambda m: print("PAGE:", m.text))
    yield page
    context.close()


def log_in(page: Any, key: str) -> None:
    page.goto("/")
    page.fill("#key", key)
    page.click("button[type=submit]")
    print(page.url, page.content()[-600:])
    page.wait_for_function("() => document.getElementById('who').textContent.includes('connector')")


def test_the_softphone_calls_the_echo_agent_and_hears_the_echo(
        page: Any, gw: GatewayThread, tenants: tuple[Tenant, Tenant], agents: AgentLoop) -> None:
    log_in(page, tenants[0].key)
    page.goto("/#phone")
    page.check("#phone-raw")
    page.click("#phone-call")
    page.wait_for_function("() => window.softphone.status === 'answered'", timeout=10_000)
    page.wait_for_function("() => window.softphone.latenciesMs.length >= 3", timeout=10_000)
    state = page.evaluate("window.softphone")
    print(state)
    page.screenshot(path=str(ARTEFACTS / "softphone.png"), full_page=True)
    page.click("#phone-hangup")
    page.wait_for_function("() => window.softphone.status === 'ended'")
