"""Injector registry, "auto" selection and the shared option/region checks."""

from __future__ import annotations

import pytest

import wavry.input as wi
from wavry.input.inject.base import (
    DeviceSpec,
    InjectorOptions,
    InjectorUnavailable,
    TargetRegion,
    VirtualDevice,
    auto_order,
    available_injectors,
    open_injector,
    register_injector,
)
from wavry.input.inject.uinput import UInputInjector


def test_backends_are_registered() -> None:
    assert available_injectors() == ("uinput", "xtest")
    with pytest.raises(ValueError, match="already registered"):
        register_injector("xtest")(lambda opts: None)  # type: ignore[arg-type,return-value]


def test_auto_order() -> None:
    assert auto_order({"DISPLAY": ":0"}, "linux") == ["xtest", "uinput"]
    assert auto_order({"DISPLAY": ":0", "WAYLAND_DISPLAY": "wayland-0"}, "linux") == [
        "uinput",
        "xtest",
    ]
    assert auto_order({"XDG_SESSION_TYPE": "wayland"}, "linux") == ["uinput", "xtest"]
    assert auto_order({}, "linux") == ["uinput"]
    assert auto_order({"DISPLAY": ":0"}, "darwin") == []


def test_bad_names_and_options() -> None:
    with pytest.raises(ValueError, match="unknown injector 'portal'.*auto, uinput, xtest"):
        open_injector("portal")
    with pytest.raises(TypeError):
        open_injector("uinput", dispaly=":0")  # a typo is an error, not silently ignored
    with pytest.raises(ValueError, match="key_mode"):
        InjectorOptions(key_mode="scancode")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_gamepads"):
        InjectorOptions(max_gamepads=99)
    with pytest.raises(ValueError):
        TargetRegion(0, 0, 0, 10)


def _no_uinput(spec: DeviceSpec) -> VirtualDevice:
    raise InjectorUnavailable("no /dev/uinput (test)")


def test_auto_on_a_console_explains_every_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_SESSION_TYPE"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(InjectorUnavailable, match=r"no input injector.*uinput: no /dev/uinput"):
        open_injector("auto", device_factory=_no_uinput)


def test_auto_under_wayland_falls_back(x_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")  # uinput first, then Xwayland's XTest
    with open_injector("auto", device_factory=_no_uinput) as inj:
        assert inj.name == "xtest"


def test_auto_prefers_uinput_under_wayland(monkeypatch: pytest.MonkeyPatch) -> None:
    class Dev:
        def write(self, etype: int, code: int, value: int) -> None: ...
        def syn(self) -> None: ...
        def close(self) -> None: ...

    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    with open_injector("auto", device_factory=lambda spec: Dev()) as inj:
        assert isinstance(inj, UInputInjector)


def test_package_exports() -> None:
    for name in wi.__all__:
        assert getattr(wi, name) is not None
    assert wi.sdl_scancode_to_hid(4) == wi.HID_BY_NAME["A"]
