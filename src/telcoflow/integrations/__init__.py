"""Bridges from one SDK :class:`~telcoflow.Call` to a speech-to-speech AI model.

Each bridge lives in its own module and imports its vendor's package only
there (``openai_realtime`` needs ``openai``), so importing this package
costs nothing.
"""
