"""A tiny built-in bitmap font for the stats overlay: no font files, no SDL_ttf.

Glyphs are X11 misc-fixed 6x13 (``-Misc-Fixed-Medium-R-SemiCondensed--13-120-75-75-C-60``,
"Public domain font.  Share and enjoy."), printable ASCII 32..126. Each glyph is 13 bytes, one
per row, the top 6 bits of a byte from left (bit 5) to right (bit 0). Other characters draw as '?'.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["GLYPH_HEIGHT", "GLYPH_WIDTH", "glyph", "render_text"]

GLYPH_WIDTH = 6
GLYPH_HEIGHT = 13
_FIRST = 32
_LAST = 126

# One hex string per character, in code order from ' ' (32) to '~' (126).
_HEX = (
    "00000000000000000000000000"  # ' '
    "00000808080808080800080000"  # '!'
    "00001414140000000000000000"  # '"'
    "00000014143e143e1414000000"  # '#'
    "0000081e28281c0a0a3c080000"  # '$'
    "0000122a14040810142a240000"  # '%'
    "000000102828102826241a0000"  # '&'
    "00000808080000000000000000"  # "'"
    "00040808101010101008080400"  # '('
    "00100808040404040408081000"  # ')'
    "0000082a1c2a08000000000000"  # '*'
    "0000000008083e080800000000"  # '+'
    "0000000000000000000c081000"  # ','
    "0000000000003e000000000000"  # '-'
    "000000000000000000081c0800"  # '.'
    "00000202040408101020200000"  # '/'
    "00000814222222222214080000"  # '0'
    "000008182808080808083e0000"  # '1'
    "00001c222202040810203e0000"  # '2'
    "00003e0204081c0202221c0000"  # '3'
    "000004040c1414243e04040000"  # '4'
    "00003e20202c320202221c0000"  # '5'
    "00001c2220203c2222221c0000"  # '6'
    "00003e02040408081010100000"  # '7'
    "00001c2222221c2222221c0000"  # '8'
    "00001c2222221e0202221c0000"  # '9'
    "00000000081c080000081c0800"  # ':'
    "00000000081c0800000c081000"  # ';'
    "00000204081020100804020000"  # '<'
    "00000000003e00003e00000000"  # '='
    "00002010080402040810200000"  # '>'
    "00001c22220204080800080000"  # '?'
    "00001c2222262a2a2c201e0000"  # '@'
    "000008142222223e2222220000"  # 'A'
    "00003c1212121c1212123c0000"  # 'B'
    "00001c222020202020221c0000"  # 'C'
    "00003c121212121212123c0000"  # 'D'
    "00003e2020203c2020203e0000"  # 'E'
    "00003e2020203c202020200000"  # 'F'
    "00001c222020202622221c0000"  # 'G'
    "0000222222223e222222220000"  # 'H'
    "00001c080808080808081c0000"  # 'I'
    "00000e04040404040424180000"  # 'J'
    "00002222242830282422220000"  # 'K'
    "000020202020202020203e0000"  # 'L'
    "00002222362a2a222222220000"  # 'M'
    "00002232322a2a262622220000"  # 'N'
    "00001c222222222222221c0000"  # 'O'
    "00003c2222223c202020200000"  # 'P'
    "00001c2222222222222a1c0200"  # 'Q'
    "00003c2222223c282422220000"  # 'R'
    "00001c2220201c0202221c0000"  # 'S'
    "00003e08080808080808080000"  # 'T'
    "000022222222222222221c0000"  # 'U'
    "00002222222214141408080000"  # 'V'
    "0000222222222a2a2a2a140000"  # 'W'
    "00002222141408141422220000"  # 'X'
    "00002222141408080808080000"  # 'Y'
    "00003e020404081010203e0000"  # 'Z'
    "001c1010101010101010101c00"  # '['
    "00002020101008040402020000"  # backslash
    "001c0404040404040404041c00"  # ']'
    "00000814220000000000000000"  # '^'
    "00000000000000000000003e00"  # '_'
    "00080400000000000000000000"  # '`'
    "00000000001c021e22261a0000"  # 'a'
    "00002020203c222222223c0000"  # 'b'
    "00000000001c222020221c0000"  # 'c'
    "00000202021e222222221e0000"  # 'd'
    "00000000001c223e20221c0000"  # 'e'
    "00000c1210103c101010100000"  # 'f'
    "00000000001c2222221e02221c"  # 'g'
    "00002020202c32222222220000"  # 'h'
    "000000080018080808081c0000"  # 'i'
    "00000004000c04040404242418"  # 'j'
    "00002020202428302824220000"  # 'k'
    "000018080808080808081c0000"  # 'l'
    "0000000000342a2a2a2a220000"  # 'm'
    "00000000002c32222222220000"  # 'n'
    "00000000001c222222221c0000"  # 'o'
    "00000000003c2222223c202020"  # 'p'
    "00000000001e2222221e020202"  # 'q'
    "00000000002c32202020200000"  # 'r'
    "00000000001c221804221c0000"  # 's'
    "00000010103c101010120c0000"  # 't'
    "000000000022222222261a0000"  # 'u'
    "00000000002222221414080000"  # 'v'
    "000000000022222a2a2a140000"  # 'w'
    "00000000002214080814220000"  # 'x'
    "0000000000222222261a02221c"  # 'y'
    "00000000003e040810203e0000"  # 'z'
    "00060808080830080808080600"  # '{'
    "00000808080808080808080000"  # '|'
    "00300808080806080808083000"  # '}'
    "0000122a240000000000000000"  # '~'
)


def _build_table() -> npt.NDArray[np.bool_]:
    """(95, 13, 6) bool: True where a glyph pixel is set."""
    raw = np.frombuffer(bytes.fromhex("".join(_HEX)), dtype=np.uint8).reshape(-1, GLYPH_HEIGHT)
    shifts = np.arange(GLYPH_WIDTH - 1, -1, -1, dtype=np.uint8)
    return ((raw[:, :, None] >> shifts) & 1).astype(np.bool_)


_TABLE = _build_table()


def glyph(char: str) -> npt.NDArray[np.bool_]:
    """The (13, 6) mask of one character ('?' for anything outside printable ASCII)."""
    code = ord(char) if len(char) == 1 else 0
    if not _FIRST <= code <= _LAST:
        code = ord("?")
    mask: npt.NDArray[np.bool_] = _TABLE[code - _FIRST]
    return mask


def render_text(
    lines: Sequence[str], *, scale: int = 1, line_gap: int = 1
) -> npt.NDArray[np.bool_]:
    """Rasterise *lines* into one bool mask, (rows, cols) = (n*(13+gap)-gap, longest*6) * scale."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    cols = max((len(line) for line in lines), default=0)
    pitch = GLYPH_HEIGHT + line_gap
    height = max(len(lines) * pitch - line_gap, 0)
    mask = np.zeros((height, cols * GLYPH_WIDTH), dtype=np.bool_)
    for row, line in enumerate(lines):
        if not line:
            continue
        codes = np.frombuffer(line.encode("ascii", errors="replace"), dtype=np.uint8).astype(
            np.intp
        )
        codes[(codes < _FIRST) | (codes > _LAST)] = ord("?")
        # (n, 13, 6) glyphs side by side -> (13, n*6)
        strip = _TABLE[codes - _FIRST].transpose(1, 0, 2).reshape(GLYPH_HEIGHT, -1)
        top = row * pitch
        mask[top : top + GLYPH_HEIGHT, : strip.shape[1]] = strip
    if scale > 1:
        mask = mask.repeat(scale, axis=0).repeat(scale, axis=1)
    return mask
