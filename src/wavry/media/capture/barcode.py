"""An in-picture barcode carrying the frame counter and the capture timestamp.

The test source stamps every frame with it, so the receiving end can read, from the decoded
pixels alone, which frame it is looking at and when that frame was captured: end-to-end
latency (capture to present) and frame loss measured without trusting any metadata path.

Layout (normative for both ends):

* A strip of ``ROWS x COLS`` = 6 x 16 = 96 blocks of 16x16 luma pixels at the top-left corner
  of the Y plane (256 x 96 pixels). Blocks are macroblock-aligned, so each one is a single flat
  macroblock for H.264 (and a flat region for HEVC/AV1) and survives heavy quantisation.
* Block = 1 bit, row-major, most significant bit first: black (Y=16) is 0, white (Y=235) is 1.
* Payload (12 bytes, big-endian): frame index (u32) | capture timestamp in monotonic
  microseconds (low 48 bits) | CRC-16/CCITT-FALSE (``binascii.crc_hqx(..., 0xFFFF)``) of the
  first 10 bytes.
* Reading averages the inner 8x8 pixels of each block (block edges bleed through the deblocking
  filter), thresholds at mid-grey, and rejects the strip if any block is ambiguous (between the
  two levels) or the CRC fails. Only the luma plane is touched; chroma is left as it is.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "BARCODE_HEIGHT",
    "BARCODE_WIDTH",
    "BarcodeValue",
    "PictureCheck",
    "check_picture",
    "decode_barcode",
    "stamp_barcode",
    "timestamp_us",
]

BLOCK = 16
COLS = 16
ROWS = 6
BARCODE_WIDTH = COLS * BLOCK
BARCODE_HEIGHT = ROWS * BLOCK
_BITS = ROWS * COLS
_BLACK = 16
_WHITE = 235
_THRESHOLD = (_BLACK + _WHITE) / 2
# A block mean inside this band is neither clearly black nor clearly white: the strip is not a
# barcode (or is too damaged to trust). Random picture content rarely passes this and the CRC.
_AMBIGUOUS_LOW = 64.0
_AMBIGUOUS_HIGH = 187.0
_TS_MASK = (1 << 48) - 1


@dataclass(frozen=True, slots=True)
class BarcodeValue:
    """What one barcode carries."""

    frame_index: int
    timestamp_us: int

    def __post_init__(self) -> None:
        if not 0 <= self.frame_index <= 0xFFFFFFFF:
            raise ValueError("frame_index must fit in 32 bits")
        if not 0 <= self.timestamp_us <= _TS_MASK:
            raise ValueError("timestamp_us must fit in 48 bits")


def _payload(value: BarcodeValue) -> bytes:
    body = value.frame_index.to_bytes(4, "big") + value.timestamp_us.to_bytes(6, "big")
    return body + binascii.crc_hqx(body, 0xFFFF).to_bytes(2, "big")


def stamp_barcode(y_plane: npt.NDArray[np.uint8], value: BarcodeValue) -> None:
    """Write ``value`` into the top-left strip of a writable luma plane (in place).

    Raises ``ValueError`` when the plane is smaller than the strip (256x96).
    """
    if y_plane.shape[0] < BARCODE_HEIGHT or y_plane.shape[1] < BARCODE_WIDTH:
        raise ValueError(
            f"picture {y_plane.shape[1]}x{y_plane.shape[0]} is smaller than the "
            f"{BARCODE_WIDTH}x{BARCODE_HEIGHT} barcode strip"
        )
    bits = np.unpackbits(np.frombuffer(_payload(value), dtype=np.uint8))
    levels = np.where(bits, _WHITE, _BLACK).astype(np.uint8).reshape(ROWS, COLS)
    blocks = np.repeat(np.repeat(levels, BLOCK, axis=0), BLOCK, axis=1)
    y_plane[:BARCODE_HEIGHT, :BARCODE_WIDTH] = blocks


def decode_barcode(y_plane: npt.NDArray[np.uint8]) -> BarcodeValue | None:
    """Read the barcode from a luma plane; None when absent, damaged or the CRC fails."""
    if y_plane.ndim != 2 or y_plane.shape[0] < BARCODE_HEIGHT or y_plane.shape[1] < BARCODE_WIDTH:
        return None
    strip = np.asarray(y_plane[:BARCODE_HEIGHT, :BARCODE_WIDTH], dtype=np.float32)
    inner = strip.reshape(ROWS, BLOCK, COLS, BLOCK)[:, 4:12, :, 4:12]
    means = inner.mean(axis=(1, 3))
    if np.any((means > _AMBIGUOUS_LOW) & (means < _AMBIGUOUS_HIGH)):
        return None
    raw = np.packbits((means > _THRESHOLD).reshape(_BITS)).tobytes()
    if binascii.crc_hqx(raw[:10], 0xFFFF) != int.from_bytes(raw[10:12], "big"):
        return None
    return BarcodeValue(
        frame_index=int.from_bytes(raw[0:4], "big"),
        timestamp_us=int.from_bytes(raw[4:10], "big"),
    )


PictureCheck = Literal["verified", "blurred", "damaged", "absent"]


def check_picture(y_plane: npt.NDArray[np.uint8], capture_start_s: float) -> PictureCheck:
    """Is this decoded picture the frame captured at ``capture_start_s``, intact?

    * ``verified``: the barcode reads and carries that capture time;
    * ``blurred``: some blocks are grey (a keyframe squeezed into a collapsed bitrate after an
      outage is a flat grey picture for a few frames): low quality, not wrong content;
    * ``damaged``: crisp blocks that do not form a valid barcode, or another frame's barcode —
      a picture decoded from a broken reference chain, or the wrong picture;
    * ``absent``: the picture is smaller than the strip.
    """
    if y_plane.ndim != 2 or y_plane.shape[0] < BARCODE_HEIGHT or y_plane.shape[1] < BARCODE_WIDTH:
        return "absent"
    value = decode_barcode(y_plane)
    if value is not None:
        return "verified" if value.timestamp_us == timestamp_us(capture_start_s) else "damaged"
    strip = np.asarray(y_plane[:BARCODE_HEIGHT, :BARCODE_WIDTH], dtype=np.float32)
    means = strip.reshape(ROWS, BLOCK, COLS, BLOCK)[:, 4:12, :, 4:12].mean(axis=(1, 3))
    if np.any((means > _AMBIGUOUS_LOW) & (means < _AMBIGUOUS_HIGH)):
        return "blurred"
    return "damaged"


def timestamp_us(monotonic_s: float) -> int:
    """The 48-bit microsecond timestamp the barcode carries for a ``time.monotonic()`` value.

    Rounded, not truncated, so it survives a trip through float seconds: for an integer ``n``,
    ``timestamp_us(n / 1e6) == n`` (``int(n / 1e6 * 1e6)`` is ``n - 1`` for about a quarter
    of today's values). Whoever puts a capture time on the wire should use this function, so
    the wire timestamp and the barcode agree exactly.
    """
    return round(monotonic_s * 1_000_000) & _TS_MASK
