"""The bench's scale-out parts: a private Redis, a gateway's worker processes, and
Redis operations counted per call (``INFO commandstats``, before and after a step).

A private ``redis-server`` (its own port and directory, nothing saved) keeps the
counts the bench's own: a shared Redis counts everyone's commands.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import time
from pathlib import Path

START_TIMEOUT_S = 10.0


class PrivateRedis:
    def __init__(self, workdir: Path) -> None:
        server = shutil.which("redis-server")
        if server is None:
            raise SystemExit("--workers / --registry private need redis-server "
                             "(apt-get install redis-server, or 'make redis')")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = subprocess.Popen(
            [server, "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(workdir),
             "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while commands(self.url) is None:  # polled: redis-server has no ready signal to wait on
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise SystemExit(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def commands(url: str) -> dict[str, int] | None:
    """Commands the Redis server at ``url`` has run so far, by name (None: it does not
    answer). A script's own commands are counted as well as the EVALSHA."""
    import redis  # the redis extra: only the scale-out bench needs it

    client = redis.Redis.from_url(url, socket_connect_timeout=0.5)
    try:
        stats = client.info("commandstats")
    except redis.RedisError:
        return None
    finally:
        client.close()
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in stats.items()
            if k.startswith("cmdstat_") and k not in ("cmdstat_info", "cmdstat_ping")}


def per_call(before: dict[str, int], after: dict[str, int], calls: int, seconds: float,
             nodes: int, heartbeat_s: float = 1.0) -> dict[str, object]:
    """Redis commands per call over a step, by name, and in all less the nodes' liveness
    rounds (a SET, HSET, HGETALL and an EXISTS per node, per node and heartbeat: a
    cost per second, not per call)."""
    delta = {k: n - before.get(k, 0) for k, n in after.items() if n - before.get(k, 0) > 0}
    total = sum(delta.values())
    liveness = round(seconds / heartbeat_s) * nodes * (3 + nodes)
    return {"redis_commands": total, "liveness_estimate": liveness,
            "per_call": round(max(0, total - liveness) / max(1, calls), 1),
            "by_command_per_call": {k: round(n / max(1, calls), 2)
                                    for k, n in sorted(delta.items(), key=lambda kv: -kv[1])}}


def family(pid: int) -> list[int]:
    """``pid`` and its descendants (a supervisor's workers)."""
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        try:
            kids = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        todo.extend(int(k) for k in kids)
    return out


def free_ports(count: int) -> int:
    """The first of ``count`` consecutive free TCP ports (a workers' shared port and their
    voice ports), below the kernel's ephemeral range: a port from that range can be
    taken by any outgoing connection between this check and the workers' bind."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for first in random.sample(range(10_000, low - count), 200):
        probes = [socket.socket() for _ in range(count)]
        try:
            for offset, probe in enumerate(probes):
                probe.bind(("127.0.0.1", first + offset))
            return first
        except OSError:
            continue
        finally:
            for probe in probes:
                probe.close()
    raise SystemExit(f"no {count} consecutive free ports found below {low}")
