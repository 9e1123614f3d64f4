"""The floor on its own: ``python bench/floor.py --config gateway.toml``.

A gateway process that splices each call's caller and agent WebSockets once media
flows and only relays their frames from then on (``telcoflow.loadgen.floor``).
``telcoflow bench --floor`` starts it itself, right after the gateway's step, with the
same callers and agents; this script is for running it by hand.
"""

from telcoflow.loadgen.floor import main

if __name__ == "__main__":
    raise SystemExit(main())
