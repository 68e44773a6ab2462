"""Media: capture backends, video encode/decode (PyAV), and the frame types between them.

Everything here is blocking and runs in threads owned by the host/client services, never on
the asyncio event loop::

    codecs = offered_codecs(["h264", "hevc"], width=1280, height=720, fps=60)   # host start
    cap = open_capture("auto", width=1280, height=720, fps=60)        # capture thread
    enc = create_encoder(codec, width=cap.width, height=cap.height,   # encode thread
                         fps=60, bitrate_kbps=8000)
    packet = enc.encode(cap.grab())
    picture = VideoDecoder(codec).decode(packet.data)                 # client decode thread
"""

from wavry.media.capture import (
    AUTO_ORDER,
    DEFAULT_RETRY_POLICY,
    BarcodeValue,
    CaptureBackend,
    CaptureError,
    CaptureLost,
    CaptureUnavailable,
    MonitorInfo,
    RetryPolicy,
    TestSource,
    X11Capture,
    capture_backends,
    decode_barcode,
    open_capture,
    register_capture,
    stamp_barcode,
)
from wavry.media.decoder import (
    DecoderError,
    DecoderStats,
    DecoderUnavailable,
    VideoDecoder,
    contains_keyframe,
)
from wavry.media.encoder import (
    EncoderConfig,
    EncoderError,
    EncoderProfile,
    EncoderUnavailable,
    PyAVEncoder,
    VideoEncoder,
    create_encoder,
    encoder_profiles,
    register_encoder,
)
from wavry.media.frames import COLORSPACE, DecodedFrame, EncodedFrame, RawFrame
from wavry.media.probe import EncoderInfo, choose_encoder, offered_codecs, probe_encoders

__all__ = [
    "AUTO_ORDER",
    "COLORSPACE",
    "DEFAULT_RETRY_POLICY",
    "BarcodeValue",
    "CaptureBackend",
    "CaptureError",
    "CaptureLost",
    "CaptureUnavailable",
    "DecodedFrame",
    "DecoderError",
    "DecoderStats",
    "DecoderUnavailable",
    "EncodedFrame",
    "EncoderConfig",
    "EncoderError",
    "EncoderInfo",
    "EncoderProfile",
    "EncoderUnavailable",
    "MonitorInfo",
    "PyAVEncoder",
    "RawFrame",
    "RetryPolicy",
    "TestSource",
    "VideoDecoder",
    "VideoEncoder",
    "X11Capture",
    "capture_backends",
    "choose_encoder",
    "contains_keyframe",
    "create_encoder",
    "decode_barcode",
    "encoder_profiles",
    "offered_codecs",
    "open_capture",
    "probe_encoders",
    "register_capture",
    "register_encoder",
    "stamp_barcode",
]
