"""Gateway configuration: connectors, API keys, number routes, timings.

Sources, first match wins: an explicit TOML file (``--config`` or
``TELCOFLOW_CONFIG``); the environment (``TELCOFLOW_API_KEY``,
``TELCOFLOW_CONNECTOR_UUID``, ``TELCOFLOW_NUMBERS``, ``TELCOFLOW_PHONE_KEY``,
``TELCOFLOW_METRICS_KEY``);
else embedded development defaults with freshly generated keys.

TOML shape::

    [server]
    host = "127.0.0.1"
    port = 8080
    public_url = "ws://localhost:8080"   # what call.in voice URLs point at
    ring_timeout_s = 30
    resume_grace_s = 30
    connect_ring_cap_s = 120             # longest call.connect rings the subscriber
    missed_ring_s = 20                   # MISSED_ONLY: subscriber rings this long first
    hold_sound = "tone"                  # while a call waits for an agent: tone, silence, a WAV
    max_connections = 8192               # connections in all; beyond: 503 and close
    max_pending_per_source = 64          # per address, not yet a WebSocket (unauthenticated)
    listen_backlog = 1024
    ws_ping_interval_s = 20               # a silent WebSocket peer is pinged after this,
    ws_pong_timeout_s = 20                # and dropped if still silent this long after
    [[connectors]]
    uuid = "…"
    api_keys = ["…"]
    numbers = ["+15550100"]
    cert_common_names = ["agent-1"]      # mTLS identities of this connector
    [phone]
    keys = ["…"]                          # who may place simulated calls
    [tls]
    cert = "server.pem"; key = "server.key"; client_ca = "ca.pem"
    [sip]                                 # UDP SIP + RTP G.711 (docs/sip.md)
    listen = "0.0.0.0:5060"
    public_host = "203.0.113.7"           # in Via, Contact and SDP (default: listen host)
    rtp_ports = "20000-20999"
    invites_per_second = 20               # per source; beyond: 503 Retry-After
    rtp_timeout_s = 30                    # no RTP this long (not on hold): BYE; 0: never
    [[sip.trunks]]
    name = "carrier"
    sources = ["198.51.100.0/24"]         # who may send us INVITEs
    username = "…"; password = "…"        # digest credentials it must present (optional)
    proxy = "198.51.100.10:5060"          # where our INVITEs go
    numbers = ["+1", "+44"]               # the numbers it reaches ("*": all)
    out_username = "…"; out_password = "…"  # if it challenges our INVITEs
    [twilio]                              # Twilio Media Streams (docs/twilio.md)
    auth_token = "…"                      # the account's: X-Twilio-Signature is checked with it
    [audiocodes]                          # AudioCodes VoiceAI Connect (docs/audiocodes.md)
    tokens = ["…"]                        # bearer tokens VAIC presents
    bots = { "my-bot" = "+15550100" }     # botName → the number the call goes to
    [quic]                                # the QUIC audio plane for agents (docs/quic.md)
    listen = "127.0.0.1:4433"             # UDP, beside the WebSocket port
    cert = "quic.pem"; key = "quic.key"   # absent: a self-signed one is made at start
    max_connections = 1024
    [metrics]                             # /metrics, /healthz, /readyz (docs/operations.md)
    keys = ["…"]                          # bearer keys that may read /metrics (none: nobody)
    listen = "127.0.0.1:9464"             # optional: serve them on this plain-HTTP listener
                                          # instead of the gateway's port (probes: on both)
    enabled = true                        # false: no metrics kept, /metrics is 404
    [recordings]                          # server-side call recordings (docs/operations.md)
    dir = "/var/lib/telcoflow/recordings" # <dir>/<connector uuid>/<call id>.wav
    max_served_mb = 64                    # bigger ones are served only in ranges (1 MiB each)
    [records]                             # a JSON record of every ended call
    dir = "/var/lib/telcoflow/records"    # appended to <dir>/calls.jsonl (optional)
    keep = 200                            # records kept in memory per connector (REST)
    # and per connector, in its [[connectors]] entry:
    record = true                         # record this connector's calls (needs [recordings])
    [registry]                            # several nodes or workers (docs/scale-out.md)
    url = "redis://127.0.0.1:6379/0"      # absent: one process, sessions in memory
    node_id = "gw-a"                      # optional: a name per node (default: made up)
"""

from __future__ import annotations

import os
import secrets
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..engine.settings import ConnectorSpec, EngineSettings
from .errors import ConfigError

DEV_NUMBER = "+15550100"


@dataclass(slots=True)
class Connector:
    uuid: str
    api_keys: list[str]
    numbers: list[str] = field(default_factory=list)
    cert_common_names: list[str] = field(default_factory=list)
    org_uuid: str = ""
    max_sessions: int = 1000
    record: bool = False  # its calls are recorded (needs [recordings] dir)


@dataclass(slots=True)
class TlsConfig:
    cert: str
    key: str
    client_ca: str | None = None


@dataclass(slots=True)
class SipTrunk:
    """A carrier or PBX we exchange SIP calls with."""

    name: str
    # inbound: where its INVITEs may come from (addresses or CIDR blocks)
    sources: list[str] = field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    # inbound: digest credentials it must present (none: the source address is enough)
    username: str | None = None
    password: str | None = None
    # outbound: where our INVITEs go ("host:port"), the numbers it reaches (prefixes;
    # "*" is every number), and the credentials it may challenge us for
    proxy: str | None = None
    numbers: list[str] = field(default_factory=list)
    out_username: str | None = None
    out_password: str | None = None


@dataclass(slots=True)
class SipConfig:
    """``[sip]``: UDP SIP and RTP G.711 (off unless configured or ``--sip`` is given)."""

    host: str = "127.0.0.1"
    port: int = 5060
    public_host: str | None = None  # what Via, Contact and SDP name (default: host)
    rtp_port_min: int = 20000
    rtp_port_max: int = 20999
    trunks: list[SipTrunk] = field(default_factory=list)
    allow_uri_dialing: bool = False  # agents may dial sip: URIs directly (development)
    invites_per_second: float = 20.0  # per source address; beyond: 503 with Retry-After
    # a call whose caller sends no RTP this long (not on hold) is hung up with a BYE:
    # the remote is gone without one (crashed, unplugged, NAT binding lost); 0: never
    rtp_timeout_s: float = 30.0

    @property
    def advertised_host(self) -> str:
        return self.public_host or ("127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host)


@dataclass(slots=True)
class TwilioConfig:
    """``[twilio]``: calls from Twilio Media Streams (``/v1/twilio/voice`` + ``/media``)."""

    auth_token: str


@dataclass(slots=True)
class AudioCodesConfig:
    """``[audiocodes]``: calls from AudioCodes VoiceAI Connect (``/v1/audiocodes``)."""

    tokens: list[str]
    bots: dict[str, str] = field(default_factory=dict)  # botName → dialled number
    default_number: str | None = None  # for a botName not in ``bots``


@dataclass(slots=True)
class WhatsAppNumber:
    """One business number on the WhatsApp Cloud API."""

    number: str            # as a connector's ``numbers`` lists it (E.164, e.g. +15550001111)
    phone_number_id: str   # Meta's id of the number (the webhook's metadata names it)
    access_token: str      # a system-user token with whatsapp_business_messaging


@dataclass(slots=True)
class WhatsAppConfig:
    """``[whatsapp]``: messages through the WhatsApp Cloud API (webhook ``/v1/whatsapp``)."""

    app_secret: str        # signs the webhook's POSTs (X-Hub-Signature-256)
    verify_token: str      # the webhook's subscription handshake (GET hub.verify_token)
    numbers: list[WhatsAppNumber]
    api_base_url: str = "https://graph.facebook.com"
    api_version: str = "v23.0"   # when the agent's message names none
    timeout_s: float = 10.0      # one send to the Cloud API


@dataclass(slots=True)
class QuicConfig:
    """``[quic]``: the QUIC audio plane for agents (docs/quic.md), on UDP."""

    host: str = "127.0.0.1"
    port: int = 4433           # 0: any free port (written back here once bound)
    cert: str | None = None    # PEM chain; None: a self-signed certificate made at start
    key: str | None = None
    max_connections: int = 1024
    # set when the door starts: the served certificate's SHA-256 (hex), for clients to pin
    fingerprint: str = ""


@dataclass(slots=True)
class MetricsConfig:
    """``[metrics]``: Prometheus metrics at ``/metrics`` behind bearer ``keys``, and the
    health probes ``/healthz`` and ``/readyz`` (unauthenticated: they reveal one bit)."""

    enabled: bool = True
    keys: list[str] = field(default_factory=list)  # none: /metrics refuses every request
    # a separate plain-HTTP listener for /metrics and the probes (None: the gateway's
    # own port); port 0: any free port (written back here once bound)
    host: str | None = None
    port: int = 9464


@dataclass(slots=True)
class RecordingsConfig:
    """``[recordings]``: where recorded calls are written (connectors with ``record``)."""

    dir: str | None = None
    max_served_mb: int = 64  # REST serves a recording whole up to this size (else in ranges)


@dataclass(slots=True)
class RecordsConfig:
    """``[records]``: call records, kept in memory per connector and appended to
    ``<dir>/calls.jsonl`` when ``dir`` is set."""

    dir: str | None = None
    keep: int = 200


@dataclass(slots=True)
class RegistryConfig:
    """``[registry]``: the sessions, claims and agent connections every node shares
    (Redis). No url: the embedded memory registry, one process."""

    url: str | None = None
    node_id: str | None = None
    prefix: str = "tf"              # key prefix (several clusters on one Redis)
    heartbeat_s: float = 1.0        # a node refreshes its liveness key this often
    node_ttl_s: float = 3.0         # and is taken for dead this long after its last one


@dataclass(slots=True)
class GatewayConfig:
    connectors: list[Connector]
    phone_keys: list[str]
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    ring_timeout_s: float = 30.0
    resume_grace_s: float = 30.0
    agent_reconnect_grace_s: float = 10.0
    token_ttl_s: float = 3600.0
    playout_target_ms: int = 120
    playout_prebuffer_ms: int = 40
    playout_max_lag_ms: int = 200  # catch-up bound (EngineSettings); 0: no catch-up
    # each answered call's legs measured live (level, SNR, clipping, talk: the quality
    # alerts and timelines); false: no quality data, and about a third less gateway CPU
    # per call (docs/benchmarks.md: the floor ratio)
    quality_watch: bool = True
    # calls at once (either direction, ringing or up) this process holds; a caller
    # arriving beyond it is refused GATEWAY_OVERLOADED and /readyz says overloaded.
    # 0: no cap (admission control still refuses calls while the media tick runs
    # late). Set it from `telcoflow bench --ramp`'s capacity: calls that arrive
    # together load the gateway only once they talk, too late for the lateness to
    # refuse them.
    max_calls: int = 0
    # the longest call.connect rings a subscriber line, whatever the agent asks (an
    # operator's cap, as carriers have; tests lower it to exercise CALL_UNANSWERED)
    connect_ring_cap_s: float = 120.0
    # inboundCall MISSED_ONLY: how long the subscriber's line rings before agents get the call
    missed_ring_s: float = 20.0
    # connections (netio.NetLimits): in all; per source address before they are a
    # WebSocket (the unauthenticated state); the listen queue
    # what a caller hears while the call waits for an agent to take it again (its
    # agent's link died): "tone", "silence", or a WAV file's path
    hold_sound: str = "tone"
    max_connections: int = 8192
    max_pending_per_source: int = 64
    listen_backlog: int = 1024
    # a silent WebSocket peer is pinged after ws_ping_interval_s and dropped if still
    # silent ws_pong_timeout_s later (a caller or agent gone without FIN or RST)
    ws_ping_interval_s: float = 20.0
    ws_pong_timeout_s: float = 20.0
    tls: TlsConfig | None = None
    sip: SipConfig | None = None
    twilio: TwilioConfig | None = None
    audiocodes: AudioCodesConfig | None = None
    whatsapp: WhatsAppConfig | None = None
    quic: QuicConfig | None = None
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    recordings: RecordingsConfig = field(default_factory=RecordingsConfig)
    records: RecordsConfig = field(default_factory=RecordsConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    # a WA session is open while its customer-service window is: it closes this long
    # after the user's last message (WhatsApp's 24 hours); outside it, only templates
    message_window_s: float = 86_400.0
    # a worker of `serve --workers N`: the shared port is opened with SO_REUSEPORT, and
    # voice connections of this worker's calls come to voice_port (set per worker)
    reuse_port: bool = False
    voice_port: int | None = None
    # SIGTERM: new calls refused, live ones given this long to end (then GATEWAY_SHUTDOWN)
    drain_grace_s: float = 30.0
    generated: bool = False  # True when keys were made up at start (embedded defaults)

    def engine_settings(self) -> EngineSettings:
        return EngineSettings(
            connectors=[ConnectorSpec(c.uuid, tuple(c.numbers), c.max_sessions)
                        for c in self.connectors],
            ring_timeout_s=self.ring_timeout_s, resume_grace_s=self.resume_grace_s,
            agent_reconnect_grace_s=self.agent_reconnect_grace_s,
            playout_target_ms=self.playout_target_ms,
            playout_prebuffer_ms=self.playout_prebuffer_ms,
            playout_max_lag_ms=self.playout_max_lag_ms,
            quality_watch=self.quality_watch, max_calls=self.max_calls,
            connect_ring_cap_s=self.connect_ring_cap_s, missed_ring_s=self.missed_ring_s,
            hold_sound=self.hold_sound, message_window_s=self.message_window_s)

    def voice_base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        return self.listen_url(self.voice_port or self.port)

    def listen_url(self, port: int | None = None) -> str:
        """The gateway's own port (shared by every worker), or ``port``, as a URL."""
        scheme = "wss" if self.tls else "ws"
        host = "localhost" if self.host in ("0.0.0.0", "::") else self.host
        return f"{scheme}://{host}:{port or self.port}"


def embedded_defaults(host: str = "127.0.0.1", port: int = 8080) -> GatewayConfig:
    connector = Connector(uuid=str(uuid.uuid4()), api_keys=[_new_key("tfk")],
                          numbers=[DEV_NUMBER], org_uuid=str(uuid.uuid4()))
    # the cloud carriers' doors are open in development, each with a key made now, so
    # `telcoflow call --via twilio|audiocodes` works against a bare `telcoflow serve`
    return GatewayConfig([connector], [_new_key("tfp")], host=host, port=port, generated=True,
                         twilio=TwilioConfig(_new_key("tft")),
                         audiocodes=AudioCodesConfig([_new_key("tfa")],
                                                     default_number=DEV_NUMBER),
                         metrics=MetricsConfig(keys=[_new_key("tfm")]))


def from_env(env: dict[str, str] | os._Environ[str] = os.environ) -> GatewayConfig | None:
    key, conn = env.get("TELCOFLOW_API_KEY"), env.get("TELCOFLOW_CONNECTOR_UUID")
    if not key and not conn:
        return None
    if not key or not conn:
        raise ConfigError("TELCOFLOW_API_KEY and TELCOFLOW_CONNECTOR_UUID must be set together")
    numbers = [n.strip() for n in env.get("TELCOFLOW_NUMBERS", DEV_NUMBER).split(",") if n.strip()]
    phone = env.get("TELCOFLOW_PHONE_KEY") or _new_key("tfp")
    metrics = env.get("TELCOFLOW_METRICS_KEY")
    return GatewayConfig([Connector(conn, [key], numbers, org_uuid=conn)], [phone],
                         metrics=MetricsConfig(keys=[metrics] if metrics else []))


# the [server] table's keys, each a GatewayConfig field of the same name
SERVER_SETTINGS = ("host", "port", "public_url", "ring_timeout_s", "resume_grace_s",
                   "agent_reconnect_grace_s", "token_ttl_s", "playout_target_ms",
                   "playout_prebuffer_ms", "playout_max_lag_ms", "connect_ring_cap_s",
                   "missed_ring_s", "max_connections", "max_pending_per_source",
                   "listen_backlog", "hold_sound", "ws_ping_interval_s", "ws_pong_timeout_s",
                   "message_window_s", "drain_grace_s", "quality_watch", "max_calls")


def load_file(path: str | Path) -> GatewayConfig:
    try:
        raw = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    server = _table(raw, "server")
    connectors = [_connector(c, i) for i, c in enumerate(raw.get("connectors", []))]
    if not connectors:
        raise ConfigError(f"{path}: at least one [[connectors]] entry is required")
    phone = _table(raw, "phone").get("keys", [])
    tls_raw = raw.get("tls")
    tls = TlsConfig(tls_raw["cert"], tls_raw["key"], tls_raw.get("client_ca")) if tls_raw else None
    cfg = GatewayConfig(connectors, list(phone), tls=tls, sip=_sip(raw), twilio=_twilio(raw),
                        audiocodes=_audiocodes(raw), whatsapp=_whatsapp(raw),
                        quic=_quic(raw), metrics=_metrics(raw),
                        recordings=_recordings(raw), records=_records(raw),
                        registry=_registry(raw))
    unknown = sorted(set(server) - set(SERVER_SETTINGS))
    if unknown:  # a misspelt setting would otherwise be ignored without a word
        raise ConfigError(f"{path}: unknown [server] setting {unknown[0]!r} (known: "
                          f"{', '.join(SERVER_SETTINGS)})")
    for name in SERVER_SETTINGS:
        if name in server:
            setattr(cfg, name, server[name])
    validate(cfg)
    return cfg


def validate(cfg: GatewayConfig) -> None:
    seen_numbers: dict[str, str] = {}
    seen_keys: set[str] = set()
    for conn in cfg.connectors:
        for number in conn.numbers:
            if number in seen_numbers:
                raise ConfigError(f"number {number} is routed to two connectors")
            seen_numbers[number] = conn.uuid
        for key in conn.api_keys:
            if key in seen_keys:
                raise ConfigError(f"an API key of connector {conn.uuid} is used twice")
            seen_keys.add(key)
    if not 10 <= cfg.playout_target_ms <= 2000:
        raise ConfigError("playout_target_ms must be between 10 and 2000")
    if cfg.playout_max_lag_ms != 0 and not 40 <= cfg.playout_max_lag_ms <= 10_000:
        raise ConfigError("playout_max_lag_ms must be 0 (no catch-up) or between 40 and "
                          "10000")
    if isinstance(cfg.max_calls, bool) or not isinstance(cfg.max_calls, int) \
            or cfg.max_calls < 0:
        raise ConfigError(f"max_calls must be 0 (no cap) or a number of calls, not "
                          f"{cfg.max_calls!r}")
    if not isinstance(cfg.quality_watch, bool):
        raise ConfigError(f"quality_watch must be true or false, not {cfg.quality_watch!r}")
    if cfg.hold_sound not in ("tone", "silence") and not Path(cfg.hold_sound).is_file():
        raise ConfigError(f"hold_sound must be 'tone', 'silence' or a WAV file; "
                          f"{cfg.hold_sound!r} is none of them")
    for name in ("ws_ping_interval_s", "ws_pong_timeout_s", "message_window_s"):
        if not isinstance(getattr(cfg, name), int | float) or getattr(cfg, name) <= 0:
            raise ConfigError(f"{name} must be a positive number of seconds")
    for name in ("max_connections", "max_pending_per_source", "listen_backlog"):
        value = getattr(cfg, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{name} must be a positive integer, not {value!r}")
    recorded = [c.uuid for c in cfg.connectors if c.record]
    if recorded and not cfg.recordings.dir:
        raise ConfigError(f"connector {recorded[0]} has record = true, but no [recordings] dir "
                          "says where recordings go")
    if seen_keys.intersection(cfg.metrics.keys) or set(cfg.phone_keys).intersection(
            cfg.metrics.keys):
        raise ConfigError("a [metrics] key is also an API or phone key: give metrics a key "
                          "of its own (it reads every connector's figures)")



def dev_sip(listen: str) -> SipConfig:
    """``--sip HOST:PORT``: SIP on that address, taking calls from loopback, dialling
    SIP URIs directly (no trunk configured: development and tests)."""
    host, port = parse_hostport(listen, "--sip")
    return SipConfig(host=host, port=port, trunks=[SipTrunk("loopback")],
                     allow_uri_dialing=True)


def parse_hostport(text: str, where: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(f"{where} must be HOST:PORT (e.g. 127.0.0.1:5060), not {text!r}")
    return host.strip("[]"), int(port)


def _sip(raw: dict[str, Any]) -> SipConfig | None:
    if "sip" not in raw:
        return None
    table = _table(raw, "sip")
    host, port = parse_hostport(str(table.get("listen", "127.0.0.1:5060")), "[sip] listen")
    low, _, high = str(table.get("rtp_ports", "20000-20999")).partition("-")
    if not (low.isdigit() and high.isdigit() and 1024 <= int(low) < int(high) <= 65535):
        raise ConfigError("[sip] rtp_ports must be LOW-HIGH, e.g. 20000-20999")
    trunks = [_trunk(t, i) for i, t in enumerate(table.get("trunks", []))]
    return SipConfig(host, port, table.get("public_host"), int(low), int(high), trunks,
                     bool(table.get("allow_uri_dialing", False)),
                     float(table.get("invites_per_second", 20.0)),
                     float(table.get("rtp_timeout_s", 30.0)))


def _twilio(raw: dict[str, Any]) -> TwilioConfig | None:
    if "twilio" not in raw:
        return None
    token = _table(raw, "twilio").get("auth_token")
    if not isinstance(token, str) or not token:
        raise ConfigError("[twilio] needs auth_token (the account's, to check signatures)")
    return TwilioConfig(token)


def _audiocodes(raw: dict[str, Any]) -> AudioCodesConfig | None:
    if "audiocodes" not in raw:
        return None
    table = _table(raw, "audiocodes")
    tokens = table.get("tokens")
    if not isinstance(tokens, list) or not tokens or not all(isinstance(t, str) and t
                                                              for t in tokens):
        raise ConfigError("[audiocodes] needs tokens = [\"…\"] (the bearer tokens VAIC sends)")
    bots = table.get("bots", {})
    if not isinstance(bots, dict):
        raise ConfigError("[audiocodes] bots must be a table of botName = \"number\"")
    default = table.get("default_number")
    return AudioCodesConfig(list(tokens), {str(k): str(v) for k, v in bots.items()},
                            str(default) if default else None)


def _quic(raw: dict[str, Any]) -> QuicConfig | None:
    if "quic" not in raw:
        return None
    table = _table(raw, "quic")
    host, port = parse_hostport(str(table.get("listen", "127.0.0.1:4433")), "[quic] listen")
    cert, key = table.get("cert"), table.get("key")
    if (cert is None) != (key is None) or not all(v is None or isinstance(v, str)
                                                  for v in (cert, key)):
        raise ConfigError("[quic] needs cert and key together (PEM file paths), or neither "
                          "(a self-signed certificate is made at start)")
    limit = table.get("max_connections", 1024)
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ConfigError(f"[quic] max_connections must be a positive integer, not {limit!r}")
    return QuicConfig(host, port, cert, key, limit)


def _registry(raw: dict[str, Any]) -> RegistryConfig:
    table = _table(raw, "registry")
    cfg = RegistryConfig()
    for name in ("url", "node_id", "prefix"):
        if name in table:
            if not isinstance(table[name], str) or not table[name]:
                raise ConfigError(f"[registry] {name} must be a non-empty string")
            setattr(cfg, name, table[name])
    if cfg.url is not None and not cfg.url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("[registry] url must be a Redis URL, e.g. redis://127.0.0.1:6379/0")
    for name in ("heartbeat_s", "node_ttl_s"):
        if name in table:
            value = table[name]
            if not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"[registry] {name} must be a positive number of seconds")
            setattr(cfg, name, float(value))
    if cfg.node_ttl_s <= cfg.heartbeat_s:
        raise ConfigError("[registry] node_ttl_s must be longer than heartbeat_s")
    return cfg


def _metrics(raw: dict[str, Any]) -> MetricsConfig:
    table = _table(raw, "metrics")
    cfg = MetricsConfig()
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"[metrics] enabled must be true or false, not {enabled!r}")
    keys = table.get("keys", [])
    if not isinstance(keys, list) or not all(isinstance(k, str) and len(k) >= 16
                                             for k in keys):
        raise ConfigError("[metrics] keys must be a list of strings of 16 characters or more "
                          "(bearer keys for /metrics)")
    cfg.enabled, cfg.keys = enabled, list(keys)
    if "listen" in table:
        cfg.host, cfg.port = parse_hostport(str(table["listen"]), "[metrics] listen")
    return cfg


def _recordings(raw: dict[str, Any]) -> RecordingsConfig:
    table = _table(raw, "recordings")
    cfg = RecordingsConfig(_dir(table, "recordings"))
    cfg.max_served_mb = _int_from(table, "recordings", "max_served_mb", cfg.max_served_mb,
                                  1, 4096)
    return cfg


def _records(raw: dict[str, Any]) -> RecordsConfig:
    table = _table(raw, "records")
    cfg = RecordsConfig(_dir(table, "records"))
    cfg.keep = _int_from(table, "records", "keep", cfg.keep, 1, 100_000)
    return cfg


def _int_from(table: dict[str, Any], section: str, name: str, default: int, low: int,
              high: int) -> int:
    """``table[name]`` (``default`` when absent): an integer from ``low`` to ``high``."""
    value = table.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"[{section}] {name} must be an integer from {low} to {high}")
    return value


def _dir(table: dict[str, Any], name: str) -> str | None:
    value = table.get("dir")
    if value is not None and (not isinstance(value, str) or not value):
        raise ConfigError(f"[{name}] dir must be a directory path")
    return value


def dev_quic(port: int, host: str = "127.0.0.1") -> QuicConfig:
    """``--quic PORT``: the QUIC door on that UDP port, with a self-signed certificate."""
    if not 0 <= port <= 65535:
        raise ConfigError(f"--quic must be a UDP port (0-65535), not {port}")
    return QuicConfig(host=host, port=port)


def _whatsapp(raw: dict[str, Any]) -> WhatsAppConfig | None:
    if "whatsapp" not in raw:
        return None
    table = _table(raw, "whatsapp")
    for name in ("app_secret", "verify_token"):
        if not isinstance(table.get(name), str) or not table[name]:
            raise ConfigError(f"[whatsapp] needs {name} (from the Meta app's settings)")
    numbers = [_wa_number(n, i) for i, n in enumerate(table.get("numbers", []))]
    if not numbers:
        raise ConfigError("[whatsapp] needs at least one [[whatsapp.numbers]] entry "
                          "(number, phone_number_id, access_token)")
    cfg = WhatsAppConfig(table["app_secret"], table["verify_token"], numbers)
    for name in ("api_base_url", "api_version"):
        if name in table:
            setattr(cfg, name, str(table[name]).rstrip("/"))
    if "timeout_s" in table:
        cfg.timeout_s = float(table["timeout_s"])
    return cfg


def _wa_number(raw: Any, index: int) -> WhatsAppNumber:
    fields = ("number", "phone_number_id", "access_token")
    if not isinstance(raw, dict) or not all(isinstance(raw.get(f), str) and raw[f]
                                            for f in fields):
        raise ConfigError(f"whatsapp.numbers[{index}] needs number, phone_number_id and "
                          "access_token (strings)")
    return WhatsAppNumber(raw["number"], raw["phone_number_id"], raw["access_token"])


def _trunk(raw: Any, index: int) -> SipTrunk:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise ConfigError(f"sip.trunks[{index}] needs a string 'name'")
    trunk = SipTrunk(raw["name"])
    for name in ("sources", "numbers"):
        if name in raw:
            setattr(trunk, name, [str(v) for v in raw[name]])
    for name in ("username", "password", "proxy", "out_username", "out_password"):
        if name in raw:
            setattr(trunk, name, str(raw[name]))
    if trunk.proxy:
        parse_hostport(trunk.proxy, f"sip.trunks[{index}].proxy")
    return trunk


def _table(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"[{name}] must be a table")
    return value


def _connector(raw: Any, index: int) -> Connector:
    if not isinstance(raw, dict) or not isinstance(raw.get("uuid"), str):
        raise ConfigError(f"connectors[{index}] needs a string 'uuid'")
    return Connector(raw["uuid"], list(raw.get("api_keys", [])), list(raw.get("numbers", [])),
                     list(raw.get("cert_common_names", [])), str(raw.get("org_uuid", raw["uuid"])),
                     int(raw.get("max_sessions", 1000)), _flag(raw, "record", index))


def _flag(raw: dict[str, Any], name: str, index: int) -> bool:
    value = raw.get(name, False)
    if not isinstance(value, bool):
        raise ConfigError(f"connectors[{index}].{name} must be true or false, not {value!r}")
    return value


def _new_key(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(24)}"


def mask(secret: str) -> str:
    """What may be shown of a secret after the first display: its prefix only."""
    return secret[:6] + "…" if len(secret) > 10 else "…"
