"""smartscreen: multimodal AI X-ray screening of parcels for express and postal sorting centres."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("smartscreen")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"
