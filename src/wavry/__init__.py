"""Wavry: latency-first remote desktop and game streaming over RIFT."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("wavry")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
