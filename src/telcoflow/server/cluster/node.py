"""One gateway node in a cluster: its engine, joined to the others through Redis.

What crosses nodes, and how:

* an agent connection (SM-WS) is registered in Redis and announced; every other node
  adds a :class:`~.remote.RemoteLink` for it to its engine, so a call arriving there is
  offered (``session.notify``) to the connector's agents on every node;
* ``session.open`` is claimed atomically in Redis (one Lua step), then run by the node
  that holds the session (the engine there is the session's one arbiter); its answer
  and the ``call.in`` that follows ``session.ready`` come back as frames to forward.
  The call's media never moves: ``call.in`` points to the node with the phone leg;
* session records are written to Redis and mirrored on every node for REST;
* each node refreshes a liveness key; one that lets it expire is dead: every node
  drops its connections and tells its own agents that held that node's sessions
  (``session.closed``, cause ``GATEWAY_NODE_LOST``), and one node reaps its records.

The engine stays sans-I/O: this module calls its methods with what arrives, and is
its :class:`~telcoflow.engine.registry.Registry` (fire-and-forget, queued in order).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError

from ...engine import EngineError
from ...engine.ports import SessionEnd
from ...engine.registry import RegisteredSession
from ...protocol import sm
from .. import rest
from ..config import Connector, RegistryConfig
from ..errors import BadRequest
from ..netio import HttpRequest, HttpResponse
from .errors import NodeUnreachable, RegistryUnavailable
from .mirror import SessionMirror
from .redis_registry import RedisRegistry
from .remote import RemoteLink

if TYPE_CHECKING:
    from ..app import Gateway
    from ..sm_ws import SmLink

logger = logging.getLogger(__name__)

_CLOSE = re.compile(r"^/public/v1/sessions/([^/]+)/close$")
RPC_TIMEOUT_S = 5.0
REGISTRY_AWAY = ("the gateway's session registry is unreachable: new calls are refused "
                 "until it returns")
NODE_LOST = "GATEWAY_NODE_LOST"


class ClusterNode:
    def __init__(self, gateway: Gateway, cfg: RegistryConfig) -> None:
        assert cfg.url is not None
        self.gateway, self.engine, self.cfg = gateway, gateway.engine, cfg
        # one id per process lifetime: a node restarted within the TTL (a worker the
        # supervisor starts again) is a new node, and its former self is reaped as dead
        self.node_id = f"{cfg.node_id or 'node'}-{uuid.uuid4().hex[:8]}"
        self.registry = RedisRegistry(cfg.url, self.node_id, cfg.prefix, cfg.node_ttl_s)
        self.connectors = {c.uuid: c for c in gateway.config.connectors}
        self.mirror = SessionMirror()
        self.local: dict[str, SmLink] = {}         # this node's agent connections
        self.remote: dict[str, RemoteLink] = {}    # other nodes' ones, in this engine
        self.held: dict[str, str] = {}             # remote session id → local link that opened it
        self.healthy = True                        # Redis answers (writes go through)
        self._rpcs: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._pending: set[asyncio.Task[None]] = set()
        self._lost: set[str] = set()
        self._judge_after = 0.0  # monotonic: no node is judged dead before then
        self._missing: set[str] = set()  # nodes with no record at the last round

    @property
    def voice_url(self) -> str:
        return self.gateway.config.voice_base_url()

    # ── life ─────────────────────────────────────────────────────────────────
    async def start(self) -> None:
        """Join: raises :class:`RegistryUnavailable` when Redis does not answer."""
        reg = self.registry
        await reg.connect()
        self.engine.sessions.registry = self
        subscribed = asyncio.Event()
        self._tasks = [asyncio.create_task(self._listen(subscribed)),
                       asyncio.create_task(reg.run_outbox(self._health))]
        await asyncio.wait_for(subscribed.wait(), 5.0)
        try:
            await reg.heartbeat(self.voice_url)
            live, dead = await reg.live_nodes()
            for node in dead:
                await self._node_lost(node)
            async for connector, link_id, rec in reg.links():
                if rec["node"] in live and rec["node"] != self.node_id:
                    self._remote_up(connector, link_id, rec)
            for record in await reg.sessions():
                self.mirror.put(record)
        except (RedisError, OSError) as exc:
            await self.stop()
            raise RegistryUnavailable(f"the registry failed while joining: {exc}") from None
        self._tasks.append(asyncio.create_task(self._liveness()))
        logger.info("node %s joined the registry (%d node(s) live)", self.node_id,
                    len(live) + (self.node_id not in live))

    async def stop(self) -> None:
        if self._tasks:  # the sessions the engine closed on its way out are written first
            await self.registry.flush(2.0)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks = []
        with contextlib.suppress(RedisError, OSError):
            await self.registry.leave()
        await self.registry.close()

    # ── the engine's Registry port ───────────────────────────────────────────
    def session_added(self, session: RegisteredSession) -> None:
        self._record(session)

    def session_closed(self, session: RegisteredSession) -> None:
        self._record(session)

    def _record(self, session: RegisteredSession) -> None:
        record = {"id": session.id, "channel": session.channel, "initiator": session.initiator,
                  "state": session.state, "remoteAddress": session.remote_address,
                  "localAddress": session.local_address, "openedAt": session.opened_at,
                  "closedAt": session.closed_at, "closeReason": session.close_reason,
                  "connector": session.connector_uuid, "node": self.node_id}
        self.mirror.put(record)
        self.registry.put_session(record)
        self.registry.publish(None, {"t": "session", "record": record})

    # ── this node's agent connections (called by SmLink) ─────────────────────
    def link_up(self, link: SmLink) -> None:
        self.local[link.id] = link
        self.registry.link_up(link.connector_uuid, link.id, link.sample_rate, link.audio_mode)
        self.registry.publish(None, {"t": "link_up", "link": link.id, "node": self.node_id,
                                     "connector": link.connector_uuid,
                                     "rate": link.sample_rate, "mode": link.audio_mode})

    def link_down(self, link: SmLink) -> None:
        if self.local.pop(link.id, None) is None:
            return
        for sid in [s for s, owner in self.held.items() if owner == link.id]:
            del self.held[sid]
        self.registry.link_down(link.connector_uuid, link.id)
        self.registry.publish(None, {"t": "link_down", "link": link.id, "node": self.node_id})

    def session_request(self, link: SmLink, frame: sm.SessionOpen | sm.SessionReady) -> None:
        """``session.open`` / ``session.ready``: claimed in Redis, run where the session is."""
        self._spawn(self._session_request(link, frame))

    async def _session_request(self, link: SmLink, frame: sm.SessionOpen | sm.SessionReady
                               ) -> None:
        opening = isinstance(frame, sm.SessionOpen)
        req_id = frame.req_id if isinstance(frame, sm.SessionOpen) else None
        sid = frame.session_id
        try:
            home, is_open = await self._home_of(link.connector_uuid, sid)
            if opening and home is not None and is_open:
                winner = await self._claim(link, sid)
                if winner != link.id:
                    link.fail(req_id, "SESSION_BUSY", f"session {sid} is bound to another "
                              "connection", winner)
                    return
            if link.id not in self.local:
                return  # the connection closed meanwhile: nothing may be bound to it
            if home is None or home == self.node_id:
                self._run_local(link, frame)
                return
            answer = await self._rpc(home, {"t": "open" if opening else "ready", "sid": sid,
                                            **self._link_fields(link)})
        except (NodeUnreachable, RegistryUnavailable) as exc:
            link.fail(req_id, exc.code, exc.message)
            return
        if not answer["ok"]:
            link.fail(req_id, answer["code"], answer["message"], answer.get("bound"))
        elif opening:
            self.held[sid] = link.id
            link.send_text(sm.build_response(req_id or "", answer["content"]))

    async def _home_of(self, connector: str, sid: str) -> tuple[str | None, bool]:
        """The node holding the session (None: unknown) and whether it is open (a closed
        one is not claimed: the holding engine answers SESSION_CLOSED)."""
        local = self.engine.sessions.get(sid, connector)
        if local is not None:
            return self.node_id, local.is_open
        record = self.mirror.get(sid, connector)
        if record is None:
            record = await self._redis(self.registry.session(sid))
            if record is None or record.get("connector") != connector:
                return None, False
        return str(record["node"]), record["state"] == "OPEN"

    async def _claim(self, link: SmLink, sid: str) -> str:
        """The atomic claim; Redis away: the holding node's engine still decides alone."""
        try:
            return await self.registry.claim(link.connector_uuid, sid, link.id)
        except (RedisError, OSError):
            self._health(False, "claim")
            return link.id

    def _run_local(self, link: SmLink, frame: sm.SessionOpen | sm.SessionReady) -> None:
        try:
            if isinstance(frame, sm.SessionOpen):
                session = self.engine.open_session(link, frame.session_id)
                link.send_text(sm.build_response(frame.req_id, {"session": session.public()}))
            else:
                self.engine.session_ready(link, frame.session_id)
        except EngineError as exc:
            link.fail(getattr(frame, "req_id", None), exc.code, exc.message,
                      getattr(exc, "bound_id", None))

    def _link_fields(self, link: SmLink) -> dict[str, Any]:
        return {"link": link.id, "node": self.node_id, "connector": link.connector_uuid,
                "rate": link.sample_rate, "mode": link.audio_mode}

    # ── REST across nodes ────────────────────────────────────────────────────
    def rest(self, connector: Connector, request: HttpRequest) -> HttpResponse | None:
        """The answer to the requests about sessions of other nodes; ``None``: this
        node's own REST answers."""
        try:
            if request.path == "/public/v1/sessions" and request.method == "GET":
                items = self.mirror.find(connector.uuid, *rest.list_filters(request))
                return rest.json_response(200, {"items": items})
            match = _CLOSE.match(request.path)
            if match and request.method == "POST":
                answer = self._close_remote(connector.uuid, match.group(1))
                if answer is not None:
                    return answer
        except BadRequest as exc:
            return rest.error_response(exc)
        return None

    def _close_remote(self, connector: str, sid: str) -> HttpResponse | None:
        """A session another node holds: that node is asked to close it (and its call)."""
        record = self.mirror.get(sid, connector)
        if record is None or record["node"] == self.node_id:
            return None  # this node's own, or unknown: the engine answers
        if record["state"] == "CLOSED":
            return rest.json_response(200, {"closedAt": record["closedAt"],
                                            "reason": record["closeReason"]})
        self.registry.publish(record["node"], {"t": "close", "sid": sid, "connector": connector})
        return rest.json_response(200, {"closedAt": int(time.time()), "reason": "SDK_REQUEST"})

    # ── messages from other nodes ────────────────────────────────────────────
    async def _listen(self, subscribed: asyncio.Event) -> None:
        delay = 0.1
        while True:
            try:
                async for message in self.registry.listen(subscribed):
                    delay = 0.1
                    try:
                        self._on_message(message)
                    except Exception:  # one bad message must not stop the node's listening
                        logger.exception("registry message failed: %s", message.get("t"))
            except (RedisError, OSError) as exc:
                self._health(False, "subscribe")
                logger.warning("registry subscription lost (%s); resubscribing", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _on_message(self, msg: dict[str, Any]) -> None:
        kind, origin = msg.get("t"), msg.get("node")
        if kind == "frame":
            link = self.local.get(msg["link"])
            if link is not None:
                link.send_text(msg["text"])
        elif kind == "reply":
            future = self._rpcs.pop(msg["rpc"], None)
            if future is not None and not future.done():
                future.set_result(msg)
        elif kind in ("open", "ready"):
            self._answer_request(msg)
        elif kind == "close":
            with contextlib.suppress(EngineError):
                self.engine.close_session(msg["connector"], msg["sid"])
        elif kind == "session":
            self.mirror.put(msg["record"])
            if msg["record"]["state"] == "CLOSED":
                self.held.pop(msg["record"]["id"], None)
        elif kind == "link_up" and origin != self.node_id:
            self._remote_up(msg["connector"], msg["link"], msg)
        elif kind == "link_down" and origin != self.node_id:
            self._remote_down(msg["link"])
        elif kind == "node_lost" and msg["lost"] != self.node_id:
            self._spawn(self._node_lost(msg["lost"]))

    def _answer_request(self, msg: dict[str, Any]) -> None:
        link = self._remote_up(msg["connector"], msg["link"], msg)
        reply: dict[str, Any] = {"t": "reply", "rpc": msg["rpc"], "ok": True}
        try:
            if link is None:
                raise EngineError("this connector is not configured on the gateway node "
                                  "holding the session", "FORBIDDEN")
            if msg["t"] == "open":
                reply["content"] = {"session": self.engine.open_session(link, msg["sid"]).public()}
            else:
                self.engine.session_ready(link, msg["sid"])
        except EngineError as exc:
            reply.update(ok=False, code=exc.code, message=exc.message,
                         bound=getattr(exc, "bound_id", None))
        self.registry.publish(msg["node"], reply)

    def _remote_up(self, connector_uuid: str, link_id: str, rec: dict[str, Any]
                   ) -> RemoteLink | None:
        link = self.remote.get(link_id)
        if link is not None:
            return link
        connector = self.connectors.get(connector_uuid)
        if connector is None:  # nodes must share their connectors: say so once per link
            logger.warning("an agent connection on node %s is for connector %s, which is not "
                           "configured on this node", rec.get("node"), connector_uuid)
            return None
        link = RemoteLink(self.engine, connector, self.gateway.auth, self.voice_url, link_id,
                          rec["node"], int(rec["rate"]), str(rec["mode"]), self._send_frame)
        self.remote[link_id] = link
        self.engine.link_up(link)
        return link

    def _remote_down(self, link_id: str) -> None:
        link = self.remote.pop(link_id, None)
        if link is not None:
            self.engine.link_down(link)

    def _send_frame(self, node_id: str, link_id: str, text: str) -> None:
        self.registry.publish(node_id, {"t": "frame", "link": link_id, "text": text})

    async def _rpc(self, node_id: str, msg: dict[str, Any]) -> dict[str, Any]:
        rpc = uuid.uuid4().hex
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._rpcs[rpc] = future
        self.registry.publish(node_id, {**msg, "rpc": rpc})
        try:
            return await asyncio.wait_for(future, RPC_TIMEOUT_S)
        except TimeoutError:
            raise NodeUnreachable(f"the gateway node holding this session ({node_id}) did not "
                                  f"answer within {RPC_TIMEOUT_S:g} s") from None
        finally:
            self._rpcs.pop(rpc, None)

    # ── liveness ─────────────────────────────────────────────────────────────
    async def _liveness(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.heartbeat_s)
            try:
                await self.registry.heartbeat(self.voice_url)
                live, dead = await self.registry.live_nodes()
            except (RedisError, OSError):
                self._health(False, "heartbeat")
                continue
            self._health(True)
            if time.monotonic() < self._judge_after:
                continue
            # a node with connections here but no record at all (reaped, or Redis lost
            # its keys) is lost if it is still missing on the next round: one that is
            # joining announces its first connections just before its first heartbeat
            missing = {link.node_id for link in self.remote.values()} - set(live)
            gone, self._missing = missing & self._missing, missing
            for node in (dead | gone) - {self.node_id}:
                await self._node_lost(node)

    async def _node_lost(self, node_id: str) -> None:
        """A node died: its agents' connections leave this engine, this node's agents that
        held its sessions are told, and one node reaps its records."""
        if node_id in self._lost:
            return
        self._lost.add(node_id)
        logger.warning("gateway node %s is lost: its calls are over", node_id)
        for link_id in [i for i, link in self.remote.items() if link.node_id == node_id]:
            self._remote_down(link_id)
        for record in self.mirror.of_node(node_id):
            self.mirror.put({**record, "state": "CLOSED", "closedAt": int(time.time()),
                             "closeReason": NODE_LOST})
            link = self.local.get(self.held.pop(record["id"], ""))
            if link is not None:
                link.session_closed(record["id"], SessionEnd.CALL_TERMINATED, NODE_LOST)
        try:
            if await self.registry.reap(node_id):
                self.registry.publish(None, {"t": "node_lost", "lost": node_id,
                                             "node": self.node_id})
        except (RedisError, OSError):
            self._count_error("reap")
            self._lost.discard(node_id)  # tried again on the next round

    # ── helpers ──────────────────────────────────────────────────────────────
    def _count_error(self, operation: str) -> None:
        metrics = self.gateway.metrics
        if metrics is not None:
            metrics.registry_errors.labels(operation).inc()

    def _health(self, ok: bool, failed: str | None = None) -> None:
        """Redis away: new calls are refused (a call nobody else can be offered, claimed
        or listed), live ones go on (their media never touches Redis). Back: what this
        node holds is written again (a restarted Redis may have lost it), and no node is
        judged dead until each had a heartbeat's time to refresh its key."""
        if failed is not None:
            self._count_error(failed)
        if ok == self.healthy:
            return
        self.healthy = ok
        if ok:
            logger.warning("registry reachable again: taking new calls")
            if self.engine.refusing == REGISTRY_AWAY:
                self.engine.refusing = None
            self._judge_after = time.monotonic() + self.cfg.node_ttl_s
            self._resync()
        else:
            logger.error("registry unreachable: live calls go on, new ones are refused")
            if self.engine.refusing is None:
                self.engine.refusing = REGISTRY_AWAY

    def _resync(self) -> None:
        for link in self.local.values():
            self.registry.link_up(link.connector_uuid, link.id, link.sample_rate,
                                  link.audio_mode)
        for connector in self.connectors:
            for session in self.engine.sessions.open_of(connector):
                self._record(session)

    async def _redis(self, call: Awaitable[Any]) -> Any:
        try:
            return await call
        except (RedisError, OSError) as exc:
            self._health(False, "request")
            raise RegistryUnavailable("the session registry is unreachable; try again") from exc

    def _spawn(self, coro: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(coro)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

