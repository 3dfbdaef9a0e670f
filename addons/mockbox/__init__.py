"""MockBox: mock, record, rate-limit, cache and synthesize HTTP APIs as mitmproxy addons."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mockbox")
except PackageNotFoundError:  # running from a plain checkout
    __version__ = "0.0.0+source"
