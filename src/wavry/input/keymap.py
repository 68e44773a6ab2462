"""Key tables: USB HID keyboard usage (the wire) -> Linux evdev code, X11 keysym; SDL -> HID.

**Keys are physical positions.** A HID usage names a key by where it sits, labelled as on a US
layout (usage 0x04 is the key where 'a' is on a US keyboard), exactly like SDL scancodes. The
host's own layout turns the position into a character, as it would for a keyboard plugged into
the host: a client with an AZERTY keyboard typing on a host set to AZERTY gets the same
characters as locally, and WASD in a game stays under the same fingers whatever the layouts.
The alternative, sending characters (keysyms, as VNC does), breaks shortcuts and games across
layouts and cannot express keys that produce no character.

How each injector honours that:

* uinput: ``HID_TO_EVDEV`` (the kernel's own HID table, ``drivers/hid/hid-input.c``).
* XTest: every X server using evdev keycodes (Xorg with libinput/evdev, Xwayland, Xvfb) numbers
  keys ``evdev + 8``, so positions go straight through. For a server with another numbering,
  the injector falls back to ``HID_TO_KEYSYMS``: the keysyms the key produces *without
  modifiers* on a US layout (NumLock off for the keypad), looked up at runtime in the display's
  keyboard mapping (column 0 only, so ``numbersign`` never finds shift+3).

Usages the kernel leaves unmapped (locking keys 0x82-0x84, AS/400 keypad '=', International7-9,
LANG6-9, most of 0x99-0xDD) are absent: the injectors count and skip them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

__all__ = [
    "HID_BY_NAME",
    "HID_MODIFIERS",
    "HID_NAMES",
    "HID_TO_EVDEV",
    "HID_TO_KEYSYMS",
    "SDL_SCANCODE_EXCEPTIONS",
    "KEY_ROWS",
    "KeyRow",
    "sdl_scancode_to_hid",
]


class KeyRow(NamedTuple):
    usage: int
    #: evdev name without the KEY_ prefix; also the name used for HID_BY_NAME
    name: str
    evdev: int
    #: X11 keysyms the key produces unmodified on a US layout, preferred first; empty when none
    keysyms: tuple[int, ...]


def _letters() -> list[KeyRow]:
    evdev = dict(
        A=30, B=48, C=46, D=32, E=18, F=33, G=34, H=35, I=23, J=36, K=37, L=38, M=50,
        N=49, O=24, P=25, Q=16, R=19, S=31, T=20, U=22, V=47, W=17, X=45, Y=21, Z=44,
    )  # fmt: skip
    return [KeyRow(0x04 + i, c, evdev[c], (ord(c.lower()),)) for i, c in enumerate(evdev)]


def _digits() -> list[KeyRow]:
    # HID and evdev both run 1..9 then 0.
    return [KeyRow(0x1E + i, d, 2 + i, (ord(d),)) for i, d in enumerate("1234567890")]


def _function_keys() -> list[KeyRow]:
    f1_10 = [KeyRow(0x3A + i, f"F{i + 1}", 59 + i, (0xFFBE + i,)) for i in range(10)]
    f11_12 = [KeyRow(0x44, "F11", 87, (0xFFC8,)), KeyRow(0x45, "F12", 88, (0xFFC9,))]
    f13_24 = [KeyRow(0x68 + i, f"F{13 + i}", 183 + i, (0xFFCA + i,)) for i in range(12)]
    return f1_10 + f11_12 + f13_24


_R = KeyRow
_OTHER_ROWS = [
    _R(0x28, "ENTER", 28, (0xFF0D,)),  # Return
    _R(0x29, "ESC", 1, (0xFF1B,)),
    _R(0x2A, "BACKSPACE", 14, (0xFF08,)),
    _R(0x2B, "TAB", 15, (0xFF09,)),
    _R(0x2C, "SPACE", 57, (0x0020,)),
    _R(0x2D, "MINUS", 12, (0x002D,)),
    _R(0x2E, "EQUAL", 13, (0x003D,)),
    _R(0x2F, "LEFTBRACE", 26, (0x005B,)),
    _R(0x30, "RIGHTBRACE", 27, (0x005D,)),
    _R(0x31, "BACKSLASH", 43, (0x005C,)),
    # "Non-US # and ~" is the same physical key (ISO AC12) as US backslash: the kernel maps both.
    _R(0x32, "NONUSHASH", 43, (0x005C,)),
    _R(0x33, "SEMICOLON", 39, (0x003B,)),
    _R(0x34, "APOSTROPHE", 40, (0x0027,)),
    _R(0x35, "GRAVE", 41, (0x0060,)),
    _R(0x36, "COMMA", 51, (0x002C,)),
    _R(0x37, "DOT", 52, (0x002E,)),
    _R(0x38, "SLASH", 53, (0x002F,)),
    _R(0x39, "CAPSLOCK", 58, (0xFFE5,)),
    _R(0x46, "SYSRQ", 99, (0xFF61,)),  # PrintScreen -> Print
    _R(0x47, "SCROLLLOCK", 70, (0xFF14,)),
    _R(0x48, "PAUSE", 119, (0xFF13,)),
    _R(0x49, "INSERT", 110, (0xFF63,)),
    _R(0x4A, "HOME", 102, (0xFF50,)),
    _R(0x4B, "PAGEUP", 104, (0xFF55,)),  # Prior
    _R(0x4C, "DELETE", 111, (0xFFFF,)),
    _R(0x4D, "END", 107, (0xFF57,)),
    _R(0x4E, "PAGEDOWN", 109, (0xFF56,)),  # Next
    _R(0x4F, "RIGHT", 106, (0xFF53,)),
    _R(0x50, "LEFT", 105, (0xFF51,)),
    _R(0x51, "DOWN", 108, (0xFF54,)),
    _R(0x52, "UP", 103, (0xFF52,)),
    _R(0x53, "NUMLOCK", 69, (0xFF7F,)),
    _R(0x54, "KPSLASH", 98, (0xFFAF,)),  # KP_Divide
    _R(0x55, "KPASTERISK", 55, (0xFFAA,)),  # KP_Multiply
    _R(0x56, "KPMINUS", 74, (0xFFAD,)),  # KP_Subtract
    _R(0x57, "KPPLUS", 78, (0xFFAB,)),  # KP_Add
    _R(0x58, "KPENTER", 96, (0xFF8D,)),
    _R(0x59, "KP1", 79, (0xFF9C,)),  # KP_End
    _R(0x5A, "KP2", 80, (0xFF99,)),  # KP_Down
    _R(0x5B, "KP3", 81, (0xFF9B,)),  # KP_Next
    _R(0x5C, "KP4", 75, (0xFF96,)),  # KP_Left
    _R(0x5D, "KP5", 76, (0xFF9D,)),  # KP_Begin
    _R(0x5E, "KP6", 77, (0xFF98,)),  # KP_Right
    _R(0x5F, "KP7", 71, (0xFF95,)),  # KP_Home
    _R(0x60, "KP8", 72, (0xFF97,)),  # KP_Up
    _R(0x61, "KP9", 73, (0xFF9A,)),  # KP_Prior
    _R(0x62, "KP0", 82, (0xFF9E,)),  # KP_Insert
    _R(0x63, "KPDOT", 83, (0xFF9F,)),  # KP_Delete
    _R(0x64, "102ND", 86, (0x003C,)),  # ISO key left of Z: less
    _R(0x65, "COMPOSE", 127, (0xFF67,)),  # Application -> Menu
    _R(0x66, "POWER", 116, (0x1008FF2A,)),  # XF86PowerOff
    _R(0x67, "KPEQUAL", 117, (0xFFBD,)),
    # The "office" keys: the kernel's evdev code, and the keysym xkeyboard-config gives it.
    _R(0x74, "OPEN", 134, (0x1008FF6B,)),  # Execute; XF86Open
    _R(0x75, "HELP", 138, (0xFF6A,)),
    _R(0x76, "PROPS", 130, (0x1005FF70,)),  # Menu; SunProps
    _R(0x77, "FRONT", 132, (0x1005FF71,)),  # Select; SunFront
    _R(0x78, "STOP", 128, (0xFF69,)),  # Cancel
    _R(0x79, "AGAIN", 129, (0xFF66,)),  # Redo
    _R(0x7A, "UNDO", 131, (0xFF65,)),
    _R(0x7B, "CUT", 137, (0x1008FF58,)),
    _R(0x7C, "COPY", 133, (0x1008FF57,)),
    _R(0x7D, "PASTE", 135, (0x1008FF6D,)),
    _R(0x7E, "FIND", 136, (0xFF68,)),
    _R(0x7F, "MUTE", 113, (0x1008FF12,)),  # XF86AudioMute
    _R(0x80, "VOLUMEUP", 115, (0x1008FF13,)),  # XF86AudioRaiseVolume
    _R(0x81, "VOLUMEDOWN", 114, (0x1008FF11,)),  # XF86AudioLowerVolume
    _R(0x85, "KPCOMMA", 121, (0xFFAC,)),  # KP_Separator
    # International keys (Japanese and Korean keyboards).
    _R(0x87, "RO", 89, ()),  # International1; backslash/underscore on jp: no own keysym
    _R(0x88, "KATAKANAHIRAGANA", 93, (0xFF27,)),  # International2
    _R(0x89, "YEN", 124, (0x00A5,)),  # International3
    _R(0x8A, "HENKAN", 92, (0xFF23,)),  # International4; Henkan_Mode
    _R(0x8B, "MUHENKAN", 94, (0xFF22,)),  # International5
    _R(0x8C, "KPJPCOMMA", 95, ()),  # International6
    _R(0x90, "HANGEUL", 122, (0xFF31,)),  # LANG1; Hangul
    _R(0x91, "HANJA", 123, (0xFF34,)),  # LANG2; Hangul_Hanja
    _R(0x92, "KATAKANA", 90, (0xFF26,)),  # LANG3
    _R(0x93, "HIRAGANA", 91, (0xFF25,)),  # LANG4
    _R(0x94, "ZENKAKUHANKAKU", 85, (0xFF2A,)),  # LANG5
    _R(0xB6, "KPLEFTPAREN", 179, (0x0028,)),
    _R(0xB7, "KPRIGHTPAREN", 180, (0x0029,)),
    # Modifiers. Right Alt is AltGr (ISO_Level3_Shift) on most non-US layouts.
    _R(0xE0, "LEFTCTRL", 29, (0xFFE3,)),
    _R(0xE1, "LEFTSHIFT", 42, (0xFFE1,)),
    _R(0xE2, "LEFTALT", 56, (0xFFE9,)),
    _R(0xE3, "LEFTMETA", 125, (0xFFEB,)),  # Super_L
    _R(0xE4, "RIGHTCTRL", 97, (0xFFE4,)),
    _R(0xE5, "RIGHTSHIFT", 54, (0xFFE2,)),
    _R(0xE6, "RIGHTALT", 100, (0xFFEA, 0xFE03)),  # Alt_R, ISO_Level3_Shift
    _R(0xE7, "RIGHTMETA", 126, (0xFFEC,)),  # Super_R
]

KEY_ROWS: tuple[KeyRow, ...] = tuple(
    sorted(_letters() + _digits() + _function_keys() + _OTHER_ROWS, key=lambda r: r.usage)
)

#: HID usage -> Linux evdev KEY_* code. Only 0x31 and 0x32 share a target (see their rows).
HID_TO_EVDEV: Mapping[int, int] = MappingProxyType({r.usage: r.evdev for r in KEY_ROWS})
#: HID usage -> X11 keysyms, preferred first (only keys that have one).
HID_TO_KEYSYMS: Mapping[int, tuple[int, ...]] = MappingProxyType(
    {r.usage: r.keysyms for r in KEY_ROWS if r.keysyms}
)
HID_NAMES: Mapping[int, str] = MappingProxyType({r.usage: r.name for r in KEY_ROWS})
HID_BY_NAME: Mapping[str, int] = MappingProxyType({r.name: r.usage for r in KEY_ROWS})
#: Left Ctrl, Shift, Alt, GUI, then the right ones: HID's modifier byte order.
HID_MODIFIERS: tuple[int, ...] = tuple(range(0xE0, 0xE8))

#: SDL scancodes outside 4..231 that have a keyboard-page usage. SDL's other scancodes above 231
#: (media transport, browser and application keys, brightness, eject, sleep, the mobile soft
#: keys, SDL_SCANCODE_MODE) are consumer-page or vendor keys: not sent, there is no usage for them.
SDL_SCANCODE_EXCEPTIONS: Mapping[int, int] = MappingProxyType(
    {
        262: 0x7F,  # SDL_SCANCODE_AUDIOMUTE -> Mute (SDL also has SDL_SCANCODE_MUTE = 127)
    }
)


def sdl_scancode_to_hid(scancode: int) -> int | None:
    """The HID usage to send for an SDL scancode, or None when it has none.

    SDL scancodes *are* HID keyboard usages for 4..231 (SDL_SCANCODE_A = 4 ... RGUI = 231), so
    those pass unchanged, including usages this host cannot inject (it skips and counts them).
    """
    if 4 <= scancode <= 231:
        return scancode
    return SDL_SCANCODE_EXCEPTIONS.get(scancode)
