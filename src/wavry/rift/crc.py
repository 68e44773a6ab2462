"""CRC-16/KERMIT, the checksum of RIFT physical headers.

Parameters: poly 0x1021 (reflected 0x8408), init 0x0000, refin/refout true, xorout 0x0000.
check("123456789") = 0x2189. It guards only the header (it is a cheap filter against stray
traffic before any crypto work); the AEAD tag is what authenticates.
"""

from __future__ import annotations

__all__ = ["crc16_kermit"]


def _build_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _build_table()


def crc16_kermit(data: bytes | bytearray | memoryview) -> int:
    """Return the CRC-16/KERMIT of ``data`` as an int in 0..0xFFFF."""
    crc = 0
    table = _TABLE
    for byte in bytes(data):
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc
