"""The bench's other processes: the gateway, the echo agents, and what /proc says of them."""

from __future__ import annotations

import json
import os
import platform
import re
import secrets
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ..server import credentials
from ..server.config import DEV_NUMBER
from . import agent as bench_agent
from .scaleout import free_ports

REFSDK_VERSION = "1.0.0"
START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Connector:
    api_key: str
    uuid: str
    number: str


@dataclass(frozen=True)
class Credentials:
    url: str
    phone_key: str
    connectors: list[Connector]
    twilio_token: str | None = None      # the gateway's [twilio] auth token
    audiocodes_token: str | None = None  # a bearer token of its [audiocodes]
    quic_port: int | None = None         # its QUIC door (UDP, on the URL's host) ...
    quic_fingerprint: str | None = None  # ... and the certificate's SHA-256, pinned
    metrics_key: str | None = None       # reads its /metrics (the bench's own gateway)


class Child:
    """A child process whose merged output is read line by line on a thread."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.lines: list[str] = []
        self._seen = threading.Condition()
        self._done = False
        threading.Thread(target=self._pump, name=f"{name}-output", daemon=True).start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._seen:
                self.lines.append(line.rstrip("\n"))
                self._seen.notify_all()
        with self._seen:
            self._done = True
            self._seen.notify_all()

    def mark(self) -> int:
        """A position in the output, for :meth:`expect` to search after."""
        with self._seen:
            return len(self.lines)

    def expect(self, pattern: str, since: int = 0,
               timeout: float = START_TIMEOUT_S) -> re.Match[str]:
        """Block until a line from ``since`` on matches ``pattern``; raise if the child exits."""
        regex = re.compile(pattern)
        with self._seen:
            while True:
                for line in self.lines[since:]:
                    if (match := regex.search(line)) is not None:
                        return match
                since = len(self.lines)
                if self._done or not self._seen.wait(timeout):
                    tail = "\n".join(self.lines[-20:])
                    raise RuntimeError(f"{self.name}: no line matching {pattern!r}; "
                                       f"last output:\n{tail}")

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # the agents stop at end of input
            except OSError:
                pass
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def env_without(*prefixes: str) -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}


def our_env() -> dict[str, str]:
    """A child's environment that imports the ``telcoflow`` this bench runs from (a
    checkout's ``src``, say), not whichever one the interpreter has installed."""
    env = env_without("PYTHON", "WSS_", "TELCOFLOW_")
    env["PYTHONPATH"] = str(Path(bench_agent.__file__).resolve().parents[2])
    return env


def start_gateway(connectors: int, workdir: Path, host: str = "127.0.0.1",
                  more_toml: str = "", quic: bool = False, workers: int = 1,
                  registry: str | None = None, server: str = "") -> tuple[Child, Credentials]:
    """``telcoflow serve`` on a free port, with ``connectors`` connectors and keys made here.

    Why several connectors: each agent process gets its own, so a call's
    notification goes to one process only. The keys reach the gateway in a
    0600 config file and never appear in output (the gateway logs a prefix).
    ``more_toml`` adds tables (``[sip]`` for the SIP bench), ``server`` lines to the
    ``[server]`` table (``telcoflow bench --server``); ``quic`` opens the
    QUIC door on a free UDP port (self-signed certificate; docs/quic.md). ``workers`` > 1
    runs ``serve --workers`` on a free fixed port (they share it), with ``registry``.
    """
    made = [Connector(f"tfk_{secrets.token_urlsafe(24)}", str(uuid.uuid4()), f"+1555{i:07d}")
            for i in range(connectors)]
    phone_key = f"tfp_{secrets.token_urlsafe(24)}"
    metrics_key = f"tfm_{secrets.token_urlsafe(24)}"
    twilio, audiocodes = secrets.token_urlsafe(24), f"tfa_{secrets.token_urlsafe(24)}"
    shared = free_ports(workers + 1) if workers > 1 else 0
    toml = [f'[server]\nhost = "{host}"\nport = {shared}\n{server}\n'
            f'[phone]\nkeys = ["{phone_key}"]\n',
            f'[twilio]\nauth_token = "{twilio}"\n\n[audiocodes]\ntokens = ["{audiocodes}"]\n'
            + "[audiocodes.bots]\n" + "".join(f'"{c.number}" = "{c.number}"\n' for c in made)]
    toml += [f'[[connectors]]\nuuid = "{c.uuid}"\napi_keys = ["{c.api_key}"]\n'
             f'numbers = ["{c.number}"]\n' for c in made]
    toml.append(f'[metrics]\nkeys = ["{metrics_key}"]\n')
    toml.append(more_toml)
    if registry is not None:
        toml.append(f'[registry]\nurl = "{registry}"\nprefix = "tfbench"\n')
    if quic:
        toml.append(f'[quic]\nlisten = "{host}:0"\n')
    path = workdir / "gateway.toml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(toml))
    child = Child("gateway", [sys.executable, "-m", "telcoflow.cli.main", "serve",
                              "--config", str(path), "--workers", str(workers)],
                  env_without("TELCOFLOW_", "WSS_"))
    since = 0
    for _ in range(workers):  # every worker says it is ready, on the shared port
        ready = child.expect(r"gateway ready on (\S+)", since)
        url, since = ready.group(1), child.lines.index(ready.string, since) + 1
    port = fingerprint = None
    if quic:
        door = child.expect(r"QUIC door on udp \S+:(\d+), certificate SHA-256 ([0-9a-f]+)")
        port, fingerprint = int(door.group(1)), door.group(2)
    return child, Credentials(url, phone_key, made, twilio, audiocodes, port, fingerprint,
                              metrics_key)


def external_gateway(url: str) -> Credentials:
    """Credentials for ``--gateway URL``: the environment, else a local dev gateway's file."""
    saved = credentials.load(url)
    api_key = os.environ.get("WSS_API_KEY") or saved.get("api_key")
    connector = os.environ.get("WSS_CONNECTOR_UUID") or saved.get("connector_uuid")
    phone_key = os.environ.get("TELCOFLOW_PHONE_KEY") or saved.get("phone_key")
    if not (api_key and connector and phone_key):
        raise SystemExit("--gateway needs WSS_API_KEY, WSS_CONNECTOR_UUID and "
                         "TELCOFLOW_PHONE_KEY (or the credentials file of 'telcoflow serve')")
    numbers = saved.get("numbers") or [DEV_NUMBER]
    quic_port = os.environ.get("TELCOFLOW_QUIC_PORT") or saved.get("quic_port")
    quic_fingerprint = os.environ.get("TELCOFLOW_QUIC_FINGERPRINT") or \
        saved.get("quic_fingerprint")
    return Credentials(url, phone_key, [Connector(api_key, connector, str(numbers[0]))],
                       quic_port=int(quic_port) if quic_port else None,
                       quic_fingerprint=str(quic_fingerprint) if quic_fingerprint else None)


def find_refsdk(given: str | None) -> Path:
    """The published SDK's directory: ``--refsdk``, ``TELCOFLOW_REFSDK_DIR``, or the
    checkout's ``.cache``; this package never installs it (``make refsdk`` does)."""
    candidates = [Path(given)] if given else []
    if os.environ.get("TELCOFLOW_REFSDK_DIR"):
        candidates.append(Path(os.environ["TELCOFLOW_REFSDK_DIR"]))
    candidates.append(Path.cwd() / ".cache" / f"refsdk-{REFSDK_VERSION}")
    for path in candidates:
        if (path / "telcoflow" / "__init__.py").exists():
            return path
    raise SystemExit(f"the published SDK {REFSDK_VERSION} was not found (looked in "
                     f"{', '.join(str(p) for p in candidates)}): run 'make refsdk' in the "
                     "checkout, or pip install --target DIR telcoflow=="
                     f"{REFSDK_VERSION} and pass --refsdk DIR")


def start_agent(which: str, url: str, connector: Connector, rate: int,
                interrupt: tuple[int, int], refsdk: Path | None) -> Child:
    """The echo agents in their own process: our SDK, or the published one in isolation."""
    env = our_env()
    env.update(WSS_API_KEY=connector.api_key, WSS_CONNECTOR_UUID=connector.uuid,
               TELCOFLOW_BASE_URL=url, BENCH_RATE=str(rate),
               BENCH_INTERRUPT=f"{interrupt[0]},{interrupt[1]}")
    script = str(Path(bench_agent.__file__).resolve())
    if which == "reference":
        assert refsdk is not None
        env["PYTHONPATH"] = str(refsdk)
        # -S: no site-packages, so our package cannot be imported beside the published one
        cmd = [sys.executable, "-S", "-P", "-u", script]
    else:
        cmd = [sys.executable, "-P", "-u", script]
    return Child(f"{which} agent", cmd, env)


def start_quic_agent(host: str, port: int, fingerprint: str, connectors: list[Connector],
                     rate: int, carrier: str) -> Child:
    """The QUIC plane's echo agent (``loadgen/quic_agent.py``): one process, one QUIC
    connection per connector, our package only."""
    env = our_env()
    env.update(BENCH_QUIC_HOST=host, BENCH_QUIC_PORT=str(port),
               BENCH_QUIC_FINGERPRINT=fingerprint, BENCH_RATE=str(rate), BENCH_CARRIER=carrier,
               BENCH_QUIC_CONNECTORS=json.dumps([[c.api_key, c.uuid] for c in connectors]))
    script = str((Path(bench_agent.__file__).parent / "quic_agent.py").resolve())
    return Child("quic agent", [sys.executable, "-P", "-u", script], env)


def start_relay(host: str, port: int, seed: int = 1) -> tuple[Child, int]:
    """A lossy UDP relay in front of ``host:port`` (``loadgen/relay.py``); its port."""
    env = our_env()
    env.update(BENCH_RELAY_TARGET=f"{host}:{port}", BENCH_RELAY_SEED=str(seed))
    script = str((Path(bench_agent.__file__).parent / "relay.py").resolve())
    child = Child("relay", [sys.executable, "-P", "-u", script], env)
    return child, int(child.expect(r"^RELAY (\d+)").group(1))


# ── /proc ──────────────────────────────────────────────────────────────────
def cpu_times(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def cpu_seconds(pid: int) -> float:
    return sum(cpu_times(pid))


def machine_cpu() -> dict[str, float]:
    """Seconds the whole machine spent busy, idle and stolen (by a hypervisor) so far."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, idle, iowait, irq, softirq, steal = fields[:8]
    return {"machine_busy": (user + nice + system + irq + softirq) / tick,
            "machine_idle": (idle + iowait) / tick, "machine_steal": steal / tick}


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def machine() -> dict[str, object]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for name in ("telcoflow", "websockets", "h11", "numpy", "soxr", "uvloop"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {"cores": os.cpu_count(), "cpu": model or platform.processor(),
            "python": platform.python_version(), "platform": platform.platform(),
            "versions": versions}
