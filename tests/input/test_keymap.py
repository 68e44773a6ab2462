"""Key tables: internally consistent, and in agreement with evdev, X11 and SDL's own constants."""

from __future__ import annotations

from collections import Counter

import pytest
import sdl2
from evdev import ecodes
from Xlib import XK as xk

from wavry.input.events import KEY_USAGE_MAX, KEY_USAGE_MIN
from wavry.input.keymap import (
    HID_BY_NAME,
    HID_MODIFIERS,
    HID_NAMES,
    HID_TO_EVDEV,
    HID_TO_KEYSYMS,
    KEY_ROWS,
    SDL_SCANCODE_EXCEPTIONS,
    sdl_scancode_to_hid,
)

#: the one pair of usages that are the same physical key (ISO AC12) on PC keyboards
SHARED_KEY = {0x31, 0x32}


def test_usages_are_unique_keyboard_page_keys() -> None:
    usages = [r.usage for r in KEY_ROWS]
    assert len(usages) == len(set(usages))
    assert all(KEY_USAGE_MIN <= u <= KEY_USAGE_MAX for u in usages)
    assert len(HID_BY_NAME) == len(KEY_ROWS)  # names are unique too


def test_evdev_targets_are_unique_except_the_shared_key() -> None:
    dup = {code for code, n in Counter(HID_TO_EVDEV.values()).items() if n > 1}
    assert {u for u, code in HID_TO_EVDEV.items() if code in dup} == SHARED_KEY


def test_first_keysyms_are_unique_except_the_shared_key() -> None:
    dup = {ks for ks, n in Counter(k[0] for k in HID_TO_KEYSYMS.values()).items() if n > 1}
    assert {u for u, k in HID_TO_KEYSYMS.items() if k[0] in dup} == SHARED_KEY
    every = [ks for k in HID_TO_KEYSYMS.values() for ks in k]
    assert len(every) - len(set(every)) == 1  # the shared key's backslash, nothing else


def test_every_modifier_is_in_every_table() -> None:
    assert HID_MODIFIERS == (0xE0, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7)
    for usage in HID_MODIFIERS:
        assert usage in HID_TO_EVDEV and usage in HID_TO_KEYSYMS and usage in HID_NAMES


@pytest.mark.parametrize(
    "group",
    [
        range(0x04, 0x1E),  # letters
        range(0x1E, 0x28),  # digits
        range(0x28, 0x39),  # enter .. slash
        range(0x3A, 0x46),  # F1-F12
        range(0x46, 0x53),  # print .. up
        range(0x53, 0x68),  # keypad, ISO key, application, power, keypad =
        range(0x68, 0x74),  # F13-F24
        range(0x7F, 0x82),  # mute, volume
        range(0x87, 0x8D),  # International1-6
        range(0x90, 0x95),  # LANG1-5
    ],
)
def test_coverage(group: range) -> None:
    assert [u for u in group if u not in HID_TO_EVDEV] == []


def test_evdev_codes_match_the_kernel_names() -> None:
    for row in KEY_ROWS:
        name = "BACKSLASH" if row.name == "NONUSHASH" else row.name
        assert getattr(ecodes, f"KEY_{name}") == row.evdev, row
        # X keycodes are evdev + 8 and X keycodes end at 255
        assert row.evdev + 8 <= 255


# A sample checked by hand against drivers/hid/hid-input.c (hid_keyboard[]), by position.
KERNEL_SAMPLE = {
    0x04: 30, 0x1D: 44, 0x1E: 2, 0x27: 11, 0x28: 28, 0x32: 43, 0x39: 58, 0x44: 87, 0x46: 99,
    0x4C: 111, 0x52: 103, 0x58: 96, 0x62: 82, 0x63: 83, 0x64: 86, 0x65: 127, 0x67: 117,
    0x68: 183, 0x73: 194, 0x74: 134, 0x76: 130, 0x7F: 113, 0x80: 115, 0x81: 114, 0x85: 121,
    0x87: 89, 0x89: 124, 0x8C: 95, 0x90: 122, 0x94: 85, 0xB6: 179, 0xE0: 29, 0xE3: 125,
    0xE6: 100, 0xE7: 126,
}  # fmt: skip


def test_kernel_sample() -> None:
    assert {u: HID_TO_EVDEV[u] for u in KERNEL_SAMPLE} == KERNEL_SAMPLE


def test_keysyms_are_real_x11_keysyms() -> None:
    for group in ("xf86", "latin1", "miscellany", "katakana", "korean", "xkb"):
        xk.load_keysym_group(group)
    known = {v for k, v in vars(xk).items() if k.startswith("XK_") and isinstance(v, int)}
    sun = {0x1005FF70, 0x1005FF71}  # SunProps, SunFront: not in python-xlib's tables
    for usage, keysyms in HID_TO_KEYSYMS.items():
        for ks in keysyms:
            assert ks in known or ks in sun, (hex(usage), hex(ks))
    assert HID_TO_KEYSYMS[HID_BY_NAME["A"]] == (xk.XK_a,)
    assert HID_TO_KEYSYMS[HID_BY_NAME["ENTER"]] == (xk.XK_Return,)
    assert HID_TO_KEYSYMS[HID_BY_NAME["KP1"]] == (xk.XK_KP_End,)
    assert HID_TO_KEYSYMS[HID_BY_NAME["F24"]] == (xk.XK_F24,)


def test_sdl_scancodes_are_hid_usages_for_the_main_block() -> None:
    checked = 0
    for name, value in vars(sdl2).items():
        if not name.startswith("SDL_SCANCODE_") or not isinstance(value, int):
            continue
        if 4 <= value <= 231:
            assert sdl_scancode_to_hid(value) == value
            checked += 1
    assert checked > 200
    # Names agree where both sides name a key (SDL and evdev spell a few differently).
    same = {"A": "A", "RETURN": "ENTER", "ESCAPE": "ESC", "NONUSBACKSLASH": "102ND",
            "LCTRL": "LEFTCTRL", "RGUI": "RIGHTMETA", "KP_1": "KP1", "F24": "F24",
            "INTERNATIONAL3": "YEN", "LANG1": "HANGEUL", "VOLUMEUP": "VOLUMEUP",
            "NONUSHASH": "NONUSHASH", "APPLICATION": "COMPOSE", "PRINTSCREEN": "SYSRQ"}  # fmt: skip
    for sdl_name, hid_name in same.items():
        assert (
            sdl_scancode_to_hid(getattr(sdl2, f"SDL_SCANCODE_{sdl_name}")) == HID_BY_NAME[hid_name]
        )
    assert sdl_scancode_to_hid(sdl2.SDL_SCANCODE_AUDIOMUTE) == HID_BY_NAME["MUTE"]
    assert set(SDL_SCANCODE_EXCEPTIONS) == {sdl2.SDL_SCANCODE_AUDIOMUTE}
    for consumer in ("AUDIOPLAY", "AUDIONEXT", "AC_BACK", "BRIGHTNESSUP", "MODE", "SLEEP"):
        assert sdl_scancode_to_hid(getattr(sdl2, f"SDL_SCANCODE_{consumer}")) is None
    assert sdl_scancode_to_hid(sdl2.SDL_SCANCODE_UNKNOWN) is None
