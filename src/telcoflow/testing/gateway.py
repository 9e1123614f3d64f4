"""Run a real gateway in a background thread, for tests, benches and the demo."""

from __future__ import annotations

import asyncio
import math
import threading
from types import TracebackType

from .. import telephony
from ..engine.overload import Admission, OverloadSettings
from ..server.app import Gateway
from ..server.config import GatewayConfig, TlsConfig, embedded_defaults


class GatewayThread:
    """``with GatewayThread() as gw:`` — a gateway on 127.0.0.1, on a free port."""

    def __init__(self, config: GatewayConfig | None = None, *, tls: TlsConfig | None = None,
                 admission: bool = False, catch_up: bool = False, **overrides: object
                 ) -> None:
        self.config = config or embedded_defaults(port=0)
        if tls is not None:
            self.config.tls = tls
        if not catch_up:
            # this gateway shares its process (and GIL) with the test's phones, agents and
            # analysis: their stalls are not an overloaded gateway, and a test checking the
            # audio sample for sample must get every frame the agent sent. Tests of the
            # catch-up pass True (or set playout_max_lag_ms)
            self.config.playout_max_lag_ms = 0
        for name, value in overrides.items():
            setattr(self.config, name, value)
        self.gateway = Gateway(self.config)
        if not admission:
            # a test's calls must not be refused because the machine running it is busy
            # (its media tick then runs late); tests of admission control pass True
            self.gateway.engine.media.admission = Admission(OverloadSettings(enter_s=math.inf))
        telephony.install(self.gateway)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="gateway", daemon=True)
        self._started = threading.Event()
        self._error: BaseException | None = None

    # credentials of the first connector, for convenience
    @property
    def api_key(self) -> str:
        return self.config.connectors[0].api_keys[0]

    @property
    def connector_uuid(self) -> str:
        return self.config.connectors[0].uuid

    @property
    def number(self) -> str:
        return self.config.connectors[0].numbers[0]

    @property
    def phone_key(self) -> str:
        return self.config.phone_keys[0]

    @property
    def ws_url(self) -> str:
        return self.config.voice_base_url()

    @property
    def http_url(self) -> str:
        return self.ws_url.replace("ws", "http", 1)

    def __enter__(self) -> GatewayThread:
        self._thread.start()
        self._started.wait(10)
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.call_soon(lambda: self.loop.create_task(self._stop()))
        self._thread.join(10)

    def call_soon(self, fn: object) -> None:
        self.loop.call_soon_threadsafe(fn)  # type: ignore[arg-type]

    def run(self, fn: object) -> object:
        """Run ``fn()`` on the gateway's loop and return its result (for test inspection)."""
        return asyncio.run_coroutine_threadsafe(_call(fn), self.loop).result(10)

    def drop_sm_connections(self) -> None:
        """Close every SM-WS from the server side, as a network drop would."""
        def drop() -> None:
            engine = self.gateway.engine
            for connector in engine.connectors:
                for link in engine.session_links(connector):
                    link.close(1012, "service restart (test)")  # type: ignore[attr-defined]
        self.run(drop)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.gateway.start())
        except BaseException as exc:  # surfaced to the thread that started us
            self._error = exc
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()
        self.loop.close()

    async def _stop(self) -> None:
        await self.gateway.stop()  # waits (bounded) for every connection to close
        self.loop.stop()


async def _call(fn: object) -> object:
    return fn()  # type: ignore[operator]
