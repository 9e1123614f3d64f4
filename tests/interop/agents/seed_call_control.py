# examples/assistant_agent.py (seed 003's call-control blocks, verbatim) with one
# addition the tests wait on: the session's close is logged. argv[1] picks the block.
import sys

from _harness import logger, serve
from assistant_agent import register_assistant, register_unanswered


def register(session):
    session.on_closed(lambda reason: logger.info("Session closed: %s", reason))
    (register_assistant if sys.argv[1] == "whisper" else register_unanswered)(session)


serve(register)
