"""CRC-16/KERMIT, the checksum of RIFT physical headers.

Parameters: poly 0x1021 (reflected 0x8408), init 0x0000, refin/refout true, xorout 0x0000.
check("123456789") = 0x2189. It guards only the header (it is a cheap filter against stray
traffic before any crypto work); the AEAD tag is what authenticates.
"""

from __future__ import annotations

import binascii

__all__ = ["crc16_kermit", "crc16_kermit_table"]


def _build_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _build_table()


# KERMIT is the bit-reflected form of CRC-16/XMODEM (same polynomial, init 0), which the C
# ``binascii.crc_hqx`` computes: reflect every input byte, run XMODEM, reflect the 16-bit result.
# 5x faster than the table loop on an 18-byte header (the relay's per-packet hot path).
_REFLECT_BYTE = bytes(int(f"{b:08b}"[::-1], 2) for b in range(256))


def _reflect16(value: int) -> int:
    return _REFLECT_BYTE[value & 0xFF] << 8 | _REFLECT_BYTE[value >> 8]


def crc16_kermit(data: bytes | bytearray | memoryview) -> int:
    """Return the CRC-16/KERMIT of ``data`` as an int in 0..0xFFFF."""
    return _reflect16(binascii.crc_hqx(bytes(data).translate(_REFLECT_BYTE), 0))


def crc16_kermit_table(data: bytes | bytearray | memoryview) -> int:
    """Reference implementation (table-driven, reflected): kept to test the fast one against."""
    crc = 0
    table = _TABLE
    for byte in bytes(data):
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc
