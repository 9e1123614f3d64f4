"""The registry's I/O against Redis: records, atomic claims, liveness keys, pub/sub.

Keys (``P`` is the configured prefix, ``tf`` by default)::

    P:node:{id}              the node's voice base URL; expires node_ttl_s after its
                             last heartbeat (a node without it is dead)
    P:nodes                  hash id → voice URL of every node not yet reaped
    P:links:{connector}      hash SM-WS id → {"node","rate","mode"}: agents' connections
    P:nodelinks:{node}       set of "connector link-id" a node registered (for reaping)
    P:session:{id}           a session's public record + its node and connector (JSON)
    P:sessions:{connector}   set of the connector's session ids (REST lists)
    P:nodesessions:{node}    set of the session ids a node holds (for reaping)
    P:claim:{session}        the SM-WS id that claimed it (one Lua step: see CLAIM)
    P:reap:{node}            who reaps a dead node's records (SET NX)

Channels: ``P:ch:node:{id}`` (to one node: frames for its agents, requests for its
sessions, answers) and ``P:ch:all`` (agents' connections coming and going, session
records). Pub/sub, not streams: what a node is sent is for connections and requests
live now, which die with it; a restarted node has new connections, and what outlives
a node (sessions, claims, connections) is in keys, read again at start. A stream would
replay to a restarted node frames for connections that no longer exist.

Writes and publishes go through one ordered outbox, so a session's record is written
before the notify that names it reaches another node.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .errors import RegistryUnavailable

logger = logging.getLogger(__name__)

# A claim wins if nobody holds the session, the claimer holds it already, or the holder
# is no longer a registered connection (it dropped, or its node was reaped). One step.
CLAIM = """
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] or redis.call('HEXISTS', KEYS[2], cur) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return ARGV[1]
end
return cur
"""
OPEN_TTL_S = 86_400     # an open session's record outlives any call; refreshed on change
CLOSED_TTL_S = 3_600    # a closed one stays listable this long
CLAIM_TTL_S = 86_400
OUTBOX_MAX = 100_000    # writes queued while Redis is away; beyond: the oldest dropped
POOL_SIZE = 16          # connections per node (the pub/sub one is its own)

Write = Callable[[Any], None]  # adds commands to a pipeline


def safe_url(url: str) -> str:
    """The URL without its password (for errors and logs)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class RedisRegistry:
    def __init__(self, url: str, node_id: str, prefix: str = "tf",
                 node_ttl_s: float = 3.0) -> None:
        self.url, self.node_id, self.p = url, node_id, prefix
        self.node_ttl_ms = max(1, int(node_ttl_s * 1000))
        # a bounded pool that makes a burst of requests wait for a connection (the plain
        # pool refuses the one past its limit: a claim would fail under load)
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=POOL_SIZE, timeout=5.0, decode_responses=True,
            socket_connect_timeout=2.0, socket_timeout=2.0)
        self.client = aioredis.Redis(connection_pool=pool)
        self._claim = self.client.register_script(CLAIM)
        self._outbox: deque[Write] = deque()
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()  # set whenever the outbox empties
        self.connected = False

    def key(self, *parts: str) -> str:
        return ":".join((self.p, *parts))

    @property
    def my_channel(self) -> str:
        return self.key("ch", "node", self.node_id)

    @property
    def all_channel(self) -> str:
        return self.key("ch", "all")

    async def connect(self) -> None:
        try:
            await self.client.ping()
        except (RedisError, OSError) as exc:
            raise RegistryUnavailable(f"the registry at {safe_url(self.url)} does not answer: "
                                      f"{exc}") from None
        self.connected = True

    async def close(self) -> None:
        await self.client.aclose()

    # ── the ordered outbox ───────────────────────────────────────────────────
    def queue(self, write: Write) -> None:
        if len(self._outbox) >= OUTBOX_MAX:
            self._outbox.popleft()
            logger.warning("registry outbox full: the oldest write was dropped")
        self._outbox.append(write)
        self._wake.set()

    def publish(self, node_id: str | None, message: dict[str, Any]) -> None:
        """To one node (None: every node), after every write queued before it."""
        channel = self.key("ch", "node", node_id) if node_id else self.all_channel
        data = json.dumps(message, separators=(",", ":"))
        self.queue(lambda pipe: pipe.publish(channel, data))

    async def flush(self, timeout: float) -> bool:
        """Wait until every queued write has gone (False: Redis did not take them)."""
        if self._outbox:
            self._drained.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout)
        return not self._outbox

    async def run_outbox(self, on_health: Callable[[bool], None]) -> None:
        """Flush queued writes in order, a pipeline per batch; a batch that fails is
        retried (Redis away: writes wait, nothing is reordered)."""
        delay = 0.05
        while True:
            if not self._outbox:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
            batch = list(self._outbox)
            pipe = self.client.pipeline(transaction=False)
            for write in batch:
                write(pipe)
            try:
                await pipe.execute(raise_on_error=False)
            except (RedisError, OSError) as exc:
                logger.warning("registry write failed (%s); retrying", exc)
                on_health(False)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            delay = 0.05
            for _ in batch:
                if self._outbox:
                    self._outbox.popleft()
            on_health(True)

    # ── nodes ────────────────────────────────────────────────────────────────
    async def heartbeat(self, voice_url: str) -> None:
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.key("node", self.node_id), voice_url, px=self.node_ttl_ms)
        pipe.hset(self.key("nodes"), self.node_id, voice_url)
        await pipe.execute()

    async def live_nodes(self) -> tuple[dict[str, str], set[str]]:
        """(live node id → voice URL, ids registered but without a liveness key)."""
        known = {str(k): str(v) for k, v in (await self.client.hgetall(self.key("nodes"))).items()}
        ids = list(known)
        pipe = self.client.pipeline(transaction=False)
        for node in ids:
            pipe.exists(self.key("node", node))
        alive = await pipe.execute() if ids else []
        live = {n: known[n] for n, ok in zip(ids, alive, strict=True) if ok}
        return live, set(ids) - set(live)

    async def leave(self) -> None:
        """A clean stop: this node's records go at once (nothing for others to reap), and
        the others drop its agents' connections now rather than at its key's expiry."""
        await self.reap(self.node_id, force=True)
        await self.client.delete(self.key("node", self.node_id))
        await self.client.publish(self.all_channel, json.dumps(
            {"t": "node_lost", "lost": self.node_id, "node": self.node_id}))

    async def reap(self, node_id: str, force: bool = False) -> list[dict[str, Any]]:
        """Remove a dead node's connections and close its open sessions; one node does it
        (the first to take the reap key). Returns the sessions it closed."""
        if not force and not await self.client.set(self.key("reap", node_id), self.node_id,
                                                   nx=True, ex=60):
            return []
        members = [str(m) for m in await self.client.smembers(self.key("nodelinks", node_id))]
        sids = [str(s) for s in await self.client.smembers(self.key("nodesessions", node_id))]
        raws = await self.client.mget([self.key("session", s) for s in sids]) if sids else []
        records = [json.loads(raw) if raw else None for raw in raws]
        pipe = self.client.pipeline(transaction=False)
        for member in members:
            connector, link = member.split(" ", 1)
            pipe.hdel(self.key("links", connector), link)
        closed = []
        for record in records:
            if record is not None and record.get("state") == "OPEN":
                record.update(state="CLOSED", closeReason="GATEWAY_NODE_LOST")
                self._write_session(pipe, record)
                closed.append(record)
        pipe.delete(self.key("nodelinks", node_id), self.key("nodesessions", node_id))
        pipe.hdel(self.key("nodes"), node_id)
        await pipe.execute()
        return closed

    # ── agents' connections ─────────────────────────────────────────────────
    def link_up(self, connector: str, link_id: str, rate: int, mode: str) -> None:
        value = json.dumps({"node": self.node_id, "rate": rate, "mode": mode})
        links, mine = self.key("links", connector), self.key("nodelinks", self.node_id)

        def write(pipe: Any) -> None:
            pipe.hset(links, link_id, value)
            pipe.sadd(mine, f"{connector} {link_id}")
        self.queue(write)

    def link_down(self, connector: str, link_id: str) -> None:
        links, mine = self.key("links", connector), self.key("nodelinks", self.node_id)

        def write(pipe: Any) -> None:
            pipe.hdel(links, link_id)
            pipe.srem(mine, f"{connector} {link_id}")
        self.queue(write)

    async def links(self) -> AsyncIterator[tuple[str, str, dict[str, Any]]]:
        """Every registered connection: (connector, link id, its record)."""
        async for key in self.client.scan_iter(match=self.key("links", "*"), count=500):
            connector = key.rsplit(":", 1)[1]
            for link_id, raw in (await self.client.hgetall(key)).items():
                yield connector, str(link_id), json.loads(raw)

    async def claim(self, connector: str, session_id: str, link_id: str) -> str:
        """Who holds ``session_id`` after this attempt (``link_id`` if it won)."""
        winner = await self._claim(keys=[self.key("claim", session_id),
                                         self.key("links", connector)],
                                   args=[link_id, CLAIM_TTL_S])
        return str(winner)

    # ── sessions ─────────────────────────────────────────────────────────────
    def put_session(self, record: dict[str, Any]) -> None:
        self.queue(lambda pipe: self._write_session(pipe, record))

    def _write_session(self, pipe: Any, record: dict[str, Any]) -> None:
        sid, connector, node = record["id"], record["connector"], record["node"]
        closed = record.get("state") == "CLOSED"
        pipe.set(self.key("session", sid), json.dumps(record, separators=(",", ":")),
                 ex=CLOSED_TTL_S if closed else OPEN_TTL_S)
        pipe.sadd(self.key("sessions", connector), sid)
        if closed:
            pipe.srem(self.key("nodesessions", node), sid)
            pipe.delete(self.key("claim", sid))
        else:
            pipe.sadd(self.key("nodesessions", node), sid)

    async def session(self, session_id: str) -> dict[str, Any] | None:
        raw = await self.client.get(self.key("session", session_id))
        return json.loads(raw) if raw else None

    async def sessions(self) -> list[dict[str, Any]]:
        """Every session record still kept (expired ones are pruned from the index)."""
        out: list[dict[str, Any]] = []
        async for key in self.client.scan_iter(match=self.key("sessions", "*"), count=500):
            sids = [str(s) for s in await self.client.smembers(key)]
            raws = await self.client.mget([self.key("session", s) for s in sids]) if sids else []
            gone = [s for s, raw in zip(sids, raws, strict=True) if raw is None]
            if gone:
                await self.client.srem(key, *gone)
            out.extend(json.loads(raw) for raw in raws if raw is not None)
        return out

    # ── messages ─────────────────────────────────────────────────────────────
    async def listen(self, ready: asyncio.Event) -> AsyncIterator[dict[str, Any]]:
        """Messages to this node and to all nodes, in the order they were published."""
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.my_channel, self.all_channel)
        ready.set()
        try:
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                try:
                    yield json.loads(message["data"])
                except (ValueError, TypeError):
                    logger.warning("registry: an unreadable message on %s", message["channel"])
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
