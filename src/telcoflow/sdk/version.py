"""The distribution's version, sent to the server as ``x-sdk-version``."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__: str = version("telcoflow")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"
