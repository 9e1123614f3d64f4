"""The console's HTTP and WebSocket surface, without a browser: who may see what."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from typing import Any
from urllib.parse import urlencode

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from telcoflow.server.console import SessionSigner
from telcoflow.testing import GatewayThread, Phone

from .conftest import AgentLoop, Tenant, login, request

CONSOLE_PATHS = [
    ("GET", "/console/api/me"), ("GET", "/console/api/calls?state=live"),
    ("GET", "/console/api/calls?state=ended"), ("GET", "/console/api/calls/x"),
    ("GET", "/console/api/calls/x/recording"), ("GET", "/console/api/sessions"),
    ("GET", "/console/static/index.html"), ("GET", "/console/static/console.js"),
    ("GET", "/console/static/softphone.js"), ("GET", "/console/static/audio-worklet.js"),
    ("GET", "/console/static/console.css"), ("POST", "/console/logout"),
    ("GET", "/console/elsewhere"), ("HEAD", "/console/api/me"),
]


def forged(cookie: str, tenant: Tenant) -> str:
    """The cookie with another connector put in its payload (the signature kept)."""
    name, value = cookie.split("=", 1)
    _, _, mac = value.split(".")
    payload = SessionSigner(b"x" * 32).issue(tenant.connector.uuid, 0).split(".")[1]
    return f"{name}=v1.{payload}.{mac}"


def test_every_console_path_refuses_a_request_without_a_valid_session(
        gw: GatewayThread, tenants: tuple[Tenant, Tenant]) -> None:
    a, b = tenants
    good = login(gw, a.key)
    refused_before = gw.gateway.auth.failures[("console", "invalid_session")]
    for cookie in (None, "tfconsole=", "tfconsole=v1.e30.AAAA", forged(good, b),
                   "tfconsole=" + "A" * 5000):
        headers = {"cookie": cookie} if cookie else {}
        for method, path in CONSOLE_PATHS:
            status, _, body = request(gw, method, path, headers=headers)
            assert status == 401, (cookie, method, path, status, body[:200])
            assert a.connector.uuid.encode() not in body and b.connector.uuid.encode() not in body
    assert gw.gateway.auth.failures[("console", "invalid_session")] > refused_before
    # the root without a session is the login form, which shows nothing of a connector
    status, headers, body = request(gw, "GET", "/")
    assert status == 200 and b'name="key"' in body and b"console.js" not in body
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    # and with one, the console; its files are served to the session
    assert b"console.js" in request(gw, "GET", "/", headers={"cookie": good})[2]
    assert request(gw, "GET", "/console/static/console.js", headers={"cookie": good})[0] == 200


def test_login_refuses_a_bad_key_and_gives_a_good_one_a_strict_cookie_without_it(
        gw: GatewayThread, tenants: tuple[Tenant, Tenant]) -> None:
    a, _ = tenants
    form = {"content-type": "application/x-www-form-urlencoded"}
    refused = gw.gateway.auth.failures[("console", "invalid_key")]
    for bad in (a.key + "x", a.key[:-1], "", "tfk_" + "\u00e9" * 10):
        status, headers, body = request(gw, "POST", "/console/login",
                                        urlencode({"key": bad}), form)
        assert status == 401 and "set-cookie" not in headers
        assert b"invalid API key" in body
        assert not bad or bad.encode() not in body, "the key was echoed back"
    assert gw.gateway.auth.failures[("console", "invalid_key")] == refused + 3
    # a form posted from another site's page is refused before the key is looked at
    status, headers, _ = request(gw, "POST", "/console/login", urlencode({"key": a.key}),
                                 {**form, "origin": "http://evil.example"})
    assert status == 403 and "set-cookie" not in headers
    assert request(gw, "GET", "/console/login")[0] == 405
    status, _, body = request(gw, "POST", "/console/login", "&".join(["a=1"] * 50), form)
    assert status == 400 and b"one field" in body
    assert request(gw, "POST", "/console/login", "key=" + "x" * 100_000, form)[0] == 413

    status, headers, _ = request(gw, "POST", "/console/login", urlencode({"key": a.key}),
                                 {**form, "origin": f"http://127.0.0.1:{gw.config.port}"})
    assert status == 303 and headers["location"] == "/"
    cookie = headers["set-cookie"]
    flags = [f.strip().lower() for f in cookie.split(";")[1:]]
    assert {"httponly", "samesite=strict", "path=/"} <= set(flags)
    assert any(f.startswith("max-age=") and int(f[8:]) > 0 for f in flags)
    assert a.key not in cookie and a.key.encode().hex() not in cookie
    me = json.loads(request(gw, "GET", "/console/api/me",
                            headers={"cookie": cookie.split(";")[0]})[2])
    assert me == {"connector": a.connector.uuid, "numbers": a.connector.numbers}
    # logging out clears the cookie (Max-Age=0)
    status, headers, _ = request(gw, "POST", "/console/logout",
                                 headers={"cookie": cookie.split(";")[0]})
    assert status == 303 and "max-age=0" in headers["set-cookie"].lower()


def test_sessions_expire_and_bind_one_connector() -> None:
    signer = SessionSigner(b"k" * 32, ttl_s=60)
    value = signer.issue("conn-a", now=1000)
    assert signer.verify(value, now=1059) == "conn-a"
    assert signer.verify(value, now=1060) is None
    assert SessionSigner(b"j" * 32).verify(value, now=1000) is None  # another process's


def api(gw: GatewayThread, cookie: str, path: str) -> tuple[int, Any]:
    status, _, body = request(gw, "GET", f"/console/api/{path}", headers={"cookie": cookie})
    return status, json.loads(body) if body.startswith(b"{") else body


async def live_call(gw: GatewayThread, number: str, answered: asyncio.Event,
                    done: asyncio.Event) -> str:
    async with Phone(gw.ws_url, gw.phone_key) as phone:
        call_id = await phone.dial(number, "+15550999", "pcm16", 16000)
        await phone.wait_answered(10)
        answered.set()
        await done.wait()
        await phone.hangup()
        await phone.wait_hangup(10)
    return call_id


def test_a_session_never_sees_another_connectors_calls_or_records(
        gw: GatewayThread, tenants: tuple[Tenant, Tenant], agents: AgentLoop) -> None:
    a, b = tenants
    cookie_a, cookie_b = login(gw, a.key), login(gw, b.key)
    answered, done = agents.run(_events(2))
    call = asyncio.run_coroutine_threadsafe(live_call(gw, b.number, answered, done), agents.loop)
    agents.run(asyncio.wait_for(answered.wait(), 10))
    status, live_b = api(gw, cookie_b, "calls?state=live")
    assert status == 200 and [r["to"] for r in live_b["items"]] == [b.number]
    call_id = live_b["items"][0]["callId"]
    assert api(gw, cookie_a, "calls?state=live") == (200, {"items": []})
    assert api(gw, cookie_a, f"calls/{call_id}")[0] == 404
    agents.loop.call_soon_threadsafe(done.set)
    assert call.result(15) == call_id
    # ended: in B's records, not in A's; its recording is not served to A
    status, ended_b = api(gw, cookie_b, "calls?state=ended")
    assert call_id in [r["callId"] for r in ended_b["items"]]
    status, ended_a = api(gw, cookie_a, "calls?state=ended")
    assert call_id not in [r["callId"] for r in ended_a["items"]]
    for path in (f"calls/{call_id}", f"calls/{call_id}/recording"):
        assert api(gw, cookie_a, path)[0] == 404, path
    for path in ("calls/..%2F..%2Fetc%2Fpasswd/recording", "calls/../../x", "../v1/sessions"):
        assert api(gw, cookie_b, path)[0] in (400, 404), path


async def _events(n: int) -> list[asyncio.Event]:
    return [asyncio.Event() for _ in range(n)]


async def softphone(gw: GatewayThread, cookie: str, origin: str | None, *frames: str
                    ) -> list[dict[str, Any]]:
    """Open /console/phone, send ``frames``, return the text frames answered to each."""
    url = gw.ws_url + "/console/phone"
    async with connect(url, origin=origin, additional_headers={"cookie": cookie}  # type: ignore[arg-type]
                       ) as ws:
        answers = []
        for frame in frames:
            await ws.send(frame)
            while True:
                reply = await asyncio.wait_for(ws.recv(), 10)
                if isinstance(reply, str):
                    answers.append(json.loads(reply))
                    break
        return answers


def test_the_softphone_socket_checks_session_origin_and_numbers(
        gw: GatewayThread, tenants: tuple[Tenant, Tenant], agents: AgentLoop) -> None:
    a, b = tenants
    cookie = login(gw, a.key)
    own = f"http://127.0.0.1:{gw.config.port}"
    for who, origin in ((cookie, "http://evil.example"), (cookie, None),
                        (cookie, f"http://127.0.0.1:{gw.config.port + 1}"), ("", own),
                        (forged(cookie, b), own)):
        with pytest.raises(InvalidStatus) as refused:
            agents.run(softphone(gw, who, origin))
        assert refused.value.response.status_code in (401, 403), origin
    dial = json.dumps({"type": "dial", "to": b.number, "codec": "pcm16", "sampleRate": 16000})
    register = json.dumps({"type": "register", "number": "+15550777"})
    answers = agents.run(softphone(gw, cookie, own, dial, register))
    assert [x["code"] for x in answers] == ["FORBIDDEN", "FORBIDDEN"]
    own_dial = dial.replace(b.number, a.number)
    assert agents.run(softphone(gw, cookie, own, own_dial))[0]["type"] == "ringing"


def test_a_console_left_open_does_not_grow_the_servers_memory(
        gw: GatewayThread, tenants: tuple[Tenant, Tenant]) -> None:
    """Polls and fresh logins, as consoles left open (and logged into again) make: the
    server keeps nothing per session, so its traced memory stays flat."""
    import http.client
    a, _ = tenants
    conn = http.client.HTTPConnection("127.0.0.1", gw.config.port, timeout=10)
    body = urlencode({"key": a.key})

    def use(n: int) -> None:
        for _ in range(n):
            conn.request("POST", "/console/login", body,
                         {"content-type": "application/x-www-form-urlencoded"})
            response = conn.getresponse()
            response.read()
            cookie = response.getheader("set-cookie", "").split(";")[0]
            for path in ("/console/api/calls?state=live", "/console/api/me"):
                conn.request("GET", path, headers={"cookie": cookie})
                response = conn.getresponse()
                response.read()
                assert response.status == 200

    use(100)  # warm-up: caches, interned strings, the connection's buffers
    tracemalloc.start()
    try:
        use(20)
        before = tracemalloc.get_traced_memory()[0]
        use(500)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        conn.close()
    # a session kept per login would be ~100 bytes or more each: 50 kB and up here
    assert grown < 32_000, f"{grown} bytes more after 500 logins and 1,000 polls"
