"""EventStream server: a gRPC-first event streaming node."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("eventstream-server")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
