"""``telcoflow serve``: run the gateway until interrupted."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import sys

# Before numpy loads: the gateway's batched DSP is small matrix work on the event loop
# thread; BLAS worker threads would fight that thread for the cores (measured: the
# conference tick cost 2x more per call with OpenBLAS threads on this 2-core machine).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .. import telephony  # noqa: E402
from ..server import credentials  # noqa: E402
from ..server.app import Gateway  # noqa: E402
from ..server.cluster import ClusterError  # noqa: E402
from ..server.config import (  # noqa: E402
    GatewayConfig,
    dev_quic,
    dev_sip,
    embedded_defaults,
    from_env,
    load_file,
    mask,
    parse_hostport,
)
from ..server.drain import drain  # noqa: E402
from ..server.errors import ConfigError  # noqa: E402
from ..server.heap import keep_freed_heap  # noqa: E402
from ..server.logformat import redact_config, use_json_logs  # noqa: E402
from ..server.workers import WORKER_ENV, as_worker, require_registry, worker_count  # noqa: E402
from .workers import Supervisor  # noqa: E402

logger = logging.getLogger("telcoflow.server")

DEV_RECORDINGS = "out/recordings"  # a development gateway's, under the working directory


def build_config(config_path: str | None, host: str | None, port: int | None,
                 sip: str | None = None, quic: int | None = None,
                 metrics_listen: str | None = None) -> GatewayConfig:
    config_path = config_path or os.environ.get("TELCOFLOW_CONFIG")
    if config_path:
        config = load_file(config_path)
    else:
        config = from_env() or embedded_defaults()
    if host is not None:
        config.host = host
    if port is not None:
        config.port = port
    if sip is not None:
        config.sip = dev_sip(sip)
    if quic is not None:  # a [quic] section keeps its certificate; the port is the flag's
        if config.quic is not None:
            config.quic.port = dev_quic(quic).port
        else:
            config.quic = dev_quic(quic, config.host)
    if metrics_listen is not None:
        config.metrics.host, config.metrics.port = parse_hostport(metrics_listen,
                                                                  "--metrics-listen")
    if config.generated and config.recordings.dir is None:
        # a development gateway records its calls, so the console plays them back
        config.recordings.dir = os.path.abspath(DEV_RECORDINGS)
        for connector in config.connectors:
            connector.record = True
    return config


def show_credentials(config: GatewayConfig, out: object = sys.stdout) -> None:
    """Printed once, to the terminal only — never through logging."""
    c = config.connectors[0]
    lines = [
        "Development credentials (generated now; shown this once):",
        f"  export WSS_API_KEY={c.api_keys[0]}",
        f"  export WSS_CONNECTOR_UUID={c.uuid}",
        f"  export TELCOFLOW_PHONE_KEY={config.phone_keys[0]}",
        *([f"  export TELCOFLOW_METRICS_KEY={config.metrics.keys[0]}   "
           "# Authorization: Bearer … for /metrics"] if config.metrics.keys else []),
        f"  numbers routed to this connector: {', '.join(c.numbers)}",
        "  (Twilio auth token and AudioCodes bearer token: in the file below)",
    ]
    if config.quic is not None:  # saved once the door is open (run() calls us after start)
        lines.append("  (the QUIC door's port and certificate fingerprint too: "
                     "'telcoflow call --via quic' reads them)")
    lines.append(f"  saved for local tools in {credentials.save(config)} (mode 0600)")
    print("\n".join(lines), file=out, flush=True)  # type: ignore[call-overload]


def console_url(config: GatewayConfig) -> str:
    """Where a browser opens the web console: the gateway's own origin."""
    base = config.voice_base_url()
    return ("https" if base.startswith("wss") else "http") + base[base.index(":"):] + "/"


async def run(config: GatewayConfig) -> None:
    redact_config(config)  # first: a JSON log formatter learns every configured secret
    gateway = Gateway(config)
    telephony.install(gateway)
    await gateway.start()
    logger.info("gateway ready on %s (%d connector(s); key prefix %s)", config.listen_url(),
                len(config.connectors), mask(config.connectors[0].api_keys[0]))
    if config.generated:
        show_credentials(config)
    print(f"Console: {console_url(config)}  (log in with a connector's API key; "
          "docs/console.md)", flush=True)
    if config.generated and config.recordings.dir:
        print(f"Recording calls to {config.recordings.dir} (development gateway)", flush=True)
    if config.quic is not None:  # not a secret: what clients pin (--fingerprint)
        print(f"QUIC door on udp {config.quic.host}:{config.quic.port}, certificate "
              f"SHA-256 {config.quic.fingerprint}", flush=True)
    if config.metrics.enabled and not config.metrics.keys:
        logger.warning("no metrics key is configured: /metrics refuses every request "
                       "(set [metrics] keys or TELCOFLOW_METRICS_KEY)")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    draining = asyncio.Event()  # SIGTERM: drain first (SIGINT: stop at once)

    def on_term() -> None:
        draining.set()
        stop.set()
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGTERM, on_term)
    try:
        await stop.wait()
        if draining.is_set():
            loop.add_signal_handler(signal.SIGTERM, lambda: None)  # the drain runs its course
            await drain(gateway, config.drain_grace_s)
    finally:
        if config.generated:
            credentials.forget(config)
        await gateway.stop()


def main(config_path: str | None, host: str | None, port: int | None,
         sip: str | None = None, quic: int | None = None, metrics_listen: str | None = None,
         log_format: str = "text", workers: str = "1") -> int:
    if log_format == "json":  # replaces the text handler main.py installed, same level
        use_json_logs(logging.getLogger().level)
    try:
        config = build_config(config_path, host, port, sip, quic, metrics_listen)
        count = worker_count(workers)
        require_registry(config, count)
        if count > 1 and (sip or quic or config.sip or config.quic):
            raise ConfigError("--workers shares a TCP port: run SIP and QUIC (UDP) on a "
                              "gateway of one worker")
    except ConfigError as exc:
        print(f"telcoflow serve: {exc}", file=sys.stderr)
        return 2
    index = os.environ.get(WORKER_ENV)
    if index is not None:
        as_worker(config, int(index))
    elif count > 1:
        argv = ["serve", "--port", str(config.port), "--host", config.host,
                "--log-format", log_format, *(["--config", config_path] if config_path else [])]
        return Supervisor(count, argv).run()
    keep_freed_heap()  # the media tick's numpy temporaries: no page faults per analysis
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass
    try:
        asyncio.run(run(config))
    except ClusterError as exc:  # [registry]: Redis unreachable at start
        print(f"telcoflow serve: {exc.message}", file=sys.stderr)
        return 1
    except OSError as exc:  # the listening socket (SIP's too): in use, not ours, bad host
        where = f"{config.host}:{config.port}"
        if config.metrics.host is not None:
            where += f" (or metrics on {config.metrics.host}:{config.metrics.port})"
        why = "the address is in use (another gateway?)" if exc.errno == errno.EADDRINUSE \
            else exc.strerror or str(exc)
        print(f"telcoflow serve: cannot listen on {where}: {why}", file=sys.stderr)
        return 1
    return 0
