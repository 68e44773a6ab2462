"""Capture backends behind one interface (see :mod:`wavry.media.capture.base`).

Importing this package registers the built-in backends: ``testsrc`` (synthetic, with an
in-picture barcode) and ``x11`` (XShm). ``open_capture("auto")`` picks the best that works.
"""

from wavry.media.capture import testsrc as _testsrc  # noqa: F401  (registers "testsrc")
from wavry.media.capture import x11 as _x11  # noqa: F401  (registers "x11")
from wavry.media.capture.barcode import BarcodeValue, decode_barcode, stamp_barcode
from wavry.media.capture.base import (
    AUTO_ORDER,
    DEFAULT_RETRY_POLICY,
    CaptureBackend,
    CaptureError,
    CaptureLost,
    CaptureUnavailable,
    MonitorInfo,
    RetryPolicy,
    capture_backends,
    open_capture,
    register_capture,
)
from wavry.media.capture.testsrc import TestSource
from wavry.media.capture.x11 import X11Capture

__all__ = [
    "AUTO_ORDER",
    "DEFAULT_RETRY_POLICY",
    "BarcodeValue",
    "CaptureBackend",
    "CaptureError",
    "CaptureLost",
    "CaptureUnavailable",
    "MonitorInfo",
    "RetryPolicy",
    "TestSource",
    "X11Capture",
    "capture_backends",
    "decode_barcode",
    "open_capture",
    "register_capture",
    "stamp_barcode",
]
