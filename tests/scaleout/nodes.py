"""Gateway nodes in their own processes, sharing the real Redis on 127.0.0.1:6379.

Each cluster gets its own key prefix (in DB ``DB``) and removes its keys when done.
Nodes are waited on through what they log (no sleeps).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from types import TracebackType

import redis

from ..interop.agent_process import AgentProcess

ROOT = Path(__file__).resolve().parents[2]
DB = 7
REDIS_URL = f"redis://127.0.0.1:6379/{DB}"
_LISTENING = re.compile(r"gateway listening on (\S+)")


class Node:
    """``telcoflow serve --config …`` in a subprocess (its log read as it comes)."""

    def __init__(self, name: str, config: Path, *args: str) -> None:
        self.name, self.config = name, config
        self.url = ""
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
        env.pop("TELCOFLOW_CONFIG", None)
        self.process = AgentProcess([sys.executable, "-m", "telcoflow.cli.main", "serve",
                                     "--config", str(config), *args], env)

    def start(self) -> Node:
        self.process.__enter__()
        return self

    def wait_ready(self, timeout: float = 30.0) -> Node:
        match = _LISTENING.search(self.wait_for("gateway listening on", timeout))
        assert match
        self.url = match.group(1)
        return self

    def wait_for(self, text: str, timeout: float = 10.0) -> str:
        return self.process.wait_for(text, timeout)

    @property
    def node_id(self) -> str:
        """The id it registered under (the configured one plus this process's suffix)."""
        match = re.search(r"node (\S+) joined the registry", self.wait_for("joined the registry"))
        assert match
        return match.group(1)

    @property
    def http_url(self) -> str:
        return self.url.replace("ws", "http", 1)

    @property
    def proc(self) -> subprocess.Popen[str]:
        assert self.process.proc is not None
        return self.process.proc

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.process.proc is not None and self.proc.poll() is None:
            self.process.__exit__(None, None, None)


class Cluster:
    """Nodes sharing one connector, one phone key and one registry prefix."""

    def __init__(self, tmp: Path, names: tuple[str, ...] = ("a", "b", "c"),
                 heartbeat_s: float = 0.5, node_ttl_s: float = 2.0, url: str = REDIS_URL,
                 drain_grace_s: float = 30.0, port: int = 0) -> None:
        self.url, self.drain_grace_s, self.port = url, drain_grace_s, port
        self.tmp = tmp
        self.prefix = f"tftest-{uuid.uuid4().hex[:10]}"
        self.connector_uuid = str(uuid.uuid4())
        self.api_key = "tfk_" + secrets.token_hex(16)
        self.phone_key = "tfp_" + secrets.token_hex(16)
        self.metrics_key = "tfm_" + secrets.token_hex(16)
        self.number = "+15550100"
        self.heartbeat_s, self.node_ttl_s = heartbeat_s, node_ttl_s
        self.nodes = {name: Node(name, self.write_config(name)) for name in names}

    def write_config(self, name: str, url: str | None = None) -> Path:
        path = self.tmp / f"node-{name}-{uuid.uuid4().hex[:6]}.toml"
        path.write_text(f"""
[server]
host = "127.0.0.1"
port = {self.port}
ring_timeout_s = 15.0
drain_grace_s = {self.drain_grace_s}
# no catch-up, as GatewayThread: these nodes share two cores with the whole suite, and
# a stall caught up by compressing or cutting audio would fail the echo checks, which
# are about routing across nodes, not about a busy machine
playout_max_lag_ms = 0
[[connectors]]
uuid = "{self.connector_uuid}"
api_keys = ["{self.api_key}"]
numbers = ["{self.number}"]
[phone]
keys = ["{self.phone_key}"]
[metrics]
keys = ["{self.metrics_key}"]
[registry]
url = "{url or self.url}"
node_id = "{self.prefix}-{name}"
prefix = "{self.prefix}"
heartbeat_s = {self.heartbeat_s}
node_ttl_s = {self.node_ttl_s}
""")
        return path

    def add(self, name: str) -> Node:
        node = self.nodes[name] = Node(name, self.write_config(name))
        return node.start().wait_ready()

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def __enter__(self) -> Cluster:
        for node in self.nodes.values():
            node.start()
        for node in self.nodes.values():
            node.wait_ready()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        for node in self.nodes.values():
            node.stop()
        remove_keys(self.prefix, self.url)


def remove_keys(prefix: str, url: str = REDIS_URL) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
