"""The ``telcoflow`` command: ``serve``, ``call``, ``line``, ``message``, ``agent``, ``bench``
(and ``demo``)."""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import sys


def _version() -> str:
    try:
        return importlib.metadata.version("telcoflow")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree
        return "unknown (not installed)"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="telcoflow", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--version", action="version", version=f"telcoflow {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--config", help="TOML config file (default: $TELCOFLOW_CONFIG, else "
                       "the environment, else embedded defaults)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--sip", metavar="HOST:PORT",
                       help="also take SIP calls (UDP) on this address, from loopback "
                       "(a [sip] section in --config sets trunks; see docs/sip.md)")
    serve.add_argument("--quic", type=int, metavar="PORT",
                       help="also open the agents' QUIC audio plane on this UDP port "
                       "(self-signed certificate unless [quic] in --config names one; "
                       "see docs/quic.md)")
    serve.add_argument("--metrics-listen", metavar="HOST:PORT",
                       help="serve /metrics (and /healthz, /readyz) on this separate "
                       "plain-HTTP listener instead of the gateway's port "
                       "(docs/operations.md)")
    serve.add_argument("--workers", default="1", metavar="N|auto",
                       help="run N gateway processes sharing the port (SO_REUSEPORT) and "
                       "the [registry] Redis; auto: one per core (docs/scale-out.md)")
    serve.add_argument("--log-format", choices=("text", "json"), default="text",
                       help="log lines as text, or one JSON object per line with keys and "
                       "tokens scrubbed (docs/operations.md)")

    call = sub.add_parser("call", help="place a call into a running gateway: simulated phone, "
                          "or Twilio / AudioCodes through their built-in emulators")
    call.add_argument("--via", choices=("phone", "twilio", "audiocodes", "quic"),
                      default="phone",
                      help="the door the call comes through (default: the simulated phone); "
                      "quic: a QUIC agent of the connector originates a call to --to")
    call.add_argument("--to", required=True, help="the number to dial")
    call.add_argument("--from", dest="caller", default="+15550001", help="the caller's number")
    call.add_argument("--play", help="WAV file to play (any rate and width; converted)")
    call.add_argument("--record", help="WAV file to write what the caller heard")
    call.add_argument("--duration", type=float, help="seconds before hanging up "
                      "(default: the file's length + 1 s)")
    call.add_argument("--url", help="gateway base URL (default: ws://localhost:8080)")
    call.add_argument("--key", help="the door's key: phone network key, Twilio auth token or "
                      "AudioCodes bearer token (default: env or dev credentials)")
    call.add_argument("--codec", choices=("pcmu", "pcma", "pcm16"), default="pcmu",
                      help="the simulated phone's codec (Twilio: μ-law; AudioCodes: negotiated)")
    call.add_argument("--rate", type=int, default=8000, choices=(8000, 16000, 24000, 48000))
    call.add_argument("--quic-port", type=int, default=4433,
                      help="--via quic: the gateway's QUIC UDP port (default: the one a "
                      "development 'telcoflow serve --quic' saved, else 4433)")
    call.add_argument("--fingerprint", help="--via quic: the certificate SHA-256 that "
                      "'telcoflow serve --quic' printed (pinned; default: the saved one)")
    call.add_argument("--insecure", action="store_true",
                      help="--via quic: do not check the gateway's certificate at all")

    demo = sub.add_parser("demo", help="gateway + simulated call + agent + recording + report")
    demo.add_argument("--out", default="out/demo", help="directory for the recording and report")

    from ..loadgen.run import add_parser as add_bench
    add_bench(sub)
    from .agent import add_parser as add_agent
    add_agent(sub)
    from .line import add_parsers as add_line
    add_line(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.command == "serve":
        from .serve import main as serve_main
        return serve_main(args.config, args.host, args.port, args.sip, args.quic,
                          args.metrics_listen, args.log_format, args.workers)
    if args.command == "call":
        from .call import CallRequest
        from .call import main as call_main
        if args.codec != "pcm16" and args.rate != 8000:
            print("pcmu and pcma run at 8000 Hz only", file=sys.stderr)
            return 2
        request = CallRequest(args.to, args.caller, args.play, args.record, args.duration,
                              args.codec, args.rate)
        if args.via == "quic":
            from .call import QuicTarget
            target = QuicTarget(args.quic_port, args.fingerprint, args.insecure)
            return call_main(request, args.via, args.url, args.key, target)
        return call_main(request, args.via, args.url, args.key)
    if args.command in ("line", "message"):
        from .line import main as line_main
        return line_main(args)
    if args.command == "agent":
        from .agent import main as agent_main
        return agent_main(args)
    if args.command == "bench":
        from ..loadgen.run import main as bench_main
        return bench_main(args)
    from .demo import main as demo_main
    return demo_main(args.out)


if __name__ == "__main__":
    sys.exit(main())
