"""Load generation for ``telcoflow bench``: callers, echo agents, their processes, figures."""
