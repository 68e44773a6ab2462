"""Input injectors: the interface, the registry, and the backends (importing registers them)."""

from wavry.input.inject.base import (
    DeviceSpec,
    InjectorCounters,
    InjectorOptions,
    InjectorUnavailable,
    InputInjector,
    KeyMode,
    TargetRegion,
    VirtualDevice,
    VirtualDeviceFactory,
    auto_order,
    available_injectors,
    open_injector,
    register_injector,
)
from wavry.input.inject.gamepad import (
    GamepadState,
    GamepadTracker,
    axis_to_device,
    radial_deadzone,
)
from wavry.input.inject.uinput import UInputGamepads, UInputInjector, evdev_device_factory
from wavry.input.inject.xtest import XTestInjector

__all__ = [
    "DeviceSpec",
    "GamepadState",
    "GamepadTracker",
    "InjectorCounters",
    "InjectorOptions",
    "InjectorUnavailable",
    "InputInjector",
    "KeyMode",
    "TargetRegion",
    "UInputGamepads",
    "UInputInjector",
    "VirtualDevice",
    "VirtualDeviceFactory",
    "XTestInjector",
    "auto_order",
    "available_injectors",
    "axis_to_device",
    "evdev_device_factory",
    "open_injector",
    "radial_deadzone",
    "register_injector",
]
